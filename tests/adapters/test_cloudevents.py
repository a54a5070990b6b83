"""Whatever bytes arrive, parse answers accepted, skipped or rejected with a reason: it never
raises, so no record can stop a partition."""

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from handoff.adapters.cloudevents import Accepted, Rejected, Skipped, parse
from tests.builders import opened

GOOD = opened("c1").model_dump(mode="json")


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({**GOOD, "type": ["conversation.opened"]}, "type: a string is required, not list"),
        ({**GOOD, "type": {}}, "type: a string is required, not dict"),
        (
            {**GOOD, "data": {**GOOD["data"], "contact_id": "c\u0000"}},
            "contains a NUL character",
        ),
        ({**GOOD, "time": "yesterday"}, "time: 'yesterday' is not an RFC 3339 date-time"),
        ({**GOOD, "id": ""}, "id: String should have at least 1 character"),
    ],
)
def test_bad_records_are_rejected_with_a_readable_reason(
    record: dict[str, object], reason: str
) -> None:
    parsed = parse(orjson.dumps(record), 10_000)
    assert isinstance(parsed, Rejected)
    assert reason in parsed.reason


def test_an_unknown_type_with_a_valid_envelope_is_skipped() -> None:
    assert isinstance(parse(orjson.dumps({**GOOD, "type": "contact.merged"}), 10_000), Skipped)


def test_a_good_record_is_accepted() -> None:
    assert isinstance(parse(orjson.dumps(GOOD), 10_000), Accepted)


@given(
    st.binary(max_size=200)
    | st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    ).map(orjson.dumps)
)
def test_parse_never_raises(raw: bytes) -> None:
    assert isinstance(parse(raw, 10_000), Accepted | Skipped | Rejected)
