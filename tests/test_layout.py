"""The package's shape: data flows one way along the request path, and modules stay small.

Read from the source, not imported: an import that runs back up (a provider reaching into the
HTTP layer, the cache into routing) is how the old request path grew its bugs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "sidecache"
MAX_LINES = 600

# package (or module) -> sidecache packages and modules it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "config": ("api", "pipeline", "app", "cli", "cache", "routing", "providers", "governance"),
    "openai": ("api", "pipeline", "app", "cli", "cache", "routing", "providers", "governance"),
    "providers": ("api", "pipeline", "app", "cli", "cache", "routing", "governance"),
    "cache": ("api", "pipeline", "app", "cli", "routing", "providers", "governance"),
    "routing": ("api", "pipeline", "app", "cli", "cache", "governance"),
    "governance": ("api", "pipeline", "app", "cli", "cache", "routing", "providers"),
    "observability": ("api", "pipeline", "app", "cli", "cache", "routing", "providers"),
    "pipeline": ("api", "app", "cli"),
    "embeddings": ("api", "app", "cli"),
    "api": ("app", "cli"),
}


def modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def imported(path: Path) -> set[str]:
    """``sidecache.*`` names this module imports (at any depth, ``TYPE_CHECKING`` included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n == "sidecache" or n.startswith("sidecache.")}


def part_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_import_runs_back_up_the_request_path(path: Path) -> None:
    banned = FORBIDDEN.get(part_of(path), ())
    wrong = sorted(
        name
        for name in imported(path)
        if name.split(".")[1:2]
        and name.split(".")[1] in banned
        and part_of(path) != name.split(".")[1]
    )
    assert not wrong, f"{path.relative_to(SRC)} imports {wrong}"


def test_nothing_imports_the_entry_points() -> None:
    for path in modules():
        if path.name in ("cli.py", "__main__.py"):
            continue
        wrong = {"sidecache.app", "sidecache.cli"} & imported(path)
        assert not wrong or path.name == "cli.py", f"{path.relative_to(SRC)} imports {wrong}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(SRC)} has {lines} lines: split what it holds"
