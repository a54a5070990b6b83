"""The embedded broker and PostgreSQL for one benchmark run, and what every measurement needs
of them: a fresh database, topics, settings, producing a backlog, waiting for a drain.

The broker is started from the calling (main) thread: it dies with the thread that started
it. Each measurement gets a topic prefix and a database of its own on the one server, so the
figures of one run share the machine's state but never each other's data.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
from aiokafka import AIOKafkaProducer

from handoff.adapters.embedded import EmbeddedBroker, EmbeddedPostgres
from handoff.adapters.kafka_topics import ensure_topics
from handoff.adapters.pg_store import migrate
from handoff.app.settings import Settings
from handoff.bench.stream import Record
from handoff.core.events import OUTPUT_TOPIC_OF
from handoff.core.timers import TIMER_SOURCE

__all__ = [
    "Drained",
    "Servers",
    "bench_settings",
    "create_database",
    "create_topics",
    "produce",
    "wait_drained",
    "wall_now",
]


def wall_now() -> datetime:
    """The wall clock: the benchmark is an edge, like the demo."""
    return datetime.now(UTC)


@dataclass
class Servers:
    """The running embedded servers of this run."""

    bootstrap: str
    server_dsn: str
    broker: EmbeddedBroker
    postgres: EmbeddedPostgres

    @classmethod
    def start(cls, data_dir: Path) -> "Servers":
        broker = EmbeddedBroker(log_path=data_dir / "broker.log")
        bootstrap = broker.start()
        postgres = EmbeddedPostgres(data_dir / "postgres")
        try:
            dsn = postgres.start()
        except BaseException:
            broker.stop()
            raise
        return cls(bootstrap, dsn, broker, postgres)

    def stop(self) -> None:
        try:
            self.postgres.stop()
        finally:
            self.broker.stop()


async def create_database(server_dsn: str, name: str) -> str:
    """A new database on the server, migrated; returns its DSN."""
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = urlsplit(server_dsn)._replace(path=f"/{name}").geturl()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        await migrate(pool)
    finally:
        await pool.close()
    return dsn


def bench_settings(base: Settings, bootstrap: str, dsn: str, name: str) -> Settings:
    """The service's settings for one measurement: the run's servers, its own topics and
    group, no HTTP port, plain connections, a consumer group that forms quickly (as the demo
    and the tests have it). Partitions and batch size stay as the environment sets them."""
    return base.on_tool_servers(
        kafka_bootstrap=bootstrap,
        database_url=dsn,
        topic_prefix=f"{name}.",
        group_id=f"{name}-handoff",
        log_level="WARNING",
    )


async def create_topics(settings: Settings, extra_outputs: Sequence[str] = ()) -> int:
    """The service's topics (and `extra_outputs`) with the settings' partition count."""
    return await ensure_topics(
        settings.kafka_bootstrap or "",
        settings.input_topics,
        [*settings.output_topics.values(), *extra_outputs],
        settings.partitions,
        settings.kafka_options(),
    )


async def produce(settings: Settings, records: Sequence[Record], chunk: int = 5000) -> float:
    """Send the records to the input topics of `settings` (acks=all), in order; returns the
    records/s it took."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap or "",
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    started = time.perf_counter()
    try:
        for at in range(0, len(records), chunk):
            sent = [
                await producer.send(r.topic(settings), r.value, key=r.key)
                for r in records[at : at + chunk]
            ]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return len(records) / max(time.perf_counter() - started, 1e-9)


@dataclass(frozen=True, slots=True)
class Drained:
    """A backlog applied: how long it took from the start, and what the log then held."""

    seconds: float
    inputs: int
    decisions: int
    outputs: int
    timer_inputs: int
    decided: Counter[str] = field(default_factory=Counter)
    """Decision type -> logged."""

    @property
    def rate(self) -> float:
        """Kafka inputs applied per second."""
        return self.inputs / self.seconds


async def wait_drained(
    dsn: str,
    group_id: str,
    records: int,
    started: float,
    alive: Callable[[], Awaitable[None]],
    limit: float = 900.0,
) -> Drained:
    """Until the log holds `records` Kafka inputs and the outbox is empty; `started` is the
    `time.perf_counter()` the drain is timed from; `alive` raises if a service has died;
    gives up `limit` s after `started`.

    The cheap gate, polled every 0.1 s, is the consumer positions stored with each batch
    (their sum reaches `records` once every record is committed); the count of logged inputs
    then confirms it, so the polling itself takes little from the service.
    """
    conn = await asyncpg.connect(dsn)
    try:
        deadline = started + limit
        polls = 0
        while True:
            await alive()
            reached = await conn.fetchval(
                "SELECT coalesce(sum(greatest(next_offset, 0)), 0) FROM consumer_positions"
                " WHERE group_id = $1",
                group_id,
            )
            polls += 1
            if reached >= records or polls % 20 == 0:  # the count now and then, in any case
                logged = await _kafka_inputs(conn)
                pending = await conn.fetchval("SELECT count(*) FROM outbox")
                if logged >= records and pending == 0:
                    elapsed = time.perf_counter() - started
                    return await _drained(conn, elapsed, logged)
            if time.perf_counter() > deadline:
                raise TimeoutError(f"the backlog was not through in {limit:.0f} s")
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def _kafka_inputs(conn: asyncpg.Connection) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM event_log WHERE is_input AND source <> $1", TIMER_SOURCE
    )
    return count


async def _drained(conn: asyncpg.Connection, seconds: float, inputs: int) -> Drained:
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE NOT is_input) AS decisions,"
        " count(*) FILTER (WHERE is_input AND source = $1) AS timers"
        " FROM event_log",
        TIMER_SOURCE,
    )
    assert row is not None
    decided = Counter[str](
        {
            r["type"]: r["n"]
            for r in await conn.fetch(
                "SELECT type, count(*) AS n FROM event_log WHERE NOT is_input GROUP BY type"
            )
        }
    )
    outputs = sum(n for kind, n in decided.items() if kind in OUTPUT_TOPIC_OF)
    return Drained(seconds, inputs, row["decisions"], outputs, row["timers"], decided)
