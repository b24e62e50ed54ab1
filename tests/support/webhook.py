"""A local webhook receiver: a small HTTP server in a thread that records what is posted.

``fail_first`` makes the first N deliveries get 500 (to see retries with backoff). Use as a
context manager; ``events`` holds the JSON bodies received in order, ``headers`` their headers,
``attempts`` every request received (failed ones included) with its arrival time.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["WebhookReceiver"]


class WebhookReceiver:
    def __init__(self, fail_first: int = 0, port: int = 0) -> None:
        self.fail_first = fail_first
        self.events: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.attempts: list[float] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    receiver.attempts.append(time.monotonic())
                    failing = len(receiver.attempts) <= receiver.fail_first
                    if not failing:
                        receiver.events.append(json.loads(body))
                        receiver.headers.append(dict(self.headers.items()))
                self.send_response(500 if failing else 204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/budget"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
