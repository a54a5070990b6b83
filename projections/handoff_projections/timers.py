"""Timers of waiting runs: one per run at most, since a run waits for one thing at a time;
and the watches of `assignee_unavailable` triggers, one per (workflow, user), under
`handoff.core.timers.watch_key`. A watch's firing leaves its timer for the decision to check
it is the live one (`handoff.core.unavailable.watch_elapsed`), which then ends it.

A timer goes when it fires, when its run moves to another step, or when the run ends. The
app mirrors this table into an indexed one, so due timers are found without loading views.
"""

from collections.abc import Iterator

from handoff.core.envelope import Envelope
from handoff.core.events import RunEnded, RunWaiting, StepEntered, WatchEnded, WatchStarted
from handoff.core.ids import RunId
from handoff.core.timers import TimerElapsed, watch_key
from handoff.core.view import Timer, WorkspaceView

HANDLES = frozenset(
    {
        "run.waiting",
        "timer.elapsed",
        "run.step_entered",
        "run.ended",
        "presence.watch_started",
        "presence.watch_ended",
    }
)
TABLES = ("timers",)


def evolve(view: WorkspaceView, event: Envelope) -> Iterator[tuple[str, str]]:
    match event:
        case RunWaiting(data=d):
            view.timers[d.run_id] = Timer(due_at=d.until, step_id=d.step_id, kind=d.kind)
            yield "timers", d.run_id
        case TimerElapsed(data=d) if d.kind != "unavailable":
            timer = view.timers.get(d.run_id)
            if timer is not None and timer.due_at == event.time:
                yield from _drop(view, d.run_id)  # a stale firing leaves the live timer be
        case StepEntered(data=d) | RunEnded(data=d):
            yield from _drop(view, d.run_id)
        case WatchStarted(data=d):
            key = watch_key(d.workflow_id, d.user_id)
            view.timers[key] = Timer(due_at=d.until, step_id=d.workflow_id, kind="unavailable")
            yield "timers", key
        case WatchEnded(data=d):
            yield from _drop(view, watch_key(d.workflow_id, d.user_id))


def _drop(view: WorkspaceView, run_id: RunId) -> Iterator[tuple[str, str]]:
    if view.timers.pop(run_id, None) is not None:
        yield "timers", run_id
