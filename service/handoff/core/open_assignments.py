"""Who holds which open contacts: per user, the contacts assigned to them whose conversation
is open. The `assignee_unavailable` trigger starts a run for each.

Derived like `handoff.core.pools`: built from the `assignees` and `open_conversations` rows
when first asked for (every open contact's rows are in memory:
`handoff_projections.resident` pins them) and kept in step by `follow`, so an assignment
costs O(1) here, not a rewrite of its assignee's whole list.
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING

from handoff.core.ids import ContactId, UserId

if TYPE_CHECKING:
    from handoff.core.view import WorkspaceView

__all__ = ["OpenAssignments"]

_FOLLOWED = frozenset({"assignees", "open_conversations"})


class OpenAssignments:
    __slots__ = ("holder", "of_user")

    def __init__(self) -> None:
        self.of_user: dict[UserId, dict[ContactId, None]] = {}
        self.holder: dict[ContactId, UserId] = {}

    @classmethod
    def of(cls, view: "WorkspaceView") -> "OpenAssignments":
        index = cls()
        for contact_id in view.open_conversations:
            index._refresh(view, contact_id)
        return index

    def follow(self, view: "WorkspaceView", changed: Iterable[tuple[str, str]]) -> None:
        for table, key in changed:
            if table in _FOLLOWED:
                self._refresh(view, ContactId(key))

    def _refresh(self, view: "WorkspaceView", contact_id: ContactId) -> None:
        held = view.assignees.get(contact_id) if view.open_conversations.get(contact_id) else None
        before = self.holder.get(contact_id)
        if before == held:
            return
        if before is not None:
            contacts = self.of_user[before]
            del contacts[contact_id]
            if not contacts:
                del self.of_user[before]
            del self.holder[contact_id]
        if held is not None:
            self.of_user.setdefault(held, {})[contact_id] = None
            self.holder[contact_id] = held
