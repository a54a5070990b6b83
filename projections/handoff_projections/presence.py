"""Presence per user; a user never seen is offline, and only `online` counts as online."""

from collections.abc import Iterator

from handoff.core.envelope import Envelope
from handoff.core.inputs import UserPresenceChanged, UserRemoved
from handoff.core.view import WorkspaceView

HANDLES = frozenset({"user.presence_changed", "user.removed"})
TABLES = ("presence",)


def evolve(view: WorkspaceView, event: Envelope) -> Iterator[tuple[str, str]]:
    match event:
        case UserPresenceChanged(data=d):
            view.presence[d.user_id] = d.status
            yield "presence", d.user_id
        case UserRemoved(data=d) if d.user_id in view.presence:
            del view.presence[d.user_id]
            yield "presence", d.user_id
