"""Decoding a JSON body into a request Struct, with errors that name the field (``param``)."""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec

from sidecache.errors import BadRequest

__all__ = ["convert"]

T = TypeVar("T")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def convert(body: object, cls: type[T]) -> T:
    """``body`` as ``cls``; a body that is no object, a wrong or missing field is a 400 whose
    ``param`` is the field's path (``input[2].role``), so a client sees what to fix."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    try:
        return msgspec.convert(body, cls)
    except msgspec.ValidationError as exc:
        text = str(exc)
        path = text.rsplit("at `$.", 1)[1].rstrip("`") if "at `$." in text else None
        missing = _MISSING.search(text)
        if missing:
            path = f"{path}.{missing.group(1)}" if path else missing.group(1)
        raise BadRequest(f"invalid request: {text}", param=path) from exc
