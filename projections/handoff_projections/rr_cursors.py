"""Round-robin cursors: per team (and one for the whole workspace), the last member served.

Both team strategies move the cursor, so least-open-contacts ties rotate as well.
"""

from collections.abc import Iterator

from handoff.core.envelope import Envelope
from handoff.core.events import ContactAssigned
from handoff.core.view import WORKSPACE_CURSOR, WorkspaceView

HANDLES = frozenset({"contact.assigned"})
TABLES = ("rr_cursors",)


def evolve(view: WorkspaceView, event: Envelope) -> Iterator[tuple[str, str]]:
    match event:
        case ContactAssigned(data=d) if d.strategy != "specific_user":
            key = d.team_id or WORKSPACE_CURSOR
            view.rr_cursors[key] = d.assignee_id
            yield "rr_cursors", key
