"""The floor for ``proxy_overhead.py``: a bare Starlette + httpx pass-through, nothing else.

It forwards ``POST /v1/chat/completions`` to the upstream with one pooled ``httpx.AsyncClient``
and streams the answer back, with no auth, limits, cache or accounting: what any Python proxy on
this stack costs, so the gateway's overhead can be judged against it in the same run.

    python benchmarks/bare_proxy.py --port 9000 --upstream http://127.0.0.1:8001/v1
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


def build(upstream: str) -> Starlette:
    client = httpx.AsyncClient(base_url=upstream, timeout=60)

    async def chat(request: Request) -> Response:
        body = await request.body()
        req = client.build_request(
            "POST", "/chat/completions", content=body, headers={"content-type": "application/json"}
        )
        r = await client.send(req, stream=True)
        if r.headers.get("content-type", "").startswith("text/event-stream"):

            async def relay() -> AsyncIterator[bytes]:
                try:
                    async for part in r.aiter_raw():
                        yield part
                finally:
                    await r.aclose()

            return StreamingResponse(relay(), media_type="text/event-stream")
        content = await r.aread()
        await r.aclose()
        return Response(content, status_code=r.status_code, media_type="application/json")

    async def healthz(request: Request) -> Response:
        return Response(b"ok")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    routes = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/readyz", healthz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    args = ap.parse_args()
    uvicorn.run(
        build(args.upstream),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
