"""Kafka record bytes <-> CloudEvents <-> core models. Pure mapping, no I/O.

A record is either accepted (a known input type that validates), skipped (a valid envelope of
a type this version does not know: forward compatibility), or rejected with a reason a person
can read, which goes to the dead-letter topic with (a bounded prefix of) the original bytes.

Acceptance is exactly the contract's (v1.1, Envelope): every required attribute of its JSON
type (`specversion` exactly `"1.0"`, `type` a non-empty string, `time` an RFC 3339 string with
offset, not a number) and `data` fields of their declared JSON types, with no coercion (`"5"`
is not 5, `1` is not `true`, a boolean is not an integer); no NUL character in any string;
and, beyond the contract, a `time` no timer can overflow from
(`handoff.core.envelope.time_problem`).
"""

import base64
import codecs
import hashlib
from dataclasses import dataclass
from datetime import datetime

import orjson
from pydantic import TypeAdapter, ValidationError

from handoff.core.durations import AS_STORED
from handoff.core.envelope import Envelope, time_problem
from handoff.core.events import Event
from handoff.core.ids import derive_id
from handoff.core.inputs import INPUT_TYPES, Input, WorkflowPublished
from handoff.core.problems import describe, describe_workflow

__all__ = [
    "MAX_OUTPUT_BYTES",
    "ORIGINAL_PREFIX_BYTES",
    "REASON_MAX_BYTES",
    "Accepted",
    "Parsed",
    "Rejected",
    "Skipped",
    "dead_letter",
    "dump_event",
    "load_event",
    "parse",
]

MAX_OUTPUT_BYTES = 65536
"""No record handoff writes may exceed 64 KiB (contract v1.1), its key and value together.
A dead letter never does (`dead_letter`); check every other output against it."""
ORIGINAL_PREFIX_BYTES = 16 * 1024
"""A dead letter carries the original bytes up to 16 KiB; past that, their first 16 KiB, with
their size and SHA-256 (the record itself stays in its topic)."""
REASON_MAX_BYTES = 4096
"""A reason is at most 4 KiB: `parse` says how many problems it left out past that, and a
dead letter cuts any longer reason (as JSON text, escapes included) to it."""

_EVENT = TypeAdapter[Envelope](Event)
_INPUT = TypeAdapter[Envelope](Input)
_PROBLEM_MAX_CHARS = 1024
"""One problem's line at most (a path 32 steps deep is about 700 characters)."""


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
    """Never raises: whatever a record holds, the answer is one of the three outcomes, and a
    rejection's reason is at most `REASON_MAX_BYTES` long as JSON."""
    try:
        parsed = _parse(raw, max_bytes)
    except Exception as err:  # a record must not be able to stop the partition
        parsed = Rejected(f"unreadable record: {type(err).__name__}: {err}", "unreadable")
    # A character takes at most 6 bytes as JSON: a reason shorter than this fits as it is.
    if isinstance(parsed, Rejected) and len(parsed.reason) > REASON_MAX_BYTES // 6:
        return Rejected(_cut(parsed.reason, REASON_MAX_BYTES), parsed.kind)
    return parsed


def _parse(raw: bytes | None, max_bytes: int) -> Parsed:
    """The fast path: one strict validation of the bytes as any input type. Whatever it does
    not accept outright goes the slow path, `_examine`, which finds out exactly why."""
    if raw is None:
        return Rejected("empty record (no value)", "empty")
    if len(raw) > max_bytes:
        return Rejected(
            f"record of {len(raw)} bytes is over the {max_bytes}-byte limit", "too_large"
        )
    try:
        event = _INPUT.validate_json(raw, strict=True)
    except ValidationError:
        return _examine(raw)
    if _suspect(raw):
        return _examine(raw)
    return _checked(event)


def _suspect(raw: bytes) -> bool:
    """Whether a record that validated may still hold what the fast path cannot see: a NUL
    escape (a NUL, or an escaped backslash followed by `u0000`), or `NaN` / `Infinity`, which
    pydantic's JSON parser reads as numbers (JSON has no such numbers), or which sit inside a
    string. Rare either way; the slow path then decides exactly. (Searching the decoded text
    is about twice as fast as searching the bytes.)"""
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return True
    return "\\u0000" in text or "NaN" in text or "Infinity" in text


def _examine(raw: bytes) -> Parsed:
    """The slow path, for records the fast path did not accept (and the few it could not
    be sure of): each check in turn, so the reason names the first thing wrong, at its path."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        return Rejected(f"not JSON: {err}", "not_json")
    if not isinstance(obj, dict):
        return Rejected(f"not a JSON object but {type(obj).__name__}", "not_object")
    nul = _nul_at(obj)
    if nul is not None:
        return Rejected(
            f"{nul}: contains a NUL character (\\u0000), which PostgreSQL cannot store", "nul"
        )
    if "type" not in obj:
        return Rejected("type: Field required (a non-empty string)")
    event_type = obj["type"]
    if not isinstance(event_type, str):
        return Rejected(f"type: a string is required, not {type(event_type).__name__}")
    if not event_type:
        return Rejected("type: a non-empty string is required, not ''")
    model = INPUT_TYPES.get(event_type)
    if model is None:
        return _unknown(raw, obj)
    try:
        event = model.model_validate_json(raw, strict=True)
    except ValidationError as err:
        data = obj.get("data")
        if model is WorkflowPublished and isinstance(data, dict):
            definition = data.get("definition")
            return Rejected(_summary(describe_workflow(err, definition, "data.definition")))
        return Rejected(_readable(err))
    return _checked(event)


def _unknown(raw: bytes, obj: dict[str, object]) -> Parsed:
    """A type this version does not know: skipped if its envelope is valid."""
    try:
        envelope = Envelope.model_validate_json(raw, strict=True)
    except ValidationError as err:
        return Rejected(_readable(err))
    problem = _envelope_problem(envelope)
    if problem is None and not isinstance(obj.get("data"), dict):
        problem = "data: an object is required" + ("" if "data" in obj else " (Field required)")
    if problem is not None:
        return Rejected(problem)
    return Skipped(envelope.type, envelope.time)


def _checked(event: Envelope) -> Parsed:
    """What a valid shape can still get wrong: the envelope's, and a workflow's workspace."""
    problem = _envelope_problem(event)
    if problem is not None:
        return Rejected(problem)
    if isinstance(event, WorkflowPublished) and (
        event.data.definition.workspace_id != event.workspaceid
    ):
        return Rejected(
            f"data.definition.workspace_id: {event.data.definition.workspace_id!r} is not "
            f"the event's workspace {event.workspaceid!r}"
        )
    return Accepted(event)


def _envelope_problem(event: Envelope) -> str | None:
    # The model defaults `specversion` for events the service builds; a record must say it.
    if "specversion" not in event.model_fields_set:
        return 'specversion: Field required (exactly "1.0")'
    return time_problem(event.time)


_At = tuple[str | int, "_At | None"]
"""A place in a record: its last key or index, and the place that holds it."""


def _nul_at(obj: object) -> str | None:
    """The path of the first string (value or key) holding a real NUL character, if any.
    Iterative: a record may nest as deep as the JSON parser allows."""
    stack: list[tuple[object, _At | None]] = [(obj, None)]
    while stack:
        node, at = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return _path(at)
        elif isinstance(node, dict):
            for key, value in reversed(node.items()):
                here = (key, at)
                if "\x00" in key:
                    return _path(here)
                stack.append((value, here))
        elif isinstance(node, list):
            stack.extend((value, (i, at)) for i, value in reversed(list(enumerate(node))))
    return None


def _path(at: _At | None) -> str:
    parts: list[str | int] = []
    while at is not None:
        parts.append(at[0])
        at = at[1]
    path = ""
    for part in reversed(parts):
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            name = str(part).replace("\x00", "\\u0000")
            path += f".{name}" if path else name
    return path or "(record)"


def _readable(err: ValidationError) -> str:
    """Every problem at its path: `data.contact_id: Field required; ...`."""
    return _summary(describe(err))


def _summary(problems: list[str]) -> str:
    """The problems, one after another, within `REASON_MAX_BYTES`: past that, how many were
    left out (a workflow can have thousands)."""
    head = f"{len(problems)} validation error(s): "
    room = REASON_MAX_BYTES - len(head) - len("; and 1000000000 more problem(s) left out")
    shown: list[str] = []
    for problem in problems:
        line = problem if len(problem) <= _PROBLEM_MAX_CHARS else _cut(problem, _PROBLEM_MAX_CHARS)
        room -= len(line.encode()) + 2
        if room < 0:
            break
        shown.append(line)
    text = head + "; ".join(shown)
    if len(shown) < len(problems):
        text += f"; and {len(problems) - len(shown)} more problem(s) left out"
    return text


def _cut(text: str, limit: int) -> str:
    """`text` in at most `limit` bytes as JSON (UTF-8, escapes included), saying how much of
    it was left out when it did not fit."""
    if _json_size(text) <= limit:
        return text
    room = limit - len(" … [cut: 1000000000 more characters]".encode())
    lo, hi = 0, min(len(text), room)  # the longest prefix that fits: binary search
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _json_size(text[:mid]) <= room:
            lo = mid
        else:
            hi = mid - 1
    return f"{text[:lo]} … [cut: {len(text) - lo} more characters]"


def _json_size(text: str) -> int:
    return len(orjson.dumps(text)) - 2


def dump_event(event: Envelope) -> bytes:
    """The CloudEvents structured-mode JSON of an event, as it goes on the wire and in the log.

    Absent optional attributes are left out of the envelope (`Envelope.subject`); inside
    `data` a null stays, since the contract gives fields such as `team_id` as "or null".
    """
    return event.model_dump_json().encode()


def load_event(raw: bytes | str) -> Envelope:
    """An event read back from the log (inputs and decisions alike), as it was accepted."""
    return _EVENT.validate_json(raw, context=AS_STORED)


_TEXT_MAX_BYTES = 32 * 1024
"""The most the original's text may take in a dead letter, as JSON: 16 KiB of text is at most
32 KiB escaped unless it is mostly control characters (6 bytes each); then it is left out
(the base64 has the bytes)."""
_NAME_MAX_CHARS = 256


def dead_letter(
    raw: bytes | None,
    key: bytes | None,
    reason: str,
    where: tuple[str, int, int],
    now: datetime,
) -> tuple[bytes, bytes]:
    """The dead-letter record (key, value): a CloudEvent with (a prefix of) the original
    bytes and why they were refused, in the workspace the record names (or its key's, or
    `unknown`), keyed by that workspace.

    `data` holds the reason (at most `REASON_MAX_BYTES`), the record's topic, partition and
    offset, its `size` and `sha256` (of all its bytes), `original_base64` (its first
    `ORIGINAL_PREFIX_BYTES`; all of them when `truncated` is false) and `original` (that
    prefix as text when it is UTF-8, up to the last whole character, and at most 32 KiB as
    JSON; else null). Whatever the record, key and value together stay under
    `MAX_OUTPUT_BYTES`: base64 21,848 bytes, text 32 KiB, reason 4 KiB, workspace and
    causation id 256 characters each (1.5 KiB escaped), the rest under 1 KiB (a Kafka topic
    name is at most 249 characters); the key at most 256 characters (1 KiB). The largest
    possible is about 62 KiB; were it ever over, the text would be left out.
    """
    topic, partition, offset = where
    size = len(raw) if raw is not None else 0
    digest = hashlib.sha256(raw or b"").hexdigest()
    prefix = raw[:ORIGINAL_PREFIX_BYTES] if raw is not None else None
    truncated = size > ORIGINAL_PREFIX_BYTES
    original = _loose_envelope(raw)
    workspace = (
        _name(original.get("workspaceid"))
        or _name(key.decode(errors="replace") if key else None)
        or "unknown"
    )
    cause = _name(original.get("id")) or f"{topic}/{partition}/{offset}"
    data: dict[str, object] = {
        "reason": _cut(_unicode(reason), REASON_MAX_BYTES),
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "original": _text(prefix, truncated),
        "original_base64": base64.b64encode(prefix).decode() if prefix is not None else None,
        "size": size,
        "sha256": digest,
        "truncated": truncated,
    }
    letter = {
        "specversion": "1.0",
        # The bytes' digest keeps ids apart when a new broker reuses the offsets.
        "id": derive_id("deadletter", topic, partition, offset, digest),
        "source": "/handoff",
        "type": "record.deadlettered",
        "time": now.isoformat(),
        "workspaceid": workspace,
        "causationid": cause,
        "datacontenttype": "application/json",
        "data": data,
    }
    record_key = workspace.encode()
    value = orjson.dumps(letter)
    if len(record_key) + len(value) > MAX_OUTPUT_BYTES:  # past the sum above: cannot happen
        data["original"] = None
        value = orjson.dumps(letter)
    return record_key, value


def _text(prefix: bytes | None, truncated: bool) -> str | None:
    """The prefix as text, if it is UTF-8: a character the 16 KiB cut in two is left out."""
    if prefix is None:
        return None
    try:
        text: str = codecs.getincrementaldecoder("utf-8")().decode(prefix, final=not truncated)
    except UnicodeDecodeError:
        return None
    return text if _json_size(text) <= _TEXT_MAX_BYTES else None


def _name(value: object) -> str | None:
    """A workspace or event id fit to route by: a string of 1 to 256 characters."""
    if isinstance(value, str) and 0 < len(value) <= _NAME_MAX_CHARS:
        return _unicode(value)
    return None


def _unicode(text: str) -> str:
    """`text` without lone surrogates (which UTF-8, so JSON, cannot carry)."""
    return text.encode(errors="replace").decode()


def _loose_envelope(raw: bytes | None) -> dict[str, object]:
    """What can be read of a refused record's attributes, for routing its dead letter."""
    try:
        obj = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        return {}
    return obj if isinstance(obj, dict) else {}
