"""``POST /v1/embeddings``: decode, call the embeddings path. The lifetime is ``respond``'s."""

from __future__ import annotations

from starlette.requests import Request

from sidecache.api.chat import authenticate
from sidecache.api.decode import read_json
from sidecache.api.respond import endpoint, race_client
from sidecache.embeddings import EmbeddingsPath
from sidecache.exchange import Exchange
from sidecache.openai.embeddings import validate_embeddings
from sidecache.pipeline import Answer

ENDPOINT = "embeddings"


async def _embeddings(request: Request, ex: Exchange) -> Answer:
    ex.endpoint = ENDPOINT
    authenticate(request, ex)
    body = await read_json(request)
    req = validate_embeddings(body)
    path: EmbeddingsPath = request.app.state.embeddings
    return await race_client(request, path.embed(ex, body, req))


embeddings = endpoint(_embeddings)
