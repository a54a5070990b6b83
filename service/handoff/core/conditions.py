"""Branch conditions (contract: Conditions): `all`, `any`, leaves, and `schedule`.

A leaf names what it looks at by its key (`contact_field`, `contact_tag`, `variable`,
`conversation`, `assignee`); `op` compares. Times are measured from the event being decided,
never the wall clock, so a replay takes the same branch.
"""

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    WithJsonSchema,
    field_validator,
)

from handoff.core.durations import to_timedelta

__all__ = [
    "All",
    "AnyOf",
    "AssigneeIs",
    "Condition",
    "ContactField",
    "ContactTag",
    "ConversationIs",
    "Evaluated",
    "Facts",
    "Schedule",
    "VariableIs",
    "evaluate",
    "holds",
]

Op = Literal["eq", "neq", "in", "contains", "exists", "not_exists", "gt", "lt"]
Value = str | int | float | bool | list[str | int | float | bool] | None
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Leaf(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    op: Op = "eq"
    value: Value = None


class ContactField(_Leaf):
    contact_field: str = Field(min_length=1)


class ContactTag(_Leaf):
    """`exists` / `eq`: the contact has the tag; `not_exists` / `neq`: it has not."""

    contact_tag: str = Field(min_length=1)
    op: Op = "exists"


class VariableIs(_Leaf):
    variable: str = Field(min_length=1)


class ConversationIs(_Leaf):
    conversation: Literal[
        "status",
        "channel",
        "time_since_last_outgoing",
        "time_since_last_incoming",
        "last_incoming_text",
    ]


class AssigneeIs(_Leaf):
    assignee: Literal["id", "status"]


def _clock_time(value: object) -> time:
    """`"HH:MM"` only: YAML reads an unquoted 17:00 as the number 1020, which must not pass
    for a time of day."""
    if not isinstance(value, str) or not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise ValueError(f'write the time of day as a quoted "HH:MM" string, not {value!r}')
    return time.fromisoformat(value)


ClockTime = Annotated[
    time,
    BeforeValidator(_clock_time),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^([01]\\d|2[0-3]):[0-5]\\d$"}),
]


class ScheduleWindow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    timezone: str
    days: list[Weekday] = Field(min_length=1)
    from_: ClockTime = Field(alias="from")
    to: ClockTime

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown timezone {zone!r}") from err
        return zone


class Schedule(BaseModel):
    """True when the event's time, in `timezone`, is on one of `days` between `from` and `to`.

    `from` > `to` is a window past midnight (22:00-06:00): it belongs to the day it starts
    on, so Friday 22:00-06:00 covers Saturday 03:00. `from` == `to` is the whole day.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schedule: ScheduleWindow


class All(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    all: list["Condition"]


class AnyOf(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    any: list["Condition"]


_KINDS = (
    "all",
    "any",
    "schedule",
    "contact_field",
    "contact_tag",
    "variable",
    "conversation",
    "assignee",
)


def _kind(value: Any) -> str | None:
    """The tag of the leaf or group `value` is; tags are `<kind>` so that error paths can
    tell them from field names and leave them out."""
    keys = value if isinstance(value, dict) else type(value).model_fields
    return next((f"<{k}>" for k in _KINDS if k in keys), None)


Condition = Annotated[
    Annotated[All, Tag("<all>")]
    | Annotated[AnyOf, Tag("<any>")]
    | Annotated[Schedule, Tag("<schedule>")]
    | Annotated[ContactField, Tag("<contact_field>")]
    | Annotated[ContactTag, Tag("<contact_tag>")]
    | Annotated[VariableIs, Tag("<variable>")]
    | Annotated[ConversationIs, Tag("<conversation>")]
    | Annotated[AssigneeIs, Tag("<assignee>")],
    Discriminator(
        _kind,
        custom_error_type="unknown_condition",
        custom_error_message=(
            "a condition needs one of all, any, schedule, contact_field, contact_tag, "
            "variable, conversation, assignee"
        ),
    ),
]
All.model_rebuild()
AnyOf.model_rebuild()


class Facts(BaseModel):
    """What a condition may look at, gathered by the caller for one run at one moment."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    fields: dict[str, Any] = {}
    tags: tuple[str, ...] = ()
    variables: dict[str, str] = {}
    conversation_status: str | None = None
    channel: str | None = None
    last_outgoing_at: datetime | None = None
    last_incoming_at: datetime | None = None
    last_incoming_text: str | None = None
    assignee_id: str | None = None
    assignee_status: str = "none"


_LeafCondition = Schedule | ContactTag | ContactField | VariableIs | AssigneeIs | ConversationIs
"""A condition that is not `all` or `any`: it looks at one fact."""


def holds(condition: Condition, facts: Facts) -> bool:
    match condition:
        case All(all=parts):
            return all(holds(p, facts) for p in parts)
        case AnyOf(any=parts):
            return any(holds(p, facts) for p in parts)
    return _test(condition, _seen(condition, facts))


@dataclass(frozen=True, slots=True)
class Evaluated:
    """A condition evaluated for a person to read (`handoff explain`): every leaf with the
    value it looked at, whether or not `holds` got that far."""

    condition: Condition
    held: bool
    """As `holds` has it, the one rule the branch step goes by: a leaf by the same test,
    `all` and `any` from their parts' `held`."""
    seen: Any = None
    """A leaf's value as compared: a time since is a timedelta, a schedule the event time
    in its timezone, a tag whether the contact has it; None: no value."""
    parts: tuple["Evaluated", ...] = ()
    """`all` and `any`: each part, evaluated."""


def evaluate(condition: Condition, facts: Facts) -> Evaluated:
    if isinstance(condition, All | AnyOf):
        parts = condition.all if isinstance(condition, All) else condition.any
        evaluated = tuple(evaluate(p, facts) for p in parts)
        held = (all if isinstance(condition, All) else any)(e.held for e in evaluated)
        return Evaluated(condition, held, parts=evaluated)
    seen = _seen(condition, facts)
    return Evaluated(condition, _test(condition, seen), seen)


def _seen(leaf: _LeafCondition, facts: Facts) -> Any:
    """What the leaf looks at in the facts."""
    match leaf:
        case Schedule(schedule=window):
            return facts.at.astimezone(ZoneInfo(window.timezone))
        case ContactTag(contact_tag=tag):
            return tag in facts.tags
        case ContactField(contact_field=name):
            return facts.fields.get(name)
        case VariableIs(variable=name):
            return facts.variables.get(name)
        case AssigneeIs(assignee="id"):
            return facts.assignee_id
        case AssigneeIs():
            return facts.assignee_status
        case ConversationIs(conversation=what):
            return _conversation(what, facts)
    raise AssertionError(f"unhandled condition {leaf!r}")


def _test(leaf: _LeafCondition, seen: Any) -> bool:
    """Whether the leaf holds of what it saw."""
    if isinstance(leaf, Schedule):
        return _in_window(leaf.schedule, seen)
    if isinstance(leaf, ContactTag):
        has = bool(seen)
        op = leaf.op
        return has if op in ("exists", "eq") else not has if op in ("not_exists", "neq") else False
    return _compare(leaf.op, seen, leaf.value)


def _conversation(what: str, facts: Facts) -> Any:
    match what:
        case "status":
            return facts.conversation_status
        case "channel":
            return facts.channel
        case "last_incoming_text":
            return facts.last_incoming_text
        case "time_since_last_outgoing":
            return None if facts.last_outgoing_at is None else facts.at - facts.last_outgoing_at
        case _:
            return None if facts.last_incoming_at is None else facts.at - facts.last_incoming_at


def _compare(op: str, actual: Any, expected: Value) -> bool:
    if op == "exists":
        return actual is not None
    if op == "not_exists":
        return actual is None
    if actual is None:
        return op == "neq" and expected is not None
    limit: Any = expected
    if isinstance(actual, timedelta):  # a time since: compared with a duration like 15m
        limit = to_timedelta(str(expected)) if expected is not None else None
    match op:
        case "eq":
            return _same(actual, limit)
        case "neq":
            return not _same(actual, limit)
        case "in":
            return isinstance(limit, list) and any(_same(actual, e) for e in limit)
        case "contains":
            return isinstance(actual, str) and str(limit).casefold() in actual.casefold()
        case "gt" | "lt":
            try:
                return bool(actual > limit if op == "gt" else actual < limit)
            except TypeError:
                return False
    return False


def _same(actual: Any, expected: Any) -> bool:
    """Text compares without regard to case; other values exactly."""
    if isinstance(actual, str) and isinstance(expected, str):
        return actual.casefold() == expected.casefold()
    return bool(actual == expected)


def _in_window(window: ScheduleWindow, at: datetime) -> bool:
    local = at.astimezone(ZoneInfo(window.timezone))
    day, clock = _WEEKDAYS[local.weekday()], local.time()
    start, end = window.from_, window.to
    if start == end:
        return day in window.days
    if start < end:
        return day in window.days and start <= clock < end
    yesterday = _WEEKDAYS[(local.weekday() - 1) % 7]
    return (day in window.days and clock >= start) or (yesterday in window.days and clock < end)
