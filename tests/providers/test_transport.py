"""The upstream transport against real sockets: servers here answer in scripted, sometimes broken
ways (closing mid-answer, idle connections timed out, no length, garbage, silence, TLS), and the
transport must give the whole answer or httpx's error for it, on asyncio's loop and on uvloop's.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest
import uvloop

from sidecache.providers.client import UpstreamClient, env_proxy, make_client
from sidecache.providers.transport import LeanTransport

Reader, Writer = asyncio.StreamReader, asyncio.StreamWriter
Handler = Callable[["Server", Reader, Writer], Awaitable[None]]
TIMEOUT = {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Runs a test's coroutine on the loop the gateway uses (uvloop) and on asyncio's."""
    return asyncio.run if request.param == "asyncio" else uvloop.run


class Server:
    """A TCP server on loopback answering each request with ``handler``; counts connections."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler, self.tls = handler, tls
        self.connections = 0
        self.requests: list[bytes] = []

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()

    def url(self, path: str = "/v1/x", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = await reader.readexactly(length)
        if b"transfer-encoding: chunked" in head.lower():
            body = await reader.readuntil(b"0\r\n\r\n")
        self.requests.append(head + body)
        return head + body


def answer(body: bytes, *extra: bytes, status: bytes = b"200 OK") -> bytes:
    headers = b"".join(h + b"\r\n" for h in extra)
    return b"HTTP/1.1 %s\r\ncontent-length: %d\r\n%s\r\n%s" % (status, len(body), headers, body)


async def get(
    transport: httpx.AsyncBaseTransport, url: str, method: str = "POST", content: Any = b"{}"
) -> httpx.Response:
    request = httpx.Request(method, url, content=content, extensions={"timeout": TIMEOUT})
    response = await transport.handle_async_request(request)
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response


def test_keep_alive_connections_are_reused(run: Callable[..., Any]) -> None:
    async def handler(s: Server, reader: Reader, writer: Writer) -> None:
        while True:
            await s.read_request(reader)
            writer.write(answer(b'{"ok": true}'))

    async def main() -> None:
        t = LeanTransport(max_connections=4)
        async with Server(handler) as s:
            for _ in range(20):
                r = await get(t, s.url())
                assert r.status_code == 200 and r.content == b'{"ok": true}'
            assert s.connections == 1
        await t.aclose()

    run(main())


def test_chunked_and_eof_delimited_bodies_arrive_whole(run: Callable[..., Any]) -> None:
    parts = [b"data: %d\n\n" % i for i in range(50)]

    async def chunked(s: Server, reader: Reader, writer: Writer) -> None:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(2)
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for p in parts:
                writer.write(b"%x\r\n%s\r\n" % (len(p), p))
                await writer.drain()
                await asyncio.sleep(0)
            writer.write(b"0\r\n\r\n")

    async def until_eof(s: Server, reader: Reader, writer: Writer) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n" + b"".join(parts))
        await writer.drain()

    async def main() -> None:
        t = LeanTransport(max_connections=4)
        async with Server(chunked) as s:
            for _ in range(3):
                request = httpx.Request("POST", s.url(), content=b"{}")
                request.extensions["timeout"] = TIMEOUT
                response = await t.handle_async_request(request)
                lines = [line async for line in response.aiter_lines() if line]
                await response.aclose()
                assert lines == [p.decode().strip() for p in parts]
            assert s.connections == 1
        async with Server(until_eof) as s:
            for _ in range(2):
                assert (await get(t, s.url())).content == b"".join(parts)
            assert s.connections == 2  # a body that ends with its connection ends it
        await t.aclose()

    run(main())


def test_a_connection_closed_while_idle_is_replaced_without_an_error(
    run: Callable[..., Any],
) -> None:
    async def one_then_close(s: Server, reader: Reader, writer: Writer) -> None:
        await s.read_request(reader)
        writer.write(answer(b"{}"))
        await writer.drain()
        await asyncio.sleep(0.05)  # the server's keep-alive timeout, shorter than the client's

    async def main() -> None:
        t = LeanTransport(max_connections=4)
        async with Server(one_then_close) as s:
            for _ in range(4):
                assert (await get(t, s.url())).status_code == 200
                await asyncio.sleep(0.15)
            assert s.connections == 4 and len(s.requests) == 4
        await t.aclose()

    run(main())


def test_an_error_answer_keeps_its_status_reason_and_headers(run: Callable[..., Any]) -> None:
    async def limited(s: Server, reader: Reader, writer: Writer) -> None:
        while True:
            await s.read_request(reader)
            err = b'{"error": {"message": "slow down"}}'
            writer.write(answer(err, b"retry-after: 7", status=b"429 Too Many Requests"))

    async def main() -> None:
        t = LeanTransport(max_connections=2)
        async with Server(limited) as s:
            for _ in range(3):  # one packet: head and body parsed in one go
                r = await get(t, s.url())
                assert r.status_code == 429 and r.reason_phrase == "Too Many Requests"
                assert r.headers["retry-after"] == "7" and b"slow down" in r.content
            assert s.connections == 1
        await t.aclose()

    run(main())


def test_interim_answers_are_skipped(run: Callable[..., Any]) -> None:
    async def early_hints(s: Server, reader: Reader, writer: Writer) -> None:
        while True:
            await s.read_request(reader)
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n")
            await writer.drain()
            writer.write(answer(b'{"final": true}', b"x-final: 1"))

    async def main() -> None:
        t = LeanTransport(max_connections=2)
        async with Server(early_hints) as s:
            for _ in range(2):
                r = await get(t, s.url())
                assert r.status_code == 200 and r.content == b'{"final": true}'
                assert r.headers.get("x-final") == "1" and "link" not in r.headers
            assert s.connections == 1
        await t.aclose()

    run(main())


def test_broken_answers_raise_httpx_errors(run: Callable[..., Any]) -> None:
    async def mid_body(s: Server, reader: Reader, writer: Writer) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        await writer.drain()

    async def no_answer(s: Server, reader: Reader, writer: Writer) -> None:
        await reader.readuntil(b"\r\n\r\n")

    async def garbage(s: Server, reader: Reader, writer: Writer) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async def silent(s: Server, reader: Reader, writer: Writer) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(5)

    async def main() -> None:
        t = LeanTransport(max_connections=4)
        for handler, error in (
            (mid_body, httpx.ReadError),
            (no_answer, httpx.RemoteProtocolError),
            (garbage, httpx.RemoteProtocolError),
        ):
            async with Server(handler) as s:
                with pytest.raises(error):
                    await get(t, s.url())
        async with Server(silent) as s:
            request = httpx.Request("POST", s.url(), content=b"{}")
            request.extensions["timeout"] = {**TIMEOUT, "read": 0.2}
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(httpx.ReadTimeout):
                await t.handle_async_request(request)
            assert loop.time() - started < 1.5
        async with Server(no_answer) as s:
            port = s.port
        with pytest.raises(httpx.ConnectError):  # nobody listens there any more
            await get(t, f"http://127.0.0.1:{port}/")
        with pytest.raises(httpx.UnsupportedProtocol):
            await get(t, "ftp://127.0.0.1/")
        await t.aclose()

    run(main())


def test_at_most_max_connections_then_a_pool_timeout(run: Callable[..., Any]) -> None:
    async def slow(s: Server, reader: Reader, writer: Writer) -> None:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(2)
            await asyncio.sleep(0.3)
            writer.write(answer(b"{}"))

    async def main() -> None:
        t = LeanTransport(max_connections=2)
        async with Server(slow) as s:
            results = await asyncio.gather(*(get(t, s.url()) for _ in range(4)))
            assert [r.status_code for r in results] == [200] * 4
            assert s.connections == 2
            request = httpx.Request("POST", s.url(), content=b"{}")
            request.extensions["timeout"] = {**TIMEOUT, "pool": 0.05}
            busy = [asyncio.ensure_future(get(t, s.url())) for _ in range(2)]
            await asyncio.sleep(0.05)
            with pytest.raises(httpx.PoolTimeout):
                await t.handle_async_request(request)
            await asyncio.gather(*busy)
        await t.aclose()

    run(main())


def test_large_bodies_streamed_bodies_and_head(run: Callable[..., Any]) -> None:
    big = bytes(range(256)) * 16_384  # 4 MB: past the read-pause mark many times

    async def echo(s: Server, reader: Reader, writer: Writer) -> None:
        while True:
            got = await s.read_request(reader)
            if got.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4194304\r\n\r\n")
            elif b"/big" in got.split(b"\r\n")[0]:
                writer.write(answer(big))
            else:
                writer.write(answer(got.split(b"\r\n\r\n", 1)[1]))

    async def body() -> AsyncIterator[bytes]:
        for i in range(5):
            yield b"part%d;" % i

    async def main() -> None:
        t = LeanTransport(max_connections=4)
        async with Server(echo) as s:
            assert (await get(t, s.url("/big"))).content == big
            r = await get(t, s.url(), content=body())
            assert r.content.endswith(b"0\r\n\r\n") and b"part4;" in r.content
            r = await get(t, s.url(), method="HEAD", content=None)
            assert r.status_code == 200 and r.content == b""
            assert (await get(t, s.url(), content=b'{"a": 1}')).content == b'{"a": 1}'
        await t.aclose()

    run(main())


def test_tls_upstreams_with_the_certificates_the_environment_names(
    run: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    async def handler(s: Server, reader: Reader, writer: Writer) -> None:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(2)
            writer.write(answer(b'{"tls": true}'))

    async def main() -> None:
        t = LeanTransport(max_connections=4)
        async with Server(handler, tls=tls) as s:
            for _ in range(3):
                assert (await get(t, s.url(scheme="https"))).content == b'{"tls": true}'
            assert s.connections == 1
        await t.aclose()
        public_roots = ssl.create_default_context(cafile=certifi.where())
        untrusted = LeanTransport(max_connections=1, ssl_context=public_roots)
        async with Server(handler, tls=tls) as s:
            with pytest.raises(httpx.ConnectError):
                await get(untrusted, s.url(scheme="https"))
        await untrusted.aclose()

    run(main())


def test_the_client_decodes_gzip_and_sends_its_headers(run: Callable[..., Any]) -> None:
    async def handler(s: Server, reader: Reader, writer: Writer) -> None:
        while True:
            await s.read_request(reader)
            writer.write(answer(gzip.compress(b'{"z": 1}'), b"content-encoding: gzip"))

    async def main() -> None:
        async with Server(handler) as s:
            client = UpstreamClient(
                LeanTransport(max_connections=2),
                timeout=httpx.Timeout(2.0),
                headers={"X-Org": "acme", "Authorization": "Bearer default"},
            )
            r = await client.send(
                "POST", s.url(), content=b"{}", headers={"authorization": "Bearer sk-1"}
            )
            assert r.content == b'{"z": 1}'
            head = s.requests[0].split(b"\r\n\r\n")[0].lower()
            assert b"x-org: acme" in head and b"authorization: bearer sk-1" in head
            assert b"bearer default" not in head and b"accept-encoding: gzip" in head
            assert b"host: 127.0.0.1:%d" % s.port in head
            await client.aclose()

    run(main())


def test_an_environment_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1,.svc.cluster.local")
    assert env_proxy("https://api.openai.com/v1") == "http://proxy.internal:3128"
    assert env_proxy("http://api.openai.com/v1") is None
    assert env_proxy("https://vllm.svc.cluster.local/v1") is None
    assert env_proxy("https://127.0.0.1:8000/v1") is None
    from sidecache.config import ProviderConfig

    proxied = make_client(ProviderConfig(base_url="https://api.openai.com/v1"))
    direct = make_client(ProviderConfig(base_url="http://127.0.0.1:8000/v1"))
    assert isinstance(proxied.transport, httpx.AsyncHTTPTransport)
    assert isinstance(direct.transport, LeanTransport)
