"""Contact -> assignee, from our assignments and from changes made in the inbox."""

from collections.abc import Iterator

from handoff.core.envelope import Envelope
from handoff.core.events import ContactAssigned, ContactUnassigned
from handoff.core.ids import ContactId, UserId
from handoff.core.inputs import ContactAssigneeChanged
from handoff.core.view import WorkspaceView

HANDLES = frozenset({"contact.assigned", "contact.unassigned", "contact.assignee_changed"})
TABLES = ("assignees",)


def evolve(view: WorkspaceView, event: Envelope) -> Iterator[tuple[str, str]]:
    match event:
        case ContactAssigned(data=d):
            yield from _set(view, d.contact_id, d.assignee_id)
        case ContactUnassigned(data=d):
            yield from _set(view, d.contact_id, None)
        case ContactAssigneeChanged(data=d):
            yield from _set(view, d.contact_id, d.assignee_id)


def _set(
    view: WorkspaceView, contact_id: ContactId, assignee: UserId | None
) -> Iterator[tuple[str, str]]:
    if assignee is None:
        view.assignees.pop(contact_id, None)
    else:
        view.assignees[contact_id] = assignee
    yield "assignees", contact_id
