"""Data residency: the regions a request may be served from.

A key (``sidecache keys create --region eu``) and its tenant (``[tenants.T] regions``) can each
pin requests to regions; both pins hold (their intersection). A request may narrow that further
with ``x-sidecache-region``, never widen it. The router then uses only targets whose ``region``
is in the set, also on fallback (503 rather than a target elsewhere), and the set is part of
the cache scope, so an answer made for one region set is never served to another.
"""

from __future__ import annotations

from collections.abc import Iterable

from sidecache.config import TenantConfig
from sidecache.errors import PermissionDenied
from sidecache.governance.keys import KeyRecord

__all__ = ["allowed_regions"]


def allowed_regions(
    key: KeyRecord | None, tenant: TenantConfig | None, asked: frozenset[str] | None
) -> frozenset[str] | None:
    """The regions this request may use; ``None``: anywhere. 403 when ``asked`` (the header)
    lies outside the key's or tenant's pin, or when those two pins share no region."""
    pinned: frozenset[str] | None = None
    sources: list[Iterable[str] | None] = [
        key.regions if key else None,
        tenant.regions if tenant else None,
    ]
    for source in sources:
        if source:
            regions = frozenset(source)
            pinned = regions if pinned is None else pinned & regions
    if pinned is not None and not pinned:
        raise PermissionDenied(
            "this key's regions and its tenant's regions have none in common",
            code="region_not_allowed",
        )
    if asked is None:
        return pinned
    if pinned is None:
        return asked
    narrowed = pinned & asked
    if not narrowed:
        raise PermissionDenied(
            f"x-sidecache-region asks for {', '.join(sorted(asked))}; this key may only use"
            f" {', '.join(sorted(pinned))}",
            param="x-sidecache-region",
            code="region_not_allowed",
        )
    return narrowed
