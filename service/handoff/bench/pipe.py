"""The baseline: a no-op aiokafka pipe over the very records handoff reads.

It consumes the backlog from handoff's own input topics (same bytes, partitioning by
workspace key, partition count), with handoff's poll size (`getmany(max_records=
HANDOFF_BATCH_MAX_RECORDS)`), parses each record with orjson and writes it back out as JSON,
produces one output record per input (acks=all, linger 5 ms, as handoff's producer), waits
for the batch's acknowledgements and commits the batch's offsets. Nothing is stored or
decided: this is the ceiling a Kafka-in, Kafka-out service can reach here.
"""

import asyncio
import time
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from handoff.app.settings import Settings

__all__ = ["PipeResult", "run_pipe"]


@dataclass(frozen=True, slots=True)
class PipeResult:
    records: int
    seconds: float
    batches: int

    @property
    def rate(self) -> float:
        return self.records / self.seconds


async def run_pipe(settings: Settings, out_topic: str, records: int) -> PipeResult:
    """Pipe `records` records from the input topics of `settings` to `out_topic`."""
    bootstrap = settings.kafka_bootstrap or ""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        max_request_size=max(1024 * 1024, settings.max_record_bytes * 2),
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"{settings.group_id}-pipe",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=max(1024 * 1024, settings.max_record_bytes * 2),
    )
    await producer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in settings.input_topics
            for p in range(settings.partitions)
        ]
        consumer.assign(partitions)
        await consumer.start()
        try:
            await consumer.seek_to_beginning(*partitions)
            done = batches = 0
            started = time.perf_counter()
            while done < records:
                polled = await consumer.getmany(
                    timeout_ms=200, max_records=settings.batch_max_records
                )
                if not polled:
                    continue
                sent = [
                    await producer.send(out_topic, orjson.dumps(orjson.loads(m.value)), key=m.key)
                    for messages in polled.values()
                    for m in messages
                    if m.value is not None
                ]
                await asyncio.gather(*sent)
                await consumer.commit({tp: ms[-1].offset + 1 for tp, ms in polled.items()})
                done += sum(len(ms) for ms in polled.values())
                batches += 1
            return PipeResult(done, time.perf_counter() - started, batches)
        finally:
            await consumer.stop()
    finally:
        await producer.stop()
