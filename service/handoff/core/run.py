"""Workflow runs: start one, take its steps until it blocks or ends, wake it again.

This is the process loop of the Decider essay: take a step, let it emit its events, go where
it says, until a step blocks (a wait, a question, the queue) or the steps run out. A budget
of steps per decision turns a loop the jump limits missed into a failed run, not a hang.
"""

from dataclasses import replace

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
from handoff.core.run_ref import Goto, RunRef
from handoff.core.steps import STEPS
from handoff.core.view import Run
from handoff.core.workflow import Workflow

__all__ = ["STEP_BUDGET", "active", "end", "go", "resume", "start"]

STEP_BUDGET = 500


def active(ctx: DecisionContext) -> set[tuple[str, ContactId]]:
    """(workflow id, contact id) of every run still going: a contact in an active run of a
    workflow does not enter it again."""
    return {
        (r.workflow_id, r.contact_id)
        for run_id, r in ctx.view.runs.items()
        if run_id not in ctx.resumed
    }


def start(
    ctx: DecisionContext,
    workflow: Workflow,
    version: int,
    contact_id: ContactId,
    conversation_id: ConversationId,
) -> None:
    # One cause starts one run of a workflow, except a user's going away, which starts one
    # per contact of theirs: those are told apart by the contact.
    per_contact = (contact_id,) if workflow.trigger.type == "assignee_unavailable" else ()
    run_id = RunId(ctx.derive_id("run", workflow.id, *per_contact))
    data = RunStartedData(
        run_id=run_id,
        workflow_id=workflow.id,
        version=version,
        contact_id=contact_id,
        conversation_id=conversation_id,
    )
    ctx.emit(RunStarted, data, subject=contact_id)
    run = Run(
        workflow_id=workflow.id,
        version=version,
        contact_id=contact_id,
        conversation_id=conversation_id,
    )
    go(ctx, RunRef(run_id, run, workflow), workflow.steps[0].id)


def ref_of(ctx: DecisionContext, run_id: RunId) -> RunRef:
    run = ctx.view.runs[run_id]
    return RunRef(run_id, run, ctx.view.workflow(run.workflow_id, run.version))


def resume(ctx: DecisionContext, ref: RunRef) -> None:
    """Go on with the step after the one the run stopped at."""
    assert ref.run.step_id is not None
    go(ctx, ref, ref.workflow.next_after(ref.run.step_id))


def go(ctx: DecisionContext, ref: RunRef, step_id: str | None) -> None:
    """Take steps from `step_id` on (None: the run is done)."""
    ctx.resumed.add(ref.run_id)
    for _ in range(STEP_BUDGET):
        if step_id is None:
            end(ctx, ref, "completed")
            return
        step = ref.workflow.step(step_id)
        ctx.emit(
            StepEntered, StepEnteredData(run_id=ref.run_id, step_id=step.id), ref.run.contact_id
        )
        ref = RunRef(ref.run_id, replace(ref.run, step_id=step.id, attempts=0), ref.workflow)
        flow = STEPS[step.type](step, ref, ctx)
        if flow == "blocked":
            return
        step_id = flow.step_id if isinstance(flow, Goto) else ref.workflow.next_after(step.id)
    end(ctx, ref, "failed")


def end(ctx: DecisionContext, ref: RunRef, outcome: str) -> None:
    ctx.resumed.add(ref.run_id)
    ctx.emit(
        RunEnded,
        RunEndedData.model_validate({"run_id": ref.run_id, "outcome": outcome}),
        subject=ref.run.contact_id,
    )
