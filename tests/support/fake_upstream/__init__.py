"""A fake LLM upstream for the tests and the overhead benchmark.

It speaks the OpenAI Chat Completions API (``--kind openai``, with ``/v1/embeddings`` too) or the
Anthropic Messages API (``--kind anthropic``) closely enough that the official SDKs accept it,
answers deterministically (``"Answer to: " + <last user text>``, so a cached answer equals a
fresh one), and misbehaves on request so that retries, fallbacks, circuit breakers and stream
handling can be tested against real HTTP:

* per request, by directives inside the last user message (removed before answering)::

    [[status:503]]  [[status:429:retry_after=2]]  [[delay:MS]]  [[chunk_delay:MS]]  [[hang]]
    [[cut:K]]  [[malformed]]  [[error_event]]  [[fail_on:NAME]]  [[fail_on:NAME:429:retry_after=1]]
    [[slow_on:NAME:MS]]

* with ``--answers FILE`` (a JSON object ``{prompt: label}``), prompts that share a label get
  the same answer (``"Answer to: " + label``) and others different ones: labelled duplicates
  for the adaptive-threshold benchmark;

* server-wide, with ``POST /_control`` (``fail_status``, ``retry_after``, ``hang``, ``delay_ms``,
  ``count``, ``fail_rate``) and ``POST /_reset``; ``GET /_stats`` and ``GET /_requests?last=N``
  let tests see what reached the upstream (bodies as received, secrets redacted).

Run it as a process: ``python -m support.fake_upstream --port N [--host H] [--name NAME]
[--kind K] [--answers FILE]`` (with ``tests/`` on ``PYTHONPATH``); or import
``build_app(name, kind)``. The chat endpoints are plain ASGI callables (no per-request Response
objects) because the gateway overhead benchmark measures through this server: it must answer in
well under a millisecond.
"""

from support.fake_upstream.app import KINDS, build_app, main, serve

__all__ = ["KINDS", "build_app", "main", "serve"]
