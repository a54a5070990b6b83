"""Reading the event log back, in order: for replay, the audit commands and the export.

Rows come in (workspace, position) order, a chunk per round trip, inside one transaction, so
they are one snapshot of the log. A caller already in a transaction reads in it: `handoff
replay --verify` reads a workspace's projections in the snapshot its log was read in, which is
what lets it run beside the service. A command reading the log opens its connection here
(`connection`), so each reaches the database as the service does, TLS included.
"""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from handoff.adapters.cloudevents import load_event
from handoff.adapters.pg_store import Connection
from handoff.core.envelope import Envelope

__all__ = ["Logged", "SSLMode", "Span", "connection", "read_bodies", "read_log"]

Span = tuple[str | None, str | None]
"""Workspace ids from the first (inclusive) to the second (exclusive); None: no bound."""

SSLMode = Literal["disable", "prefer", "require", "verify-ca", "verify-full"]
"""TLS to PostgreSQL, as `HANDOFF_DATABASE_SSLMODE` gives it."""

_CHUNK = 5000
"""Log rows fetched per round trip, as one list: iterating the cursor row by row costs an
await and asyncpg's connection checks per row (about 2 of some 30 us of CPU per event)."""


@contextlib.asynccontextmanager
async def connection(dsn: str, ssl: SSLMode | None = None) -> AsyncIterator[Connection]:
    """A connection of its own for one command, closed however it ends. `ssl` is the
    service's `HANDOFF_DATABASE_SSLMODE` (None: as the DSN says): a command that reads the
    log reaches the database the way the service does, TLS included."""
    conn = await asyncpg.connect(dsn, ssl=ssl)
    try:
        yield conn
    finally:
        await conn.close()


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
    upto_seq: int | None = None,
) -> AsyncIterator[Logged]:
    """The log of the workspaces in `span` (or of `workspace_id` alone), up to the events
    decided at `until` (inclusive; None: all) and to the position `upto_seq` (inclusive;
    None: the last)."""
    columns = "workspace_id, seq, is_input, decided_at, core_version, body::text"
    chunks = _chunks(conn, columns, span, workspace_id=workspace_id, until=until, upto_seq=upto_seq)
    async for rows in chunks:
        for ws, seq, is_input, decided_at, version, body in rows:
            yield Logged(ws, seq, is_input, decided_at, version, body, load_event(body))


async def read_bodies(
    conn: Connection,
    workspace_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AsyncIterator[str]:
    """The CloudEvents of `workspace_id` decided from `since` to `until` (both inclusive;
    None: no bound), as logged, unparsed: for a copy of the log, parsing would only cost."""
    chunks = _chunks(conn, "body::text", workspace_id=workspace_id, since=since, until=until)
    async for rows in chunks:
        for (body,) in rows:
            yield body


async def _chunks(
    conn: Connection,
    columns: str,
    span: Span = (None, None),
    *,
    workspace_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    upto_seq: int | None = None,
) -> AsyncIterator[list[asyncpg.Record]]:
    """`columns` of the log's rows within the bounds (as `read_log` and `read_bodies` take
    them; None: no bound), in log order, a chunk at a time, in the caller's transaction or a
    snapshot of their own: the one query both readers share."""
    query = (
        f"SELECT {columns} FROM event_log"
        " WHERE ($1::text IS NULL OR workspace_id >= $1)"
        " AND ($2::text IS NULL OR workspace_id < $2)"
        " AND ($3::text IS NULL OR workspace_id = $3)"
        " AND ($4::timestamptz IS NULL OR decided_at >= $4)"
        " AND ($5::timestamptz IS NULL OR decided_at <= $5)"
        " AND ($6::bigint IS NULL OR seq <= $6)"
        " ORDER BY workspace_id, seq"
    )
    snapshot: contextlib.AbstractAsyncContextManager[Any] = (
        contextlib.nullcontext()
        if conn.is_in_transaction()
        else conn.transaction(isolation="repeatable_read", readonly=True)
    )
    async with snapshot:
        cursor = await conn.cursor(query, *span, workspace_id, since, until, upto_seq)
        while rows := await cursor.fetch(_CHUNK):
            yield rows
