"""The bench's no-op pipe on the test broker: split between processes as a consumer group
would split its partitions, it still pipes every record of the backlog, once."""

import asyncio
from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from handoff.app.settings import Settings
from handoff.bench.pipe import run_pipe_processes
from handoff.bench.servers import create_topics, produce
from handoff.bench.stream import encode, stream_params
from handoff.demo.traffic import day_events

pytestmark = pytest.mark.integration


async def _outputs(settings: Settings, topic: str, count: int) -> list[dict[str, object]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen: list[dict[str, object]] = []
    try:
        async with asyncio.timeout(60):
            while len(seen) < count:
                polled = await consumer.getmany(timeout_ms=200)
                seen += [orjson.loads(m.value) for ms in polled.values() for m in ms if m.value]
    finally:
        await consumer.stop()
    return seen


async def test_the_pipe_in_two_processes_pipes_every_record_once(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, partitions=4)
    records = encode(day_events(stream_params(6, 2, datetime(2026, 11, 21, tzinfo=UTC), (3, 3))))
    out = settings.topic("pipe.out")
    await create_topics(settings, [out])
    await produce(settings, records)

    piped = await run_pipe_processes(settings, out, [r.key for r in records], 2, give_up_after=60)

    assert piped.records == len(records)
    outputs = await _outputs(settings, out, len(records))
    inputs = [orjson.loads(r.value) for r in records]
    assert Counter((o["workspaceid"], o["causationid"]) for o in outputs) == Counter(
        (i["workspaceid"], i["id"]) for i in inputs
    )
