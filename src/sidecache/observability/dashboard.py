"""The dashboard page: one self-contained HTML file that polls ``/stats`` every two seconds.

It needs nothing from the network beyond the gateway itself (no CDN, no web fonts), so it works
offline. If ``/stats`` needs the admin key, open the page as ``/dashboard?key=<admin key>``: the
page sends it as a Bearer header.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

CONTENT_TYPE = "text/html; charset=utf-8"


@cache
def dashboard_html(stats_url: str = "/stats") -> bytes:
    """The page's bytes (read once from the package), polling ``stats_url``."""
    page = files("sidecache.observability").joinpath("dashboard.html").read_bytes()
    if stats_url != "/stats":
        page = page.replace(
            b'data-stats-url="/stats"', b'data-stats-url="' + _attr(stats_url) + b'"'
        )
    return page


def _attr(value: str) -> bytes:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").encode("utf-8")
