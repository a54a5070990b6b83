"""Users, their capacity (`max_open_contacts`; absent means unlimited) and skills (v1.1)."""

from collections.abc import Iterator

from handoff.core.envelope import Envelope
from handoff.core.inputs import UserRemoved, UserUpserted
from handoff.core.view import User, WorkspaceView

HANDLES = frozenset({"user.upserted", "user.removed"})
TABLES = ("users",)


def evolve(view: WorkspaceView, event: Envelope) -> Iterator[tuple[str, str]]:
    match event:
        case UserUpserted(data=d):
            skills = tuple(dict.fromkeys(d.skills or ()))
            view.users[d.user_id] = User(d.name, d.max_open_contacts, skills)
            yield "users", d.user_id
        case UserRemoved(data=d) if d.user_id in view.users:
            del view.users[d.user_id]
            yield "users", d.user_id
