"""``POST /v1/messages``: Anthropic's Messages API, for clients built on Anthropic's SDK.

The key comes as ``x-api-key`` (what the ``anthropic`` SDK sends) or ``Authorization: Bearer``.
The request is served as the chat request it means (``anthropic_format``), whichever provider
the alias routes to; errors, before or during a stream, are in Anthropic's shape. The lifetime
is ``respond``'s.
"""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import Response

from sidecache.api.anthropic_format import (
    MessageEvents,
    error_body,
    from_completion,
    to_chat,
    validate_messages,
)
from sidecache.api.chat import authenticate
from sidecache.api.decode import read_json
from sidecache.api.respond import endpoint, race_client
from sidecache.errors import GatewayError
from sidecache.exchange import Exchange
from sidecache.openai.schemas import validate_chat
from sidecache.pipeline import Answer, Pipeline

ENDPOINT = "messages"


def anthropic_error(exc: GatewayError, headers: dict[str, str]) -> Response:
    out = dict(headers)
    if exc.retry_after is not None and exc.status in (429, 503):
        out["retry-after"] = str(max(1, math.ceil(exc.retry_after)))
    return Response(
        error_body(exc), status_code=exc.status, media_type="application/json", headers=out
    )


async def _messages(request: Request, ex: Exchange) -> Answer:
    ex.endpoint = ENDPOINT
    authenticate(request, ex, api_key_header=True)
    body = await read_json(request)
    req = validate_messages(body)
    chat = to_chat(body, req)
    fmt = MessageEvents(req.model) if req.stream else None
    pipeline: Pipeline = request.app.state.pipeline
    answer = await race_client(request, pipeline.chat(ex, chat, validate_chat(chat), fmt))
    if answer.body is not None:
        answer.body = from_completion(answer.body)
    return answer


messages = endpoint(_messages, anthropic_error)
