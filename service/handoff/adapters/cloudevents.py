"""Kafka record bytes <-> CloudEvents <-> core models. Pure mapping, no I/O.

A record is either accepted (a known input type that validates), skipped (a valid envelope of
a type this version does not know: forward compatibility), or rejected with a reason a person
can read, which goes to the dead-letter topic with the original bytes.
"""

import base64
from dataclasses import dataclass
from datetime import datetime

import orjson
from pydantic import TypeAdapter, ValidationError

from handoff.core.envelope import Envelope
from handoff.core.events import Event
from handoff.core.ids import derive_id
from handoff.core.inputs import INPUT_TYPES, WorkflowPublished

__all__ = [
    "Accepted",
    "Parsed",
    "Rejected",
    "Skipped",
    "dead_letter",
    "dump_event",
    "load_event",
    "parse",
]

_EVENT = TypeAdapter[Envelope](Event)


@dataclass(frozen=True, slots=True)
class Accepted:
    event: Envelope

    @property
    def time(self) -> datetime:
        return self.event.time


@dataclass(frozen=True, slots=True)
class Skipped:
    type: str
    time: datetime


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    time: None = None


Parsed = Accepted | Skipped | Rejected


def parse(raw: bytes | None, max_bytes: int) -> Parsed:
    if raw is None:
        return Rejected("empty record (no value)")
    if len(raw) > max_bytes:
        return Rejected(f"record of {len(raw)} bytes is over the {max_bytes}-byte limit")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        return Rejected(f"not JSON: {err}")
    if not isinstance(obj, dict):
        return Rejected(f"not a JSON object but {type(obj).__name__}")
    model = INPUT_TYPES.get(obj.get("type"))  # type: ignore[arg-type]
    if model is None:
        try:
            envelope = Envelope.model_validate(obj)
        except ValidationError as err:
            return Rejected(_readable(err))
        return Skipped(envelope.type, envelope.time)
    try:
        event = model.model_validate(obj)
    except ValidationError as err:
        return Rejected(_readable(err))
    if isinstance(event, WorkflowPublished) and (
        event.data.definition.workspace_id != event.workspaceid
    ):
        return Rejected(
            f"data.definition.workspace_id: {event.data.definition.workspace_id!r} is not "
            f"the event's workspace {event.workspaceid!r}"
        )
    return Accepted(event)


def _readable(err: ValidationError) -> str:
    """One line per problem, each at its path: `data.contact_id: Field required`."""
    lines = []
    for e in err.errors(include_url=False):
        path = ".".join(str(p) for p in e["loc"]) or "(record)"
        lines.append(f"{path}: {e['msg']}")
    return f"{err.error_count()} validation error(s): " + "; ".join(lines)


def dump_event(event: Envelope) -> bytes:
    """The CloudEvents structured-mode JSON of an event, as it goes on the wire and in the log.

    Absent optional attributes are left out of the envelope; inside `data` a null stays, since
    the contract gives fields such as `team_id` as "or null".
    """
    envelope = event.model_dump(mode="json")
    return orjson.dumps({k: v for k, v in envelope.items() if v is not None})


def load_event(raw: bytes | str) -> Envelope:
    """An event read back from the log (inputs and decisions alike)."""
    return _EVENT.validate_json(raw)


def dead_letter(
    raw: bytes | None, reason: str, topic: str, partition: int, offset: int, now: datetime
) -> bytes:
    """The dead-letter record: a CloudEvent with the original bytes and why they were refused."""
    text: str | None
    try:
        text = raw.decode() if raw is not None else None
    except UnicodeDecodeError:
        text = None
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": derive_id("deadletter", topic, partition, offset),
            "source": "/handoff",
            "type": "record.deadlettered",
            "time": now.isoformat(),
            "datacontenttype": "application/json",
            "data": {
                "reason": reason,
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "original": text,
                "original_base64": base64.b64encode(raw).decode() if raw is not None else None,
            },
        }
    )
