"""Background tasks: the one way a long-lived loop (a flusher, a follower, a heartbeat) stops."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

__all__ = ["stop_task"]


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it has finished (its ``finally`` blocks have run), so
    whatever it held is released before the caller closes what the task was using."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
