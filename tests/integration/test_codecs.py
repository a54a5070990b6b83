"""Every compression codec a Kafka producer may use reaches the service.

An upstream inbox on librdkafka (confluent-kafka) compresses its batches with whatever
`compression.type` it was given. aiokafka decompresses gzip with the standard library, and
snappy, lz4 and zstd only with its codec extras (cramjam, a runtime dependency of handoff):
without them its consumer raises `UnsupportedCodecError` and nothing gets routed. So each
codec here sends a workspace's setup and conversations, and each conversation must be assigned.
"""

import asyncio
import secrets
import zlib
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from typing import Any

import aiokafka.codec
import orjson
import pytest
from confluent_kafka import KafkaError, Message, Producer

from handoff.adapters.kafka_send import input_topic_for
from handoff.app import pipeline
from handoff.app.settings import Settings
from handoff.core.envelope import Envelope
from tests.builders import assign_team, opened, presence, team, user, workflow
from tests.integration.faults import free_port, http_get, poll_until
from tests.integration.harness import Stack, as_json, of_workspace, routed, running, settings_for

pytestmark = pytest.mark.integration

CODECS = ["gzip", "snappy", "lz4", "zstd"]
CONTACTS = ["c1", "c2", "c3"]


@pytest.fixture(scope="module")
async def stack(kafka_bootstrap: str, database_url: str) -> AsyncIterator[Stack]:
    prefix = f"codec{secrets.token_hex(3)}."
    async with running(settings_for(kafka_bootstrap, database_url, prefix)) as s:
        yield s


async def produce(
    settings: Settings, bootstrap: str, codec: str, *events: Envelope | dict[str, Any]
) -> None:
    """Send `events` with confluent-kafka, compressed with `codec`, keyed by workspace, each to
    the topic the contract names, acknowledged before a record goes to another topic (as
    `send_events` does, for the same reason: the service reads a caught-up topic as having
    nothing older to come). A topic's records are flushed together, so they share a batch."""
    failures: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(err)

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "compression.type": codec,
            "linger.ms": 50,
            "acks": "all",
        }
    )
    for run in _runs_by_topic(settings, as_json(events)):
        for topic, key, value in run:
            producer.produce(topic, value, key, on_delivery=delivered)
        # flush blocks: off the event loop, where the service runs
        left = await asyncio.to_thread(producer.flush, 30)
        assert left == 0, f"{left} records not acknowledged within 30 s ({codec})"
    assert not failures, failures


def _runs_by_topic(
    settings: Settings, events: Iterable[dict[str, Any]]
) -> list[list[tuple[str, bytes, bytes]]]:
    runs: list[list[tuple[str, bytes, bytes]]] = []
    for event in events:
        topic = input_topic_for(settings, event["type"])
        record = (topic, event["workspaceid"].encode(), orjson.dumps(event))
        if runs and runs[-1][0][0] == topic:
            runs[-1].append(record)
        else:
            runs.append([record])
    return runs


@pytest.mark.parametrize("codec", CODECS)
async def test_records_compressed_with_each_codec_are_routed(stack: Stack, codec: str) -> None:
    ws = f"codec-{codec}-{secrets.token_hex(3)}"
    await produce(
        stack.settings,
        stack.bootstrap,
        codec,
        user("ann", ws=ws),
        user("bob", ws=ws),
        presence("ann", ws=ws),
        presence("bob", ws=ws),
        team("support", "ann", "bob", ws=ws),
        workflow(assign_team("support"), ws=ws),
        *(opened(c, ws=ws) for c in CONTACTS),
    )
    outs = await stack.outputs(
        lambda o: len(of_workspace(o, ws, "contact.assigned")) >= len(CONTACTS)
    )
    assert routed(outs, ws) == [
        ("contact.assigned", "c1", "ann"),
        ("contact.assigned", "c2", "bob"),
        ("contact.assigned", "c3", "ann"),
    ]


def _on_partition(partition: int, partitions: int, tag: str) -> str:
    """A workspace id that librdkafka's default partitioner (CRC-32 of the key) puts on
    `partition`."""
    n = 0
    while zlib.crc32(f"{tag}-{n}".encode()) % partitions != partition:
        n += 1
    return f"{tag}-{n}"


async def test_a_batch_that_cannot_be_decoded_holds_its_partition_and_loses_nothing(
    kafka_bootstrap: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a service that cannot decode snappy (as before the codec extras), when a snappy
    batch arrives on one partition and gzip on another, then the gzip one is routed while the
    snappy partition is held and says so (`/readyz`, a metric); and once it can be decoded,
    it is read from where it stood: nothing of it was skipped."""
    monkeypatch.setattr(aiokafka.codec, "cramjam", None)
    monkeypatch.setattr(pipeline, "HOLD_RETRY", timedelta(seconds=1))
    port = free_port()
    settings = settings_for(
        kafka_bootstrap, database_url, f"held{secrets.token_hex(3)}.", http_port=port
    )
    held, flowing = _on_partition(0, 4, "held"), _on_partition(1, 4, "flowing")
    async with running(settings) as stack:
        for ws in (held, flowing):
            setup = [user("ann", ws=ws), presence("ann", ws=ws), team("t", "ann", ws=ws)]
            await produce(settings, stack.bootstrap, "none", *setup)
            await produce(settings, stack.bootstrap, "none", workflow(assign_team("t"), ws=ws))
        await produce(settings, stack.bootstrap, "snappy", opened("c1", ws=held))
        await produce(settings, stack.bootstrap, "gzip", opened("c1", ws=flowing))

        outs = await stack.outputs(lambda o: bool(of_workspace(o, flowing, "contact.assigned")))
        assert of_workspace(outs, held, "contact.assigned") == []
        status, body = await http_get(port, "/readyz")
        assert status == 503
        assert "held: UnsupportedCodecError" in body
        assert f"{settings.topic(settings.topic_conversations)}[0]" in body
        _, metrics = await http_get(port, "/metrics")
        assert 'handoff_partitions_held{partition="0"} 1.0' in metrics

        monkeypatch.undo()  # the codec can be read again: the held partition is tried again
        outs = await stack.outputs(lambda o: bool(of_workspace(o, held, "contact.assigned")))
        assert routed(outs, held) == [("contact.assigned", "c1", "ann")]
        assert await poll_until(lambda: _ready(port), timeout=30)


async def _ready(port: int) -> bool:
    return (await http_get(port, "/readyz"))[0] == 200
