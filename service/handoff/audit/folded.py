"""A workspace's log as the audit commands read it: folded up to a moment, nothing decided;
or, when there is none, said so (`EmptyLog`) rather than answered as an empty workspace."""

from datetime import datetime

from handoff.adapters.pg_log import read_log
from handoff.adapters.pg_store import Connection
from handoff.core.view import WorkspaceView
from handoff_projections import evolve

__all__ = ["EmptyLog", "view_at"]


class EmptyLog(Exception):
    """The workspace has no events in the log: there is nothing to re-decide or export."""

    def __init__(self, workspace_id: str) -> None:
        super().__init__(f"workspace {workspace_id!r} has no events in the log")


async def view_at(
    conn: Connection, workspace_id: str, until: datetime | None = None
) -> WorkspaceView:
    """The projections of `workspace_id` folded from its log up to the events decided at
    `until` (None: all of it)."""
    view = WorkspaceView(workspace_id=workspace_id)
    async for logged in read_log(conn, workspace_id=workspace_id, until=until):
        evolve(view, logged.event)
    return view
