"""Dead letters are bounded as contract v1.1 has it: the original bytes up to 16 KiB (past
that, their first 16 KiB, their size and their SHA-256), the coordinates always, and no
record handoff writes over 64 KiB, whatever the record, its key or the reason."""

import base64
import hashlib
import json
import os
from typing import Any

import orjson
import pytest

from handoff.adapters.cloudevents import (
    MAX_OUTPUT_BYTES,
    ORIGINAL_PREFIX_BYTES,
    REASON_MAX_BYTES,
    Rejected,
    dead_letter,
    parse,
)
from handoff.schema_files import DeadLettered, DeadLetteredData
from tests.builders import T0, opened

KiB = 1024
MiB = 1024 * KiB
WHERE = ("inbox.conversations", 5, 123_456)


def letter_of(
    raw: bytes | None, reason: str = "not JSON", key: bytes | None = b"ws-1"
) -> tuple[bytes, DeadLetteredData, dict[str, Any]]:
    """The dead letter's key and data, once its whole size is checked against 64 KiB."""
    letter_key, value = dead_letter(raw, key, reason, WHERE, T0)
    assert len(letter_key) + len(value) <= MAX_OUTPUT_BYTES, len(letter_key) + len(value)
    return letter_key, DeadLettered.model_validate_json(value).data, orjson.loads(value)


def assert_prefix_and_digest(data: DeadLetteredData, raw: bytes) -> None:
    assert (data.topic, data.partition, data.offset) == WHERE
    assert data.size == len(raw)
    assert data.sha256 == hashlib.sha256(raw).hexdigest()
    assert data.truncated == (len(raw) > ORIGINAL_PREFIX_BYTES)
    assert data.original_base64 is not None
    assert base64.b64decode(data.original_base64, validate=True) == raw[:ORIGINAL_PREFIX_BYTES]


def too_large(size: int) -> bytes:
    """A well-formed conversation.opened of `size` bytes (its channel is the padding)."""
    record = opened("c1").model_dump(mode="json")
    base = len(orjson.dumps(record))
    record["data"]["channel"] = "x" * (size - base + 2)  # "null" becomes "xx…"
    raw = orjson.dumps(record)
    assert len(raw) == size
    return raw


ONE_MILLION = b"a" * (ORIGINAL_PREFIX_BYTES - 1) + "é".encode() * 491_808 + b"b"
"""1,000,000 bytes of UTF-8, the 16 KiB cut falling inside a two-byte `é`."""


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(too_large(int(1.1 * MiB)), id="1.1-MiB-record"),
        pytest.param(os.urandom(3 * MiB), id="3-MiB-of-random-bytes"),
        pytest.param(ONE_MILLION, id="1000000-bytes-of-UTF-8"),
        pytest.param(b"\x01" * 400_000, id="400-KB-of-control-characters"),
    ],
)
def test_given_a_large_record_when_dead_lettered_then_under_64_kib_with_size_and_sha256(
    raw: bytes,
) -> None:
    """Given a record far over 16 KiB (the old dead letter held it twice, as text and as
    base64: a 1 MiB record made 2.6 MB, which the producer refused), when dead-lettered, then
    the letter is under 64 KiB, with the record's size and SHA-256 and its first 16 KiB."""
    parsed = parse(raw, 1 * MiB)
    assert isinstance(parsed, Rejected)
    _, data, _ = letter_of(raw, parsed.reason)
    assert_prefix_and_digest(data, raw)
    assert data.truncated
    if data.original is not None:
        assert raw.startswith(data.original.encode())
        assert len(data.original.encode()) <= ORIGINAL_PREFIX_BYTES


def test_given_a_one_million_byte_record_cut_inside_a_character_then_the_text_ends_before_it() -> (
    None
):
    """Given 1,000,000 bytes of UTF-8 whose 16 KiB cut falls inside a two-byte `é`, when
    dead-lettered, then `original` is the text up to the last whole character (the base64
    has every byte of the 16 KiB)."""
    raw = ONE_MILLION
    assert len(raw) == 1_000_000
    _, data, _ = letter_of(raw)
    assert_prefix_and_digest(data, raw)
    assert data.original == "a" * (ORIGINAL_PREFIX_BYTES - 1)


def test_given_control_characters_when_dead_lettered_then_the_text_is_left_to_the_base64() -> None:
    """16 KiB of control characters is 96 KiB as JSON text: it is left out (null); the
    base64 still holds the bytes. A few KiB of them still go as text too."""
    _, data, _ = letter_of(b"\x01" * 400_000)
    assert data.original is None
    _, small, _ = letter_of(b"\x01" * (4 * KiB))
    assert small.original == "\x01" * (4 * KiB)


@pytest.mark.parametrize("size", [ORIGINAL_PREFIX_BYTES, ORIGINAL_PREFIX_BYTES + 1])
def test_given_a_record_at_the_16_kib_edge_then_truncated_only_past_it(size: int) -> None:
    raw = b"{" + b"x" * (size - 1)
    _, data, _ = letter_of(raw)
    assert_prefix_and_digest(data, raw)
    assert data.original == raw[:ORIGINAL_PREFIX_BYTES].decode()


def test_given_a_small_record_then_everything_is_there_as_before() -> None:
    """Existing fields keep their meaning: up to 16 KiB, all the bytes, as text and base64."""
    raw = b'{"type": "conversation.opened", "workspaceid": "acme", "id": "e-1"}'
    key, data, letter = letter_of(raw, "not JSON: unexpected end")
    assert data.original == raw.decode()
    assert_prefix_and_digest(data, raw)
    assert not data.truncated
    assert (key, letter["workspaceid"], letter["causationid"]) == (b"acme", "acme", "e-1")
    assert data.reason == "not JSON: unexpected end"


def test_given_no_value_then_size_0_and_the_sha256_of_nothing() -> None:
    _, data, _ = letter_of(None, "empty record (no value)")
    assert (data.original, data.original_base64, data.size, data.truncated) == (
        None,
        None,
        0,
        False,
    )
    assert data.sha256 == hashlib.sha256(b"").hexdigest()


def test_given_a_reason_of_thousands_of_problems_then_it_is_cut_to_4_kib_saying_so() -> None:
    """A reason of any length (a poison's traceback, 100,000 control characters) is cut to
    4 KiB as JSON text in the letter, saying how much was left out."""
    reason = "poison: " + "\u0007" * 100_000
    _, data, letter = letter_of(b"{}", reason)
    assert len(orjson.dumps(letter["data"]["reason"])) - 2 <= REASON_MAX_BYTES
    assert data.reason.startswith("poison: \u0007")
    assert data.reason.endswith("more characters]")


def test_given_names_too_long_to_route_by_then_the_key_and_attributes_stay_small() -> None:
    """A refused record whose workspace id and id are megabytes, with a megabyte key: the
    letter goes to workspace `unknown`, caused by the record's coordinates."""
    raw = json.dumps({"workspaceid": "w" * MiB, "id": "i" * MiB, "type": 5}).encode()
    key, _, letter = letter_of(raw, key=b"k" * MiB)
    assert (key, letter["workspaceid"]) == (b"unknown", "unknown")
    assert letter["causationid"] == "inbox.conversations/5/123456"


@pytest.mark.parametrize(
    "key", [b"\x01" * 256, "😀".encode() * 256], ids=["control-characters", "four-byte"]
)
@pytest.mark.parametrize("raw", [b'"' * 20_000, b"\\" * 20_000], ids=["quotes", "backslashes"])
def test_given_the_worst_of_everything_then_the_letter_is_still_under_64_kib(
    key: bytes, raw: bytes
) -> None:
    """The largest dead letter there can be: a 16 KiB prefix whose text doubles as JSON (to
    32 KiB, the most text a letter carries), a 256-character key of the characters that take
    most room (6 bytes each as JSON, or 4 as the key), a reason of control characters, the
    longest topic Kafka allows and the largest partition and offset. About 61 KiB."""
    where = ("t" * 249, 2**31 - 1, 2**63 - 1)
    letter_key, value = dead_letter(raw, key, "\u0002" * 10_000, where, T0)
    data = DeadLettered.model_validate_json(value).data
    assert data.original == raw[:ORIGINAL_PREFIX_BYTES].decode()  # the text went in, whole
    assert 60 * KiB < len(letter_key) + len(value) <= MAX_OUTPUT_BYTES
