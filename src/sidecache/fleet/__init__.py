"""What gateway replicas share through Redis, below any one feature.

``connection`` opens the ``[redis]`` server (sync and asyncio clients, the password never shown),
``health`` is the one breaker that decides whether a request may wait on Redis right now, and
``presence`` tells each replica which others are alive. Keys, limits and spend
(``governance/redis_*``) and the fleet view of ``/stats`` build on these; the cache keeps its own
connection (``cache/redis_store``). Nothing is imported here.
"""
