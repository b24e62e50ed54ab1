"""Ids in OpenAI's shapes: completion ids and request ids.

Unique, not secret: ``random`` instead of ``secrets``, whose system call per id showed in the
hit path's profile.
"""

from __future__ import annotations

import random
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str = "chatcmpl-") -> str:
    """A completion id like OpenAI's (``chatcmpl-`` and 24 letters and digits)."""
    return prefix + "".join(random.choices(_ALPHABET, k=24))


def new_request_id() -> str:
    """A request id for logs and ``x-request-id``."""
    return f"{random.getrandbits(64):016x}"
