"""The soak's traffic: the demo's simulated days (`handoff.demo.traffic`), one after another,
played live, and the sender that remembers every input it sent and where it landed.

A day lasts at most `DAY_MINUTES` of wall time: a long soak is several days, each with
workspaces of its own (`-d1`, `-d2`, ...) and ids of its own, so it is never one huge list in
memory and every input id is unique. Every family of the generator takes part
(`ALL_FAMILIES`): users, teams, presence by shift with breaks, conversations opening and
closing, messages both ways, and workflows between them using every step type (`cargo`'s
`reassign-unanswered`: assign_to, a wait, a round-robin reassignment and a comment).

Events are sent when their `time` comes (their times are real). As `handoff events send`
does, a record goes to another topic than the one before only once the earlier ones are
acknowledged: the service takes a topic read to its end as having nothing older to come.
"""

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from handoff.adapters.kafka_send import CLOUDEVENTS_HEADERS, input_topic_for
from handoff.app.settings import Settings
from handoff.demo.traffic import ALL_FAMILIES, DAY, CloudEvent, TrafficParams, day_events
from handoff.soak.clock import wall

__all__ = ["DAY_MINUTES", "Sender", "SentInput", "day_lengths", "make_day"]

DAY_MINUTES = 5.0
"""The longest simulated day, in wall minutes."""

_EVENTS_PER_CONVERSATION = 6.7
_EVENTS_PER_WORKSPACE = 45.0
"""Rough sizes of the generated day (users, teams, presence; a conversation's events), for a
first guess at the conversations that make the asked rate; the guess is then corrected."""

_TICK = 0.005


def day_lengths(minutes: float) -> list[float]:
    """The wall seconds of each day: equal days of at most `DAY_MINUTES` covering `minutes`."""
    days = max(1, math.ceil(minutes / DAY_MINUTES - 1e-9))
    return [minutes * 60 / days] * days


def make_day(
    index: int, start: datetime, seconds: float, workspaces: int, rate: float, seed: int, run: str
) -> list[CloudEvent]:
    """Day `index` (from 1) of the soak: `workspaces` workspaces living a day from `start` that
    lasts `seconds`, about `rate * seconds` events."""
    target = rate * seconds

    def params(conversations: int) -> TrafficParams:
        return TrafficParams(
            start=start,
            workspaces=workspaces,
            agents_per_team=(3, 8),
            conversations_per_workspace=conversations,
            seed=seed * 1_000 + index,
            compression=DAY / seconds,
            id_prefix=f"soak-{run}-",
            workspace_suffix=f"-d{index}",
            families=ALL_FAMILIES,
        )

    per_workspace = target / workspaces - _EVENTS_PER_WORKSPACE
    conversations = max(1, round(per_workspace / _EVENTS_PER_CONVERSATION))
    events = day_events(params(conversations))
    if abs(len(events) - target) > 0.15 * target:
        conversations = max(1, round(conversations * target / max(len(events), 1)))
        events = day_events(params(conversations))
    return events


@dataclass(frozen=True, slots=True)
class SentInput:
    """An input the broker acknowledged: when it was sent (wall clock) and where it landed."""

    at: float
    type: str
    workspace: str
    topic: str
    partition: int
    offset: int


@dataclass(slots=True)
class _InFlight:
    event_id: str
    type: str
    workspace: str
    at: float
    delivery: "asyncio.Future[Any]"


class Sender:
    """Sends events when their time comes; `sent` holds every acknowledged one by id."""

    def __init__(self, settings: Settings, bootstrap: str) -> None:
        self._settings = settings
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=2, max_batch_size=256 * 1024
        )
        self._in_flight: list[_InFlight] = []
        self._last_topic: str | None = None
        self.sent: dict[str, SentInput] = {}
        self.failed: dict[str, str] = {}
        """Event id -> why the broker did not take it."""
        self.behind = 0.0
        """The most seconds an event was sent after its time."""

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        try:
            await self.flush()
        finally:
            await self._producer.stop()

    async def play(self, events: Sequence[CloudEvent]) -> None:
        """Send each event when its `time` comes (at once if it is past)."""
        due = [datetime.fromisoformat(str(e["time"])).timestamp() for e in events]
        i = 0
        while i < len(events):
            now = wall()
            while i < len(events) and due[i] <= now:
                self.behind = max(self.behind, now - due[i])
                await self._send(events[i])
                i += 1
            self._collect()
            if i < len(events):
                await asyncio.sleep(min(_TICK, max(0.0, due[i] - wall())))

    async def _send(self, event: CloudEvent) -> None:
        kind = str(event["type"])
        topic = input_topic_for(self._settings, kind)
        if topic != self._last_topic:
            await self.flush()
            self._last_topic = topic
        workspace = str(event["workspaceid"])
        at = wall()
        delivery = await self._producer.send(
            topic, orjson.dumps(event), key=workspace.encode(), headers=CLOUDEVENTS_HEADERS
        )
        self._in_flight.append(_InFlight(str(event["id"]), kind, workspace, at, delivery))

    async def flush(self) -> None:
        """Wait for every record in flight to be acknowledged (or refused)."""
        if self._in_flight:
            await asyncio.gather(*(f.delivery for f in self._in_flight), return_exceptions=True)
        self._collect()

    def _collect(self) -> None:
        """Note the records acknowledged (or refused) so far."""
        waiting: list[_InFlight] = []
        for f in self._in_flight:
            if not f.delivery.done():
                waiting.append(f)
            elif f.delivery.cancelled():
                self.failed[f.event_id] = "cancelled"
            elif (error := f.delivery.exception()) is not None:
                self.failed[f.event_id] = repr(error)
            else:
                m = f.delivery.result()
                self.sent[f.event_id] = SentInput(
                    f.at, f.type, f.workspace, m.topic, m.partition, m.offset
                )
        self._in_flight = waiting
