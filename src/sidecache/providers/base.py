"""The one interface every upstream adapter fills in, and the HTTP plumbing they share.

A provider speaks its own API and presents OpenAI's: ``complete`` returns a chat.completion
dict, ``stream`` yields chat.completion.chunk dicts (ending with a usage chunk when the upstream
reports usage). Both raise ``sidecache.errors.UpstreamError`` subclasses, converted from httpx
errors here at the boundary, so the router never sees httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import orjson

from sidecache.errors import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from sidecache.providers.client import UpstreamClient

CHAT_ENDPOINTS = frozenset({"chat.completions", "responses", "messages"})
"""What every provider serves: the chat endpoints all translate to one chat call."""
EMBEDDINGS = "embeddings"


class Provider(Protocol):
    """An upstream API presented as OpenAI Chat Completions (and Embeddings, where it has them)."""

    name: str
    endpoints: frozenset[str]
    """The gateway endpoints this upstream can serve (``CHAT_ENDPOINTS``, plus ``embeddings``
    for an upstream with an embeddings API)."""

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """One whole answer; ``body["model"]`` is already the upstream model name."""
        ...

    def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The answer as OpenAI chunks; errors before the first chunk are retryable."""
        ...

    async def embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        """An OpenAI embeddings answer (``{"data": [{"index", "embedding"}], "usage"}``);
        raises ``BadRequest`` where ``embeddings`` is not in ``endpoints``."""
        ...

    async def models(self) -> list[str]:
        """The model names the upstream lists (pass-through mode's ``/v1/models``)."""
        ...

    async def aclose(self) -> None: ...


async def get_model_ids(
    client: UpstreamClient, url: str, headers: dict[str, str], *, provider: str
) -> list[str]:
    """``GET`` a models list (OpenAI's and Anthropic's share the shape ``{"data": [{"id"}]}``)."""
    with upstream_errors(provider):
        r = await client.send("GET", url, headers=headers)
        if r.status_code >= 400:
            raise status_error(provider, r, r.content)
        data = orjson.loads(r.content)
    items = data.get("data") if isinstance(data, dict) else None
    return [str(m["id"]) for m in items or () if isinstance(m, dict) and m.get("id")]


def describe(name: str, base_url: str) -> str:
    """``name (host:port)``: what an error says about an upstream. Only the host: a URL may
    carry credentials (``https://user:secret@host``) and must never reach a client or a log."""
    parts = urlsplit(base_url)
    host = parts.hostname or "?"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{name} ({host})"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_message(content: bytes) -> str:
    """The message inside an upstream error body (OpenAI or Anthropic shape), else the text."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        return content[:300].decode(errors="replace")
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
    return content[:300].decode(errors="replace")


def status_error(provider: str, response: httpx.Response, content: bytes) -> UpstreamStatusError:
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if retry_after is None and response.headers.get("retry-after-ms"):
        with contextlib.suppress(ValueError):
            retry_after = float(response.headers["retry-after-ms"]) / 1000
    return UpstreamStatusError(
        f"{provider}: upstream returned {response.status_code}: {error_message(content)}",
        upstream_status=response.status_code,
        retry_after=retry_after,
    )


async def post_json(
    client: UpstreamClient,
    url: str,
    payload: bytes,
    headers: dict[str, str],
    *,
    provider: str,
    total: float,
) -> Any:
    """POST a JSON body and decode the JSON answer, within ``total`` seconds.

    Raises the ``UpstreamError`` that fits: a status error with Retry-After, a timeout, a
    connection or protocol error.
    """
    with upstream_errors(provider):
        try:
            async with asyncio.timeout(total):
                r = await client.send("POST", url, content=payload, headers=headers)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"{provider}: upstream exceeded the total timeout") from exc
        if r.status_code >= 400:
            raise status_error(provider, r, r.content)
        return orjson.loads(r.content)


@contextlib.contextmanager
def upstream_errors(provider: str) -> Iterator[None]:
    """Re-raise httpx and JSON errors as the most specific ``UpstreamError``."""
    try:
        yield
    except UpstreamError:
        raise
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(f"{provider}: upstream timed out ({type(exc).__name__})") from exc
    except httpx.ConnectError as exc:
        raise UpstreamConnectError(f"{provider}: cannot connect to upstream: {exc}") from exc
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        raise UpstreamProtocolError(f"{provider}: upstream connection broke: {exc}") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(f"{provider}: upstream request failed: {exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise UpstreamProtocolError(f"{provider}: upstream sent malformed JSON") from exc
