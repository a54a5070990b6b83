"""A workspace's view as the log stood at a moment: its events folded, nothing decided."""

from datetime import datetime

from handoff.adapters.pg_log import read_log
from handoff.adapters.pg_store import Connection
from handoff.core.view import WorkspaceView
from handoff_projections import evolve

__all__ = ["view_at"]


async def view_at(
    conn: Connection, workspace_id: str, until: datetime | None = None
) -> WorkspaceView:
    """The projections of `workspace_id` folded from its log up to the events decided at
    `until` (None: all of it)."""
    view = WorkspaceView(workspace_id=workspace_id)
    async for logged in read_log(conn, workspace_id=workspace_id, until=until):
        evolve(view, logged.event)
    return view
