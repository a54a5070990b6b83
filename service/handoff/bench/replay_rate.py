"""Replay: the whole event log folded into every workspace's projections (a rebuild, as
`handoff replay --rebuild --no-audit` runs it) or also re-decided (an audit, as `handoff
replay` runs it), with `handoff.app.replay.replay`; the rebuilt rows are not written."""

import time
from dataclasses import dataclass

from handoff.app.replay import replay

__all__ = ["ReplayResult", "time_replay"]


@dataclass(frozen=True, slots=True)
class ReplayResult:
    audit: bool
    workers: int
    events: int
    inputs: int
    workspaces: int
    seconds: float
    mismatches: tuple[str, ...]

    @property
    def rate(self) -> float:
        """Log events (inputs, timers, decisions) per second."""
        return self.events / self.seconds


async def time_replay(dsn: str, audit: bool, workers: int) -> ReplayResult:
    started = time.perf_counter()
    result = await replay(dsn, audit=audit, workers=workers)
    seconds = time.perf_counter() - started
    return ReplayResult(
        audit,
        workers,
        result.events,
        result.inputs,
        result.workspaces,
        seconds,
        tuple(result.mismatches),
    )
