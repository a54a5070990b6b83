"""The CloudEvents 1.0 envelope every record carries, in and out (contract: Envelope)."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from handoff.core.durations import MAX_DURATION
from handoff.core.problems import json_kind

__all__ = ["EARLIEST_TIME", "LATEST_TIME", "Envelope", "OutputEnvelope", "time_problem"]

_RFC3339 = re.compile(
    r"\d{4}-\d\d-\d\d"  # full-date
    r"[Tt ]\d\d:\d\d:\d\d(?:\.\d+)?"  # partial-time
    r"(?:[Zz]|[+-]\d\d:\d\d)",  # time-offset
    re.ASCII,  # \d: 0-9 only, as in the JSON Schema pattern
)
"""RFC 3339 `date-time` (section 5.6; `t`, `z` and a space for `T` as its notes allow). The
ISO 8601 parsers (pydantic's, `datetime.fromisoformat`) also take unix timestamps written as
strings (`"1700000000"`), `_` for `T`, the basic format and times without seconds: none of
them is RFC 3339."""

_MARGIN = timedelta(days=1)
EARLIEST_TIME = datetime.min.replace(tzinfo=UTC) + _MARGIN
"""The earliest input `time` accepted: 0001-01-02T00:00:00Z. Year 1 is accepted but for its
first day: an instant before this one has no local time in a timezone west of UTC (a
schedule condition converts the event time to one), and one before 0001-01-01T00:00:00Z has
no UTC time at all (the event log stores UTC)."""
LATEST_TIME = datetime.max.replace(tzinfo=UTC) - MAX_DURATION - _MARGIN
"""The latest input `time` accepted: 9999-10-01T23:59:59.999999Z, the longest timer a workflow
may set (`handoff.core.durations.MAX_DURATION`, 90 days) and a day (any timezone's local time
of it) before the end of the calendar. A timer set from an accepted input, the time it falls
due, and that time in any timezone then stay representable; a later `time` is refused up front
rather than overflowing when a wait or a queue timeout computes its due time."""


class Envelope(BaseModel):
    """Attributes common to every event; subclasses pin `type` and `data`.

    Unknown attributes are ignored rather than refused: CloudEvents allows extensions, and an
    upstream that adds one must not send every record to the dead-letter topic.

    `specversion` is required on the wire (the JSON Schemas say so, and
    `handoff.adapters.cloudevents.parse` refuses a record without it); an event the service
    builds itself in Python gets `"1.0"` when it does not say.
    """

    model_config = ConfigDict(
        frozen=True, extra="ignore", json_schema_extra=lambda schema: _required_specversion(schema)
    )

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=256)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    time: AwareDatetime = Field(
        description="RFC 3339 date-time with offset, e.g. 2026-11-23T09:00:00Z",
        json_schema_extra={"pattern": f"^{_RFC3339.pattern}$"},
    )
    workspaceid: str = Field(min_length=1, max_length=256)
    subject: str | None = Field(default=None, exclude_if=lambda subject: subject is None)
    """Left out of the JSON when absent, as CloudEvents has it (inside `data`, nulls stay)."""
    datacontenttype: str = "application/json"

    @field_validator("time", mode="before")
    @classmethod
    def _rfc3339(cls, value: object) -> object:
        """A string in RFC 3339 form (or a datetime, built in Python); never a number.

        It returns the string parsed: what a validator returns is validated as Python, and
        in strict mode a string is no datetime there."""
        if not isinstance(value, str):
            if isinstance(value, datetime):
                return value
            raise ValueError(
                "an RFC 3339 date-time string with offset is required (e.g. "
                f"2026-11-23T09:00:00Z), not {json_kind(value)}"
            )
        if _RFC3339.fullmatch(value) is None:
            raise ValueError(
                f"{value[:64]!r} is not an RFC 3339 date-time with offset (e.g. "
                "2026-11-23T09:00:00Z)"
            )
        try:  # any separator, any number of fractional digits (cut to microseconds), Z
            return datetime.fromisoformat(value[:-1] + "Z" if value[-1] == "z" else value)
        except ValueError as err:  # a day, hour, second or offset out of range
            raise ValueError(f"{value!r} is not a valid RFC 3339 date-time: {err}") from err


def _required_specversion(schema: dict[str, Any]) -> None:
    """Every record carries `specversion`: required in the schemas, whatever the default."""
    properties = schema.get("properties", {})
    if "specversion" in properties:
        properties["specversion"].pop("default", None)
        required = schema.setdefault("required", [])
        if "specversion" not in required:
            required.insert(0, "specversion")


def time_problem(time: datetime) -> str | None:
    """Why an input's `time` cannot be accepted (None: it can): outside
    [`EARLIEST_TIME`, `LATEST_TIME`], where a timer set from it could overflow.

    Compared as aware datetimes, which never overflows (converting such a time to UTC would,
    for the very times this refuses), and costs next to nothing on the hot path."""
    if EARLIEST_TIME <= time <= LATEST_TIME:
        return None
    if time > LATEST_TIME:
        return (
            f"time: {time.isoformat()} is later than {LATEST_TIME.isoformat()}, the latest time "
            f"accepted (a timer of up to {MAX_DURATION.days}d set from it must stay in the "
            "calendar)"
        )
    return (
        f"time: {time.isoformat()} is earlier than {EARLIEST_TIME.isoformat()}, the "
        "earliest time accepted (its local time in some timezones is before year 1)"
    )


class OutputEnvelope(Envelope):
    """What handoff itself emits: always says which input (or timer) caused it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = "/handoff"
    causationid: str = Field(min_length=1)
