"""Every record on the output topics, read from the beginning while the soak runs (so the
first time each output is seen is known), and to the end once the instances have stopped.

Outputs are at least once: a record may come more than once with the same id (re-sent).
Dead letters are kept apart, with the input record they refused.
"""

import asyncio
import contextlib
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer

from handoff.app.settings import Settings
from handoff.soak.clock import wall

__all__ = ["DeadLetter", "OutputReader", "SeenOutput"]

_MiB = 1024 * 1024


@dataclass(slots=True)
class SeenOutput:
    """An output id as seen on Kafka."""

    type: str
    workspace: str
    cause: str | None
    contact: str | None
    first_at: float
    """Wall clock when it was first read."""
    records: int = 1


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    cause: str
    """The refused input's id (or `topic/partition/offset` when it had none)."""
    topic: str
    partition: int
    offset: int
    reason: str


class OutputReader:
    """Reads the output topics of `settings` from the beginning (`run` in a task, then
    `catch_up` once nothing more is written)."""

    def __init__(self, settings: Settings, bootstrap: str) -> None:
        self._deadletter = settings.output_topics["deadletter"]
        self._consumer = AIOKafkaConsumer(
            *settings.output_topics.values(),
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=16 * _MiB,
            fetch_max_bytes=64 * _MiB,
        )
        self._task: asyncio.Task[None] | None = None
        self.seen: dict[str, SeenOutput] = {}
        self.letters: dict[str, DeadLetter] = {}
        self.records = 0
        self.unreadable = 0

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await self._halt()
        await self._consumer.stop()

    async def _halt(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._poll(500)

    async def _poll(self, timeout_ms: int) -> int:
        polled = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=5000)
        at = wall()
        n = 0
        for tp, messages in polled.items():
            for m in messages:
                n += 1
                self._take(tp.topic, m.value, at)
        self.records += n
        return n

    def _take(self, topic: str, value: bytes | None, at: float) -> None:
        try:
            event = orjson.loads(value or b"")
            event_id, kind = str(event["id"]), str(event["type"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.unreadable += 1
            return
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        if topic == self._deadletter:
            self.letters.setdefault(
                event_id,
                DeadLetter(
                    event_id,
                    str(event.get("causationid")),
                    str(data.get("topic")),
                    int(data.get("partition", -1)),
                    int(data.get("offset", -1)),
                    str(data.get("reason", "")),
                ),
            )
            return
        seen = self.seen.get(event_id)
        if seen is not None:
            seen.records += 1
            return
        cause = event.get("causationid")
        contact = data.get("contact_id")
        self.seen[event_id] = SeenOutput(
            kind,
            str(event.get("workspaceid")),
            str(cause) if cause is not None else None,
            str(contact) if contact is not None else None,
            at,
        )

    async def catch_up(self, quiet: float = 2.0, timeout: float = 60.0) -> bool:
        """Read until every partition is read to its high-water mark and nothing came for
        `quiet` s (True), or `timeout` s (False)."""
        await self._halt()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last = loop.time()
        while loop.time() < deadline:
            if await self._poll(200):
                last = loop.time()
            elif loop.time() - last >= quiet and await self._at_end():
                return True
        return False

    async def _at_end(self) -> bool:
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is None or await self._consumer.position(tp) < high:
                return False
        return True
