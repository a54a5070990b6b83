"""Published workflows: the current version of each, and every version a run may still use."""

from collections.abc import Iterator
from dataclasses import replace

from handoff.core.envelope import Envelope
from handoff.core.inputs import WorkflowPublished, WorkflowUnpublished
from handoff.core.view import PublishedWorkflow, WorkspaceView

HANDLES = frozenset({"workflow.published", "workflow.unpublished"})
TABLES = ("workflows", "workflow_versions")


def evolve(view: WorkspaceView, event: Envelope) -> Iterator[tuple[str, str]]:
    match event:
        case WorkflowPublished(data=d):
            workflow = d.definition
            old = view.workflows.get(workflow.id)
            version = old.version + 1 if old else 1
            view.workflows[workflow.id] = PublishedWorkflow(version=version, active=True)
            view.workflow_versions[f"{workflow.id}/{version}"] = workflow
            yield "workflows", workflow.id
            yield "workflow_versions", f"{workflow.id}/{version}"
        case WorkflowUnpublished(data=d) if d.workflow_id in view.workflows:
            old = view.workflows[d.workflow_id]
            view.workflows[d.workflow_id] = replace(old, active=False)
            yield "workflows", d.workflow_id
