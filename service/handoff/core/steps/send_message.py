"""send_message: ask the inbox to send the contact a message."""

from typing import Literal

from handoff.core.context import DecisionContext
from handoff.core.events import MessageRequested, MessageRequestedData
from handoff.core.run_ref import RunRef
from handoff.core.workflow import SendMessage

__all__ = ["decide"]


def decide(step: SendMessage, run: RunRef, ctx: DecisionContext) -> Literal["next"]:
    data = MessageRequestedData(
        contact_id=run.run.contact_id,
        conversation_id=run.run.conversation_id,
        text=step.text,
        options=step.options,
        workflow=run.at(step.id),
    )
    ctx.emit(MessageRequested, data, subject=run.run.contact_id)
    return "next"
