"""``POST /v1/responses``: OpenAI's Responses API, served as the chat request it means.

Decode, translate to Chat Completions (``openai/responses.py``), call the pipeline (so caching,
routing, limits and accounting are chat's), translate the answer back: a Response object, or
the Responses event stream (``openai/response_events.py``). The lifetime is ``respond``'s.
"""

from __future__ import annotations

from starlette.requests import Request

from sidecache.api.chat import authenticate
from sidecache.api.decode import read_json
from sidecache.api.respond import endpoint, race_client
from sidecache.exchange import Exchange
from sidecache.openai.response_events import ResponseEvents
from sidecache.openai.responses import from_completion, to_chat, validate_responses
from sidecache.openai.schemas import validate_chat
from sidecache.pipeline import Answer, Pipeline

ENDPOINT = "responses"


async def _responses(request: Request, ex: Exchange) -> Answer:
    ex.endpoint = ENDPOINT
    authenticate(request, ex)
    body = await read_json(request)
    req = validate_responses(body)
    chat = to_chat(body, req)
    fmt = ResponseEvents(req) if req.stream else None
    pipeline: Pipeline = request.app.state.pipeline
    answer = await race_client(request, pipeline.chat(ex, chat, validate_chat(chat), fmt))
    if answer.body is not None:
        answer.body = from_completion(answer.body, req)
    return answer


responses = endpoint(_responses)
