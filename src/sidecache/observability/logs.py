"""The access log: one JSON line per request on the ``sidecache.access`` logger.

The line names the request, never its content: no prompt text and no key. Prompts are added
(as a ``prompt`` field) only when ``server.log_prompts`` is switched on for debugging.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import IO, Any

import orjson

from sidecache.observability.record import RequestRecord

ACCESS_LOGGER = "sidecache.access"


class AccessLog:
    """Writes ``RequestRecord``s as JSON lines at INFO level."""

    def __init__(self, *, log_prompts: bool = False, logger: logging.Logger | None = None) -> None:
        self.log_prompts = log_prompts
        self.logger = logger if logger is not None else logging.getLogger(ACCESS_LOGGER)

    def line(self, rec: RequestRecord, prompt: str | None = None) -> bytes:
        """The JSON line for one request (without a newline)."""
        doc: dict[str, Any] = {
            "ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "request_id": rec.request_id,
            "tenant": rec.tenant,
            "model": rec.model,
            "endpoint": rec.endpoint,
            "provider": rec.provider,
            "outcome": rec.outcome,
            "status": rec.status,
            "latency_ms": round(rec.latency_s * 1000.0, 2),
            "prompt_tokens": rec.prompt_tokens,
            "completion_tokens": rec.completion_tokens,
            "cost_usd": round(rec.cost_usd, 8),
        }
        if rec.ttft_s is not None:
            doc["ttft_ms"] = round(rec.ttft_s * 1000.0, 2)
        if rec.saved_tokens or rec.saved_usd:
            doc["saved_tokens"] = rec.saved_tokens
            doc["saved_usd"] = round(rec.saved_usd, 8)
        if rec.usage_estimated:
            doc["usage_estimated"] = True
        if rec.error_reason:
            doc["error_reason"] = rec.error_reason
        if rec.user:
            doc["user"] = rec.user
        if rec.tags:
            doc["tags"] = rec.tags
        if self.log_prompts and prompt is not None:
            doc["prompt"] = prompt
        return orjson.dumps(doc)

    def log(self, rec: RequestRecord, prompt: str | None = None) -> None:
        """Emit the line if INFO is enabled for the access logger (skips the work otherwise)."""
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info(self.line(rec, prompt).decode())


def json_lines_handler(stream: IO[str] | None = None) -> logging.Handler:
    """A handler that writes each access-log message as it is: one JSON object per line."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler
