"""The timer poller: due timers of the owned partitions, as inputs.

Only the owner of a partition asks for its timers, and a timer's input id is derived from
the timer, so it is applied once however many times it is polled (or fired by a later input
of its workspace: `handle_batch` fires a view's timers in event time).
"""

from collections.abc import Callable, Collection
from datetime import datetime, timedelta

import asyncpg
import structlog

from handoff.adapters.cloudevents import Accepted
from handoff.adapters.pg_store import count_outbox, load_due_timers
from handoff.app.merge import Inbound
from handoff.app.metrics import Metrics
from handoff.core.ids import RunId
from handoff.core.timers import TIMER_SOURCE, elapsed

__all__ = ["TIMER_POLL", "TimerPoller"]

log = structlog.get_logger("handoff.timers")

TIMER_POLL = timedelta(seconds=1)
"""How often due timers are looked for: a wait ends at most this late, or twice this while
steps keep committing (`Pipeline._step`)."""


class TimerPoller:
    def __init__(self, pool: asyncpg.Pool, clock: Callable[[], datetime], metrics: Metrics) -> None:
        self._pool = pool
        self._clock = clock
        self._metrics = metrics
        self._next_poll = clock()

    def late(self) -> bool:
        """A poll is a whole period overdue: worth waiting for the step in flight."""
        return self._clock() >= self._next_poll + TIMER_POLL

    async def poll(self, partitions: Collection[int]) -> dict[int, list[Inbound]]:
        """Timers of `partitions` that fell due, as inputs per partition; nothing until a
        period has passed since the last poll, or when the database cannot be read (the
        timers stay, and the next poll finds them)."""
        now = self._clock()
        if now < self._next_poll or not partitions:
            return {}
        self._next_poll = now + TIMER_POLL
        try:
            async with self._pool.acquire() as conn:
                due = await load_due_timers(conn, list(partitions), now)
                backlog = await count_outbox(conn, list(partitions))
        except Exception:
            log.exception("cannot read due timers; will retry")
            return {}
        self._metrics.timers_due.set(len(due))
        self._metrics.outbox_backlog.set(backlog)
        fired: dict[int, list[Inbound]] = {}
        for t in due:
            event = elapsed(t.workspace_id, RunId(t.run_id), t.step_id, t.kind, t.due_at)
            fired.setdefault(t.partition, []).append(
                Inbound(TIMER_SOURCE, t.partition, -1, None, None, Accepted(event))
            )
        return fired
