"""Durations as workflow documents write them: `30s`, `15m`, `2h`, `1d` (and `0s`)."""

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo

__all__ = ["AS_STORED", "MAX_DURATION", "Duration", "to_timedelta"]

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_PATTERN = r"^\d+[smhd]$"

MAX_DURATION = timedelta(days=90)
"""The longest a workflow may wait: a `wait`'s `duration`, an `assign_to` or `ask_question`
`timeout` (90 days, `90d`). Every timer a run sets is at most this long, which bounds how late
an input's `time` may be (`handoff.core.envelope.LATEST_TIME`) for its timers to stay within
the calendar. (A year would leave no date in year 9999 that may start a timer.)"""


def to_timedelta(text: str) -> timedelta:
    """Any length Python can hold (conditions compare times with durations of any length);
    raises ValueError, never OverflowError, for one it cannot."""
    match = re.fullmatch(r"(\d+)([smhd])", text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (write e.g. 30s, 15m, 2h, 1d)")
    digits, unit = match.groups()
    try:
        return timedelta(**{_UNITS[unit]: int(digits)})
    except (OverflowError, ValueError) as err:  # past timedelta.max; digits past int's limit
        raise ValueError(f"not a duration: {text[:32]!r} is far too long") from err


AS_STORED = {"as_stored": True}
"""Validation context for documents read back from the log or the projections: they were
accepted when they arrived, perhaps before a limit was set, and must still load (a replay,
a view), so the limits on new documents (`MAX_DURATION`, the workflow nesting) are not
applied to them again."""


def _check(text: str, info: ValidationInfo) -> str:
    if to_timedelta(text) > MAX_DURATION and not (info.context or {}).get("as_stored"):
        raise ValueError(
            f"{text[:32]!r} is longer than {MAX_DURATION.days}d, the longest a workflow may wait"
        )
    return text


Duration = Annotated[
    str,
    Field(
        description=f"at most {MAX_DURATION.days}d",
        json_schema_extra={"pattern": _PATTERN},
    ),
    AfterValidator(_check),
]
"""Kept as written (so documents round-trip); `to_timedelta` gives its length, at most
`MAX_DURATION`."""
