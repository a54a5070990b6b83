"""The run a step belongs to, as the step needs it: ids for the events it emits."""

from dataclasses import dataclass

from handoff.core.events import WorkflowRef
from handoff.core.ids import RunId
from handoff.core.view import Run

__all__ = ["RunRef"]


@dataclass(frozen=True)
class RunRef:
    run_id: RunId
    run: Run

    def at(self, step_id: str) -> WorkflowRef:
        return WorkflowRef(
            id=self.run.workflow_id, version=self.run.version, run_id=self.run_id, step_id=step_id
        )
