"""The access log: one JSON line per request on the ``sidecache.access`` logger.

The line names the request, never its content: no prompt text and no key. Prompts are added
(as a ``prompt`` field) only when ``server.log_prompts`` is switched on for debugging.

In the server the lines are written by a thread of the access log's own (``start`` /
``close``): the request path only queues the record. Building a JSON line and passing it through
``logging`` (records, handlers, a write system call) cost a request about 50-70 us on a loaded
2-core machine, before its answer could go out, and a slow log consumer (a terminal, a pipe to a
shipper) would have stalled every request behind it.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import threading
import time
from queue import SimpleQueue
from typing import IO, Any

import orjson

from sidecache.observability.record import RequestRecord

ACCESS_LOGGER = "sidecache.access"


class AccessLog:
    """Writes ``RequestRecord``s as JSON lines at INFO level."""

    def __init__(self, *, log_prompts: bool = False, logger: logging.Logger | None = None) -> None:
        self.log_prompts = log_prompts
        self.logger = logger if logger is not None else logging.getLogger(ACCESS_LOGGER)
        self._queue: SimpleQueue[_Queued | None] | None = None
        self._writer: threading.Thread | None = None

    def start(self) -> None:
        """From now on, write lines from a thread of their own (``log`` only queues them)."""
        if self._writer is None:
            self._queue = SimpleQueue()
            self._writer = threading.Thread(
                target=self._write, args=(self._queue,), name="sidecache-access-log", daemon=True
            )
            self._writer.start()

    def close(self) -> None:
        """Write every line queued so far, then stop the thread (lines go out directly again)."""
        queue, writer = self._queue, self._writer
        self._queue = self._writer = None
        if queue is not None and writer is not None:
            queue.put(None)
            writer.join()

    def line(self, rec: RequestRecord, prompt: str | None = None, at: float | None = None) -> bytes:
        """The JSON line for one request (without a newline); ``at``: when it was recorded
        (``time.time()``), by default now."""
        when = dt.datetime.now(dt.UTC) if at is None else dt.datetime.fromtimestamp(at, dt.UTC)
        doc: dict[str, Any] = {
            "ts": when.isoformat(timespec="milliseconds"),
            "request_id": rec.request_id,
            "tenant": rec.tenant,
            "model": rec.model,
            "endpoint": rec.endpoint,
            "provider": rec.provider,
            "outcome": rec.outcome,
            "status": rec.status,
            "latency_ms": round(rec.latency_s * 1000.0, 2),
            "prompt_tokens": rec.prompt_tokens,
            "completion_tokens": rec.completion_tokens,
            "cost_usd": round(rec.cost_usd, 8),
        }
        if rec.ttft_s is not None:
            doc["ttft_ms"] = round(rec.ttft_s * 1000.0, 2)
        if rec.saved_tokens or rec.saved_usd:
            doc["saved_tokens"] = rec.saved_tokens
            doc["saved_usd"] = round(rec.saved_usd, 8)
        if rec.usage_estimated:
            doc["usage_estimated"] = True
        if rec.error_reason:
            doc["error_reason"] = rec.error_reason
        if rec.user:
            doc["user"] = rec.user
        if rec.tags:
            doc["tags"] = rec.tags
        if self.log_prompts and prompt is not None:
            doc["prompt"] = prompt
        return orjson.dumps(doc)

    def log(self, rec: RequestRecord, prompt: str | None = None) -> None:
        """Emit the line if INFO is enabled for the access logger (skips the work otherwise);
        once ``start``ed, queue it for the writer thread. ``rec`` is not changed afterwards."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        queue = self._queue
        if queue is not None:
            queue.put((time.time(), rec, prompt))
        else:
            self.logger.info(self.line(rec, prompt).decode())

    def _write(self, queue: SimpleQueue[_Queued | None]) -> None:
        while (item := queue.get()) is not None:
            at, rec, prompt = item
            try:
                self.logger.info(self.line(rec, prompt, at).decode())
            except Exception:  # a bad record or handler must not stop the lines after it
                logging.getLogger(__name__).exception("access log line not written")


_Queued = tuple[float, RequestRecord, str | None]


def json_lines_handler(stream: IO[str] | None = None) -> logging.Handler:
    """A handler that writes each access-log message as it is: one JSON object per line."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler
