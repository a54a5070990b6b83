"""Last assignments (v1.1): per user the latest one (longest idle orders by it), per contact
its latest assignee (`prefer: last_assignee`). Both count assignments made by handoff and in
the inbox, and outlive closes and unassignments."""

from collections.abc import Iterator
from datetime import datetime

from handoff.core.envelope import Envelope
from handoff.core.events import ContactAssigned
from handoff.core.ids import ContactId, UserId
from handoff.core.inputs import ContactAssigneeChanged
from handoff.core.view import LastAssignment, WorkspaceView

HANDLES = frozenset({"contact.assigned", "contact.assignee_changed"})
TABLES = ("last_assigned", "last_assignees")


def evolve(view: WorkspaceView, event: Envelope) -> Iterator[tuple[str, str]]:
    match event:
        case ContactAssigned(data=d):
            yield from _assigned(view, d.contact_id, d.assignee_id, event.time)
        case ContactAssigneeChanged(data=d) if d.assignee_id is not None:
            yield from _assigned(view, d.contact_id, d.assignee_id, event.time)


def _assigned(
    view: WorkspaceView, contact_id: ContactId, user_id: UserId, at: datetime
) -> Iterator[tuple[str, str]]:
    view.last_assigned[user_id] = LastAssignment(seq=view.version, at=at)
    yield "last_assigned", user_id
    view.last_assignees[contact_id] = user_id
    yield "last_assignees", contact_id
