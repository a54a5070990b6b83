"""add_comment: an internal note on the conversation, optionally mentioning someone.

`mention: assignee` resolves to the assignee at this moment of the run (after any assignment
the run made just before), not when the workflow was published.
"""

from typing import Literal

from handoff.core.context import DecisionContext
from handoff.core.events import CommentCreated, CommentCreatedData
from handoff.core.ids import UserId
from handoff.core.run_ref import RunRef
from handoff.core.workflow import AddComment

__all__ = ["decide"]


def decide(step: AddComment, run: RunRef, ctx: DecisionContext) -> Literal["next"]:
    mentions: list[UserId] = []
    if step.mention == "assignee":
        assignee = ctx.assignee(run.run.contact_id)
        mentions = [assignee] if assignee is not None else []
    elif step.mention is not None:
        mentions = [UserId(step.mention)]
    data = CommentCreatedData(
        contact_id=run.run.contact_id,
        conversation_id=run.run.conversation_id,
        text=step.text,
        mentions=mentions,
        workflow=run.at(step.id),
    )
    ctx.emit(CommentCreated, data, subject=run.run.contact_id)
    return "next"
