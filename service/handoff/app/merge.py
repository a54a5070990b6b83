"""Merging one partition of the three input topics into the order things happened.

Kafka orders nothing across topics, so after downtime a consumer may be handed a partition's
conversations before the presence and workflow records that came first. The merge releases
the oldest head (by the event's `time`; ties: presence, workflows, conversations) and holds a
record back only while another topic has unread records that may be older. A topic that is
caught up holds nothing back, so a live stream is not delayed.
"""

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from handoff.adapters.cloudevents import Parsed

__all__ = ["Inbound", "Merger"]


@dataclass(frozen=True, slots=True)
class Inbound:
    """A consumed record and what its bytes parsed to."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    parsed: Parsed
    timestamp_ms: int | None = None
    """When Kafka took the record (None for a timer): where end-to-end latency starts."""

    @property
    def from_kafka(self) -> bool:
        """False for a timer the poller made: it has no position to store."""
        return self.offset >= 0

    @property
    def time(self) -> datetime | None:
        """None for a rejected record: it applies nothing, so it never waits."""
        return self.parsed.time


_Order = tuple[bool, datetime | None, int]
"""(has a time, the time, the topic's rank): the order records are released in."""


class Merger:
    def __init__(self, topics: Sequence[str]) -> None:
        self._rank = {topic: i for i, topic in enumerate(topics)}
        self._buffers: dict[str, deque[tuple[_Order, Inbound]]] = {
            topic: deque() for topic in topics
        }

    def add(self, record: Inbound) -> None:
        time = record.time
        # Rejected records (no time) first: they wait for nothing and change nothing.
        order = (time is not None, time, self._rank[record.topic])
        self._buffers[record.topic].append((order, record))

    def buffered(self, topic: str) -> int:
        return len(self._buffers[topic])

    def take_ready(self, caught_up: Callable[[str], bool]) -> list[Inbound]:
        """Release, in order, every record no unread record could precede."""
        buffers = self._buffers.values()
        # An empty topic with unread records holds back every record that has a time.
        waiting = any(not buf and not caught_up(topic) for topic, buf in self._buffers.items())
        ready: list[Inbound] = []
        while heads := [buf for buf in buffers if buf]:
            buf = min(heads, key=_head_order)
            (has_time, _, _), record = buf[0]
            if has_time and waiting:
                break
            buf.popleft()
            ready.append(record)
            waiting = waiting or (not buf and not caught_up(record.topic))
        return ready


def _head_order(buf: deque[tuple[_Order, Inbound]]) -> _Order:
    return buf[0][0]
