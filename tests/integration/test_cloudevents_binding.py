"""What handoff writes reads back through the CloudEvents SDK's Kafka protocol binding.

Contract v1.1 (Envelope): each record handoff writes is one CloudEvent in structured JSON mode
and carries `content-type: application/cloudevents+json; charset=UTF-8`. The Kafka binding
tells the modes apart by that header: a value prefixed `application/cloudevents` means
structured mode; anything else, or no header, means binary mode, where the attributes are `ce_`
headers and the value is `data` alone. A consumer following the binding therefore cannot read a
record without the header as the event it holds.

The SDK's own auto-detecting reader (`from_kafka_event`) looks only for `ce_` headers and reads
anything else as structured, so it would not notice a missing header: `read_record` dispatches
on the content-type header as the binding says, and the test also checks the SDK's reader agrees.
"""

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings import kafka
from cloudevents.core.formats.json import JSONFormat

from handoff.adapters.kafka_send import CLOUDEVENTS_HEADERS
from tests.builders import assign_team, opened, presence, team, user, workflow
from tests.integration.harness import Stack, running, settings_for

pytestmark = pytest.mark.integration

STRUCTURED_JSON = b"application/cloudevents+json; charset=UTF-8"
"""The header value contract v1.1 gives."""

OUTPUT_TYPES = {"message.requested", "contact.assigned", "comment.created", "record.deadlettered"}


@pytest.fixture
async def stack(kafka_bootstrap: str, database_url: str) -> AsyncIterator[Stack]:
    prefix = f"ce{secrets.token_hex(3)}."
    async with running(settings_for(kafka_bootstrap, database_url, prefix)) as s:
        yield s


def read_record(record: "ConsumerRecord[bytes, bytes]") -> tuple[str, BaseCloudEvent]:
    """The record's content mode and event, as the CloudEvents Kafka binding reads them."""
    message = kafka.KafkaMessage(
        headers=dict(record.headers), key=record.key, value=record.value or b""
    )
    content_type = message.headers.get("content-type", b"")
    if content_type.startswith(b"application/cloudevents"):
        return "structured", kafka.from_structured(message, JSONFormat())
    return "binary", kafka.from_binary(message, JSONFormat())


async def consume(
    stack: Stack, ws: str, types: set[str], timeout: float = 30.0
) -> list["ConsumerRecord[bytes, bytes]"]:
    """The output records of workspace `ws`, headers and all, once each of `types` is there."""
    consumer = AIOKafkaConsumer(
        *stack.settings.output_topics.values(),
        bootstrap_servers=stack.bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        async with asyncio.timeout(timeout):
            while not types <= {orjson.loads(r.value or b"{}")["type"] for r in records}:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(r for r in batch if r.key == ws.encode())
    finally:
        await consumer.stop()
    return records


async def test_every_output_and_dead_letter_is_a_structured_mode_cloudevent(
    stack: Stack,
) -> None:
    assert dict(CLOUDEVENTS_HEADERS) == {"content-type": STRUCTURED_JSON}
    ws = f"ce-{secrets.token_hex(3)}"
    await stack.send(
        user("ann", ws=ws),
        presence("ann", ws=ws),
        team("support", "ann", ws=ws),
        workflow(
            {"type": "send_message", "text": "Hi!"},
            assign_team("support"),
            {"type": "add_comment", "text": "yours", "mention": "assignee"},
            ws=ws,
        ),
        opened("c1", ws=ws, id=f"{ws}-open-c1"),
    )
    await stack.send_raw("topic_conversations", b"not json {", key=ws.encode())

    records = await consume(stack, ws, OUTPUT_TYPES)

    missing = [
        (r.topic, r.offset, orjson.loads(r.value or b"{}")["type"], r.headers)
        for r in records
        if ("content-type", STRUCTURED_JSON) not in r.headers
    ]
    assert not missing, f"records without the structured-mode content-type header: {missing}"
    assert all(not name.startswith("ce_") for r in records for name, _ in r.headers)

    events: dict[str, BaseCloudEvent] = {}
    for record in records:
        mode, event = read_record(record)
        assert mode == "structured"
        raw: dict[str, Any] = orjson.loads(record.value or b"")
        assert event.get_specversion() == "1.0"
        assert event.get_id() == raw["id"]
        assert event.get_type() == raw["type"]
        assert event.get_source() == raw["source"]
        assert event.get_data() == raw["data"]
        assert event.get_datacontenttype() == "application/json"
        assert event.get_time() is not None
        assert event.get_extension("workspaceid") == ws
        assert event.get_extension("partitionkey") == ws  # the record key, as the binding maps it
        assert event.get_extension("causationid")
        # the SDK's auto-detecting reader reads the same event
        again = kafka.from_kafka_event(
            kafka.KafkaMessage(dict(record.headers), record.key, record.value or b"")
        )
        assert again.get_attributes() == event.get_attributes()
        assert again.get_data() == event.get_data()
        events[event.get_type()] = event

    assert set(events) == OUTPUT_TYPES
    assert len({e.get_id() for e in events.values()}) == len(events)

    assigned = events["contact.assigned"]
    assert assigned.get_subject() == "c1"
    assert assigned.get_extension("causationid") == f"{ws}-open-c1"
    assigned_data = assigned.get_data()
    assert isinstance(assigned_data, dict)
    assert (assigned_data["contact_id"], assigned_data["assignee_id"]) == ("c1", "ann")

    message = events["message.requested"].get_data()
    assert isinstance(message, dict)
    assert (message["contact_id"], message["text"]) == ("c1", "Hi!")

    comment = events["comment.created"].get_data()
    assert isinstance(comment, dict)
    assert (comment["contact_id"], comment["text"], comment["mentions"]) == ("c1", "yours", ["ann"])

    dead = events["record.deadlettered"]
    dead_data = dead.get_data()
    assert isinstance(dead_data, dict)
    assert dead_data["original"] == "not json {"
    assert dead_data["reason"].startswith("not JSON")
    assert dead_data["topic"] == stack.settings.topic(stack.settings.topic_conversations)
