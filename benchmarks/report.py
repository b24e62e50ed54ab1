"""Where a benchmark writes its figures: ``benchmarks/results/`` only when asked.

The files under ``benchmarks/results/`` are tracked: they are the figures the README quotes. A
run writes them only with ``--save``; otherwise its JSON goes to the ignored
``benchmarks/.cache/results/``, so trying a benchmark (or a test that runs one) never changes
the repository.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACKED = ROOT / "benchmarks" / "results"
SCRATCH = ROOT / "benchmarks" / ".cache" / "results"


def add_save_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--save",
        action="store_true",
        help="write the results to benchmarks/results/ (tracked, quoted by the README);"
        " default: benchmarks/.cache/results/",
    )


def results_dir(save: bool) -> Path:
    """The directory to write to, created."""
    path = TRACKED if save else SCRATCH
    path.mkdir(parents=True, exist_ok=True)
    return path
