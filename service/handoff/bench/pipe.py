"""The baseline: a no-op aiokafka pipe over the very records handoff reads.

It consumes handoff's own input topics (same bytes, partitioning by workspace key,
partition count), with handoff's poll size (`getmany(max_records=HANDOFF_BATCH_MAX_RECORDS)`)
and fetch wait, parses each record with orjson and writes it back out as JSON with the
input's id as its `causationid`, produces one output record per input (acks=all), waits for
the batch's acknowledgements and commits the batch's offsets. Nothing is stored or decided:
this is the ceiling a Kafka-in, Kafka-out service can reach here, in throughput
(`run_pipe`, a backlog; `run_pipe_processes`, the same backlog split between processes, to
set beside several `handoff run` instances) and in latency (`python -m handoff.bench.pipe`,
a process of its own that pipes until it is stopped, as `handoff run` is measured).
"""

import asyncio
import multiprocessing
import signal
import sys
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from handoff.app.settings import Settings

__all__ = ["PipeResult", "run_pipe", "run_pipe_processes"]


@dataclass(frozen=True, slots=True)
class PipeResult:
    records: int
    seconds: float
    batches: int

    @property
    def rate(self) -> float:
        return self.records / self.seconds


def _output(value: bytes) -> bytes:
    event = orjson.loads(value)
    return orjson.dumps({**event, "causationid": event.get("id")})


async def _pipe(
    settings: Settings,
    out_topic: str,
    go_on: Callable[[int], bool],
    partitions: Collection[int] | None = None,
) -> PipeResult:
    """Pipe from the start of the input topics of `settings` (only `partitions` of each, if
    given) while `go_on(records piped)`."""
    bootstrap = settings.kafka_bootstrap or ""
    fetch_bytes = max(1024 * 1024, settings.max_record_bytes * 2)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=0, max_request_size=fetch_bytes
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"{settings.group_id}-pipe",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=fetch_bytes,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )
    await producer.start()
    try:
        tps = [
            TopicPartition(topic, p)
            for topic in settings.input_topics
            for p in range(settings.partitions)
            if partitions is None or p in partitions
        ]
        consumer.assign(tps)
        await consumer.start()
        try:
            await consumer.seek_to_beginning(*tps)
            done = batches = 0
            started = time.perf_counter()
            while go_on(done):
                polled = await consumer.getmany(
                    timeout_ms=200, max_records=settings.batch_max_records
                )
                if not polled:
                    continue
                sent = [
                    await producer.send(out_topic, _output(m.value), key=m.key)
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


async def run_pipe(settings: Settings, out_topic: str, records: int) -> PipeResult:
    """Pipe `records` records from the input topics of `settings` to `out_topic`."""
    return await _pipe(settings, out_topic, lambda done: done < records)


def _share(
    settings: Settings, out_topic: str, partitions: list[int], records: int, give_up_after: float
) -> tuple[PipeResult, float]:
    """One process's part of `run_pipe_processes`, and when (wall clock) it was done."""
    deadline = time.monotonic() + give_up_after

    def go_on(done: int) -> bool:
        return done < records and time.monotonic() < deadline

    piped = asyncio.run(_pipe(settings, out_topic, go_on, partitions))
    if piped.records < records:
        raise TimeoutError(
            f"partitions {partitions}: {piped.records:,} of {records:,} records piped"
            f" in {give_up_after:.0f} s"
        )
    return piped, time.time()


async def run_pipe_processes(
    settings: Settings,
    out_topic: str,
    keys: Sequence[bytes],
    count: int,
    give_up_after: float = 600.0,
) -> PipeResult:
    """Pipe the backlog whose records have these `keys` in `count` processes, each with the
    partitions handoff's consumer group (range assignor) gives its members; timed from the
    first process piping to the last one done, as `count` instances are from the first one
    ready. A process that has not seen its share after `give_up_after` seconds stops, and
    this raises `TimeoutError`: a figure for part of the backlog would read as the whole
    one's."""
    every = list(range(settings.partitions))
    each, extra = divmod(len(every), count)  # the first `extra` members take one more
    ranges = [
        every[each * i + min(i, extra) : each * (i + 1) + min(i + 1, extra)] for i in range(count)
    ]
    member_of = {p: i for i, partitions in enumerate(ranges) for p in partitions}
    shares = [0] * count
    partition_of = DefaultPartitioner()  # the producer's: murmur2 of the key
    for key in keys:
        shares[member_of[partition_of(key, every, every)]] += 1
    context = multiprocessing.get_context("spawn")  # a fork would copy this running loop
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(count, mp_context=context) as pool:
        parts = await asyncio.gather(
            *(
                loop.run_in_executor(
                    pool, _share, settings, out_topic, ranges[i], shares[i], give_up_after
                )
                for i in range(count)
            )
        )
    # Each end is read once its process's clients have stopped: a few ms late, alike for all.
    started = min(done - piped.seconds for piped, done in parts)
    return PipeResult(
        sum(piped.records for piped, _ in parts),
        max(done for _, done in parts) - started,
        sum(piped.batches for piped, _ in parts),
    )


async def _pipe_until_stopped(settings: Settings, out_topic: str) -> None:
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    print("ready", flush=True)
    await _pipe(settings, out_topic, lambda _: not stopped.is_set())


if __name__ == "__main__":
    # python -m handoff.bench.pipe OUT_TOPIC, with the settings in HANDOFF_* variables.
    asyncio.run(_pipe_until_stopped(Settings(), sys.argv[1]))
