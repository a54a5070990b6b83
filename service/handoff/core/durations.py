"""Durations as workflow documents write them: `30s`, `15m`, `2h`, `1d` (and `0s`)."""

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, Field

__all__ = ["Duration", "to_timedelta"]

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_PATTERN = r"^\d+[smhd]$"


def to_timedelta(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([smhd])", text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (write e.g. 30s, 15m, 2h, 1d)")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def _check(text: str) -> str:
    to_timedelta(text)
    return text


Duration = Annotated[str, Field(json_schema_extra={"pattern": _PATTERN}), AfterValidator(_check)]
"""Kept as written (so documents round-trip); `to_timedelta` gives its length."""
