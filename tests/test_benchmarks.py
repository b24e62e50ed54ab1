"""Trying a benchmark changes nothing tracked: figures go to ``benchmarks/results/`` only with
``--save`` (the README quotes those files); otherwise to the ignored ``benchmarks/.cache``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from support import REPO_ROOT

RESULTS = REPO_ROOT / "benchmarks" / "results"
SCRATCH = REPO_ROOT / "benchmarks" / ".cache" / "results"


def tracked_state() -> str:
    done = subprocess.run(
        ["git", "status", "--porcelain", "--", str(RESULTS)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.mark.skipif(
    shutil.which("git") is None or not (REPO_ROOT / ".git").exists(), reason="needs a git checkout"
)
@pytest.mark.parametrize(
    ("script", "args", "written"),
    [
        ("proxy_overhead.py", ["-n", "3", "--warmup", "1"], "proxy_overhead.json"),
        ("cold_start.py", ["--runs", "1", "--no-offline"], "cold_start.json"),
    ],
)
def test_a_benchmark_run_writes_nothing_tracked(script: str, args: list[str], written: str) -> None:
    before = tracked_state()
    (SCRATCH / written).unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / script), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (SCRATCH / written).is_file()
    assert tracked_state() == before


TUNING = [
    "train_verifier.py",
    "gen_pairs.py",
    "gen_rewordings.py",
    "gen_lexicon.py",
    "threshold_sweep.py",
    "pairs.py",
    "adaptive_threshold.py",
]


def test_no_tuning_script_reads_the_held_out_pairs() -> None:
    """``benchmarks/data/heldout/`` is measured on, never tuned on (its README): no script that
    trains, generates or chooses a setting names it."""
    bench = REPO_ROOT / "benchmarks"
    assert (bench / "data" / "heldout" / "heldout1.jsonl").exists()
    for name in TUNING:
        path = bench / name
        if path.exists():
            assert "heldout" not in path.read_text().lower(), name
