"""Acceptance is exactly contract v1.1's (Envelope): every required attribute of its JSON type,
`data` fields of their declared JSON types with no coercion, no NUL in any string, and a
`time` no timer can overflow from. What is refused is refused with a reason a person can
read, naming the path of the problem; what the contract allows is still accepted."""

import json
from typing import Any

import orjson
import pytest

from handoff.adapters.cloudevents import Accepted, Rejected, Skipped, load_event, parse
from handoff.core.envelope import EARLIEST_TIME, LATEST_TIME
from handoff.core.inputs import ConversationOpened, UserUpserted
from handoff.core.workflow import MAX_STEP_DEPTH
from tests.builders import opened, user, workflow

MAX = 1 << 20
OPENED: dict[str, Any] = opened("c1").model_dump(mode="json")
USER: dict[str, Any] = user("ann").model_dump(mode="json")


def without(record: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != name}


def with_data(record: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**record, "data": {**record["data"], **fields}}


def nested_branches(levels: int) -> dict[str, Any]:
    """A step `levels` deep: a branch in a branch in ..., a message at the bottom."""
    step: dict[str, Any] = {"id": f"s{levels}", "type": "send_message", "text": "deep"}
    for i in reversed(range(1, levels)):
        step = {
            "id": f"s{i}",
            "type": "branch",
            "branches": [{"name": "b", "when": {"contact_tag": "vip"}, "steps": [step]}],
        }
    return step


def published(*steps: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = workflow({"type": "send_message", "text": "hi"}).model_dump(
        mode="json", by_alias=True
    )
    record["data"]["definition"]["steps"] = list(steps)
    return record


def rejected(record: dict[str, Any] | bytes) -> Rejected:
    raw = record if isinstance(record, bytes) else json.dumps(record).encode()
    parsed = parse(raw, MAX)
    assert isinstance(parsed, Rejected), f"accepted: {raw[:200]!r}"
    return parsed


DEEP_PATH = "data.definition.steps[0]" + ".branches[0].steps[0]" * MAX_STEP_DEPTH

REFUSED = [
    pytest.param(
        without(OPENED, "specversion"),
        'specversion: Field required (exactly "1.0")',
        id="no-specversion",
    ),
    pytest.param(
        {**OPENED, "specversion": "0.3"},
        "specversion: unknown value '0.3'; input should be '1.0'",
        id="specversion-0.3",
    ),
    pytest.param(
        {**OPENED, "specversion": 1.0},
        "specversion: unknown value 1.0",
        id="specversion-a-number",
    ),
    pytest.param(
        {**OPENED, "time": 1700000000},
        "time: an RFC 3339 date-time string with offset is required (e.g. "
        "2026-11-23T09:00:00Z), not a number",
        id="time-a-number",
    ),
    pytest.param(
        {**OPENED, "time": "1700000000"},
        "time: '1700000000' is not an RFC 3339 date-time with offset",
        id="time-a-timestamp-in-a-string",
    ),
    pytest.param(
        {**OPENED, "time": "2026-11-23T09:00:00"},
        "time: '2026-11-23T09:00:00' is not an RFC 3339 date-time with offset",
        id="time-without-offset",
    ),
    pytest.param(
        {**OPENED, "time": "2026-11-23T09:00Z"},
        "time: '2026-11-23T09:00Z' is not an RFC 3339 date-time with offset",
        id="time-without-seconds",
    ),
    pytest.param(
        {**OPENED, "time": "2026-02-30T09:00:00Z"},
        "time: '2026-02-30T09:00:00Z' is not a valid RFC 3339 date-time: day is out of range",
        id="time-no-such-day",
    ),
    pytest.param(
        with_data(USER, max_open_contacts=True),
        "data.max_open_contacts: Input should be a valid integer, not a boolean (true)",
        id="max-open-contacts-a-boolean",
    ),
    pytest.param(
        with_data(USER, max_open_contacts="5"),
        "data.max_open_contacts: Input should be a valid integer, not a string ('5')",
        id="max-open-contacts-a-string",
    ),
    pytest.param(
        with_data(OPENED, contact={"fields": {"vip": True}, "tags": "vip"}),
        "data.contact.tags: Input should be a valid array, not a string ('vip')",
        id="tags-a-string",
    ),
    pytest.param(
        with_data(OPENED, contact_id=1),
        "data.contact_id: Input should be a valid string, not a number (1)",
        id="contact-id-a-number",
    ),
    pytest.param(
        {**OPENED, "subject": False},
        "subject: Input should be a valid string, not a boolean (false)",
        id="subject-a-boolean",
    ),
    pytest.param(
        {**OPENED, "type": ""}, "type: a non-empty string is required, not ''", id="type-empty"
    ),
    pytest.param(without(OPENED, "type"), "type: Field required", id="no-type"),
    pytest.param(
        with_data(OPENED, contact_id="c\u0000"),
        "data.contact_id: contains a NUL character (\\u0000), which PostgreSQL cannot store",
        id="nul-in-data",
    ),
    pytest.param(
        {**OPENED, "traceparent": ["ok", {"x\u0000": 1}]},
        "traceparent[1].x\\u0000: contains a NUL character",
        id="nul-in-an-extension-key",
    ),
    pytest.param(
        {**OPENED, "time": "9999-12-31T23:59:59Z"},
        "time: 9999-12-31T23:59:59+00:00 is later than 9999-10-01T23:59:59.999999+00:00, the "
        "latest time accepted",
        id="time-at-the-end-of-the-calendar",
    ),
    pytest.param(
        {**OPENED, "time": "9999-10-02T00:00:00Z"},
        "time: 9999-10-02T00:00:00+00:00 is later than",
        id="time-a-day-past-the-latest",
    ),
    pytest.param(
        {**OPENED, "time": "0001-01-01T00:30:00+01:00"},
        "time: 0001-01-01T00:30:00+01:00 is earlier than 0001-01-02T00:00:00+00:00",
        id="time-before-year-1-in-utc",
    ),
    pytest.param(
        published(nested_branches(120)),
        f"{DEEP_PATH}: steps nested {MAX_STEP_DEPTH + 1} levels deep; steps may nest at most "
        f"{MAX_STEP_DEPTH} levels",
        id="workflow-nested-120-levels",
    ),
    pytest.param(
        published(nested_branches(MAX_STEP_DEPTH + 1)),
        f"{DEEP_PATH}: steps nested {MAX_STEP_DEPTH + 1} levels deep",
        id="workflow-one-level-too-deep",
    ),
    pytest.param(
        published({"id": "w", "type": "wait", "duration": "400d"}),
        "data.definition.steps[0].duration: '400d' is longer than 90d, the longest a workflow "
        "may wait",
        id="wait-over-the-cap",
    ),
    pytest.param(
        published({"id": "a", "type": "assign_to", "team_id": "t", "timeout": "2161h"}),
        "data.definition.steps[0].timeout: '2161h' is longer than 90d",
        id="queue-timeout-over-the-cap",
    ),
    pytest.param(
        published({"id": "w", "type": "wait", "duration": "99999999999999999999d"}),
        "data.definition.steps[0].duration: not a duration: '99999999999999999999d' is far too "
        "long",
        id="wait-past-what-python-holds",
    ),
    pytest.param(
        without({**OPENED, "type": "contact.merged"}, "data"),
        "data: an object is required (Field required)",
        id="unknown-type-without-data",
    ),
    pytest.param(
        without({**OPENED, "type": "contact.merged"}, "specversion"),
        'specversion: Field required (exactly "1.0")',
        id="unknown-type-without-specversion",
    ),
]


@pytest.mark.parametrize(("record", "reason"), REFUSED)
def test_given_a_record_the_contract_refuses_when_parsed_then_rejected_saying_where(
    record: dict[str, Any], reason: str
) -> None:
    """Given a record the contract refuses (most of these were accepted before, some then
    crashed the service, the others were refused with a vaguer reason), when it is parsed,
    then it is rejected, and the reason names the path and what is wrong there."""
    assert reason in rejected(record).reason


def test_given_nan_where_a_number_goes_when_parsed_then_rejected_as_not_json() -> None:
    """pydantic's JSON parser reads `NaN`; JSON has no such number."""
    raw = orjson.dumps(with_data(OPENED, contact={"fields": {"score": 1.5}})).replace(
        b"1.5", b"NaN"
    )
    parsed = rejected(raw)
    assert parsed.kind == "not_json"
    assert parsed.reason.startswith("not JSON: ")


def test_given_a_real_nul_when_parsed_then_counted_as_nul() -> None:
    assert rejected(with_data(OPENED, contact_id="c\u0000")).kind == "nul"


def test_given_an_escaped_backslash_u0000_in_a_contact_id_when_parsed_then_accepted() -> None:
    """Given `"c\\\\u0000"` in JSON (a backslash and `u0000`, six characters, no NUL),
    when parsed, then accepted with exactly those characters: only a real NUL is refused."""
    raw = orjson.dumps(with_data(OPENED, contact_id="c\\u0000"))
    assert b'"c\\\\u0000"' in raw
    parsed = parse(raw, MAX)
    assert isinstance(parsed, Accepted), parsed
    assert isinstance(parsed.event, ConversationOpened)
    assert parsed.event.data.contact_id == "c\\u0000"
    assert len(parsed.event.data.contact_id) == 7


def test_given_nan_and_infinity_as_words_in_text_when_parsed_then_accepted() -> None:
    record = with_data(OPENED, channel="NaN Infinity \\u0000")
    parsed = parse(orjson.dumps(record), MAX)
    assert isinstance(parsed, Accepted), parsed
    assert isinstance(parsed.event, ConversationOpened)
    assert parsed.event.data.channel == "NaN Infinity \\u0000"


@pytest.mark.parametrize(
    "time",
    [
        "0001-01-02T00:00:00Z",
        "0001-06-15T08:30:00-05:00",
        "9999-01-01T00:00:00Z",
        "9999-10-01T23:59:59Z",
        "9999-10-02T00:59:59+01:00",  # 23:59:59Z the day before, in UTC
        "2026-11-23t09:00:00z",
        "2026-11-23 09:00:00+05:30",
        "2026-11-23T09:00:00.123456789Z",
        "2026-11-23T09:00:00-00:00",
    ],
)
def test_given_an_rfc3339_time_within_the_limits_when_parsed_then_accepted(time: str) -> None:
    """Year-1 dates (from its second day) and year-9999 dates more than the longest timer
    (90 days) and a day before the end of the calendar are accepted, in every RFC 3339 form."""
    parsed = parse(orjson.dumps({**OPENED, "time": time}), MAX)
    assert isinstance(parsed, Accepted), parsed
    assert EARLIEST_TIME <= parsed.time <= LATEST_TIME


def test_given_a_valid_envelope_of_an_unknown_type_when_parsed_then_skipped() -> None:
    record = {**OPENED, "type": "contact.merged", "data": {"anything": [1, "NaN"]}}
    parsed = parse(orjson.dumps(record), MAX)
    assert isinstance(parsed, Skipped)
    assert parsed.type == "contact.merged"


def test_given_unknown_attributes_when_parsed_then_ignored() -> None:
    """CloudEvents extensions (and upstream's new optional fields) do not refuse a record."""
    record = with_data(
        {**OPENED, "traceparent": "00-abc-01", "partitionkey": {"a": [1, None]}},
        new_field=[1, 2.5, True],
    )
    assert isinstance(parse(orjson.dumps(record), MAX), Accepted)


def test_given_a_user_with_an_integer_capacity_when_parsed_then_accepted() -> None:
    parsed = parse(orjson.dumps(with_data(USER, max_open_contacts=5)), MAX)
    assert isinstance(parsed, Accepted)
    assert isinstance(parsed.event, UserUpserted)
    assert parsed.event.data.max_open_contacts == 5


def test_given_a_wait_of_exactly_the_cap_when_published_then_accepted() -> None:
    record = published(
        {"id": "w", "type": "wait", "duration": "90d"},
        {"id": "a", "type": "assign_to", "team_id": "t", "timeout": "2160h"},
    )
    assert isinstance(parse(orjson.dumps(record), MAX), Accepted)


def test_given_thousands_of_problems_when_parsed_then_the_reason_is_cut_saying_how_many() -> None:
    """A workflow of 5,000 broken steps: the reason stays within 4 KiB, and says how many
    problems it left out."""
    steps = [{"id": f"s{i}", "type": "send_mesage"} for i in range(5000)]
    parsed = rejected(published(*steps))
    assert len(parsed.reason.encode()) <= 4096
    assert parsed.reason.startswith("5000 validation error(s): data.definition.steps[0]: ")
    shown = parsed.reason.count("unknown step type")
    assert f"; and {5000 - shown} more problem(s) left out" in parsed.reason


@pytest.mark.parametrize(
    "steps",
    [
        [{"id": "w", "type": "wait", "duration": "180d"}],
        [nested_branches(MAX_STEP_DEPTH + 8)],
    ],
    ids=["a wait past the cap", "nesting past the limit"],
)
def test_a_document_refused_on_arrival_still_loads_from_the_log(steps: list[Any]) -> None:
    """Given a workflow the limits refuse, when it arrives it is rejected; but read back from
    the log (where one accepted before the limits were set may lie) it loads as stored, so a
    replay or a view of that workspace does not fail on it."""
    record = workflow({"type": "send_message", "text": "x"}).model_dump(mode="json")
    record["data"]["definition"]["steps"] = steps
    raw = orjson.dumps(record)
    assert isinstance(parse(raw, MAX), Rejected)
    assert load_event(raw).type == "workflow.published"
