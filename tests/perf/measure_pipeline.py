"""How fast the pipeline applies a backlog, against a bare Kafka pipe on the same machine and run.

Not a test (nothing is asserted, pytest does not collect it): it prints figures. One process
starts the broker and PostgreSQL (or uses HANDOFF_KAFKA_BOOTSTRAP / HANDOFF_DATABASE_URL),
times a no-op consume-parse-produce-commit pipe over as many records as handoff gets, then
handoff itself over a pre-produced backlog (setup of N workspaces, M conversations opened, a
quarter of them closed), then `replay` over the log it wrote. The ratio to the bare pipe is the
figure to watch; the full benchmark (`handoff bench`) is a later issue. On a configured
PostgreSQL server the run uses a database of its own, created and dropped here.

    python -m tests.perf.measure_pipeline [--workspaces N] [--conversations M]
"""

import argparse
import asyncio
import os
import platform
import resource
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from handoff.adapters.embedded import EmbeddedBroker, EmbeddedPostgres
from handoff.adapters.kafka_send import send_events
from handoff.adapters.kafka_topics import ensure_topics
from handoff.app.logs import configure
from handoff.app.replay import replay
from handoff.app.service import serve
from handoff.app.settings import Settings
from handoff.core.envelope import Envelope
from handoff.core.events import OUTPUT_TOPIC_OF
from tests.builders import assign_team, closed, opened, presence, team, user, workflow
from tests.integration.harness import settings_for

BATCH = 2000
CLOSE_LAG = 1000  # a closed conversation is closed this many openings later


def build_inputs(workspaces: int, conversations: int) -> list[dict[str, Any]]:
    """The backlog, in event-time order (the builders' clock ticks once per event)."""
    names = [f"perf-{w}" for w in range(workspaces)]
    events: list[Envelope] = []
    for w, ws in enumerate(names):
        agents = [f"agent-{i}" for i in range(3 + w % 8)]  # 3 to 10 users
        events += [user(a, ws=ws) for a in agents]
        events += [presence(a, ws=ws) for a in agents]
        events.append(team("support", *agents, ws=ws))
        logic = "round_robin" if w % 2 == 0 else "least_open_contacts"
        events.append(
            workflow(
                {"type": "send_message", "text": "Hi! An agent will be with you shortly."},
                assign_team("support", logic, only_online=True),
                {"type": "add_comment", "text": "New conversation for you", "mention": "assignee"},
                ws=ws,
            )
        )
    for i in range(conversations + CLOSE_LAG):
        if i < conversations:
            events.append(opened(f"c{i}", ws=names[i % workspaces]))
        j = i - CLOSE_LAG  # 1 in 4 is closed later
        if 0 <= j < conversations and j % 4 == 0:
            events.append(closed(f"c{j}", ws=names[j % workspaces]))
    return [e.model_dump(mode="json") for e in events]


async def bare_pipe(settings: Settings, bootstrap: str, inputs: list[dict[str, Any]]) -> float:
    """Records/s of consume, parse, produce one record each (acks=all), commit."""
    source, sink = settings.topic("baseline.in"), settings.topic("baseline.out")
    await ensure_topics(bootstrap, [source], [sink], settings.partitions)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=settings.topic("baseline"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        for event in inputs:
            await producer.send(source, orjson.dumps(event), key=event["workspaceid"].encode())
        await producer.flush()
        consumer.assign([TopicPartition(source, p) for p in range(settings.partitions)])
        await consumer.start()
        started, done = time.perf_counter(), 0
        while done < len(inputs):
            polled = await consumer.getmany(timeout_ms=200, max_records=BATCH)
            sent = [
                await producer.send(sink, orjson.dumps(orjson.loads(m.value)), key=m.key)
                for messages in polled.values()
                for m in messages
            ]
            await asyncio.gather(*sent)
            if polled:
                await consumer.commit({tp: ms[-1].offset + 1 for tp, ms in polled.items()})
            done += len(sent)
        return done / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()


async def handoff_backlog(
    settings: Settings, bootstrap: str, dsn: str, inputs: list[dict[str, Any]]
) -> tuple[float, int, int]:
    """Inputs/s from the service being ready to the log holding every input and the outbox
    empty; and the decisions logged and the outputs among them."""
    await ensure_topics(
        bootstrap, settings.input_topics, settings.output_topics.values(), settings.partitions
    )
    await send_events(settings, bootstrap, inputs)
    stop, ready = asyncio.Event(), asyncio.Event()
    service = asyncio.create_task(serve(settings, stop, ready))
    try:
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({service, waiter}, timeout=60, return_when="FIRST_COMPLETED")
        if service.done():
            service.result()
        if not ready.is_set():
            raise RuntimeError("the service got no partitions within 60 s")
        started = time.perf_counter()
        conn = await asyncpg.connect(dsn)
        try:
            while True:
                logged = await conn.fetchval("SELECT count(*) FROM event_log WHERE is_input")
                pending = await conn.fetchval("SELECT count(*) FROM outbox")
                if logged >= len(inputs) and pending == 0:
                    break
                if service.done():
                    service.result()
                    raise RuntimeError("the service stopped before the backlog was through")
                await asyncio.sleep(0.2)
            elapsed = time.perf_counter() - started
            decisions = await conn.fetchval("SELECT count(*) FROM event_log WHERE NOT is_input")
            outputs = await conn.fetchval(
                "SELECT count(*) FROM event_log WHERE type = ANY($1::text[])",
                list(OUTPUT_TOPIC_OF),
            )
        finally:
            await conn.close()
    finally:
        stop.set()
        await asyncio.wait_for(service, 60)
    return len(inputs) / elapsed, decisions, outputs


async def replay_log(dsn: str) -> tuple[float, int, list[str]]:
    """Events/s of re-deciding the whole log, the events read, and the mismatches."""
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        result = await replay(conn)
        elapsed = time.perf_counter() - started
    finally:
        await conn.close()
    return result.events / elapsed, result.events, result.mismatches


@asynccontextmanager
async def fresh_database(dsn: str, name: str) -> AsyncIterator[str]:
    """A new database on a configured server (its event log may hold others' rows)."""
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield urlsplit(dsn)._replace(path=f"/{name}").geturl()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def measure(
    bootstrap: str, dsn: str, fresh: bool, data_dir: Path, workspaces: int, conversations: int
) -> list[tuple[str, str]]:
    token = secrets.token_hex(3)
    settings = settings_for(
        bootstrap, dsn, f"perf{token}.", batch_max_records=BATCH, data_dir=data_dir
    )
    inputs = build_inputs(workspaces, conversations)
    baseline = await bare_pipe(settings, bootstrap, inputs)
    database = fresh_database(dsn, f"handoff_perf_{token}") if fresh else nullcontext(dsn)
    async with database as db:
        settings = settings.model_copy(update={"database_url": db})
        rate, decisions, outputs = await handoff_backlog(settings, bootstrap, db, inputs)
        replayed, events, mismatches = await replay_log(db)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # KiB on Linux
    return [
        ("workspaces (N)", f"{workspaces}"),
        ("conversations opened (M)", f"{conversations}"),
        ("inputs", f"{len(inputs)}"),
        ("batch max records", f"{BATCH}"),
        ("partitions", f"{settings.partitions}"),
        ("baseline pipe records/s", f"{baseline:,.0f}"),
        ("handoff inputs/s (end to end)", f"{rate:,.0f}"),
        ("ratio handoff/baseline", f"{rate / baseline:.3f}"),
        ("decisions logged", f"{decisions}"),
        ("outputs produced", f"{outputs}"),
        ("replay events/s", f"{replayed:,.0f} ({events} events)"),
        ("replay mismatches", f"{len(mismatches)}" + "".join(f"\n  {m}" for m in mismatches[:5])),
        ("machine", f"nproc {len(os.sched_getaffinity(0))}, python {platform.python_version()}"),
        ("peak RSS (this process)", f"{peak_rss} MiB"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workspaces", type=int, default=100)
    parser.add_argument("--conversations", type=int, default=20_000)
    args = parser.parse_args()
    if args.workspaces < 1 or args.conversations < 0:
        parser.error("--workspaces must be at least 1 and --conversations not negative")
    configure("WARNING")
    with tempfile.TemporaryDirectory(prefix="handoff-perf-") as tmp:
        broker: EmbeddedBroker | None = None
        postgres: EmbeddedPostgres | None = None
        try:
            bootstrap = os.environ.get("HANDOFF_KAFKA_BOOTSTRAP")
            if not bootstrap:
                # From this thread, not a worker: the broker dies with the thread that started it.
                broker = EmbeddedBroker(log_path=Path(tmp) / "broker.log")
                bootstrap = broker.start()
            dsn = os.environ.get("HANDOFF_DATABASE_URL")
            fresh = bool(dsn)  # a configured server: measure in a new database on it
            if not dsn:
                postgres = EmbeddedPostgres(Path(tmp) / "pg")
                dsn = postgres.start()
            figures = asyncio.run(
                measure(
                    bootstrap,
                    dsn,
                    fresh,
                    Path(tmp) / "data",
                    args.workspaces,
                    args.conversations,
                )
            )
        finally:
            if postgres is not None:
                postgres.stop()
            if broker is not None:
                broker.stop()
    width = max(len(name) for name, _ in figures)
    for name, value in figures:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
