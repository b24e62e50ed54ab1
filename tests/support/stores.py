"""Helpers for tests that drive a cache ``Store`` directly."""

from __future__ import annotations

from sidecache.cache.entries import Entry, Store


def put(store: Store, entry: Entry) -> int:
    """Store ``entry`` under a fresh id (as the cache does) and return the id."""
    entry.id = store.allocate_ids(1)
    store.put(entry)
    return entry.id
