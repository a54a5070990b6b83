"""The facts a branch condition of one run sees, at the time of the event being decided."""

from handoff.core.conditions import Facts
from handoff.core.context import DecisionContext
from handoff.core.run_ref import RunRef

__all__ = ["facts_of"]


def facts_of(ref: RunRef, ctx: DecisionContext) -> Facts:
    view, run = ctx.view, ref.run
    contact = view.contacts.get(run.contact_id)
    conversation = view.conversations.get(run.conversation_id)
    assignee = ctx.assignee(run.contact_id)
    return Facts(
        at=ctx.cause.time,
        fields=dict(contact.fields) if contact else {},
        tags=contact.tags if contact else (),
        variables=ctx.variables(ref.run_id, run),
        conversation_status=conversation.status if conversation else None,
        channel=conversation.channel if conversation else None,
        last_outgoing_at=conversation.last_outgoing_at if conversation else None,
        last_incoming_at=conversation.last_incoming_at if conversation else None,
        last_incoming_text=conversation.last_incoming_text if conversation else None,
        assignee_id=assignee,
        assignee_status="none" if assignee is None else view.presence.get(assignee, "offline"),
    )
