"""Latency from produce of an input to arrival of each output it caused, at a paced rate: a
share of the sustained rate, or a fixed one.

A producer sends a fresh stream (workspaces of their own, set up and then living their day)
at a constant rate, each event stamped with the time it is sent; a consumer on the output
topics notes when each output arrives and matches it to its input by `causationid`. Outputs
of timers (whose cause is the timer, not an input) are not counted.
"""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from handoff.adapters.kafka_send import input_topic_for
from handoff.app.settings import Settings
from handoff.bench.servers import wall_now
from handoff.bench.stats import LatencySummary, summarize_latencies
from handoff.demo.traffic import CloudEvent

__all__ = ["LevelResult", "Paced", "pace"]

_TICK = 0.002
"""Seconds between the pacer's looks at the clock."""

_ANSWER_TIMEOUT = 60.0
"""Seconds the pipe's last outputs are waited for."""


@dataclass(frozen=True, slots=True)
class Paced:
    """One service's answers to one paced run."""

    sent: int
    seconds: float
    inputs_answered: int
    """Inputs that caused at least one output."""
    latency: LatencySummary | None

    @property
    def achieved_rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


@dataclass(frozen=True, slots=True)
class LevelResult:
    share: float | None
    """Of the sustained rate; None for a fixed rate (a realistic load: 100, 1,000 inputs/s)."""
    target_rate: float
    handoff: Paced
    pipe: Paced | None
    """The no-op pipe at the same rate: the latency floor of the broker and the machine."""


async def _output_consumer(settings: Settings, topics: Sequence[str]) -> AIOKafkaConsumer:
    """A consumer at the end of every output partition (it may re-read the broker's last
    batch, see the broker notes: harmless, those outputs match no input of this level)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap or "",
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=5,
    )
    await consumer.start()
    tps = [
        TopicPartition(topic, p)
        for topic in topics
        for p in consumer.partitions_for_topic(topic) or range(settings.partitions)
    ]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)
    return consumer


async def _read(
    consumer: AIOKafkaConsumer,
    arrivals: list[tuple[str, float]],
    expected: int,
    all_arrived: asyncio.Event,
) -> None:
    while True:
        polled = await consumer.getmany(timeout_ms=100)
        at = time.perf_counter()
        for messages in polled.values():
            for m in messages:
                if m.value is not None:
                    cause = orjson.loads(m.value).get("causationid")
                    if isinstance(cause, str):
                        arrivals.append((cause, at))
        if len(arrivals) >= expected:
            all_arrived.set()


async def pace(
    settings: Settings,
    events: Sequence[CloudEvent],
    rate: float,
    seconds: float,
    outputs: Sequence[str],
    applied: Callable[[int], Awaitable[None]] | None,
) -> Paced:
    """Send `rate` events/s of `events` for `seconds` (at most all of them) to the input
    topics of `settings`, and time the outputs that arrive on `outputs`.

    `applied(sent)` returns once the service has applied every input sent; None says the
    service answers each input with one output (the pipe), so that is waited for instead.
    """
    total = min(len(events), max(1, round(rate * seconds)))
    consumer = await _output_consumer(settings, outputs)
    arrivals: list[tuple[str, float]] = []
    all_arrived = asyncio.Event()
    reader = asyncio.create_task(_read(consumer, arrivals, total, all_arrived))
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap or "", acks="all", linger_ms=1
    )
    await producer.start()
    produced: dict[str, float] = {}
    try:
        deliveries = []
        wall0, started = wall_now(), time.perf_counter()
        sent = 0
        while sent < total:
            due = min(total, int((time.perf_counter() - started) * rate) + 1)
            while sent < due:
                event = events[sent]
                now = time.perf_counter()
                stamped = {
                    **event,
                    "time": (wall0 + timedelta(seconds=now - started)).isoformat(
                        timespec="microseconds"
                    ),
                }
                produced[str(event["id"])] = now
                deliveries.append(
                    await producer.send(
                        input_topic_for(settings, str(event["type"])),
                        orjson.dumps(stamped),
                        key=str(event["workspaceid"]).encode(),
                    )
                )
                sent += 1
            await asyncio.sleep(_TICK)
        await asyncio.gather(*deliveries)
        paced = time.perf_counter() - started
        if applied is not None:
            await applied(total)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_arrived.wait(), _ANSWER_TIMEOUT)
        # The last outputs are relayed; give the consumer until it has seen nothing new for
        # half a second.
        seen, quiet_since = len(arrivals), time.perf_counter()
        while time.perf_counter() - quiet_since < 0.5:
            await asyncio.sleep(0.05)
            if len(arrivals) != seen:
                seen, quiet_since = len(arrivals), time.perf_counter()
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await producer.stop()
        await consumer.stop()
    latencies = [at - produced[cause] for cause, at in arrivals if cause in produced]
    answered = len({cause for cause, _ in arrivals if cause in produced})
    return Paced(total, paced, answered, summarize_latencies(latencies))
