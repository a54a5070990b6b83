"""Active workflow runs: the step each is at, and whether it waits in the queue.

A run leaves this table when it ends; its whole history stays in the event log.
"""

from collections.abc import Iterator

from handoff.core.envelope import Envelope
from handoff.core.events import AssignmentQueued, RunEnded, RunStarted, StepEntered
from handoff.core.view import Run, WorkspaceView

TABLES = ("runs",)


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
        case StepEntered(data=d) if d.run_id in view.runs:
            view.runs[d.run_id] = view.runs[d.run_id].model_copy(
                update={"step_id": d.step_id, "status": "running"}
            )
            yield "runs", d.run_id
        case AssignmentQueued(data=d) if d.workflow and d.workflow.run_id in view.runs:
            run_id = d.workflow.run_id
            view.runs[run_id] = view.runs[run_id].model_copy(update={"status": "queued"})
            yield "runs", run_id
        case RunEnded(data=d) if d.run_id in view.runs:
            del view.runs[d.run_id]
            yield "runs", d.run_id
