"""The threshold-tuning notebook runs headless on a small sample, so it never rots.

It is executed as a user would run it (a real kernel, nbclient), with ``SIDECACHE_NB_LIMIT``
picking 60 evenly spaced prompt pairs so the run stays well under a minute.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "threshold_tuning.ipynb"

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")


@pytest.mark.timeout(180)
def test_notebook_runs_and_prints_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDECACHE_NB_LIMIT", "60")
    monkeypatch.setenv("SIDECACHE_NB_BACKEND", "torch")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # the kernel inherits the environment set above
    outputs = [
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
    ]
    text = "\n".join(outputs)
    assert "60 pairs" in text
    assert "verifier on" in text
    assert "[cache]" in text and "threshold = " in text
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
