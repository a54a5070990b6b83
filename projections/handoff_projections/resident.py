"""Which rows of a view must stay in memory, and which an event needs read back.

Rows about contacts and conversations pile up with the log: every contact ever seen keeps its
fields, its assignee and its workflow counters, every conversation its status and last
messages. A decision reads them only for the contact and conversation its event names, for
open conversations (queued ones among them) and for those of a run, which may outlive its
conversation. So the rows of any other contact or conversation may leave
memory (`evict`) and be read back from the stored projections when an event names them again
(`wanted`): the view a decision sees holds every row it reads, and decides as a view that kept
everything would. What stays grows with the open conversations, not with the log.
"""

from collections.abc import Collection, Iterable

from handoff.core.envelope import Envelope
from handoff.core.ids import ContactId, ConversationId
from handoff.core.inputs import (
    ContactAssigneeChanged,
    ContactUpdated,
    ConversationClosed,
    ConversationOpened,
    MessageReceived,
    MessageSent,
)
from handoff.core.view import WorkspaceView, contact_workflow_key

__all__ = ["CONTACT_TABLES", "contact_rows", "evict", "named", "pinned", "wanted"]

CONTACT_TABLES = ("contacts", "assignees", "last_assignees", "contact_workflows", "conversations")
"""The tables whose rows belong to one contact or conversation; the others are the
workspace's own (users, teams, workflows, cursors) or live only while something is open."""


def contact_rows(view: WorkspaceView) -> int:
    """How many rows of contacts and conversations the view holds."""
    return sum(len(getattr(view, table)) for table in CONTACT_TABLES)


def pinned(view: WorkspaceView) -> tuple[set[ContactId], set[ConversationId]]:
    """Contacts and conversations a decision may read whatever event it decides on."""
    contacts: set[ContactId] = set(view.open_conversations)
    conversations: set[ConversationId] = {
        c for open_ in view.open_conversations.values() for c in open_
    }
    for run in view.runs.values():
        contacts.add(run.contact_id)
        conversations.add(run.conversation_id)
    return contacts, conversations


def evict(view: WorkspaceView) -> set[ContactId]:
    """Drop the rows of contacts and conversations that are not pinned; returns the pinned
    contacts, the only ones whose rows may still be whole in memory."""
    contacts, conversations = pinned(view)
    for table in (view.contacts, view.assignees, view.last_assignees):
        for contact_id in [c for c in table if c not in contacts]:
            del table[contact_id]
    kept = {contact_workflow_key(w, c) for w in view.workflows for c in contacts}
    for key in [k for k in view.contact_workflows if k not in kept]:
        del view.contact_workflows[key]
    for conversation_id in [c for c in view.conversations if c not in conversations]:
        del view.conversations[conversation_id]
    return contacts


def wanted(
    view: WorkspaceView, contacts: Collection[ContactId], conversations: Iterable[ConversationId]
) -> list[tuple[str, str]]:
    """The (table, key) rows to read back so that these contacts' and conversations' rows
    are whole in the view."""
    keys: list[tuple[str, str]] = [
        (t, c) for c in contacts for t in ("contacts", "assignees", "last_assignees")
    ]
    keys += [
        ("contact_workflows", contact_workflow_key(w, c)) for c in contacts for w in view.workflows
    ]
    keys += [("conversations", c) for c in conversations]
    return keys


def named(event: Envelope) -> tuple[ContactId | None, ConversationId | None]:
    """The contact and conversation an input names, if any."""
    match event:
        case (
            ConversationOpened(data=d)
            | ConversationClosed(data=d)
            | MessageReceived(data=d)
            | MessageSent(data=d)
        ):
            return d.contact_id, d.conversation_id
        case ContactUpdated(data=d) | ContactAssigneeChanged(data=d):
            return d.contact_id, None
    return None, None
