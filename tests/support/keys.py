"""Virtual keys made as an operator makes them: the real ``sidecache keys`` command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from support.processes import REPO_ROOT

__all__ = ["Key", "create_key", "keys_cli"]


@dataclass(frozen=True)
class Key:
    raw: str
    id: str
    tenant: str


def keys_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m sidecache keys ARGS --config CONFIG``, in a subprocess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT / "src"), env.get("PYTHONPATH", "")) if p
    )
    return subprocess.run(
        [sys.executable, "-m", "sidecache", "keys", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(REPO_ROOT),
        env=env,
        check=False,
    )


def create_key(config: Path, tenant: str, *options: str) -> Key:
    r = keys_cli(config, "create", "--tenant", tenant, *options)
    assert r.returncode == 0, r.stderr
    raw = r.stdout.strip()
    found = re.search(r"created (key_[0-9a-f]+)", r.stderr)
    assert raw.startswith("sk-sc-") and found, (r.stdout, r.stderr)
    return Key(raw, found.group(1), tenant)
