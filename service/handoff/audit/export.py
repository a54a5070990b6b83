"""`handoff log export`: a workspace's event log as CloudEvents JSON lines, in log order.

Every logged event goes out, inputs and decisions (the run bookkeeping too), as it was
logged: the body is the CloudEvent's JSON text as written, so a line is byte for byte what
the service decided. The log is streamed from one snapshot (`read_log`), a chunk at a time,
never held whole.
"""

from datetime import datetime
from typing import TextIO

import asyncpg

from handoff.adapters.pg_log import read_log

__all__ = ["export"]


async def export(
    dsn: str,
    workspace_id: str,
    out: TextIO,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Write the events of `workspace_id` in the database at `dsn` decided from `since` to
    `until` (both inclusive; None: no bound) to `out`, one a line; returns how many."""
    lines = 0
    conn = await asyncpg.connect(dsn)
    try:
        async for logged in read_log(conn, workspace_id=workspace_id, until=until):
            if since is None or logged.decided_at >= since:
                out.write(logged.body)
                out.write("\n")
                lines += 1
    finally:
        await conn.close()
    return lines
