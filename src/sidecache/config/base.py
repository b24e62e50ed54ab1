"""What every config section shares: strict Structs and the constrained number types."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta


class Base(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True, frozen=True
):
    """Shared Struct options: strict fields, keyword construction, immutable after load."""


Seconds = Annotated[float, Meta(ge=0)]
Positive = Annotated[int, Meta(ge=1)]
Unit = Annotated[float, Meta(ge=0, le=1)]
