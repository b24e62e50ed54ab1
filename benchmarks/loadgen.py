"""A small keep-alive HTTP/1.1 load generator for the benchmarks.

httpx's async client costs several hundred microseconds of client CPU per request, which on a
2-core machine caps the measurable rate near what a cache hit costs the gateway. This client
writes pre-encoded requests on raw asyncio streams and reads ``Content-Length`` bodies, so the
client is not what a benchmark measures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


def encode_request(host: str, port: int, path: str, body: dict, headers: dict[str, str]) -> bytes:
    payload = orjson.dumps(body)
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        *(f"{k}: {v}" for k, v in headers.items()),
        "",
        "",
    ]
    return "\r\n".join(lines).encode() + payload


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:  # chunked (streams): read to the terminating chunk
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(chunk[:-2])
        body = b"".join(parts)
    return status, headers, body


async def run(
    host: str,
    port: int,
    make_request: Callable[[int], bytes],
    *,
    concurrency: int,
    total: int | None = None,
    duration: float | None = None,
) -> Result:
    """Send requests from ``concurrency`` connections until ``total`` or ``duration``."""
    result = Result()
    counter = iter(range(10**12))
    deadline = time.perf_counter() + duration if duration else None

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                i = next(counter)
                if total is not None and i >= total:
                    return
                if deadline is not None and time.perf_counter() >= deadline:
                    return
                t0 = time.perf_counter()
                writer.write(make_request(i))
                status, headers, _ = await _read_response(reader)
                result.latencies.append(time.perf_counter() - t0)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                tag = headers.get("x-sidecache", "?")
                result.outcomes[tag] = result.outcomes.get(tag, 0) + 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - t0
    return result


async def ttft(host: str, port: int, request: bytes) -> tuple[float, float]:
    """(seconds to the first SSE data line, seconds to the end) of one streamed request."""
    reader, writer = await asyncio.open_connection(host, port)
    t0 = time.perf_counter()
    writer.write(request)
    first = None
    try:
        await reader.readuntil(b"\r\n\r\n")
        while True:
            line = await reader.readline()
            if first is None and b"data: " in line:
                first = time.perf_counter() - t0
            if b"[DONE]" in line or not line:
                break
    finally:
        writer.close()
    return first or 0.0, time.perf_counter() - t0
