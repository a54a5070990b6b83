"""The real pipeline for scenario tests: the service on the test broker and database.

`Stack` runs `serve()` in this event loop with its own topics and consumer group, sends
inputs through Kafka and reads outputs back off the output topics, so every scenario goes
through parse, merge, decide, the event log, the outbox and the relay.
"""

import asyncio
import contextlib
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from handoff.adapters.kafka_send import send_events
from handoff.app.service import serve
from handoff.app.settings import Settings
from handoff.bench.drain import process_env as bench_process_env
from handoff.core.envelope import Envelope

Output = dict[str, Any]


def as_json(events: Iterable[Envelope | dict[str, Any]]) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json") if isinstance(e, Envelope) else e for e in events]


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bootstrap = settings.kafka_bootstrap or ""
        self._seen: list[Output] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def send(self, *events: Envelope | dict[str, Any]) -> None:
        await send_events(self.settings, self.bootstrap, as_json(events))

    async def send_raw(self, topic_attr: str, *values: bytes, key: bytes = b"ws") -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await producer.start()
        try:
            for value in values:
                await producer.send(
                    self.settings.topic(getattr(self.settings, topic_attr)), value, key=key
                )
            await producer.flush()
        finally:
            await producer.stop()

    async def outputs(
        self, until: Callable[[list[Output]], bool], timeout: float = 30.0
    ) -> list[Output]:
        """Every output so far, once `until(outputs)` holds (fails after `timeout` s)."""
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(
                *self.settings.output_topics.values(),
                bootstrap_servers=self.bootstrap,
                group_id=None,
                auto_offset_reset="earliest",
            )
            await self._consumer.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not until(self._seen):
            if loop.time() > deadline:
                seen = Counter((o["type"], o.get("workspaceid")) for o in self._seen)
                raise AssertionError(f"timed out waiting for outputs; saw {dict(seen)}")
            polled = await self._consumer.getmany(timeout_ms=200)
            for messages in polled.values():
                self._seen.extend(orjson.loads(m.value) for m in messages)
        return list(self._seen)

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()


def process_env(settings: Settings, **more: str) -> dict[str, str]:
    """The environment that makes a `handoff run` process use `settings` (and `more`)."""
    return {**bench_process_env(settings, settings.http_port), **more}


def start_process(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`handoff run` as a process of its own, to be killed as a test needs."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "handoff.cli", "run"],
            env={**os.environ, **env},
            stdout=out,
            stderr=out,
        )


def settings_for(bootstrap: str, dsn: str, prefix: str, **overrides: Any) -> Settings:
    return Settings(
        kafka_bootstrap=bootstrap,
        database_url=dsn,
        topic_prefix=prefix,
        group_id=f"{prefix}handoff",
        partitions=4,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        **{"http_port": 0, **overrides},
    )


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Stack]:
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(settings, stop, ready))
    stack = Stack(settings)
    try:
        waiter = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait({task, waiter}, timeout=60, return_when="FIRST_COMPLETED")
        if task in done:
            task.result()  # raises what stopped it
        assert waiter in done, "the service got no partitions within 60 s"
        yield stack
    finally:
        await stack.close()
        stop.set()
        await asyncio.wait_for(task, 60)


def of_workspace(outputs: list[Output], ws: str, *types: str) -> list[Output]:
    return [o for o in outputs if o.get("workspaceid") == ws and (not types or o["type"] in types)]


def routed(outputs: list[Output], ws: str) -> list[tuple[str, str, str]]:
    """(type, contact, assignee or reason or 'queued') of each routing output, in order."""
    out = []
    for o in of_workspace(
        outputs, ws, "contact.assigned", "assignment.queued", "assignment.failed"
    ):
        d = o["data"]
        out.append(
            (o["type"], d["contact_id"], d.get("assignee_id") or d.get("reason") or "queued")
        )
    return out


async def ann_routes_c1(stack: Stack, ws: str) -> None:
    """Given a workspace where Ann, online, is the team a round robin assigns to, c1 is
    routed to her (the scenario a test then disturbs)."""
    from tests.builders import assign_team, opened, presence, team, user, workflow

    await stack.send(
        user("ann", ws=ws),
        presence("ann", ws=ws),
        team("t", "ann", ws=ws),
        workflow(assign_team("t"), ws=ws),
    )
    await stack.send(opened("c1", ws=ws))
    await stack.outputs(lambda o: len(routed(o, ws)) == 1)
