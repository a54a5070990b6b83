"""Whatever bytes arrive, parse answers Accepted, Skipped (an unknown type only) or Rejected
with a reason; it never raises; an accepted event goes into the log and back; and every
rejected record makes a dead letter under 64 KiB with its size and SHA-256."""

import base64
import copy
import hashlib
import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import event as label
from hypothesis import strategies as st

from handoff.adapters.cloudevents import (
    MAX_OUTPUT_BYTES,
    Accepted,
    Rejected,
    Skipped,
    dead_letter,
    dump_event,
    load_event,
    parse,
)
from handoff.core.inputs import INPUT_TYPES
from handoff.schema_files import DeadLettered
from tests.builders import T0, assign_team, assignee_changed, event, opened, team, user, workflow

MAX = 4 << 20
"""Over every record made here, so that parse reads each rather than refusing its size."""

VALID: list[dict[str, Any]] = [
    opened("c1", fields={"lang": "es", "score": 1.5}, tags=["vip"]).model_dump(mode="json"),
    user("ann", max_open=3).model_dump(mode="json"),
    team("support", "ann", "bob").model_dump(mode="json"),
    event(
        "contact.updated", {"contact_id": "c1", "fields": {"plan": "pro", "gone": None}}
    ).model_dump(mode="json"),
    assignee_changed("c1", "ann").model_dump(mode="json"),
    workflow(
        {"type": "send_message", "text": "hi"},
        {"type": "wait", "duration": "15m"},
        {
            "type": "branch",
            "branches": [
                {
                    "name": "vip",
                    "when": {"all": [{"contact_tag": "vip"}, {"contact_field": "lang"}]},
                    "steps": [{**assign_team("support"), "id": "inner"}],
                }
            ],
        },
    ).model_dump(mode="json", by_alias=True),
    {**opened("c2").model_dump(mode="json"), "type": "contact.merged"},
]


def _nested(depth: int, leaf: Any = 0) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


HUGE: list[Any] = [
    "x" * 300_000,
    "\u0001" * 50_000,
    "é" * 40_000,
    "\u0000",
    "c\\u0000",
    "",
    10**400,
    -(2**70),
    1e308,
    float("nan"),
    float("inf"),
    _nested(150),
    _nested(400),
    [None] * 20_000,
    {f"k{i}": i for i in range(5_000)},
    "\ud800",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    1700000000,
]
"""Values no small strategy makes: huge, deeply nested, not JSON (NaN, a lone surrogate)."""

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["1.0", "contact.merged", "", "2026-11-23T09:00:00Z", "NaN"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
) | st.sampled_from(HUGE).map(copy.deepcopy)


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The places in a record (but the record itself) to drop or replace: every one down to
    8 levels, and the first 10 of a list or object."""
    found: list[tuple[Any, ...]] = []
    if len(at) >= 8:
        return found
    items = list(
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for key, value in items[:10]:
        found.append((*at, key))
        found += _paths(value, (*at, key))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid envelope with a few attributes or fields dropped, replaced by values of other
    JSON types (huge and deeply nested ones included), or added."""
    record = json.loads(json.dumps(draw(st.sampled_from(VALID))))
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(record)
        path = draw(st.sampled_from(paths))
        parent: Any = record
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["drop", "replace", "add"]))
        if action == "drop":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(JSON_VALUES)
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(JSON_VALUES)
    # The stdlib writes what orjson will not: NaN, integers past 64 bits, 400 levels deep.
    return json.dumps(record).encode()


RAW = st.binary(max_size=300) | mutated()


def _check_dead_letter(raw: bytes, reason: str) -> None:
    key, value = dead_letter(raw, b"ws-1", reason, ("inbox.conversations", 3, 42), T0)
    assert len(key) + len(value) <= MAX_OUTPUT_BYTES
    data = DeadLettered.model_validate_json(value).data
    assert data.size == len(raw)
    assert data.sha256 == hashlib.sha256(raw).hexdigest()
    assert data.truncated == (len(raw) > 16 * 1024)
    assert data.original_base64 is not None
    assert base64.b64decode(data.original_base64) == raw[: 16 * 1024]
    assert data.reason


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(RAW)
def test_given_any_bytes_or_a_mutated_envelope_when_parsed_then_one_of_three_answers(
    raw: bytes,
) -> None:
    """Given arbitrary bytes, or a valid envelope with attributes dropped, replaced by values
    of other JSON types (huge, deeply nested, NaN, past 64 bits) or added, when parsed,
    then it is accepted (and goes into the log and back out unchanged), skipped (only for a
    type this version does not know), or rejected with a reason; nothing raises; and a
    rejected record's dead letter is under 64 KiB with its size and SHA-256."""
    parsed = parse(raw, MAX)
    label(type(parsed).__name__ + (f" ({parsed.kind})" if isinstance(parsed, Rejected) else ""))
    match parsed:
        case Accepted(event=event):
            assert event.type in INPUT_TYPES
            assert load_event(dump_event(event)) == event
            assert len(dump_event(event)) <= len(raw) * 2 + 1024
        case Skipped(type=type_):
            assert type_
            assert type_ not in INPUT_TYPES
            assert isinstance(orjson.loads(raw).get("data"), dict)
        case Rejected(reason=reason):
            assert reason.strip()
            assert len(reason.encode()) <= 4096
            _check_dead_letter(raw, reason)
        case _:
            raise AssertionError(f"not one of the three answers: {parsed!r}")
