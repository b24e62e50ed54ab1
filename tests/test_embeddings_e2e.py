"""``POST /v1/embeddings`` driven by the ``openai`` SDK, as a RAG pipeline calls it.

Each input is cached on its own: a batch of 100 of which 90 were seen sends only the 10 new
ones upstream, and the answer is reassembled in order, identical to what the upstream itself
gives, in either encoding. ``dimensions`` and the tenant are part of the scope.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openai
import orjson
import pytest
from support import Gateway, Upstream, UpstreamSet, basic_config
from support.counters import settled
from support.keys import create_key

PRICES = """
[pricing."gpt-x"]
input = 1000.0
output = 0.0
"""


@pytest.fixture
def gw(both_kinds_gateway: Callable[[str], Gateway]) -> Gateway:
    return both_kinds_gateway(PRICES)


def direct(up: Upstream, inputs: list[str], **kw: object) -> list[list[float]]:
    """What the upstream itself answers (floats), to compare the gateway's answers with."""
    client = openai.OpenAI(
        base_url=up.base_url,
        api_key="sk-up",
        max_retries=0,
        http_client=openai.DefaultHttpxClient(trust_env=False),
    )
    r = client.embeddings.create(model="gpt-x", input=inputs, encoding_format="float", **kw)  # type: ignore[arg-type]
    return [d.embedding for d in r.data]


def test_ninety_seen_of_a_hundred_send_ten_upstream_in_order_in_both_encodings(
    gw: Gateway, upstreams: UpstreamSet
) -> None:
    u1 = upstreams["u1"]
    acme = create_key(gw.config_path, "acme")
    client = gw.client(acme.raw)
    docs = [f"chunk {i} of the handbook: section {i % 7}" for i in range(100)]
    raw = client.embeddings.with_raw_response.create(model="m1", input=docs[:90])
    assert (raw.headers["x-sidecache"], raw.headers["x-sidecache-cached"]) == ("miss", "0/90")
    assert u1.stats()["inputs_embedded"] == 90

    shuffled = docs[::-1]  # the 10 new ones among the 90 seen, in another order
    raw = client.embeddings.with_raw_response.create(model="m1", input=shuffled)
    assert (raw.headers["x-sidecache"], raw.headers["x-sidecache-cached"]) == ("miss", "90/100")
    assert u1.stats()["inputs_embedded"] == 100  # only the 10 new ones went upstream
    assert u1.last_request()["body"]["input"] == docs[99:89:-1]
    got = raw.parse()  # the SDK asked for base64 and decoded it
    assert [d.index for d in got.data] == list(range(100))
    truth = direct(u1, shuffled)
    assert all(
        np.array_equal(np.float32(d.embedding), np.float32(t))
        for d, t in zip(got.data, truth, strict=True)
    )

    raw = client.embeddings.with_raw_response.create(
        model="m1", input=docs, encoding_format="float"
    )
    assert (raw.headers["x-sidecache"], raw.headers["x-sidecache-cached"]) == (
        "hit-exact",
        "100/100",
    )
    assert [d.embedding for d in raw.parse().data] == direct(u1, docs)
    with gw.http(acme.raw) as http:  # base64 on the wire: the same float32 values
        r = http.post(
            "/v1/embeddings", json={"model": "m1", "input": docs[:2], "encoding_format": "base64"}
        )
    assert r.headers["x-sidecache"] == "hit-exact"
    vec = np.frombuffer(base64.b64decode(r.json()["data"][1]["embedding"]), dtype="<f4")
    assert vec.tolist() == direct(u1, docs[1:2])[0]

    raw = client.embeddings.with_raw_response.create(model="m1", input=docs[:5], dimensions=16)
    assert raw.headers["x-sidecache"] == "miss"  # dimensions are part of the scope
    assert [len(d.embedding) for d in raw.parse().data] == [16] * 5
    assert [d.embedding for d in raw.parse().data] == direct(u1, docs[:5], dimensions=16)

    globex = create_key(gw.config_path, "globex")
    raw = gw.client(globex.raw).embeddings.with_raw_response.create(model="m1", input=docs[:3])
    assert raw.headers["x-sidecache"] == "miss"  # another tenant never sees acme's entries

    doc = settled(gw, 6)
    t = doc["tenants"]["acme"]
    assert (t["requests"], t["misses"], t["hit_exact"]) == (5, 3, 2)
    words = 7  # one token a word, each input 7 words
    assert t["prompt_tokens"] == (90 + 10 + 5) * words  # only what went upstream is spent
    assert t["saved_tokens"] == (90 + 100 + 2) * words  # what the cache answered is saved
    assert t["cost_usd"] > 0 and t["saved_usd"] > t["cost_usd"]
    assert doc["endpoints"]["embeddings"]["requests"] == 6
    assert doc["tenants"]["globex"]["saved_usd"] == 0


def test_fifty_overlapping_batches_at_once_all_get_the_upstreams_vectors(
    gw: Gateway, upstreams: UpstreamSet
) -> None:
    pool = [f"query number {i}" for i in range(60)]
    batches = [pool[i : i + 20] for i in range(0, 50)]  # each shares most inputs with others

    async def run() -> list[list[list[float]]]:
        client = gw.async_client(timeout=60)

        async def one(batch: list[str]) -> list[list[float]]:
            r = await client.embeddings.create(model="m", input=batch, encoding_format="float")
            return [d.embedding for d in r.data]

        try:
            return list(await asyncio.gather(*(one(b) for b in batches)))
        finally:
            await client.close()

    results = asyncio.run(run())
    truth = dict(zip(pool, direct(upstreams["u1"], pool), strict=True))
    for batch, vectors in zip(batches, results, strict=True):
        assert vectors == [truth[t] for t in batch]
    doc = settled(gw, 50)
    assert doc["endpoints"]["embeddings"]["requests"] == 50 and doc["in_flight"] == 0
    # afterwards every input is cached: the whole pool is one hit
    raw = gw.client().embeddings.with_raw_response.create(model="m", input=pool)
    assert raw.headers["x-sidecache"] == "hit-exact"


def test_bad_input_is_an_openai_error_never_a_500(gw: Gateway) -> None:
    cases = [
        (b"{not json", 400, None),
        (b'{"model": "m1"}', 400, "input"),
        (b'{"model": "m1", "input": []}', 400, "input"),
        (b'{"model": "m1", "input": ""}', 400, "input[0]"),
        (b'{"model": "m1", "input": ["ok", ""]}', 400, "input[1]"),
        (b'{"model": "m1", "input": [[1, -2]]}', 400, "input[0]"),
        (b'{"model": "m1", "input": {"a": 1}}', 400, "input"),
        (b'{"model": "m1", "input": "x", "encoding_format": "hex"}', 400, "encoding_format"),
        (b'{"model": "m1", "input": "x", "dimensions": 0}', 400, "dimensions"),
        (orjson.dumps({"model": "m1", "input": ["x"] * 2049}), 400, "input"),
        (b'{"model": "claude", "input": "x"}', 400, "model"),  # Anthropic has no embeddings
        (b'{"model": "nope", "input": "x"}', 404, "model"),
    ]
    with gw.http() as http:
        for body, status, param in cases:
            r = http.post("/v1/embeddings", content=body)
            assert r.status_code == status, (body[:80], r.text)
            error = r.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert error["param"] == param, (body[:80], error)
    with pytest.raises(openai.BadRequestError, match="does not serve embeddings"):
        gw.client().embeddings.create(model="claude", input="x")
    doc = settled(gw, len(cases) + 1)
    assert doc["endpoints"]["embeddings"]["errors"] == len(cases) + 1
    with gw.http() as http:  # and /v1/models says which alias serves what
        listed = {m["id"]: m["endpoints"] for m in http.get("/v1/models").json()["data"]}
    assert listed["m1"] == ["chat.completions", "responses", "messages", "embeddings"]
    assert listed["claude"] == ["chat.completions", "responses", "messages"]


def test_an_input_with_pii_is_never_cached_and_goes_upstream_redacted(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    pii = "[pii]\nenabled = true\nredact_upstream = true\n"
    gw = gateway_factory(basic_config(upstreams, tmp_path, cache=True, extra=pii))
    inputs = ["write to jane.doe@example.com about it", "a plain sentence"]
    client = gw.client()
    for expected in ("0/2", "1/2"):
        raw = client.embeddings.with_raw_response.create(model="m1", input=inputs)
        assert raw.headers["x-sidecache-cached"] == expected
    sent = upstreams["u1"].last_request()["body"]["input"]
    assert len(sent) == 1 and "jane.doe@example.com" not in sent[0]
