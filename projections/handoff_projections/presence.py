"""Presence per user; a user never seen is offline, and only `online` counts as online.

`presence_changes` keeps each user's latest actual change (what they were before, and when
in the log): the `assignee_unavailable` trigger starts on a change into its statuses, not on
an input that repeats one."""

from collections.abc import Iterator

from handoff.core.envelope import Envelope
from handoff.core.inputs import UserPresenceChanged, UserRemoved
from handoff.core.view import PresenceChange, WorkspaceView

HANDLES = frozenset({"user.presence_changed", "user.removed"})
TABLES = ("presence", "presence_changes")


def evolve(view: WorkspaceView, event: Envelope) -> Iterator[tuple[str, str]]:
    match event:
        case UserPresenceChanged(data=d):
            before = view.presence.get(d.user_id, "offline")
            view.presence[d.user_id] = d.status
            yield "presence", d.user_id
            if before != d.status:
                view.presence_changes[d.user_id] = PresenceChange(before, view.version)
                yield "presence_changes", d.user_id
        case UserRemoved(data=d) if d.user_id in view.presence:
            del view.presence[d.user_id]
            yield "presence", d.user_id
            if view.presence_changes.pop(d.user_id, None) is not None:
                yield "presence_changes", d.user_id
