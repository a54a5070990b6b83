"""The schemas in `schemas/` are what the code renders, and they accept what the service accepts."""

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from handoff.adapters.cloudevents import Rejected, dead_letter, parse
from handoff.core.inputs import INPUT_TYPES
from handoff.schema_files import DeadLettered, render
from tests.builders import T0

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
REGENERATE = "run `python -m handoff.schema_files` and commit the result"


def validator(path: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((SCHEMAS / path).read_text()))


def test_schema_files_are_up_to_date() -> None:
    rendered = render()
    stale = [
        path
        for path, text in rendered.items()
        if not (SCHEMAS / path).is_file() or (SCHEMAS / path).read_text() != text
    ]
    assert not stale, f"stale or missing schemas {stale}: {REGENERATE}"
    on_disk = {p.relative_to(SCHEMAS).as_posix() for p in SCHEMAS.glob("events/**/*.schema.json")}
    extra = sorted(on_disk - rendered.keys())
    assert not extra, f"schemas no model renders any more {extra}: delete them"


def envelope(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "in-1",
        "source": "/inbox",
        "type": type_,
        "time": "2026-11-23T09:00:00+00:00",
        "workspaceid": "ws-1",
        "data": data,
    }


SAMPLES = [
    envelope(
        "conversation.opened",
        {
            "contact_id": "c-1",
            "conversation_id": "conv-1",
            "source": "contact",
            "contact": {"tags": ["vip"]},
        },
    ),
    envelope("user.presence_changed", {"user_id": "u-ana", "status": "online"}),
    envelope("team.upserted", {"team_id": "support", "members": ["u-ana", "u-bo"]}),
    envelope(
        "workflow.published",
        {
            "definition": {
                "id": "wf",
                "workspace_id": "ws-1",
                "trigger": {"type": "conversation_opened"},
                "steps": [
                    {
                        "id": "s1",
                        "type": "assign_to",
                        "team_id": "support",
                        "logic": "least_open_contacts",
                        "only_online": True,
                    }
                ],
            }
        },
    ),
]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s["type"])
def test_a_valid_input_validates_against_its_schema(sample: dict[str, Any]) -> None:
    INPUT_TYPES[sample["type"]].model_validate(sample)  # the service accepts it too
    validator(f"events/in/{sample['type']}.schema.json").validate(sample)


def test_an_input_missing_a_required_field_fails_its_schema() -> None:
    sample = envelope("conversation.opened", {"conversation_id": "conv-1", "source": "contact"})
    errors = list(validator("events/in/conversation.opened.schema.json").iter_errors(sample))
    assert [(list(e.path), e.validator) for e in errors] == [(["data"], "required")]
    assert "'contact_id' is a required property" in errors[0].message


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", None], ids=["text", "binary", "none"])
def test_dead_letter_records_match_their_schema(raw: bytes | None) -> None:
    key, record = dead_letter(raw, b"ws-1", "not JSON", ("inbox.conversations", 3, 42), T0)
    letter = DeadLettered.model_validate_json(record)
    assert (key, letter.workspaceid, letter.causationid) == (
        b"ws-1",
        "ws-1",
        "inbox.conversations/3/42",
    )
    validator("events/out/record.deadlettered.schema.json").validate(json.loads(record))


OPENED = SAMPLES[0]


@pytest.mark.parametrize(
    ("sample", "validator_name"),
    [
        ({k: v for k, v in OPENED.items() if k != "specversion"}, "required"),
        ({**OPENED, "specversion": "1.0\n"}, "const"),
        ({**OPENED, "time": 1700000000}, "type"),
        ({**OPENED, "time": "1700000000"}, "pattern"),
        ({**OPENED, "time": "2026-11-23T09:00:00"}, "pattern"),
        ({**OPENED, "type": ""}, "const"),
        (
            envelope("user.upserted", {"user_id": "u-ana", "max_open_contacts": True}),
            "anyOf",  # integer or null: a boolean is neither
        ),
    ],
    ids=[
        "no-specversion",
        "specversion-with-a-newline",
        "time-a-number",
        "time-a-timestamp-string",
        "time-without-offset",
        "type-empty",
        "max-open-contacts-a-boolean",
    ],
)
def test_what_parse_refuses_its_schema_refuses_too(
    sample: dict[str, Any], validator_name: str
) -> None:
    """The schemas agree with strict acceptance (contract v1.1, Envelope)."""
    assert isinstance(parse(json.dumps(sample).encode(), 1 << 20), Rejected)
    errors = list(
        validator(f"events/in/{sample['type'] or 'conversation.opened'}.schema.json").iter_errors(
            sample
        )
    )
    assert [e.validator for e in errors] == [validator_name], [e.message for e in errors]


def test_a_dead_letter_of_a_large_record_matches_its_schema() -> None:
    raw = b"x" * (3 * 1024 * 1024)
    _, record = dead_letter(raw, b"ws-1", "too large", ("inbox.conversations", 3, 42), T0)
    letter = json.loads(record)
    validator("events/out/record.deadlettered.schema.json").validate(letter)
    assert letter["data"]["size"] == len(raw)
    assert letter["data"]["truncated"] is True
    assert letter["data"]["sha256"] == hashlib.sha256(raw).hexdigest()
