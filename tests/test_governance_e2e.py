"""Governance end to end: keys, model access, limits, budgets, cost, metrics, stats, PII.

Everything goes through the real gateway process over real HTTP, with the real ``openai`` SDK as
the client where a client is involved; keys are created, listed and revoked with the real
``sidecache keys`` command in a subprocess, as an operator would.

The fake upstream's usage is deterministic (prompt tokens = words of all messages, completion
tokens = words of ``"Answer to: <last user text>"``), so with the ``[pricing."gpt-x"]`` table
below every figure the gateway reports can be computed exactly in advance.

One gateway serves most tests (each test uses tenants of its own, so they do not interfere);
budgets, PII and the cache get gateways of their own because they need other configuration.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import Gateway, basic_config, write_config
from support.counters import gateway_stats, wait_for
from support.keys import Key, create_key, keys_cli

ADMIN = "sk-admin-governance-e2e"
PRICE_IN, PRICE_OUT = 1000.0, 2000.0  # USD per million tokens: $0.001 and $0.002 a token
PRICING = f"""
[pricing."gpt-x"]
input = {PRICE_IN}
output = {PRICE_OUT}
"""
FAST_RETRY = """
[routing.retry]
backoff_base = 0.0
backoff_max = 0.01
"""
RPM = 30
TPM = 3000


# -- helpers -----------------------------------------------------------------------------------


def cost(prompt_tokens: int, completion_tokens: int) -> float:
    """What the pricing table above charges for a call."""
    return (prompt_tokens * PRICE_IN + completion_tokens * PRICE_OUT) / 1_000_000


def usage_of(text: str, context_words: int = 0) -> tuple[int, int]:
    """(prompt, completion) tokens the fake upstream reports for one user turn ``text``."""
    words = len(text.split())
    return words + context_words, words + 2  # the answer is "Answer to: " + text


def chat(
    gw: Gateway, key: Key | str, text: str, model: str = "m1", **kw: Any
) -> openai.types.chat.ChatCompletion:
    raw = key.raw if isinstance(key, Key) else key
    return gw.client(raw).chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], **kw
    )


def post(http: httpx.Client, text: str, model: str = "m1", **headers: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return http.post("/v1/chat/completions", json=body, headers=headers)


def stats(gw: Gateway) -> dict[str, Any]:
    return gateway_stats(gw, ADMIN)


def tenant_stats(gw: Gateway, tenant: str) -> dict[str, Any]:
    row: dict[str, Any] = stats(gw)["tenants"].get(tenant, {})
    return row


@dataclass
class Metrics:
    """The samples of one ``/metrics`` scrape, parsed by prometheus_client's own parser."""

    families: dict[str, Any]

    def sum(self, name: str, **labels: str) -> float:
        return sum(
            s.value
            for fam in self.families.values()
            for s in fam.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )


def scrape(gw: Gateway) -> Metrics:
    with gw.http(ADMIN) as http:
        r = http.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return Metrics({f.name: f for f in text_string_to_metric_families(r.text)})


def delta(doc0: dict[str, Any], doc1: dict[str, Any], *path: str) -> float:
    """How much the figure at ``path`` grew between two ``/stats`` documents."""
    a: Any = doc0
    b: Any = doc1
    for p in path:
        a, b = a.get(p, {}), b.get(p, {})
    return float((b or 0) - (a or 0))


# -- the shared gateway ------------------------------------------------------------------------


@dataclass
class Env:
    gw: Gateway
    config: Path
    data_dir: Path
    keys: dict[str, Key]


@pytest.fixture(scope="module")
def gov(upstreams, tmp_path_factory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("governance")
    text = basic_config(
        upstreams, tmp, server_extra=f'admin_key = "{ADMIN}"', extra=PRICING + FAST_RETRY
    )
    config = write_config(tmp, text)
    keys = {
        "acme": create_key(config, "acme"),
        "globex": create_key(config, "globex", "--models", "m1"),
        "doomed": create_key(config, "doomed"),
        "rpm": create_key(config, "slow-lane", "--rpm", str(RPM)),
        "tpm": create_key(config, "token-lane", "--tpm", str(TPM)),
        "count": create_key(config, "counted"),
        "north": create_key(config, "north"),
        "south": create_key(config, "south", "--models", "m1"),
    }
    gw = Gateway(config).start()
    try:
        yield Env(gw, config, tmp / "data", keys)
    finally:
        gw.stop()


# -- authentication and model access -----------------------------------------------------------


def test_missing_or_unknown_key_is_401(gov: Env) -> None:
    with gov.gw.http(api_key=None) as http:
        r = post(http, "hello")
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
        assert http.get("/v1/models").status_code == 401
        r = post(http, "hello", authorization="Basic " + gov.keys["acme"].raw)
        assert r.status_code == 401
    with pytest.raises(openai.AuthenticationError) as err:
        chat(gov.gw, "sk-sc-" + "x" * 43, "hello")
    assert err.value.status_code == 401 and err.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        gov.gw.client("sk-sc-not-a-key").models.list()
    # The admin key opens the admin surface, not the model API.
    with pytest.raises(openai.AuthenticationError):
        chat(gov.gw, ADMIN, "hello")
    assert chat(gov.gw, gov.keys["acme"], "hello").choices[0].message.content == "Answer to: hello"


def test_model_allow_list_is_403_and_shapes_the_model_list(gov: Env) -> None:
    globex = gov.keys["globex"]
    with pytest.raises(openai.PermissionDeniedError) as err:
        chat(gov.gw, globex, "may I?", model="m")
    assert err.value.status_code == 403
    assert err.value.code == "model_not_allowed" and err.value.param == "model"
    assert chat(gov.gw, globex, "may I?", model="m1").choices[0].message.content
    assert [m.id for m in gov.gw.client(globex.raw).models.list()] == ["m1"]
    assert {m.id for m in gov.gw.client(gov.keys["acme"].raw).models.list()} == {"m", "m1"}


def test_revoked_key_is_refused_within_a_second(gov: Env) -> None:
    doomed = gov.keys["doomed"]
    assert chat(gov.gw, doomed, "still here").choices
    listed = keys_cli(gov.config, "list")
    assert listed.returncode == 0
    assert doomed.id in listed.stdout and doomed.raw not in listed.stdout

    revoked = keys_cli(gov.config, "revoke", doomed.id)
    done = time.monotonic()
    assert revoked.returncode == 0, revoked.stderr
    assert doomed.id in revoked.stdout
    with gov.gw.http(doomed.raw) as http:
        while post(http, "still here?").status_code != 401:
            assert time.monotonic() - done < 1.0, "revoked key still accepted after 1 s"
            time.sleep(0.02)
    took = time.monotonic() - done
    with pytest.raises(openai.AuthenticationError):
        chat(gov.gw, doomed, "and now?")
    assert doomed.id not in keys_cli(gov.config, "list").stdout
    listed = keys_cli(gov.config, "list", "--all")
    row = next(line for line in listed.stdout.splitlines() if doomed.id in line)
    assert row.rstrip().endswith("revoked")
    print(f"revocation effective {took * 1000:.0f} ms after `sidecache keys revoke` returned")


def test_keys_are_stored_hashed(gov: Env) -> None:
    files = sorted(gov.data_dir.glob("state.db*"))
    assert files, "no state database"
    blob = b"".join(f.read_bytes() for f in files)
    logs = gov.gw.logs()
    for key in gov.keys.values():
        secret = key.raw[len("sk-sc-") + 6 :]  # what the display prefix does not show
        assert key.raw.encode() not in blob and secret.encode() not in blob, key.tenant
        assert hashlib.sha256(key.raw.encode()).digest() in blob, key.tenant
        assert secret not in logs, key.tenant


# -- rate limits -------------------------------------------------------------------------------


def test_requests_per_minute_limit_then_recovery(gov: Env) -> None:
    key = gov.keys["rpm"]
    admitted = 0
    with gov.gw.http(key.raw) as http:
        while admitted <= RPM + 5 and post(http, "quick one").status_code == 200:
            admitted += 1
    assert RPM <= admitted <= RPM + 1  # the bucket holds a minute's allowance, no more

    with pytest.raises(openai.RateLimitError) as err:
        chat(gov.gw, key, "one more")
    assert err.value.status_code == 429 and err.value.code == "rate_limit_exceeded"
    assert "requests per minute" in err.value.message
    retry_after = int(err.value.response.headers["retry-after"])
    assert 1 <= retry_after <= 60 // RPM + 1

    time.sleep(retry_after)
    assert chat(gov.gw, key, "after the wait").choices[0].message.content == (
        "Answer to: after the wait"
    )
    with pytest.raises(openai.RateLimitError):  # refilled at the steady rate, not reset
        chat(gov.gw, key, "too soon again")


def test_tokens_per_minute_limit_then_recovery(gov: Env) -> None:
    key = gov.keys["tpm"]
    # One big request is admitted on a full bucket; its real usage (2n + 2 tokens) overdraws
    # the bucket by 62 tokens, about 1.2 s of refill at 3000 tokens a minute.
    n = (TPM + 60) // 2
    big = " ".join(["word"] * n)
    r = chat(gov.gw, key, big)
    assert r.usage is not None and (r.usage.prompt_tokens, r.usage.completion_tokens) == (n, n + 2)

    with pytest.raises(openai.RateLimitError) as err:
        chat(gov.gw, key, "hi")
    assert err.value.code == "rate_limit_exceeded" and "tokens per minute" in err.value.message
    retry_after = int(err.value.response.headers["retry-after"])
    assert 1 <= retry_after <= 3
    time.sleep(retry_after)
    assert chat(gov.gw, key, "hi").choices[0].message.content == "Answer to: hi"


# -- accounting --------------------------------------------------------------------------------


def test_tokens_and_cost_follow_the_pricing_table(gov: Env) -> None:
    key = gov.keys["count"]
    client = gov.gw.client(key.raw)
    expected: list[tuple[int, int]] = []

    for text, model in (("alpha beta gamma", "m1"), ("one two three four five six", "m")):
        r = chat(gov.gw, key, text, model=model)
        assert r.usage is not None
        assert (r.usage.prompt_tokens, r.usage.completion_tokens) == usage_of(text)
        expected.append(usage_of(text))

    text = "stream with usage please"
    chunks = list(
        client.chat.completions.create(
            model="m1",
            messages=[{"role": "user", "content": text}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    last_usage = chunks[-1].usage
    assert last_usage is not None
    assert (last_usage.prompt_tokens, last_usage.completion_tokens) == usage_of(text)
    expected.append(usage_of(text))

    text = "stream without usage"  # the gateway asks the upstream for usage all the same
    chunks = list(
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": text}], stream=True
        )
    )
    assert all(c.usage is None for c in chunks)
    expected.append(usage_of(text))

    conversation = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first question here"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]
    r = client.chat.completions.create(model="m1", messages=conversation)  # type: ignore[arg-type]
    expected.append(usage_of("second question", context_words=2 + 3 + 2))
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == expected[-1]

    prompt = sum(p for p, _ in expected)
    completion = sum(c for _, c in expected)
    usd = sum(cost(p, c) for p, c in expected)
    assert wait_for(lambda: tenant_stats(gov.gw, key.tenant).get("requests") == len(expected))
    row = tenant_stats(gov.gw, key.tenant)
    assert row["bypass"] == len(expected) and row["errors"] == 0
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion)
    assert row["cost_usd"] == pytest.approx(usd, abs=1e-6)
    assert row["usage_estimated"] == 0 and row["saved_usd"] == 0

    m = scrape(gov.gw)
    assert m.sum("sidecache_tokens_total", tenant=key.tenant, kind="prompt") == prompt
    assert m.sum("sidecache_tokens_total", tenant=key.tenant, kind="completion") == completion
    assert m.sum("sidecache_cost_usd_total", tenant=key.tenant) == pytest.approx(usd, rel=1e-9)
    assert m.sum("sidecache_requests_total", tenant=key.tenant, outcome="bypass") == len(expected)

    def of_tenant(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [doc for doc in docs if doc["tenant"] == key.tenant]

    lines = of_tenant(gov.gw.access_lines(until=lambda docs: len(of_tenant(docs)) >= len(expected)))
    assert sorted((d["prompt_tokens"], d["completion_tokens"]) for d in lines) == sorted(expected)
    assert sum(d["cost_usd"] for d in lines) == pytest.approx(usd, abs=1e-6)
    assert all("prompt" not in d for d in lines)  # prompts are not logged unless switched on
    print(f"tenant {key.tenant}: {prompt}+{completion} tokens, ${usd:.6f}, as priced")


def test_stats_and_metrics_match_the_traffic(gov: Env, upstreams) -> None:
    north, south = gov.keys["north"], gov.keys["south"]
    s0, m0 = stats(gov.gw), scrape(gov.gw)

    sent: dict[str, list[tuple[int, int]]] = {"north": [], "south": []}
    tags = {"x-sidecache-tags": "feature=search"}
    for i in range(3):
        text = f"north question number {i}"
        chat(gov.gw, north, text, model="m", extra_headers=tags)
        sent["north"].append(usage_of(text))
    chat(gov.gw, north, "north on the first model", model="m1")
    sent["north"].append(usage_of("north on the first model"))
    text = "north streams this"
    stream = gov.gw.client(north.raw).chat.completions.create(
        model="m1", messages=[{"role": "user", "content": text}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    sent["north"].append(usage_of(text))
    with pytest.raises(openai.BadRequestError):  # the upstream refuses: not retried, no usage
        chat(gov.gw, north, "[[status:400]] refused upstream", model="m1")
    for i in range(2):
        text = f"south asks {i}"
        chat(gov.gw, south, text, model="m1")
        sent["south"].append(usage_of(text))
    with pytest.raises(openai.PermissionDeniedError):
        chat(gov.gw, south, "south strays", model="m")

    want = {"north": (len(sent["north"]), 1), "south": (len(sent["south"]), 1)}
    assert wait_for(
        lambda: all(
            tenant_stats(gov.gw, t).get("requests") == ok + bad for t, (ok, bad) in want.items()
        )
    )
    s1, m1 = stats(gov.gw), scrape(gov.gw)
    for tenant, (ok, bad) in want.items():
        row = s1["tenants"][tenant]
        prompt = sum(p for p, _ in sent[tenant])
        completion = sum(c for _, c in sent[tenant])
        assert (row["requests"], row["bypass"], row["errors"]) == (ok + bad, ok, bad), tenant
        assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion), tenant
        assert row["cost_usd"] == pytest.approx(sum(cost(p, c) for p, c in sent[tenant]), abs=1e-6)
        assert m1.sum("sidecache_requests_total", tenant=tenant) == ok + bad
        assert m1.sum("sidecache_requests_total", tenant=tenant, outcome="bypass") == ok
        assert m1.sum("sidecache_requests_total", tenant=tenant, outcome="error") == bad
        assert m1.sum("sidecache_tokens_total", tenant=tenant, kind="prompt") == prompt

    # Per model: m got 3 from north and the refused one from south; m1 got the rest.
    assert delta(s0, s1, "models", "m", "requests") == 4
    assert delta(s0, s1, "models", "m", "errors") == 1
    assert delta(s0, s1, "models", "m1", "requests") == 5
    assert delta(s0, s1, "models", "m1", "errors") == 1
    assert delta(s0, s1, "outcomes", "bypass") == 7
    assert delta(s0, s1, "outcomes", "error") == 2
    assert delta(s0, s1, "tags", "feature=search", "requests") == 3
    # Requests that reached a provider: 7 answered plus the one u1 refused with a 400
    # (m spreads round-robin over u1, u2, u3).
    served = sum(delta(s0, s1, "providers", u, "requests") for u in ("u1", "u2", "u3"))
    assert served == 8
    assert sum(upstreams.stats()[u]["requests"] for u in ("u2", "u3")) >= 2
    assert delta(s0, s1, "providers", "u1", "errors_by_reason", "upstream_400") == 1
    assert (
        m1.sum("sidecache_upstream_errors_total", provider="u1", reason="upstream_400")
        - (m0.sum("sidecache_upstream_errors_total", provider="u1", reason="upstream_400"))
        == 1
    )
    # Latency histograms count every request, counters never go down.
    count = m1.sum("sidecache_request_latency_seconds_count")
    assert count - m0.sum("sidecache_request_latency_seconds_count") == 9
    for fam in m0.families.values():
        if fam.type == "counter":
            for s in fam.samples:
                if s.name.endswith("_total"):
                    assert m1.sum(s.name, **s.labels) >= s.value, s


def test_failed_requests_count_against_their_provider(gov: Env) -> None:
    s0 = stats(gov.gw)
    with pytest.raises(openai.APIStatusError) as err:
        chat(gov.gw, gov.keys["acme"], "[[status:503]] the upstream is down", model="m1")
    assert err.value.status_code == 502 and err.value.code == "upstream_503"
    s1 = stats(gov.gw)
    assert delta(s0, s1, "providers", "u1", "errors_by_reason", "upstream_503") == 3  # attempts
    assert delta(s0, s1, "providers", "u1", "errors") == 1


def test_tenant_keys_cannot_read_gateway_data(gov: Env) -> None:
    acme = gov.keys["acme"].raw
    chat(gov.gw, gov.keys["acme"], "something private")
    guarded = [
        ("GET", "/stats"),
        ("GET", "/metrics"),
        ("GET", "/admin/cache/stats"),
        ("GET", "/admin/cache/entries"),
        ("DELETE", "/admin/cache/entries/1"),
        ("POST", "/admin/cache/flush"),
    ]
    for api_key in (acme, None, "sk-sc-wrong"):
        with gov.gw.http(api_key) as http:
            for method, path in guarded:
                r = http.request(method, path)
                assert r.status_code == 401, (api_key, method, path)
                assert "acme" not in r.text and "north" not in r.text
            # ...nor with the tenant key in the query string the dashboard uses
            assert http.get("/stats", params={"key": acme}).status_code == 401
    with gov.gw.http(api_key=None) as http:
        page = http.get("/dashboard")  # the page is public; the figures come from /stats
        assert page.status_code == 200 and b"acme" not in page.content
    with gov.gw.http(ADMIN) as http:
        assert "acme" in http.get("/stats").json()["tenants"]
        assert http.get("/stats", params={"key": ADMIN}).status_code == 200
        assert http.get("/metrics").status_code == 200
        assert http.get("/admin/cache/stats").status_code == 503  # past auth; the cache is off


# -- budgets (a gateway of their own: restarts) ------------------------------------------------


BUDGET_EXTRA = """
[limits]
budget_flush_seconds = 0.2

[limits.tenant_budgets.team]
usd = 0.03
period = "day"
"""
ONE_CALL = "one two three"  # 3 + 5 tokens: $0.013 with the pricing above


def spend_until_refused(
    gw: Gateway, key: Key, limit: int = 20
) -> tuple[int, openai.RateLimitError]:
    for admitted in range(limit):
        try:
            chat(gw, key, ONE_CALL)
        except openai.RateLimitError as exc:
            return admitted, exc
    raise AssertionError(f"{key.tenant}: never refused")


def test_budget_stops_spend_and_survives_restart_and_kill(
    upstreams, gateway_factory, tmp_path: Path
) -> None:
    text = basic_config(
        [upstreams["u1"]],
        tmp_path,
        server_extra=f'admin_key = "{ADMIN}"',
        extra=PRICING + BUDGET_EXTRA,
    )
    config = write_config(tmp_path, text, "budget.toml")
    spender = create_key(config, "spender", "--budget-usd", "0.05", "--budget-period", "day")
    team1, team2 = create_key(config, "team"), create_key(config, "team")
    crash = create_key(config, "crash", "--budget-usd", "0.02")
    free = create_key(config, "free")
    gw = gateway_factory(config)
    per_call = cost(*usage_of(ONE_CALL))
    assert per_call == pytest.approx(0.013)

    # A key's own budget: $0.05 a day admits 4 calls ($0.052) and refuses the 5th.
    admitted, exc = spend_until_refused(gw, spender)
    assert admitted == 4
    assert exc.status_code == 429 and exc.code == "budget_exceeded"
    assert "daily budget" in exc.message
    retry_after = int(exc.response.headers["retry-after"])
    assert 1 <= retry_after <= 86_400  # until the next UTC midnight

    # A tenant's budget is shared by its keys: team1 uses it up, team2 is refused at once.
    admitted, _ = spend_until_refused(gw, team1)
    assert admitted == 3
    with pytest.raises(openai.RateLimitError) as err:
        chat(gw, team2, ONE_CALL)
    assert err.value.code == "budget_exceeded" and "tenant 'team'" in err.value.message

    row = tenant_stats(gw, "spender")
    assert row["cost_usd"] == pytest.approx(4 * per_call, abs=1e-6)
    assert (row["bypass"], row["errors"]) == (4, 1)
    assert chat(gw, free, ONE_CALL).choices  # other keys are unaffected

    # A graceful restart writes the spend; it is still counted afterwards.
    gw.restart()
    for key in (spender, team1, team2):
        with pytest.raises(openai.RateLimitError) as err:
            chat(gw, key, ONE_CALL)
        assert err.value.code == "budget_exceeded", key
    assert chat(gw, free, ONE_CALL).choices

    # A crash loses at most the last flush interval (0.2 s here).
    assert chat(gw, crash, ONE_CALL).choices and chat(gw, crash, ONE_CALL).choices  # $0.026
    time.sleep(0.6)
    gw.kill()
    gw.start()
    with pytest.raises(openai.RateLimitError) as err:
        chat(gw, crash, ONE_CALL)
    assert err.value.code == "budget_exceeded"

    with sqlite3.connect(f"file:{tmp_path / 'data' / 'state.db'}?mode=ro", uri=True) as db:
        rows = dict(
            db.execute(
                "SELECT scope, usd FROM spend WHERE period LIKE 'day:%' AND scope IN (?, ?, ?)",
                (f"key:{spender.id}", "tenant:team", f"key:{crash.id}"),
            ).fetchall()
        )
    assert rows[f"key:{spender.id}"] == pytest.approx(4 * per_call)
    assert rows["tenant:team"] == pytest.approx(3 * per_call)
    assert rows[f"key:{crash.id}"] == pytest.approx(2 * per_call)


# -- PII redaction (gateways of their own) -----------------------------------------------------


PII_TEXT = (
    "Please email jane.doe@example.com or call +44 20 7946 0958 about release v2.3.1"
    " (Python 3.12.0) shipped 2024-03-15 at 14:30; order 12345 costs $19.99."
)
PII_REDACTED = (
    "Please email [EMAIL] or call [PHONE] about release v2.3.1"
    " (Python 3.12.0) shipped 2024-03-15 at 14:30; order 12345 costs $19.99."
)
NO_PII = (
    "Upgrade from 1.2.3 to 1.10.0 before 2025-12-31 23:59:59, see RFC 2616 section 14.9,"
    " build 20240315, port 8080, version 10.0.19045.3803, ISO 8601 date 2024-03-15T14:30:00Z."
)


def pii_gateway(
    gateway_factory: Callable[..., Gateway], upstreams: Any, tmp: Path, *, upstream: bool
) -> Gateway:
    tmp.mkdir(parents=True, exist_ok=True)
    text = basic_config(
        [upstreams["u1"]],
        tmp,
        server_extra="log_prompts = true",
        extra=f"[pii]\nenabled = true\nredact_upstream = {str(upstream).lower()}\n",
    )
    return gateway_factory(text)


def logged_prompt(gw: Gateway, request_id: str) -> str:
    docs = gw.access_lines(until=lambda ds: any(d["request_id"] == request_id for d in ds))
    docs = [d for d in docs if d["request_id"] == request_id]
    assert len(docs) == 1, docs
    prompt: str = docs[0]["prompt"]
    return prompt


def test_pii_is_redacted_in_logs_and_upstream(upstreams, gateway_factory, tmp_path: Path) -> None:
    up = upstreams["u1"]
    gw = pii_gateway(gateway_factory, upstreams, tmp_path / "a", upstream=True)
    client = gw.client()

    r = client.chat.completions.create(
        model="m1",
        messages=[{"role": "user", "content": PII_TEXT}],
        extra_headers={"x-request-id": "pii-1"},
    )
    assert logged_prompt(gw, "pii-1") == PII_REDACTED
    assert up.last_request()["body"]["messages"][-1]["content"] == PII_REDACTED
    assert r.choices[0].message.content == "Answer to: " + PII_REDACTED

    # No false positives: versions, dates, times, ports and build numbers pass untouched.
    client.chat.completions.create(
        model="m1",
        messages=[{"role": "user", "content": NO_PII}],
        extra_headers={"x-request-id": "pii-2"},
    )
    assert logged_prompt(gw, "pii-2") == NO_PII
    assert up.last_request()["body"]["messages"][-1]["content"] == NO_PII
    assert "jane.doe" not in gw.logs() and "7946" not in gw.logs()

    # Without redact_upstream the upstream sees the original; the log still never does.
    gw2 = pii_gateway(gateway_factory, upstreams, tmp_path / "b", upstream=False)
    r = gw2.client().chat.completions.create(
        model="m1",
        messages=[{"role": "user", "content": PII_TEXT}],
        extra_headers={"x-request-id": "pii-3"},
    )
    assert up.last_request()["body"]["messages"][-1]["content"] == PII_TEXT
    assert r.choices[0].message.content == "Answer to: " + PII_TEXT
    assert logged_prompt(gw2, "pii-3") == PII_REDACTED
    assert "jane.doe" not in gw2.logs()


# -- with the cache (skipped while the cache cannot run) ---------------------------------------

CACHE_READY = all(
    importlib.util.find_spec(m) is not None
    for m in ("sidecache.cache.semantic", "faiss", "onnxruntime", "tokenizers")
)
ONNX_DIR = Path.home() / ".cache" / "sidecache-test" / "onnx"
# The verifier is off so these tests depend only on the exact layer (hits are exact repeats).
CACHE_EXTRA = f"""
[cache.verifier]
enabled = false
[cache.embedder]
onnx_dir = "{ONNX_DIR}"
"""


@pytest.mark.skipif(not CACHE_READY, reason="the semantic cache cannot run here")
def test_cache_hits_save_money_and_are_served_over_budget(
    upstreams, gateway_factory, tmp_path: Path
) -> None:
    text = basic_config(
        [upstreams["u1"]],
        tmp_path,
        cache=True,
        cache_extra=CACHE_EXTRA,
        server_extra=f'admin_key = "{ADMIN}"',
        extra=PRICING,
    )
    config = write_config(tmp_path, text, "cache.toml")
    key = create_key(config, "saver", "--budget-usd", "0.05")
    other = create_key(config, "other")
    gw = gateway_factory(config)
    repeat = "what is the boiling point of water"
    per_repeat = cost(*usage_of(repeat))  # $0.025

    def outcome(k: Key, question: str) -> str:
        raw = gw.client(k.raw).chat.completions.with_raw_response.create(
            model="m1", messages=[{"role": "user", "content": question}]
        )
        return str(raw.headers["x-sidecache"])

    def stored(tenant: str, n: int) -> bool:
        with gw.http(ADMIN) as http:
            data = http.get("/admin/cache/entries", params={"tenant": tenant}).json()["data"]
        return len(data) >= n

    assert outcome(key, repeat) == "miss"
    assert wait_for(lambda: stored("saver", 1))
    assert outcome(key, repeat) == "hit-exact"
    assert outcome(other, repeat) == "miss"  # tenants never share entries
    assert outcome(key, "alpha beta gamma delta") == "miss"
    assert outcome(key, "epsilon zeta eta theta") == "miss"  # $0.057 spent: past the budget
    with pytest.raises(openai.RateLimitError) as err:
        outcome(key, "a question never asked")
    assert err.value.code == "budget_exceeded"
    assert outcome(key, repeat) == "hit-exact"  # limits.serve_hits_over_budget (default)

    spent = per_repeat + cost(*usage_of("alpha beta gamma delta")) * 2
    row = tenant_stats(gw, "saver")
    assert (row["hit_exact"], row["misses"], row["errors"]) == (2, 3, 1)
    assert row["cost_usd"] == pytest.approx(spent, abs=1e-6)
    assert row["saved_usd"] == pytest.approx(2 * per_repeat, abs=1e-6)
    assert row["saved_tokens"] == 2 * sum(usage_of(repeat))
    m = scrape(gw)
    assert m.sum("sidecache_cost_saved_usd_total", tenant="saver") == pytest.approx(2 * per_repeat)
    assert m.sum("sidecache_tokens_saved_total", tenant="saver") == 2 * sum(usage_of(repeat))
    assert m.sum("sidecache_requests_total", tenant="saver", outcome="hit-exact") == 2
    assert 0 < m.sum("sidecache_cache_hit_ratio") < 1
    assert stats(gw)["cache"]["entries"] >= 3


@pytest.mark.skipif(not CACHE_READY, reason="the semantic cache cannot run here")
def test_coalesced_misses_are_charged_once(upstreams, gateway_factory, tmp_path: Path) -> None:
    text = basic_config(
        [upstreams["u1"]],
        tmp_path,
        cache=True,
        cache_extra=CACHE_EXTRA,
        server_extra=f'admin_key = "{ADMIN}"',
        extra=PRICING,
    )
    config = write_config(tmp_path, text, "herd.toml")
    key = create_key(config, "herd")
    gw = gateway_factory(config)
    question = "[[delay:300]] one two three"  # the directive is not counted as words

    async def herd() -> list[str]:
        client = gw.async_client(key.raw)
        calls = [
            client.chat.completions.create(
                model="m1", messages=[{"role": "user", "content": question}]
            )
            for _ in range(5)
        ]
        done = await asyncio.gather(*calls)
        await client.close()
        return [r.choices[0].message.content or "" for r in done]

    assert set(asyncio.run(herd())) == {"Answer to: one two three"}
    assert upstreams["u1"].stats()["requests"] == 1  # coalesced into one upstream call
    assert wait_for(lambda: tenant_stats(gw, "herd").get("requests") == 5)
    row = tenant_stats(gw, "herd")
    assert row["cost_usd"] == pytest.approx(cost(*usage_of("one two three")), abs=1e-6)
