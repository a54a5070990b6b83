"""Replay: the whole event log re-decided and folded into every workspace's projections
(`handoff.app.replay.replay`, as `handoff replay` runs it; the rebuilt rows are not written)."""

import time
from dataclasses import dataclass

import asyncpg

from handoff.app.replay import replay

__all__ = ["ReplayResult", "time_replay"]


@dataclass(frozen=True, slots=True)
class ReplayResult:
    events: int
    inputs: int
    workspaces: int
    seconds: float
    mismatches: tuple[str, ...]

    @property
    def rate(self) -> float:
        """Log events (inputs, timers, decisions) per second."""
        return self.events / self.seconds

    @property
    def input_rate(self) -> float:
        """Inputs (timers included) re-decided per second."""
        return self.inputs / self.seconds


async def time_replay(dsn: str) -> ReplayResult:
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        result = await replay(conn)
        seconds = time.perf_counter() - started
    finally:
        await conn.close()
    return ReplayResult(
        result.events, result.inputs, len(result.views), seconds, tuple(result.mismatches)
    )
