"""wait: a durable timer; the run goes on when `timer.elapsed` comes for it.

The wait is measured from the time of the event being decided (not the wall clock), so a
backlog applied late waits as it would have live, and a replay decides the same.
"""

from datetime import timedelta
from typing import Literal

from handoff.core.context import DecisionContext
from handoff.core.durations import to_timedelta
from handoff.core.events import RunWaiting, RunWaitingData
from handoff.core.run_ref import RunRef
from handoff.core.steps.cancel import cancelled_if_closed
from handoff.core.timers import TimerKind
from handoff.core.workflow import Wait

__all__ = ["decide", "sleep"]


def decide(step: Wait, run: RunRef, ctx: DecisionContext) -> Literal["blocked"]:
    if cancelled_if_closed(run, ctx):
        return "blocked"
    sleep(run, ctx, step.id, to_timedelta(step.duration), "wait")
    return "blocked"


def sleep(
    run: RunRef, ctx: DecisionContext, step_id: str, duration: timedelta, kind: TimerKind
) -> None:
    """Set the run's timer `duration` after the decided event (every step that waits)."""
    until = ctx.cause.time + duration
    data = RunWaitingData(run_id=run.run_id, step_id=step_id, until=until, kind=kind)
    ctx.emit(RunWaiting, data, subject=run.run.contact_id)
