"""The benchmark's input stream: the demo's simulated day, for many workspaces, as Kafka records.

Every workspace family of `handoff.demo.traffic` takes part (`ALL_FAMILIES`), so between them
the published workflows use every step type; `step_types` says which a stream's workflows use.
Records are encoded once (orjson, keyed by workspace, on the topic the contract names), so
the no-op pipe and handoff read the very same bytes.

The backlog's day is put on a recent weekend in the past (Europe/Madrid, the `shifts`
template's timezone): a backlog is traffic that happened while the service was away, and on a
weekend the `shifts` workflow takes its `jump` to the next shift's team.
"""

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from handoff.adapters.kafka_send import input_topic_for
from handoff.app.settings import Settings
from handoff.demo.traffic import ALL_FAMILIES, DAY, CloudEvent, TrafficParams

__all__ = [
    "STEP_TYPES",
    "Record",
    "encode",
    "mix",
    "step_types",
    "stream_params",
    "wall_span",
    "weekend_start",
]

STEP_TYPES: tuple[str, ...] = (
    "send_message",
    "assign_to",
    "add_comment",
    "wait",
    "branch",
    "ask_question",
    "jump",
)
"""Every workflow step type (README: Workflows)."""

_MADRID = ZoneInfo("Europe/Madrid")


COMPRESSION = 144.0
"""Simulated seconds per wall second of the events' times (144: the day in 10 minutes)."""


def stream_params(
    workspaces: int,
    conversations: int,
    start: datetime,
    agents_per_team: tuple[int, int] = (3, 50),
    **more: Any,
) -> TrafficParams:
    """The demo's day as the benchmark runs it: every family, teams of 3 to 50."""
    return TrafficParams(
        start=start,
        workspaces=workspaces,
        conversations_per_workspace=conversations,
        agents_per_team=agents_per_team,
        compression=COMPRESSION,
        families=ALL_FAMILIES,
        **more,
    )


def wall_span(params: TrafficParams) -> timedelta:
    """How long the day lasts in the events' times."""
    return timedelta(seconds=DAY / params.compression)


@dataclass(frozen=True, slots=True)
class Record:
    """One input record as it goes to Kafka: `topic(settings)` is its topic for a prefix."""

    type: str
    key: bytes
    value: bytes

    def topic(self, settings: Settings) -> str:
        return input_topic_for(settings, self.type)


def encode(events: Iterable[CloudEvent]) -> list[Record]:
    """The events as records (orjson), keyed by workspace."""
    return [Record(str(e["type"]), str(e["workspaceid"]).encode(), orjson.dumps(e)) for e in events]


def _steps(node: Any) -> Iterator[str]:
    """The type of every step in a workflow document (nested steps included)."""
    if isinstance(node, list):
        for item in node:
            yield from _steps(item)
    elif isinstance(node, dict):
        if "id" in node and node.get("type") in STEP_TYPES:
            yield str(node["type"])
        for key, value in node.items():
            if key != "trigger":
                yield from _steps(value)


def step_types(events: Iterable[CloudEvent]) -> Counter[str]:
    """Step type -> workspaces whose published workflow uses it."""
    used: Counter[str] = Counter()
    for e in events:
        if e["type"] == "workflow.published":
            used.update(set(_steps(e["data"]["definition"]["steps"])))
    return used


def mix(events: Sequence[CloudEvent]) -> Counter[str]:
    """Event type -> count."""
    return Counter(str(e["type"]) for e in events)


def weekend_start(now: datetime, span: timedelta, margin: timedelta) -> datetime:
    """The latest start at least `margin` before `now` whose whole `span` falls on a
    Saturday or Sunday in Madrid (within the last week, so no 7-day queue timeout is due)."""
    start = (now - margin - span).astimezone(_MADRID).replace(second=0, microsecond=0)
    for _ in range(24 * 60 * 8):
        end = (start + span).astimezone(_MADRID)
        if start.weekday() >= 5 and end.weekday() >= 5 and end > start:
            return start.astimezone(UTC)
        start = (start - timedelta(minutes=1)).astimezone(_MADRID)
    raise ValueError(f"no weekend span of {span} in the week before {now}")
