"""Feedback on hits: which hit a verdict is about, who may give it, and what a bad one closes.

``HitLog`` remembers the recent hits (request id, the key that received it, the entry, the
similarity), so a client that got a wrong answer can say so with the ``x-request-id`` or the
``x-sidecache-entry`` it received, and nobody else can: only the key that received the hit, or
the admin key. ``Neighbourhoods`` holds what bad verdicts on semantic hits closed: the entry is
refused to prompts that are at least as close to the prompt it wrongly answered as to the
entry's own prompt (so the same mistake, and its paraphrases, are not repeated, while the entry
keeps serving its own prompt and the paraphrases on its side). A bad verdict on an exact hit
says the stored answer is wrong for its own prompt: that entry is deleted instead.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sidecache.cache.policy import normalise_key
from sidecache.errors import NotFound, PermissionDenied

if TYPE_CHECKING:
    import numpy.typing as npt

    from sidecache.cache.semantic import Verify

__all__ = ["Caller", "HitLog", "HitRecord", "Neighbourhoods", "Probe"]

HITS_KEPT = 20_000
"""Recent hits a verdict can refer to (older ones get 404)."""


@dataclass(frozen=True)
class Caller:
    """Who sends a verdict: a virtual key (its id and tenant), an anonymous client, the admin."""

    key_id: str | None
    tenant: str
    admin: bool = False


@dataclass(frozen=True)
class HitRecord:
    """One served hit, as feedback needs it."""

    request_id: str
    key_id: str | None
    tenant: str
    alias: str
    entry_id: int
    kind: str
    """``exact`` or ``semantic``."""
    similarity: float
    prompt: str
    """The prompt that was answered from the cache."""
    scope: str
    entry_key: str
    """The entry's own prompt (the cached one)."""
    t: float

    def owned_by(self, caller: Caller) -> bool:
        return caller.admin or (caller.key_id == self.key_id and caller.tenant == self.tenant)


class HitLog:
    """The last ``HITS_KEPT`` hits, by request id and by entry."""

    def __init__(self, size: int = HITS_KEPT) -> None:
        self.size = size
        self._seq = 0
        self._hits: OrderedDict[int, HitRecord] = OrderedDict()
        self._by_request: dict[str, list[int]] = {}
        self._by_entry: dict[int, list[int]] = {}

    def remember(self, hit: HitRecord) -> None:
        self._seq += 1
        self._hits[self._seq] = hit
        self._by_request.setdefault(hit.request_id, []).append(self._seq)
        self._by_entry.setdefault(hit.entry_id, []).append(self._seq)
        while len(self._hits) > self.size:
            seq, old = self._hits.popitem(last=False)
            _unindex(self._by_request, old.request_id, seq)
            _unindex(self._by_entry, old.entry_id, seq)

    def find(self, caller: Caller, request_id: str | None, entry_id: int | None) -> HitRecord:
        """The newest remembered hit matching the ids that ``caller`` received (the admin: any).

        A hit that exists but went to another key is a 403; none at all is a 404.
        """
        if request_id is not None:
            seqs = self._by_request.get(request_id, [])
        else:
            assert entry_id is not None
            seqs = self._by_entry.get(entry_id, [])
        hits = [self._hits[s] for s in seqs]
        if request_id is not None and entry_id is not None:
            hits = [h for h in hits if h.entry_id == entry_id]
        if not hits:
            what = f"request {request_id}" if request_id is not None else f"entry {entry_id}"
            raise NotFound(
                f"no recent cache hit for {what}: feedback is taken on the last {self.size}"
                " hits (a miss has nothing to judge)",
                code="hit_not_found",
            )
        mine = [h for h in hits if h.owned_by(caller)]
        if not mine:
            raise PermissionDenied(
                "feedback on a hit is taken only from the key that received it, or the admin key",
                code="not_your_hit",
            )
        return mine[-1]


def _unindex(index: dict[Any, list[int]], key: Any, seq: int) -> None:
    seqs = index[key]
    seqs.remove(seq)
    if not seqs:
        del index[key]


class Neighbourhoods:
    """Prompt neighbourhoods closed to cached entries by bad verdicts, per scope."""

    def __init__(self) -> None:
        self._closed: dict[tuple[str, str], list[npt.NDArray[np.float32]]] = {}
        self._scopes: dict[str, int] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self._closed.values())

    def close(self, scope: str, entry_key: str, prompt_vector: npt.NDArray[np.float32]) -> None:
        """Refuse the entry cached for ``entry_key`` to prompts near ``prompt_vector``."""
        vec = np.ascontiguousarray(prompt_vector, dtype=np.float32).reshape(-1)
        self._closed.setdefault((scope, normalise_key(entry_key)), []).append(vec)
        self._scopes[scope] = self._scopes.get(scope, 0) + 1

    def any_in(self, scope: str) -> bool:
        return scope in self._scopes

    def refuses(
        self, scope: str, stored_text: str, similarity: float, vec: npt.NDArray[np.float32]
    ) -> bool:
        """True when ``vec`` is at least as close to a prompt this entry answered wrongly as it
        is to the entry's own prompt (``similarity``)."""
        closed = self._closed.get((scope, normalise_key(stored_text)))
        if not closed:
            return False
        q = np.asarray(vec, dtype=np.float32).reshape(-1)
        return any(float(np.dot(q, bad)) >= similarity for bad in closed)


class Probe:
    """The verify callback of one lookup: closed neighbourhoods, the verifier, and, when the
    lookup explores below the serving threshold, the best verified candidate under it.

    The cache offers candidates best first. One at or above ``serve_at`` that passes is served
    as usual (and every candidate under ``serve_at`` is then refused, so the choice among near
    ties is the one a lookup at ``serve_at`` makes). If none passes, the first one under it
    that passes is accepted as the *near miss*: the caller will not serve it, but compare its
    answer with the fresh one.
    """

    def __init__(
        self,
        scope: str,
        verify: Verify | None,
        serve_at: float,
        neighbourhoods: Neighbourhoods | None,
    ) -> None:
        self.scope = scope
        self.verify = verify
        self.serve_at = serve_at
        self.neighbourhoods = neighbourhoods
        self.accepted_above = False
        self.near = False

    def __call__(
        self,
        new_text: str,
        stored_text: str,
        similarity: float,
        new_vec: npt.NDArray[np.float32],
        stored_vec: npt.NDArray[np.float32],
    ) -> bool:
        below = similarity < self.serve_at
        if below and (self.accepted_above or self.near):
            return False
        hood = self.neighbourhoods
        if hood is not None and hood.refuses(self.scope, stored_text, similarity, new_vec):
            return False
        ok = self.verify is None or self.verify(
            new_text, stored_text, similarity, new_vec, stored_vec
        )
        if ok:
            if below:
                self.near = True
            else:
                self.accepted_above = True
        return ok
