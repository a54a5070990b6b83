"""Open contacts per user: contacts assigned to the user whose conversation is open.

Reads assignees and open conversations as they were before the event (this fold runs first),
so a change counts once: a close lowers the assignee's count, a reopen raises it again, a
reassignment moves one from the old assignee to the new.
"""

from collections.abc import Iterator

from handoff.core.envelope import Envelope
from handoff.core.events import ContactAssigned, ContactUnassigned
from handoff.core.ids import ContactId, UserId
from handoff.core.inputs import ContactAssigneeChanged, ConversationClosed, ConversationOpened
from handoff.core.view import WorkspaceView

HANDLES = frozenset(
    {
        "contact.assigned",
        "contact.unassigned",
        "contact.assignee_changed",
        "conversation.opened",
        "conversation.closed",
    }
)
TABLES = ("open_contacts",)


def evolve(view: WorkspaceView, event: Envelope) -> Iterator[tuple[str, str]]:
    match event:
        case ContactAssigned(data=d):
            yield from _move(view, d.contact_id, d.assignee_id)
        case ContactUnassigned(data=d):
            yield from _move(view, d.contact_id, None)
        case ContactAssigneeChanged(data=d):
            yield from _move(view, d.contact_id, d.assignee_id)
        case ConversationOpened(data=d) if not view.open_conversations.get(d.contact_id):
            yield from _add(view, view.assignees.get(d.contact_id), +1)
        case ConversationClosed(data=d) if view.open_conversations.get(d.contact_id) == (
            d.conversation_id,
        ):
            yield from _add(view, view.assignees.get(d.contact_id), -1)


def _move(
    view: WorkspaceView, contact_id: ContactId, to: UserId | None
) -> Iterator[tuple[str, str]]:
    previous = view.assignees.get(contact_id)
    if previous == to or not view.open_conversations.get(contact_id):
        return
    yield from _add(view, previous, -1)
    yield from _add(view, to, +1)


def _add(view: WorkspaceView, user_id: UserId | None, delta: int) -> Iterator[tuple[str, str]]:
    if user_id is None:
        return
    count = view.open_contacts.get(user_id, 0) + delta
    if count > 0:
        view.open_contacts[user_id] = count
    else:
        view.open_contacts.pop(user_id, None)
    yield "open_contacts", user_id
