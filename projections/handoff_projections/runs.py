"""Active workflow runs: the step each is at, what it waits for, its jumps and variables.

A run leaves this table when it ends; its whole history stays in the event log.
"""

from collections.abc import Iterator
from dataclasses import replace

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
from handoff.core.view import Run, RunStatus, WorkspaceView, contact_workflow_key

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

_STATUS_OF_WAIT: dict[str, RunStatus] = {
    "wait": "waiting",
    "question": "asking",
    "queue": "queued",
    "relax": "queued",
}


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
        case StepEntered(data=d) if run := view.runs.get(d.run_id):
            yield _put(
                view, d.run_id, replace(run, step_id=d.step_id, status="running", attempts=0)
            )
        case AssignmentQueued(data=d) if d.workflow and (run := view.runs.get(d.workflow.run_id)):
            yield _put(view, d.workflow.run_id, replace(run, status="queued"))
        case RunWaiting(data=d) if run := view.runs.get(d.run_id):
            yield _put(view, d.run_id, replace(run, status=_STATUS_OF_WAIT[d.kind]))
        case QuestionAsked(data=d) if run := view.runs.get(d.run_id):
            yield _put(view, d.run_id, replace(run, status="asking", attempts=d.attempt))
        case Answered(data=d) if run := view.runs.get(d.run_id):
            variables = {**run.variables, d.variable: d.value}
            yield _put(view, d.run_id, replace(run, variables=variables))
        case Jumped(data=d) if run := view.runs.get(d.run_id):
            jumps = {**run.jumps, d.step_id: run.jumps.get(d.step_id, 0) + 1}
            yield _put(view, d.run_id, replace(run, jumps=jumps))
        case RunEnded(data=d) if d.run_id in view.runs:
            del view.runs[d.run_id]
            yield "runs", d.run_id


def _put(view: WorkspaceView, run_id: RunId, run: Run) -> tuple[str, str]:
    view.runs[run_id] = run
    return "runs", run_id
