"""An httpx transport for upstream calls: HTTP/1.1 keep-alive over asyncio, parsed by httptools.

Why not httpx's own transport: on a miss the gateway's largest single cost was httpcore's
per-request machinery (h11 state machine, anyio streams, pool bookkeeping), about 0.25 ms of CPU
on a request that a local model server answers in 0.1 ms. This transport does the same job with
an ``asyncio.Protocol`` and the C parser uvicorn already uses (``httptools``), and stays behind
httpx's one-method transport interface, so everything above it (``AsyncClient``, timeouts,
content decoding, streaming, the error classes ``providers.base`` converts) is unchanged.

What it does: HTTP/1.1 over TCP or TLS (``https``: the SSL context httpx would build, so
``SSL_CERT_FILE`` and certifi apply), a pool of idle keep-alive connections per origin, at most
``max_connections`` open at once (waiting up to the pool timeout for one), idle connections
dropped after ``KEEPALIVE_SECONDS``, a request retried once on a fresh connection when a reused
one turns out closed before any byte of the answer (the server timed it out while it was idle).
Requests' timeouts (connect, read, write, pool) come from httpx as usual. Proxies configured in
the environment are mounted by httpx in front of this transport and use its own.

Errors are httpx's: ``ConnectError`` / ``ConnectTimeout``, ``ReadTimeout`` / ``WriteTimeout`` /
``PoolTimeout``, ``ReadError`` for a connection that broke mid-answer and ``RemoteProtocolError``
for one that closed early or sent what does not parse.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, cast

import httptools
import httpx

__all__ = ["KEEPALIVE_SECONDS", "LeanTransport"]

KEEPALIVE_SECONDS = 5.0
"""Idle connections older than this are closed rather than reused (httpcore's default)."""
HIGH_WATER = 256 * 1024
"""Unread answer bytes at which a connection stops reading from its socket."""

Origin = tuple[bytes, bytes, int]


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: writes a request, parses the answer as it arrives."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.reused = False
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._reset()

    def _reset(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._headers: list[tuple[bytes, bytes]] = []
        self._reason = b""
        self._head: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._data = asyncio.Event()
        self._complete = False
        self._error: httpx.TransportError | None = None
        self._received = False
        self._until_eof = False
        self._paused = False
        self._no_body = False
        self._keep_alive = False
        self._interim = False
        self._status = 0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"upstream sent an invalid answer: {exc}"))
            self.close()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._can_write.set()
        if self._complete:
            return
        if self._head.done() and self._until_eof and exc is None:
            self._complete = True  # an answer without length ends where the connection does
            self._data.set()
            return
        if self._head.done():
            self._fail(httpx.ReadError("upstream closed the connection mid-answer"))
        else:
            self._fail(
                httpx.RemoteProtocolError("upstream closed the connection without an answer")
            )

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # httptools callbacks
    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()  # kept: llhttp forgets it when done
        if 100 <= self._status < 200:
            # an interim answer (100 Continue, 103 Early Hints): the real one follows
            self._interim = True
            self._headers, self._reason = [], b""
            return
        names = {n.lower() for n, _ in self._headers}
        self._until_eof = b"content-length" not in names and b"transfer-encoding" not in names
        if not self._head.done():
            self._head.set_result(None)
        if self._no_body:  # the answer to HEAD has headers only, whatever they announce
            self._complete = True  # and its connection is not reused (_keep_alive stays False)
            self._data.set()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        self._data.set()
        if self._buffered > HIGH_WATER and self.transport is not None and not self._paused:
            self._paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        # asked here: once the callback returns, llhttp has reset and says False
        self._keep_alive = self._parser.should_keep_alive()
        self._complete = True
        self._data.set()

    # used by the transport
    def _fail(self, error: httpx.TransportError) -> None:
        if self._error is None:
            self._error = error
        if not self._head.done():
            self._head.set_exception(error)
            self._head.exception()  # retrieved: a request that gave up waiting must not warn
        self._data.set()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def send(self, request: httpx.Request, timeouts: dict[str, Any]) -> None:
        assert self.transport is not None
        if self.closed:
            raise httpx.RemoteProtocolError("upstream closed the connection while it was idle")
        self._reset()
        self._no_body = request.method == "HEAD"
        target = request.url.raw_path
        lines = [request.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
        chunked = False
        for name, value in request.headers.raw:
            lines += [name, b": ", value, b"\r\n"]
            if name.lower() == b"transfer-encoding" and value.lower() == b"chunked":
                chunked = True
        lines.append(b"\r\n")
        if isinstance(request.stream, httpx.ByteStream) and not chunked:
            # the usual case, a JSON body in memory: head and body in one write, one syscall
            lines.append(request.content)
            self.transport.write(b"".join(lines))
            await self._drained(timeouts.get("write"))
            return
        self.transport.write(b"".join(lines))
        async for part in request.stream:  # type: ignore[union-attr]
            if self.closed:
                break
            if chunked:
                self.transport.write(b"%x\r\n%s\r\n" % (len(part), part) if part else b"")
            elif part:
                self.transport.write(part)
            await self._drained(timeouts.get("write"))
        if chunked and not self.closed:
            self.transport.write(b"0\r\n\r\n")
        await self._drained(timeouts.get("write"))

    async def _drained(self, timeout: float | None) -> None:
        if self._can_write.is_set():
            return
        try:
            async with asyncio.timeout(timeout):
                await self._can_write.wait()
        except TimeoutError:
            raise httpx.WriteTimeout("upstream did not take the request in time") from None

    async def head(self, timeout: float | None) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        try:
            async with asyncio.timeout(timeout):
                await self._head  # cancelled on a timeout: the connection is closed anyway
        except TimeoutError:
            raise httpx.ReadTimeout("upstream did not answer in time") from None
        return self._status, self._reason, self._headers

    @property
    def answered(self) -> bool:
        """Whether any byte of the answer arrived (a stale connection fails before one)."""
        return self._received

    async def read(self, timeout: float | None) -> bytes:
        """The next bytes of the body; ``b""`` at its end."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._complete:
                return b""
            self._data.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._data.wait()
            except TimeoutError:
                raise httpx.ReadTimeout("upstream stopped sending") from None
        data = b"".join(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks.clear()
        self._buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    @property
    def reusable(self) -> bool:
        return (
            self._complete
            and self._error is None
            and not self.closed
            and not self._no_body
            and self._keep_alive
        )


class _Body(httpx.AsyncByteStream):
    """An answer's body; closing it hands the connection back (or closes it)."""

    def __init__(self, transport: LeanTransport, conn: _Connection, timeout: float | None) -> None:
        self._transport, self._conn, self._timeout = transport, conn, timeout
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            data = await self._conn.read(self._timeout)
            if not data:
                return
            yield data

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            self._transport._release(self._conn)


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 connections to upstreams, pooled per origin (see the module docstring)."""

    def __init__(self, *, max_connections: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[Origin, list[_Connection]] = {}
        self._ssl = ssl_context
        self._closed = False

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
            self._ssl.set_alpn_protocols(["http/1.1"])
        return self._ssl

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}")
        port = url.port or (443 if url.scheme == "https" else 80)
        origin: Origin = (url.raw_scheme, url.raw_host, port)
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no upstream connection free in time") from None
        try:
            for attempt in range(2):
                conn = self._idle_connection(origin) or await self._connect(origin, timeouts)
                try:
                    await conn.send(request, timeouts)
                    status, reason, headers = await conn.head(timeouts.get("read"))
                except httpx.RemoteProtocolError:
                    conn.close()
                    if attempt == 0 and conn.reused and not conn.answered:
                        continue  # the server closed it while it was idle: once more, anew
                    raise
                except BaseException:
                    conn.close()
                    raise
                return httpx.Response(
                    status,
                    headers=headers,
                    stream=_Body(self, conn, timeouts.get("read")),
                    extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
                )
            raise AssertionError("unreachable")
        except BaseException:
            self._slots.release()
            raise

    def _idle_connection(self, origin: Origin) -> _Connection | None:
        pool = self._idle.get(origin)
        now = time.monotonic()
        while pool:
            conn = pool.pop()
            if conn.closed or now - conn.idle_since > KEEPALIVE_SECONDS:
                conn.close()
                continue
            conn.reused = True
            return conn
        return None

    async def _connect(self, origin: Origin, timeouts: dict[str, Any]) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        hostname = host.decode("ascii")
        tls = scheme == b"https"
        try:
            async with asyncio.timeout(timeouts.get("connect")):
                _, conn = await loop.create_connection(
                    lambda: _Connection(origin),
                    hostname,
                    port,
                    ssl=self._tls() if tls else None,
                    server_hostname=hostname if tls else None,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {hostname}:{port} timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"cannot connect to {hostname}:{port}: {exc}") from exc
        return conn

    def _release(self, conn: _Connection) -> None:
        self._slots.release()
        if conn.reusable and not self._closed:
            conn.idle_since = time.monotonic()
            self._idle.setdefault(conn.origin, []).append(conn)
        else:
            conn.close()

    async def aclose(self) -> None:
        self._closed = True
        for pool in self._idle.values():
            for conn in pool:
                conn.close()
        self._idle.clear()
        with contextlib.suppress(Exception):
            await asyncio.sleep(0)  # let the transports' close callbacks run
