"""Every configuration field is documented in README.md (a new user's reference)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from sidecache import config

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
INTERNAL = {("Config", "passthrough_models")}
"""Set by the environment-only mode (no config file), not a field users write."""


def _types(tp: object) -> list[object]:
    """``tp`` and every type inside it (``list[X]``, ``dict[str, X]``, ``X | None``, ...)."""
    found = [tp]
    for arg in getattr(tp, "__args__", ()) or ():
        found += _types(arg)
    origin = getattr(tp, "__origin__", None)
    if origin is not None:
        found += _types(origin)
    return found


def structs(t: type, seen: set[type]) -> list[type]:
    """The Struct types reachable from ``t``'s fields."""
    if t in seen:
        return []
    seen.add(t)
    out = [t]
    for f in msgspec.structs.fields(t):
        for inner in _types(f.type):
            if isinstance(inner, type) and issubclass(inner, msgspec.Struct):
                out += structs(inner, seen)
    return out


FIELDS = sorted(
    {(s.__name__, f.name) for s in structs(config.Config, set()) for f in msgspec.structs.fields(s)}
    - INTERNAL
)


@pytest.mark.parametrize(("struct", "field"), FIELDS, ids=[f"{s}.{f}" for s, f in FIELDS])
def test_every_config_field_is_in_the_readme(struct: str, field: str) -> None:
    forms = (f"`{field}`", f".{field}`", f"`{field}.", f"{field} =", f"[{field}")
    assert any(form in README for form in forms), f"{struct}.{field} is not in README.md"
