"""Workflow runs: start one, and take its steps until it blocks or ends.

This is the process loop of the Decider essay: take the next step, let it emit its events,
go on until a step blocks (an assignment waiting in the queue) or the steps run out.
"""

from handoff.core.context import DecisionContext
from handoff.core.events import (
    RunEnded,
    RunEndedData,
    RunStarted,
    RunStartedData,
    StepEntered,
    StepEnteredData,
)
from handoff.core.ids import ContactId, ConversationId, RunId
from handoff.core.steps import STEPS, RunRef
from handoff.core.view import Run
from handoff.core.workflow import Workflow

__all__ = ["end", "resume", "start"]


def start(
    ctx: DecisionContext,
    workflow: Workflow,
    version: int,
    contact_id: ContactId,
    conversation_id: ConversationId,
) -> None:
    run_id = RunId(ctx.derive_id("run", workflow.id))
    run = Run(
        workflow_id=workflow.id,
        version=version,
        contact_id=contact_id,
        conversation_id=conversation_id,
    )
    ctx.emit(
        RunStarted,
        RunStartedData(
            run_id=run_id,
            workflow_id=workflow.id,
            version=version,
            contact_id=contact_id,
            conversation_id=conversation_id,
        ),
        subject=contact_id,
    )
    _take_steps(
        ctx, workflow, RunRef(run_id, run), workflow.steps[0].id if workflow.steps else None
    )


def resume(ctx: DecisionContext, ref: RunRef) -> None:
    """Go on with the step after the one the run stopped at."""
    ctx.resumed.add(ref.run_id)
    workflow = ctx.view.workflow(ref.run.workflow_id, ref.run.version)
    assert ref.run.step_id is not None
    following = workflow.step_after(ref.run.step_id)
    _take_steps(ctx, workflow, ref, following.id if following else None)


def end(ctx: DecisionContext, ref: RunRef, outcome: str) -> None:
    ctx.resumed.add(ref.run_id)
    ctx.emit(
        RunEnded,
        RunEndedData.model_validate({"run_id": ref.run_id, "outcome": outcome}),
        subject=ref.run.contact_id,
    )


def _take_steps(ctx: DecisionContext, workflow: Workflow, ref: RunRef, step_id: str | None) -> None:
    while step_id is not None:
        step = workflow.step(step_id)
        ctx.emit(
            StepEntered, StepEnteredData(run_id=ref.run_id, step_id=step.id), ref.run.contact_id
        )
        if STEPS[step.type](step, ref, ctx) == "blocked":
            return
        following = workflow.step_after(step.id)
        step_id = following.id if following else None
    end(ctx, ref, "completed")
