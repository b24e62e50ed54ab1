"""A headless Chromium driven over the DevTools protocol, for the dashboard tests.

Shared by ``tests/observability/test_dashboard.py`` (the page against synthetic ``/stats``) and
``tests/test_dashboard_e2e.py`` (the page against the real gateway). Needs the ``chromium``
binary and the ``websockets`` package; tests skip themselves when either is missing
(``CHROMIUM is None`` / ``pytest.importorskip("websockets")``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """A headless Chromium with remote debugging; ``page_ws`` is its first tab's socket URL."""

    def __init__(self) -> None:
        assert CHROMIUM is not None
        self.profile = tempfile.mkdtemp(prefix="sidecache-chromium-")
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--mute-audio",
                f"--user-data-dir={self.profile}",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1400,1000",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while True:
            if port_file.exists() and port_file.read_text().strip():
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not start")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            targets = json.loads(resp.read())
        self.page_ws = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


class CDP:
    """Just enough of a DevTools client: commands by id, events collected in a list."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg:
                fut = self.pending.pop(msg["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
            else:
                self.events.append(msg)

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = fut
        await self.ws.send(
            json.dumps({"id": self.next_id, "method": method, "params": params or {}})
        )
        msg = await asyncio.wait_for(fut, 30)
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return dict(msg.get("result", {}))

    async def eval(self, expression: str) -> Any:
        res = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in res:
            raise RuntimeError(f"evaluate failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        guarded = f"(() => {{ try {{ return ({expression}); }} catch (e) {{ return false; }} }})()"
        while True:
            value = await self.eval(guarded)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"page never satisfied: {expression}")
            await asyncio.sleep(0.1)

    def problems(self, *, allow_network: bool = False) -> list[str]:
        """Uncaught exceptions, console errors and error log entries seen so far."""
        out = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(f"exception: {params['exceptionDetails']}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                if allow_network and params["entry"].get("source") == "network":
                    continue
                out.append(f"log: {params['entry'].get('text')}")
        return out


@contextlib.asynccontextmanager
async def cdp_session(browser: Browser) -> AsyncIterator[CDP]:
    """A DevTools session on the browser's tab, reset to a blank page with an empty log."""
    import websockets

    async with websockets.connect(browser.page_ws, max_size=None) as ws:
        cdp = CDP(ws)
        for domain in ("Page", "Runtime", "Log"):
            await cdp.send(f"{domain}.enable")
        await cdp.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
        )
        # Start clean: leave the previous test's page, and drop the log it left behind
        # (Log.enable replays earlier entries).
        await cdp.send("Page.navigate", {"url": "about:blank"})
        await cdp.wait_for("location.href === 'about:blank'")
        await cdp.send("Log.clear")
        cdp.events.clear()
        try:
            yield cdp
        finally:
            cdp.reader.cancel()


# What the page shows, gathered in one evaluation.
PAGE_STATE = """(() => {
  const colored = (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      const mx = Math.max(d[i], d[i+1], d[i+2]), mn = Math.min(d[i], d[i+1], d[i+2]);
      if (d[i+3] > 100 && mx - mn > 60) n++;
    }
    return n;
  };
  const rows = (id) => document.querySelectorAll('#' + id + ' tbody tr').length;
  const text = (id) => document.getElementById(id).textContent;
  return {
    rendered: document.body.dataset.rendered || null,
    renders: Number(document.body.dataset.renderCount || 0),
    kpi: {requests: text('k-requests'), hitrate: text('k-hitrate'), saved: text('k-saved'),
          spent: text('k-spent'), latency: text('k-latency'), cache: text('k-cache')},
    canvases: Array.from(document.querySelectorAll('canvas')).map(
      (c) => ({id: c.id, drawn: c.dataset.drawn, colored: colored(c)})),
    rows: {tenants: rows('t-tenants'), models: rows('t-models'), providers: rows('t-providers'),
           circuits: rows('t-circuits'), tags: rows('t-tags'), variants: rows('t-variants'),
           alerts: rows('t-alerts')},
    pills: Array.from(document.querySelectorAll('.pill')).map((p) => p.textContent),
    banner: getComputedStyle(document.getElementById('banner')).display,
    bannerText: text('banner'),
    status: text('status'),
    tables: document.querySelector('.tables').innerText,
  };
})()"""
