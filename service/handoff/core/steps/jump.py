"""jump: go to another step, at most `max_jumps` times per run; then go on after it."""

from typing import Literal

from handoff.core.context import DecisionContext
from handoff.core.events import Jumped, JumpedData
from handoff.core.run_ref import Goto, RunRef
from handoff.core.workflow import Jump

__all__ = ["decide"]


def decide(step: Jump, run: RunRef, ctx: DecisionContext) -> Goto | Literal["next"]:
    if ctx.jumps(run.run_id, run.run, step.id) >= step.max_jumps:
        return "next"
    data = JumpedData(run_id=run.run_id, step_id=step.id, to=step.to)
    ctx.emit(Jumped, data, subject=run.run.contact_id)
    return Goto(step.to)
