"""Users and their capacity (`max_open_contacts`; absent means unlimited)."""

from collections.abc import Iterator

from handoff.core.envelope import Envelope
from handoff.core.inputs import UserRemoved, UserUpserted
from handoff.core.view import User, WorkspaceView

HANDLES = frozenset({"user.upserted", "user.removed"})
TABLES = ("users",)


def evolve(view: WorkspaceView, event: Envelope) -> Iterator[tuple[str, str]]:
    match event:
        case UserUpserted(data=d):
            view.users[d.user_id] = User(name=d.name, max_open_contacts=d.max_open_contacts)
            yield "users", d.user_id
        case UserRemoved(data=d) if d.user_id in view.users:
            del view.users[d.user_id]
            yield "users", d.user_id
