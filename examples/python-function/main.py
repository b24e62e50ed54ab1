"""A Cloud Run / Firebase-functions style service that asks for a travel itinerary through a
sidecache sidecar instead of calling OpenAI directly.

The only sidecache-specific line is ``base_url``. The service listens on ``$PORT`` (Cloud Run
sets it) and answers ``POST /`` with ``{"destination", "days"?, "traveller"?, "stream"?}``.

    SIDECACHE_URL=http://127.0.0.1:8080/v1 SIDECACHE_KEY=sk-sc-... PORT=8081 python main.py
    curl -s localhost:8081 -d '{"destination": "Lisbon", "days": 2}'

Environment: ``SIDECACHE_URL`` (default ``http://127.0.0.1:8080/v1``), ``SIDECACHE_KEY`` (a
virtual key from ``sidecache keys create``), ``SIDECACHE_MODEL`` (a model alias, default
``fast``), ``PORT`` (default 8081). Needs only ``pip install openai``.
"""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai

client = openai.OpenAI(
    base_url=os.environ.get("SIDECACHE_URL", "http://127.0.0.1:8080/v1"),
    api_key=os.environ.get("SIDECACHE_KEY", "sk-sc-anonymous"),
    max_retries=1,
    timeout=60,
)
MODEL = os.environ.get("SIDECACHE_MODEL", "fast")


def itinerary(payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The function body: (HTTP status, JSON body)."""
    destination = payload.get("destination")
    if not destination:
        return 400, {"error": "destination is required"}
    days = int(payload.get("days", 3))
    traveller = payload.get("traveller", "a solo traveller")
    messages = [
        {"role": "system", "content": "You are a concise travel planner."},
        {
            "role": "user",
            "content": f"Plan a {days}-day itinerary for {destination} for {traveller}. "
            "One short paragraph per day: morning, afternoon, evening.",
        },
    ]
    try:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=messages, stream=bool(payload.get("stream"))
        )
        if payload.get("stream"):  # streamed on a miss, replayed chunk by chunk on a hit
            text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        else:
            text = raw.parse().choices[0].message.content or ""
        return 200, {"itinerary": text, "cache": raw.headers.get("x-sidecache")}
    except openai.APIConnectionError:
        return 503, {"error": "the sidecache sidecar is unreachable; retry shortly"}
    except openai.APIStatusError as exc:
        return exc.status_code, {"error": exc.message}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            status, body = 400, {"error": "the body must be JSON"}
        else:
            status, body = itinerary(payload if isinstance(payload, dict) else {})
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # quiet, like a function runtime
        pass


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8081"))
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
