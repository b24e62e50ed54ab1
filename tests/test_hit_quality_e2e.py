"""Knowing and bounding the wrong-hit rate, through the real gateway over real HTTP.

Feedback on a hit from the key that received it (and from nobody else but the admin), audits of
sampled hits that start only once the client's answer has ended and never touch a tenant's
budget, disagreements kept for review, and a threshold that moves on what audits find, says so
(``/stats``, ``/metrics``, the log) and resumes after a restart. Keys are made with the real
CLI; the openai SDK is the client; waits are on the gateway's own counters.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import Gateway, Upstream, UpstreamSet, basic_config, counters
from support.counters import gateway_stats, wait_for
from support.keys import Key, create_key

from sidecache.config import CacheConfig

ADMIN = "sk-admin-hit-quality"
ONNX_DIR = Path.home() / ".cache" / "sidecache-test" / "onnx"
PARA_A = "How do I reverse a list in Python?"
PARA_B = "What's the way to reverse a Python list?"
# input free, $0.20 an output token: "Answer to: " + PARA_A is 10 tokens, $2.
PRICES = """
[pricing."gpt-x"]
input = 0.0
output = 200000.0
"""


def config(
    upstreams: UpstreamSet, tmp: Path, extra: str = "", cache: str = "", server: str = ""
) -> str:
    return basic_config(
        [upstreams["u1"]],
        tmp,
        cache=True,
        server_extra=f'admin_key = "{ADMIN}"\n' + server,
        cache_extra=cache + f'[cache.embedder]\nonnx_dir = "{ONNX_DIR}"\n',
        extra=PRICES + extra,
    )


def ask(gw: Gateway, key: Key | None, text: str, model: str = "m1", **kw: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}], **kw}
    with gw.http(key.raw if key else None) as http:
        r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    return r


def feedback(gw: Gateway, key: str | None, **body: Any) -> httpx.Response:
    with gw.http(key) as http:
        return http.post("/v1/cache/feedback", json=body)


def quality(gw: Gateway) -> dict[str, Any]:
    doc: dict[str, Any] = gateway_stats(gw, ADMIN)["quality"]
    return doc


def metric(gw: Gateway, name: str, **labels: str) -> float | None:
    return counters.metric(gw, ADMIN, name, **labels)


def test_feedback_is_taken_from_the_key_that_got_the_hit_and_a_bad_one_closes_it_at_once(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = gateway_factory(config(upstreams, tmp_path))
    acme = create_key(gw.config_path, "acme")
    globex = create_key(gw.config_path, "globex")
    client = gw.client(acme.raw)
    assert ask(gw, acme, PARA_A).headers["x-sidecache"] == "miss"
    raw = client.chat.completions.with_raw_response.create(
        model="m1", messages=[{"role": "user", "content": PARA_B}]
    )
    assert raw.headers["x-sidecache"] == "hit-semantic"
    request_id, entry = raw.headers["x-request-id"], raw.headers["x-sidecache-entry"]

    # Another tenant's key is refused, by request id and by entry; so is no key at all.
    for body in ({"request_id": request_id}, {"entry": entry}, {"entry": int(entry)}):
        r = feedback(gw, globex.raw, verdict="bad", **body)
        assert r.status_code == 403 and r.json()["error"]["code"] == "not_your_hit", r.text
    assert feedback(gw, None, request_id=request_id, verdict="bad").status_code == 401
    # Bad input is a clear 400 naming the field; an unknown hit is a 404.
    with gw.http(acme.raw) as http:
        assert http.post("/v1/cache/feedback", content=b"{not json").status_code == 400
    r = feedback(gw, acme.raw, request_id=request_id, verdict="meh")
    assert r.status_code == 400 and r.json()["error"]["param"] == "verdict"
    assert feedback(gw, acme.raw, verdict="bad").status_code == 400
    assert feedback(gw, acme.raw, request_id=request_id, verdict="bad", x=1).status_code == 400
    assert feedback(gw, acme.raw, request_id="no-such-request", verdict="bad").status_code == 404
    assert ask(gw, acme, PARA_B).headers["x-sidecache"] == "hit-semantic"  # nothing changed yet

    # The key that got the hit, with the openai SDK: one call (as README shows it).
    result = client.post(
        "/cache/feedback",
        body={"request_id": request_id, "verdict": "bad", "reason": "another question"},
        cast_to=httpx.Response,
    ).json()
    assert result["applied"] == "neighbourhood_closed" and result["entry"] == int(entry)
    # The same prompt misses at once; its own fresh answer is then an exact hit, and the entry
    # still answers the prompt it was stored for.
    assert ask(gw, acme, PARA_B).headers["x-sidecache"] == "miss"
    assert ask(gw, acme, PARA_B).headers["x-sidecache"] == "hit-exact"
    assert ask(gw, acme, PARA_A).headers["x-sidecache"] == "hit-exact"
    # The admin may judge any hit.
    admin = feedback(gw, ADMIN, request_id=request_id, verdict="good")
    assert admin.status_code == 200 and admin.json()["verdict"] == "good"

    doc = quality(gw)
    assert doc["feedback"]["m1"]["acme"] == {"bad": 1, "good": 1}
    assert doc["models"]["m1"]["bad_feedback"] == 1
    assert doc["closed_neighbourhoods"] == 1
    labels = {"model": "m1", "tenant": "acme", "verdict": "bad"}
    assert metric(gw, "sidecache_hit_feedback_total", **labels) == 1.0
    assert "another question" not in gw.logs()  # a reason is stored, never logged


def test_a_bad_exact_hit_deletes_its_entry(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = gateway_factory(config(upstreams, tmp_path))
    key = create_key(gw.config_path, "acme")
    text = "What is the boiling point of water?"
    ask(gw, key, text)
    hit = ask(gw, key, text)
    assert hit.headers["x-sidecache"] == "hit-exact"
    r = feedback(gw, key.raw, entry=hit.headers["x-sidecache-entry"], verdict="bad")
    assert r.status_code == 200 and r.json()["applied"] == "entry_deleted"
    assert ask(gw, key, text).headers["x-sidecache"] == "miss"


AUDITED = """
[models.audited]
targets = [{target = "u1/gpt-x"}]
verifier = false
audit_rate = 1.0
audit_budget_usd = 2.5
"""


def test_audits_never_count_against_the_tenants_budget_and_stop_at_their_own(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = gateway_factory(config(upstreams, tmp_path, AUDITED))
    key = create_key(gw.config_path, "acme", "--budget-usd", "2")
    up = upstreams["u1"]
    assert ask(gw, key, PARA_A, "audited", max_tokens=10).headers["x-sidecache"] == "miss"  # $2
    hit = ask(gw, key, PARA_B, "audited", max_tokens=10)  # hits are served over budget
    assert hit.headers["x-sidecache"] == "hit-semantic"
    assert wait_for(lambda: quality(gw)["models"]["audited"]["hits_audited"] == 1)
    assert up.stats()["requests"] == 2  # the miss and the audit
    assert up.last_request()["body"]["messages"][-1]["content"] == PARA_B
    paraphrase = "Reverse a list in Python: how?"
    assert (
        ask(gw, key, paraphrase, "audited", max_tokens=10).headers["x-sidecache"] == "hit-semantic"
    )
    assert wait_for(lambda: quality(gw)["models"]["audited"]["audits_skipped_budget"] == 1)

    doc = gateway_stats(gw, ADMIN)
    assert doc["tenants"]["acme"]["cost_usd"] == pytest.approx(2.0)  # the miss alone
    audited = doc["quality"]["models"]["audited"]
    assert audited["audit_spend_usd"] == pytest.approx(2.0)
    assert audited["audit_spend_usd_today"] == pytest.approx(2.0)
    assert up.stats()["requests"] == 2  # the third audit would have passed $2.5
    assert metric(gw, "sidecache_side_cost_usd_total", kind="audit", model="audited") == 2.0
    # The key's own budget is what its own miss spent: a new miss is refused, a hit is not.
    with gw.http(key.raw) as http:
        body = {"model": "audited", "messages": [{"role": "user", "content": "fresh"}]}
        assert http.post("/v1/chat/completions", json={**body, "max_tokens": 10}).status_code == 429


def test_an_audit_starts_only_once_the_last_byte_of_the_answer_is_out(
    upstream_factory: Callable[..., Upstream],
    gateway_factory: Callable[..., Gateway],
    tmp_path: Path,
) -> None:
    # An answer of 8 MB (labelled answers: two short prompts, one long answer) is more than the
    # socket buffers hold, so a client that stops reading keeps the gateway inside the answer.
    big = " ".join(f"word{i % 1000}" for i in range(1_000_000))
    labels = tmp_path / "labels.json"
    first, second = "Tell me about cats.", "Tell me about cats, please."
    labels.write_text(json.dumps({first: big, second: big}))
    up = upstream_factory("u1", answers=labels)
    gw = gateway_factory(
        config(
            UpstreamSet([up]),
            tmp_path,
            AUDITED.replace("2.5", "1e9"),
            cache="replay_chunk_chars = 65536\n",
        )
    )
    ask(gw, None, first, "audited")
    transport = httpx.HTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)])
    body = {"model": "audited", "stream": True, "messages": [{"role": "user", "content": second}]}
    with (
        httpx.Client(base_url=gw.url, transport=transport, timeout=60, trust_env=False) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as r,
    ):
        assert r.headers["x-sidecache"] == "hit-semantic"
        parts = r.iter_bytes()
        received = len(next(parts))
        assert gateway_stats(gw, ADMIN)["in_flight"] == 1  # the answer has not ended
        assert not wait_for(lambda: up.stats()["requests"] > 1, timeout=1.0)
        assert quality(gw)["side_traffic"]["started"] == {}
        for part in parts:
            received += len(part)
    assert received > len(big)
    assert wait_for(lambda: up.stats()["requests"] == 2, timeout=10)  # now the audit goes
    assert wait_for(lambda: quality(gw)["models"]["audited"]["hits_audited"] == 1, timeout=10)
    assert quality(gw)["models"]["audited"]["audit_disagreements"] == 0


LOOSE = """
[models.loose]
targets = [{target = "u1/gpt-x"}]
verifier = false
threshold = 0.5
min_threshold = 0.5
audit_rate = 1.0
audit_budget_usd = 100.0
target_error_rate = 0.1
"""


def test_a_wrong_hit_is_kept_for_review_and_moves_the_threshold_which_survives_a_restart(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = gateway_factory(config(upstreams, tmp_path, LOOSE))
    key = create_key(gw.config_path, "acme")
    ask(gw, key, "What is the capital of France?", "loose")
    hit = ask(gw, key, "What is the capital of Spain?", "loose")  # a wrong hit at 0.5
    assert hit.headers["x-sidecache"] == "hit-semantic"
    similarity = float(hit.headers["x-sidecache-similarity"])
    assert wait_for(lambda: quality(gw)["models"]["loose"]["audit_disagreements"] == 1)
    assert wait_for(lambda: quality(gw)["models"]["loose"]["effective_threshold"] > 0.5)

    with gw.http(key.raw) as http:  # only the admin reads prompts and answers
        assert http.get("/admin/cache/audits").status_code == 401
    with gw.http(ADMIN) as http:
        audits = http.get("/admin/cache/audits", params={"model": "loose"}).json()["data"]
    assert len(audits) == 1
    audit = audits[0]
    assert audit["prompt"] == "What is the capital of Spain?"
    assert audit["cached_prompt"] == "What is the capital of France?"
    assert audit["cached_answer"] == "Answer to: What is the capital of France?"
    assert audit["fresh_answer"] == "Answer to: What is the capital of Spain?"
    assert audit["request_id"] == hit.headers["x-request-id"] and audit["tenant"] == "acme"
    assert "entity" in audit["contradictions"]

    loose = quality(gw)["models"]["loose"]
    moved = loose["effective_threshold"]
    assert moved > similarity and loose["configured_threshold"] == 0.5
    change = loose["threshold_history"][-1]
    assert change["previous"] == 0.5 and change["threshold"] == moved and change["reason"]
    assert metric(gw, "sidecache_effective_threshold", model="loose") == moved
    assert f"threshold of loose: 0.500 -> {moved:.3f}" in gw.logs()
    # the same kind of question no longer hits at the loose threshold
    assert ask(gw, key, "What is the capital of Italy?", "loose").headers["x-sidecache"] == "miss"
    # an alias with no data keeps its configured threshold
    default = CacheConfig().threshold
    assert quality(gw)["models"]["m1"]["effective_threshold"] == default

    gw.restart()
    resumed = quality(gw)["models"]["loose"]
    assert resumed["effective_threshold"] == moved
    assert resumed["threshold_history"][-1]["threshold"] == moved
    with gw.http(ADMIN) as http:
        assert len(http.get("/admin/cache/audits").json()["data"]) == 1
