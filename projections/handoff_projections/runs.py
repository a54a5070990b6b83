"""Active workflow runs: the step each is at, what it waits for, its jumps and variables.

A run leaves this table when it ends; its whole history stays in the event log.
"""

from collections.abc import Iterator

from handoff.core.envelope import Envelope
from handoff.core.events import (
    Answered,
    AssignmentQueued,
    Jumped,
    QuestionAsked,
    RunEnded,
    RunStarted,
    RunWaiting,
    StepEntered,
)
from handoff.core.ids import RunId
from handoff.core.view import Run, WorkspaceView, contact_workflow_key

HANDLES = frozenset(
    {
        "run.started",
        "run.step_entered",
        "assignment.queued",
        "run.waiting",
        "run.question_asked",
        "run.answered",
        "run.jumped",
        "run.ended",
    }
)
TABLES = ("runs", "contact_workflows")

_STATUS_OF_WAIT = {"wait": "waiting", "question": "asking", "queue": "queued"}


def evolve(view: WorkspaceView, event: Envelope) -> Iterator[tuple[str, str]]:
    match event:
        case RunStarted(data=d):
            view.runs[d.run_id] = Run(
                workflow_id=d.workflow_id,
                version=d.version,
                contact_id=d.contact_id,
                conversation_id=d.conversation_id,
            )
            yield "runs", d.run_id
            key = contact_workflow_key(d.workflow_id, d.contact_id)
            view.contact_workflows[key] = view.contact_workflows.get(key, 0) + 1
            yield "contact_workflows", key
        case StepEntered(data=d):
            yield from _update(view, d.run_id, step_id=d.step_id, status="running", attempts=0)
        case AssignmentQueued(data=d) if d.workflow is not None:
            yield from _update(view, d.workflow.run_id, status="queued")
        case RunWaiting(data=d):
            yield from _update(view, d.run_id, status=_STATUS_OF_WAIT[d.kind])
        case QuestionAsked(data=d):
            yield from _update(view, d.run_id, status="asking", attempts=d.attempt)
        case Answered(data=d) if d.run_id in view.runs:
            variables = {**view.runs[d.run_id].variables, d.variable: d.value}
            yield from _update(view, d.run_id, variables=variables)
        case Jumped(data=d) if d.run_id in view.runs:
            jumps = view.runs[d.run_id].jumps
            yield from _update(
                view, d.run_id, jumps={**jumps, d.step_id: jumps.get(d.step_id, 0) + 1}
            )
        case RunEnded(data=d) if d.run_id in view.runs:
            del view.runs[d.run_id]
            yield "runs", d.run_id


def _update(view: WorkspaceView, run_id: RunId, **changes: object) -> Iterator[tuple[str, str]]:
    if run_id in view.runs:
        view.runs[run_id] = view.runs[run_id].model_copy(update=changes)
        yield "runs", run_id
