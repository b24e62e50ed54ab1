"""What an upstream process remembers: counters and the last requests it received."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.types import Scope

from support.fake_upstream.faults import Control, Faults

_RECENT_MAX = 1000
_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization"})


# ---------------------------------------------------------------------------------------------
# State shared by the routes of one server.


@dataclass
class Stats:
    requests: int = 0
    by_model: dict[str, int] = field(default_factory=dict)
    streams_started: int = 0
    streams_completed: int = 0
    streams_cancelled: int = 0
    responses_cut: int = 0
    """Responses dropped on purpose by ``[[cut:K]]`` (stream or not)."""
    requests_cancelled: int = 0
    """Clients that left during a ``delay`` or a ``hang`` (before any byte was sent)."""
    errors_injected: int = 0
    inputs_embedded: int = 0
    """Inputs that ``POST /v1/embeddings`` answered (a batch counts each input)."""

    def clear(self) -> None:
        """Zero the counters in place, so requests in flight count into the fresh numbers."""
        self.__dict__.update(Stats().__dict__)


@dataclass
class UpstreamState:
    """Everything one fake server remembers; reset by ``POST /_reset``."""

    name: str
    kind: str
    stats: Stats = field(default_factory=Stats)
    control: Control = field(default_factory=Control)
    in_flight: int = 0
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_RECENT_MAX))

    def take_control(self, faults: Faults) -> None:
        ctl = self.control
        if not ctl.active:
            return
        ctl.apply(faults)
        if ctl.count is not None:
            ctl.count -= 1
            if ctl.count <= 0:
                self.control = Control()

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            **asdict(self.stats),
            "in_flight": self.in_flight,
        }


def _redact(value: str) -> str:
    scheme, sep, token = value.partition(" ")
    if sep and scheme.lower() == "bearer":
        return f"{scheme} {token[:6]}...[{len(token)}]"
    return f"{value[:6]}...[{len(value)}]"


def record(state: UpstreamState, scope: Scope, raw: bytes, body: Any) -> None:
    headers: dict[str, str] = {}
    for k, v in scope["headers"]:
        key = k.decode("latin-1")
        val = v.decode("latin-1")
        headers[key] = _redact(val) if key in _SECRET_HEADERS else val
    entry: dict[str, Any] = {
        "time": time.time(),
        "method": scope["method"],
        "path": scope["path"],
        "headers": headers,
        "body": body,
    }
    if body is None:
        entry["raw"] = raw.decode("utf-8", "replace")
    state.recent.append(entry)
