"""Durable timers: a run that waits is woken by `timer.elapsed`, an input from the clock.

The service's timer poller makes one when a timer falls due and feeds it through the same
path as Kafka inputs, so its firing is in the event log and a replay takes the same path.
Its id is derived from the timer, so it is applied once however often it is polled.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from handoff.core.envelope import Envelope
from handoff.core.ids import RunId, derive_id

__all__ = ["TIMER_SOURCE", "TimerElapsed", "TimerKind", "elapsed", "watch_key"]

TimerKind = Literal["wait", "question", "queue", "relax", "unavailable"]
TIMER_SOURCE = "/handoff/timers"


def watch_key(workflow_id: str, user_id: str) -> RunId:
    """The timer key of an `assignee_unavailable` watch: one per (workflow, user), kept with
    the runs' timers (`TimerElapsed.run_id` is this key, `step_id` the workflow id). The
    workflow id's length goes first, so ids holding `/` cannot make two pairs one key."""
    return RunId(f"unavailable/{len(workflow_id)}/{workflow_id}/{user_id}")


class TimerElapsedData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: RunId
    step_id: str
    kind: TimerKind


class TimerElapsed(Envelope):
    """Its `time` is when the timer fell due, whenever it is applied: conditions decided
    after a wait see the time the wait ended, on a replay as live."""

    type: Literal["timer.elapsed"] = "timer.elapsed"
    source: str = TIMER_SOURCE
    data: TimerElapsedData


def elapsed(
    workspace_id: str, run_id: RunId, step_id: str, kind: TimerKind, due_at: datetime
) -> TimerElapsed:
    return TimerElapsed(
        id=derive_id(workspace_id, "timer", run_id, step_id, kind, due_at.isoformat()),
        time=due_at,
        workspaceid=workspace_id,
        data=TimerElapsedData(run_id=run_id, step_id=step_id, kind=kind),
    )
