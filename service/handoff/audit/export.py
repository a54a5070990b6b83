"""`handoff log export`: a workspace's event log as CloudEvents JSON lines, in log order.

Every logged event goes out, inputs and decisions (the run bookkeeping too), as it was
logged: the body is the CloudEvent's JSON text as written, so a line is byte for byte what
the service decided, and it is copied, never parsed. The database picks the rows decided
in the window, and the log is streamed from one snapshot (`read_bodies`), a chunk at a time,
never held whole.
"""

from datetime import datetime
from typing import TextIO

from handoff.adapters.pg_log import SSLMode, connection, read_bodies
from handoff.audit.folded import EmptyLog

__all__ = ["export"]


async def export(
    dsn: str,
    workspace_id: str,
    out: TextIO,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    ssl: SSLMode | None = None,
) -> int:
    """Write the events of `workspace_id` in the database at `dsn` decided from `since` to
    `until` (both inclusive; None: no bound) to `out`, one a line; returns how many. Raises
    `EmptyLog` when the workspace has no log at all (an empty window of one is 0 lines)."""
    lines = 0
    async with (
        connection(dsn, ssl) as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        async for body in read_bodies(conn, workspace_id, since=since, until=until):
            out.write(body)
            out.write("\n")
            lines += 1
        if not lines and not await conn.fetchval(
            "SELECT EXISTS (SELECT FROM event_log WHERE workspace_id = $1)", workspace_id
        ):
            raise EmptyLog(workspace_id)
    return lines
