"""Conversations: status, channel, last incoming and outgoing message; and which are open.

`open_conversations` (contact -> its open conversations) is what makes a contact count as
open for its assignee.
"""

from collections.abc import Iterator
from dataclasses import replace

from handoff.core.envelope import Envelope
from handoff.core.ids import ContactId, ConversationId
from handoff.core.inputs import ConversationClosed, ConversationOpened, MessageReceived, MessageSent
from handoff.core.view import Conversation, WorkspaceView

HANDLES = frozenset(
    {
        "conversation.opened",
        "conversation.closed",
        "message.received",
        "message.sent",
    }
)
TABLES = ("conversations", "open_conversations")

_AUTOMATED = frozenset({"workflow", "broadcast"})
"""Senders whose messages are no reply: a workflow's welcome is not an agent answering."""


def evolve(view: WorkspaceView, event: Envelope) -> Iterator[tuple[str, str]]:
    match event:
        case ConversationOpened(data=d):
            old = view.conversations.get(d.conversation_id)
            view.conversations[d.conversation_id] = (
                replace(
                    old,
                    status="open",
                    contact_id=d.contact_id,
                    channel=old.channel if d.channel is None else d.channel,
                    opened_at=event.time,
                )
                if old
                else Conversation(
                    contact_id=d.contact_id, status="open", channel=d.channel, opened_at=event.time
                )
            )
            yield "conversations", d.conversation_id
            yield from _open(view, d.contact_id, d.conversation_id, True)
        case ConversationClosed(data=d):
            old = view.conversations.get(d.conversation_id)
            view.conversations[d.conversation_id] = (
                replace(old, status="closed")
                if old
                else Conversation(contact_id=d.contact_id, status="closed")
            )
            yield "conversations", d.conversation_id
            yield from _open(view, d.contact_id, d.conversation_id, False)
        case MessageReceived(data=d) if d.conversation_id in view.conversations:
            view.conversations[d.conversation_id] = replace(
                view.conversations[d.conversation_id],
                last_incoming_at=event.time,
                last_incoming_text=d.text,
            )
            yield "conversations", d.conversation_id
        case MessageSent(data=d) if (
            d.conversation_id in view.conversations and d.sender.type not in _AUTOMATED
        ):
            view.conversations[d.conversation_id] = replace(
                view.conversations[d.conversation_id], last_outgoing_at=event.time
            )
            yield "conversations", d.conversation_id


def _open(
    view: WorkspaceView, contact_id: ContactId, conversation_id: ConversationId, is_open: bool
) -> Iterator[tuple[str, str]]:
    current = view.open_conversations.get(contact_id, ())
    others = tuple(c for c in current if c != conversation_id)
    now_open = (*others, conversation_id) if is_open else others
    if now_open:
        view.open_conversations[contact_id] = now_open
    else:
        view.open_conversations.pop(contact_id, None)
    yield "open_conversations", contact_id
