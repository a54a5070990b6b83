"""branch: the first branch whose condition holds runs its steps; none: `else`."""

from handoff.core.conditions import holds
from handoff.core.context import DecisionContext
from handoff.core.facts import facts_of
from handoff.core.run_ref import Goto, RunRef
from handoff.core.workflow import BranchStep

__all__ = ["decide"]


def decide(step: BranchStep, run: RunRef, ctx: DecisionContext) -> Goto:
    facts = facts_of(run, ctx)
    after = run.workflow.next_after(step.id)
    chosen = next((b.steps for b in step.branches if holds(b.when, facts)), step.else_)
    return Goto(run.workflow.first_of(chosen, after))
