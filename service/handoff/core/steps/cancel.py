"""The contract's rule for runs whose conversation closed: they end, `cancelled`, at their
next wait or question (unless the workflow is triggered by the close itself)."""

from handoff.core.context import DecisionContext
from handoff.core.events import RunEnded, RunEndedData
from handoff.core.run_ref import RunRef

__all__ = ["cancel", "cancelled_if_closed"]


def cancelled_if_closed(run: RunRef, ctx: DecisionContext) -> bool:
    conversation = ctx.view.conversations.get(run.run.conversation_id)
    if run.close_triggered or conversation is None or conversation.status != "closed":
        return False
    cancel(run, ctx)
    return True


def cancel(run: RunRef, ctx: DecisionContext) -> None:
    ctx.resumed.add(run.run_id)
    data = RunEndedData(run_id=run.run_id, outcome="cancelled")
    ctx.emit(RunEnded, data, subject=run.run.contact_id)
