"""The assignment queue: an entry per waiting run, with its priority and when it was queued.

An entry leaves when its run is served (assigned), fails, moves to another step or ends.
"""

from collections.abc import Iterator
from dataclasses import replace

from handoff.core.envelope import Envelope
from handoff.core.events import (
    AssignmentFailed,
    AssignmentQueued,
    ContactAssigned,
    RunEnded,
    SkillsRelaxed,
    StepEntered,
)
from handoff.core.ids import RunId
from handoff.core.view import QueueEntry, WorkspaceView

HANDLES = frozenset(
    {
        "assignment.queued",
        "contact.assigned",
        "assignment.failed",
        "run.step_entered",
        "run.ended",
        "run.skills_relaxed",
    }
)
TABLES = ("queue",)


def evolve(view: WorkspaceView, event: Envelope) -> Iterator[tuple[str, str]]:
    match event:
        case AssignmentQueued(data=d) if d.workflow is not None:
            view.queue[d.workflow.run_id] = QueueEntry.of_queued(event, d.workflow, view.version)
            yield "queue", d.workflow.run_id
        case SkillsRelaxed(data=d) if entry := view.queue.get(d.run_id):
            view.queue[d.run_id] = replace(entry, relaxed=True)
            yield "queue", d.run_id
        case ContactAssigned(data=d) | AssignmentFailed(data=d) if d.workflow is not None:
            yield from _leave(view, d.workflow.run_id)
        case StepEntered(data=d) | RunEnded(data=d):
            yield from _leave(view, d.run_id)


def _leave(view: WorkspaceView, run_id: RunId) -> Iterator[tuple[str, str]]:
    if view.queue.pop(run_id, None) is not None:
        yield "queue", run_id
