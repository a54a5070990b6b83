"""Reading the event log back, in order: for replay, the audit commands and the export.

Rows come in (workspace, position) order, a chunk per round trip, inside one transaction, so
they are one snapshot of the log. A caller already in a transaction reads in it: `handoff
replay --verify` reads a workspace's projections in the snapshot its log was read in, which is
what lets it run beside the service.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from handoff.adapters.cloudevents import load_event
from handoff.adapters.pg_store import Connection
from handoff.core.envelope import Envelope

__all__ = ["Logged", "Span", "read_log"]

Span = tuple[str | None, str | None]
"""Workspace ids from the first (inclusive) to the second (exclusive); None: no bound."""

_CHUNK = 5000
"""Log rows fetched per round trip, as one list: iterating the cursor row by row costs an
await and asyncpg's connection checks per row (about 2 of some 30 us of CPU per event)."""


@dataclass(frozen=True, slots=True)
class Logged:
    """One row of the log: the event, as logged, with where and when it was decided."""

    workspace_id: str
    seq: int
    is_input: bool
    decided_at: datetime
    core_version: int | None
    """The core that decided it (`handoff.core.version`); None: logged before versions were."""
    body: str
    """The CloudEvent as logged: `event` is parsed from it."""
    event: Envelope


async def read_log(
    conn: Connection,
    span: Span = (None, None),
    *,
    workspace_id: str | None = None,
    until: datetime | None = None,
) -> AsyncIterator[Logged]:
    """The log of the workspaces in `span` (or of `workspace_id` alone), up to the events
    decided at `until` (inclusive; None: all)."""
    query = (
        "SELECT workspace_id, seq, is_input, decided_at, core_version, body::text FROM event_log"
        " WHERE ($1::text IS NULL OR workspace_id >= $1)"
        " AND ($2::text IS NULL OR workspace_id < $2)"
        " AND ($3::text IS NULL OR workspace_id = $3)"
        " AND ($4::timestamptz IS NULL OR decided_at <= $4)"
        " ORDER BY workspace_id, seq"
    )
    args = (*span, workspace_id, until)
    if conn.is_in_transaction():
        async for logged in _rows(conn, query, args):
            yield logged
        return
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for logged in _rows(conn, query, args):
            yield logged


async def _rows(conn: Connection, query: str, args: tuple[object, ...]) -> AsyncIterator[Logged]:
    cursor = await conn.cursor(query, *args)
    while rows := await cursor.fetch(_CHUNK):
        for workspace_id, seq, is_input, decided_at, version, body in rows:
            yield Logged(workspace_id, seq, is_input, decided_at, version, body, load_event(body))
