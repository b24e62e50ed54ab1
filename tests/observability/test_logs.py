from __future__ import annotations

import datetime as dt
import io
import logging
import threading
import time

import orjson
import pytest

from sidecache.config import ObservabilityConfig
from sidecache.observability.logs import ACCESS_LOGGER, AccessLog, json_lines_handler
from sidecache.observability.record import RequestRecord
from sidecache.observability.recorder import Recorder

SECRET_PROMPT = "my password is hunter2, what is 2+2?"


def record() -> RequestRecord:
    return RequestRecord(
        request_id="req_1",
        outcome="miss",
        tenant="acme",
        model="fast",
        provider="openai",
        latency_s=0.1234,
        ttft_s=0.05,
        prompt_tokens=12,
        completion_tokens=3,
        cost_usd=0.0000123,
        user="end-user-7",
        tags={"team": "search"},
    )


def test_one_json_line_without_prompt(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    AccessLog().log(record(), prompt=SECRET_PROMPT)
    assert len(caplog.records) == 1
    msg = caplog.records[0].getMessage()
    assert "\n" not in msg
    doc = orjson.loads(msg)
    assert doc["request_id"] == "req_1" and doc["tenant"] == "acme" and doc["model"] == "fast"
    assert doc["provider"] == "openai" and doc["outcome"] == "miss" and doc["status"] == 200
    assert doc["latency_ms"] == 123.4 and doc["ttft_ms"] == 50.0
    assert doc["prompt_tokens"] == 12 and doc["completion_tokens"] == 3
    assert doc["cost_usd"] == pytest.approx(0.0000123)
    assert doc["tags"] == {"team": "search"}
    assert "prompt" not in doc and "hunter2" not in msg


def test_prompt_only_when_enabled(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    AccessLog(log_prompts=True).log(record(), prompt=SECRET_PROMPT)
    doc = orjson.loads(caplog.records[0].getMessage())
    assert doc["prompt"] == SECRET_PROMPT


def test_disabled_logger_does_no_work(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=ACCESS_LOGGER)
    AccessLog().log(record())
    assert caplog.records == []


def test_handler_writes_bare_lines() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("sidecache.access.test-handler")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(json_lines_handler(stream))
    log = AccessLog(logger=logger)
    log.log(record())
    log.log(record())
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert orjson.loads(lines[0])["request_id"] == "req_1"


def test_recorder_feeds_all_sinks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    r = Recorder(ObservabilityConfig(stats_bucket_seconds=5))
    r.record(record(), prompt=SECRET_PROMPT)
    r.upstream_error("openai", "upstream_502")
    r.set_circuit("openai/gpt-4o", True)
    r.set_cache_size(3, 999)
    snap = r.snapshot({"cache": {"entries": 3}})
    assert snap["totals"]["requests"] == 1
    assert snap["providers"]["openai"]["errors_by_reason"] == {"upstream_502": 1}
    assert snap["series"]["bucket_seconds"] == 5
    text = r.metrics.render()
    assert b'sidecache_upstream_errors_total{provider="openai",reason="upstream_502"} 1.0' in text
    assert b'sidecache_circuit_open{target="openai/gpt-4o"} 1.0' in text
    assert len(caplog.records) == 1 and "hunter2" not in caplog.records[0].getMessage()
    quiet = Recorder(ObservabilityConfig(access_log=False))
    quiet.record(record())
    assert len(caplog.records) == 1


def test_started_lines_are_written_off_the_calling_thread_in_order_and_all_by_close() -> None:
    written: list[tuple[str, str]] = []

    class Collect(logging.Handler):
        def emit(self, rec: logging.LogRecord) -> None:
            if "boom" in rec.getMessage():
                raise RuntimeError("a broken handler")
            written.append((threading.current_thread().name, rec.getMessage()))

    logger = logging.getLogger("sidecache.access.test-background")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(Collect())
    log = AccessLog(logger=logger)
    log.start()
    before = time.time()
    for i in range(200):
        rec = record()
        rec.request_id = "boom" if i == 100 else f"req_{i}"
        log.log(rec)
    log.close()
    ids = [orjson.loads(msg)["request_id"] for _, msg in written]
    assert ids == [f"req_{i}" for i in range(200) if i != 100]  # one bad line stops no other
    assert {name for name, _ in written} == {"sidecache-access-log"}
    ts = orjson.loads(written[0][1])["ts"]
    assert abs(dt.datetime.fromisoformat(ts).timestamp() - before) < 5  # when it was queued
    log.log(record())  # closed: written directly again
    assert written[-1][0] == threading.current_thread().name
