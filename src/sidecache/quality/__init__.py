"""What the gateway learns about its answers once they are out: side traffic and hit quality.

Everything here happens after the client has its answer, on a bounded background lane
(``lane``): shadow calls to another target (``shadow``), audits of sampled hits and free
comparisons of near misses (``audits``), answers compared by embedding cosine and the
verifier's contradiction checks (``compare``), feedback on hits from the key that received
them (``feedback``), and per-alias thresholds moved to a target false-hit rate (``estimator``,
``thresholds``), kept across restarts (``journal``). ``QualityDesk`` (``desk``) is the one
object the request path, the API and ``/stats`` talk to.

It sits beside the pipeline: it may use the cache, routing, governance's pricing and
observability, and nothing in those imports it.
"""

from sidecache.quality.desk import QualityDesk
from sidecache.quality.feedback import Caller

__all__ = ["Caller", "QualityDesk"]
