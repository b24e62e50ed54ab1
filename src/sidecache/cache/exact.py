"""Which exact-layer keys the store may hold, in memory, so that a miss costs no store trip.

Most lookups on the miss path are for prompts never seen; asking SQLite (a thread hop) or Redis
(a network round trip) for each costs more than the rest of the gateway's own work on a miss.
``ExactKeys`` holds a 64-bit prefix of every stored key hash: if a key is not in it, the store
does not have it, and the lookup goes straight on to the semantic layer. A key in it is looked
up in the store as before, so stale members (entries deleted since) only cost that trip.

It learns of this replica's puts directly and of other replicas' through the shared store's
change events (which carry the key hash). Members are not removed one by one (deletions are by
entry id); the set is rebuilt from the store when it has grown well past the entry count.
About 60 bytes an entry. Used on the event loop only.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ExactKeys"]


def _prefix(key_hash: str) -> int:
    return int(key_hash[:16], 16)


class ExactKeys:
    def __init__(self, key_hashes: Iterable[str] = ()) -> None:
        self._keys: set[int] = {_prefix(k) for k in key_hashes if k}

    def add(self, key_hash: str) -> None:
        if key_hash:
            self._keys.add(_prefix(key_hash))

    def may_hold(self, key_hash: str) -> bool:
        """False: the store certainly has no entry under this key hash."""
        return _prefix(key_hash) in self._keys

    def stale(self, entries: int) -> bool:
        """Many more members than entries: worth rebuilding from the store."""
        return len(self._keys) > 2 * entries + 1000

    def __len__(self) -> int:
        return len(self._keys)
