"""Cache keys for embeddings: one exact-only entry per input.

An embeddings request is a batch of inputs whose vectors do not depend on each other, so each
input is cached on its own: a batch of 100 inputs of which 90 were seen before sends only the
10 new ones upstream. The *scope* is everything that must match exactly for a stored vector to
be the answer: tenant, model alias, namespace, ``dimensions`` and every other body field that
reaches the upstream (``encoding_format`` and ``user`` do not change the vector and are left
out). The key is the input itself, unnormalised: "Hello" and "hello" embed differently.

The entries go into the response cache's store, with no vector of their own to search and no
key text kept (only its hash): an embedding is never a semantic hit for another text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from typing import Any

import orjson

from sidecache.cache.policy import Decision
from sidecache.config import CacheConfig

__all__ = ["NEUTRAL_EMBEDDING_FIELDS", "embedding_decisions"]

NEUTRAL_EMBEDDING_FIELDS = frozenset({"model", "input", "encoding_format", "user"})


def embedding_decisions(
    body: dict[str, Any],
    inputs: Sequence[str | tuple[int, ...]],
    *,
    tenant: str,
    alias: str,
    namespace: str | None,
    cache_control: str | None,
    cfg: CacheConfig,
    regions: Collection[str] | None = None,
) -> list[Decision] | None:
    """One exact-only decision per input, in order; None when the cache may neither be read
    nor written for this request. ``regions``: a region-pinned request's regions are part of
    the scope, as for chat (``policy.decide``)."""
    if not cfg.enabled:
        return None
    directives = {
        d.strip().split("=", 1)[0].lower() for d in (cache_control or "").split(",") if d.strip()
    }
    read, write = "no-cache" not in directives, "no-store" not in directives
    if not (read or write):
        return None
    params = {k: v for k, v in body.items() if k not in NEUTRAL_EMBEDDING_FIELDS}
    doc = {
        "kind": "embeddings",
        "tenant": tenant,
        "alias": alias,
        "namespace": namespace or "",
        "params": params,
    }
    if regions is not None:
        doc["regions"] = sorted(regions)
    try:
        canonical = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return None
    scope = hashlib.sha256(canonical).hexdigest()
    out = []
    for item in inputs:
        key = orjson.dumps(item if isinstance(item, str) else list(item))
        key_hash = hashlib.sha256(scope.encode() + b"\0" + key).hexdigest()
        # key_text stays empty: the cache then neither embeds the input nor searches for it.
        out.append(Decision(read=read, write=write, scope=scope, key_hash=key_hash))
    return out
