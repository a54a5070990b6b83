"""What a step needs of its run: ids for its events, the run's state, its workflow."""

from dataclasses import dataclass

from handoff.core.events import WorkflowRef
from handoff.core.ids import RunId
from handoff.core.view import Run
from handoff.core.workflow import Workflow

__all__ = ["Goto", "RunRef"]


@dataclass(frozen=True, slots=True)
class RunRef:
    run_id: RunId
    run: Run
    workflow: Workflow

    def at(self, step_id: str) -> WorkflowRef:
        return WorkflowRef(
            id=self.run.workflow_id, version=self.run.version, run_id=self.run_id, step_id=step_id
        )

    @property
    def close_triggered(self) -> bool:
        """Runs of `conversation_closed` workflows are not cancelled by the close."""
        return self.workflow.trigger.type == "conversation_closed"


@dataclass(frozen=True, slots=True)
class Goto:
    """Where the run goes next when it is not simply the following step (None: the end)."""

    step_id: str | None
