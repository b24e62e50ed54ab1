"""What provider adapters send upstream requests with: httpx's Request and Response, one transport.

httpx's ``AsyncClient`` wraps every request in layers a provider never uses: merging a base URL
and query parameters, a cookie jar (which a multi-tenant proxy should not keep anyway), auth and
redirect flows, event hooks. On a miss against a fast local model server they cost more than the
transport itself. ``UpstreamClient`` keeps what the adapters rely on — ``httpx.Request`` (Host,
Content-Length), ``httpx.Response`` (content decoding, ``aiter_lines``), httpx's timeouts and
error classes — and hands the request straight to a transport:

- ``transport.LeanTransport`` normally;
- httpx's own transport through the proxy when ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY``
  names one for the upstream's host (and ``NO_PROXY`` does not exempt it), as httpx would.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from sidecache import __version__
from sidecache.config import ProviderConfig
from sidecache.providers.transport import LeanTransport

__all__ = ["UpstreamClient", "env_proxy", "make_client"]

DEFAULT_HEADERS = {
    "accept": "*/*",
    "accept-encoding": "gzip, deflate",
    "user-agent": f"sidecache/{__version__}",
}


class UpstreamClient:
    """Requests to one upstream: default headers and timeouts applied, then the transport."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        *,
        timeout: httpx.Timeout,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.transport = transport
        self._timeout = timeout.as_dict()
        self._headers = {**DEFAULT_HEADERS, **{k.lower(): v for k, v in (headers or {}).items()}}
        self._urls: dict[str, httpx.URL] = {}
        """Parsed URLs by text: an adapter calls a handful, and parsing one costs more than the
        rest of building the request."""

    async def send(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """The upstream's answer; with ``stream`` its body is read by the caller, who closes it
        (``aclose``) to give the connection back."""
        merged = self._headers
        if headers:
            merged = {**merged, **{k.lower(): v for k, v in headers.items()}}
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = httpx.URL(url)
        request = httpx.Request(
            method, parsed, content=content, headers=merged, extensions={"timeout": self._timeout}
        )
        response = await self.transport.handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    async def aclose(self) -> None:
        await self.transport.aclose()


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``*_PROXY`` / ``NO_PROXY``), if any."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.netloc):
        return None
    return proxy


def make_client(cfg: ProviderConfig) -> UpstreamClient:
    """An upstream's client; ``read`` bounds the wait for the first byte and between chunks."""
    t = cfg.timeouts
    timeout = httpx.Timeout(connect=t.connect, read=t.first_byte, write=t.connect, pool=t.connect)
    proxy = env_proxy(cfg.base_url)
    transport: httpx.AsyncBaseTransport
    if proxy:
        limits = httpx.Limits(
            max_connections=cfg.max_connections, max_keepalive_connections=cfg.max_connections
        )
        transport = httpx.AsyncHTTPTransport(proxy=proxy, limits=limits)
    else:
        transport = LeanTransport(max_connections=cfg.max_connections)
    return UpstreamClient(transport, timeout=timeout, headers=cfg.headers)
