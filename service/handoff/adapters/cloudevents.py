"""Kafka record bytes <-> CloudEvents <-> core models. Pure mapping, no I/O.

A record is either accepted (a known input type that validates), skipped (a valid envelope of
a type this version does not know: forward compatibility), or rejected with a reason a person
can read, which goes to the dead-letter topic with the original bytes.
"""

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime

import orjson
from pydantic import TypeAdapter, ValidationError

from handoff.core.envelope import Envelope
from handoff.core.events import Event
from handoff.core.ids import derive_id
from handoff.core.inputs import INPUT_TYPES, WorkflowPublished
from handoff.core.problems import describe, describe_workflow

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
    kind: str = "invalid"
    """For counting: empty, too_large, nul, not_json, not_object, invalid, unreadable, poison."""
    time: None = None


Parsed = Accepted | Skipped | Rejected


def parse(raw: bytes | None, max_bytes: int) -> Parsed:
    """Never raises: whatever a record holds, the answer is one of the three outcomes."""
    try:
        return _parse(raw, max_bytes)
    except Exception as err:  # a record must not be able to stop the partition
        return Rejected(f"unreadable record: {type(err).__name__}: {err}", "unreadable")


def _parse(raw: bytes | None, max_bytes: int) -> Parsed:
    if raw is None:
        return Rejected("empty record (no value)", "empty")
    if len(raw) > max_bytes:
        return Rejected(
            f"record of {len(raw)} bytes is over the {max_bytes}-byte limit", "too_large"
        )
    if b"\\u0000" in raw:
        return Rejected("contains a NUL character (\\u0000), which PostgreSQL cannot store", "nul")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        return Rejected(f"not JSON: {err}", "not_json")
    if not isinstance(obj, dict):
        return Rejected(f"not a JSON object but {type(obj).__name__}", "not_object")
    event_type = obj.get("type")
    if not isinstance(event_type, str):
        return Rejected(f"type: a string is required, not {type(event_type).__name__}")
    model = INPUT_TYPES.get(event_type)
    if model is None:
        try:
            envelope = Envelope.model_validate(obj)
        except ValidationError as err:
            return Rejected(_readable(err))
        return Skipped(envelope.type, envelope.time)
    try:
        event = model.model_validate(obj)
    except ValidationError as err:
        if model is WorkflowPublished and isinstance(obj.get("data"), dict):
            definition = obj["data"].get("definition")
            return Rejected(_summary(describe_workflow(err, definition, "data.definition")))
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
    """Every problem at its path: `data.contact_id: Field required; ...`."""
    return _summary(describe(err))


def _summary(problems: list[str]) -> str:
    return f"{len(problems)} validation error(s): " + "; ".join(problems)


def dump_event(event: Envelope) -> bytes:
    """The CloudEvents structured-mode JSON of an event, as it goes on the wire and in the log.

    Absent optional attributes are left out of the envelope (`Envelope.subject`); inside
    `data` a null stays, since the contract gives fields such as `team_id` as "or null".
    """
    return event.model_dump_json().encode()


def load_event(raw: bytes | str) -> Envelope:
    """An event read back from the log (inputs and decisions alike)."""
    return _EVENT.validate_json(raw)


def dead_letter(
    raw: bytes | None,
    key: bytes | None,
    reason: str,
    where: tuple[str, int, int],
    now: datetime,
) -> tuple[bytes, bytes]:
    """The dead-letter record (key, value): a CloudEvent with the original bytes and why they
    were refused, in the workspace the record names (or its key's, or `unknown`)."""
    topic, partition, offset = where
    text: str | None
    try:
        text = raw.decode() if raw is not None else None
    except UnicodeDecodeError:
        text = None
    original = _loose_envelope(raw)
    workspace = original.get("workspaceid")
    if not isinstance(workspace, str) or not workspace:
        workspace = key.decode(errors="replace") if key else "unknown"
    cause = original.get("id")
    if not isinstance(cause, str) or not cause:
        cause = f"{topic}/{partition}/{offset}"
    digest = hashlib.sha256(raw or b"").hexdigest()
    value = orjson.dumps(
        {
            "specversion": "1.0",
            # The bytes' digest keeps ids apart when a new broker reuses the offsets.
            "id": derive_id("deadletter", topic, partition, offset, digest),
            "source": "/handoff",
            "type": "record.deadlettered",
            "time": now.isoformat(),
            "workspaceid": workspace,
            "causationid": cause,
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
    return workspace.encode(), value


def _loose_envelope(raw: bytes | None) -> dict[str, object]:
    """What can be read of a refused record's attributes, for routing its dead letter."""
    try:
        obj = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        return {}
    return obj if isinstance(obj, dict) else {}
