"""The soak's clocks: the wall clock (comparable with the event log's `decided_at`, which the
service reads from the same machine's clock) and the seconds since the soak started, which
stamp every line it prints."""

import sys
import time
from datetime import UTC, datetime
from typing import TextIO

__all__ = ["Say", "wall"]


def wall() -> float:
    """The wall clock, in seconds since the epoch: the soak is an edge."""
    return datetime.now(UTC).timestamp()


class Say:
    """Prints a line stamped with the seconds since the soak started and the UTC time (the
    instances' logs are stamped in UTC, so a fault can be found in them)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._started = time.perf_counter()
        self.started_wall = wall()

    def elapsed(self) -> float:
        return time.perf_counter() - self._started

    def since(self, at_wall: float) -> float:
        """Seconds from the soak's start to a wall-clock reading."""
        return at_wall - self.started_wall

    def __call__(self, line: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        print(f"soak [{self.elapsed():6.1f} s {stamp}] {line}", file=self._out, flush=True)
