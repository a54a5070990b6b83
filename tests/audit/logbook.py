"""A real event log and projections in PostgreSQL, written without Kafka, for the audit tests.

Each input goes through the one sequence the service runs (`handoff_projections.apply`), after
the timers of its workspace that fell due before it (in event time, as `handle_batch` fires
them), and every event is logged with the columns the service writes (`BatchWrite.log_row`);
at the end the views are stored as the live projections. The audit commands then read a log
that differs from the service's only in the Kafka position of each input.
"""

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from handoff.adapters.cloudevents import dump_event
from handoff.adapters.pg_store import (
    LOG_COLUMNS,
    BatchWrite,
    migrate,
    projection_rows,
    replace_projections,
)
from handoff.core.envelope import Envelope
from handoff.core.event_time import DueTimers
from handoff.core.ids import RunId
from handoff.core.view import WorkspaceView
from handoff_projections import Changed
from handoff_projections.apply import apply

__all__ = ["write_log"]


async def write_log(
    dsn: str, inputs: Sequence[Envelope], *, decided_at: Sequence[datetime] | None = None
) -> dict[str, WorkspaceView]:
    """Decide `inputs` in order and log them in the database at `dsn` (migrated first);
    each is decided at its own `time` unless `decided_at` gives the clock readings. Returns
    the views, as stored."""
    views: dict[str, WorkspaceView] = {}
    due: dict[str, DueTimers] = {}
    batch = BatchWrite()
    for i, event in enumerate(inputs):
        now = decided_at[i] if decided_at is not None else event.time
        ws = event.workspaceid
        view = views.setdefault(ws, WorkspaceView(workspace_id=ws))
        timers = due.setdefault(ws, DueTimers(view))
        while (timer := timers.pop_due(event.time)) is not None:
            _apply(batch, view, timers, timer, now)
        _apply(batch, view, timers, event, now)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            await conn.copy_records_to_table("event_log", records=batch.log, columns=LOG_COLUMNS)
            rows = [r for v in views.values() for r in projection_rows(v)]
            await replace_projections(
                conn, rows, [(v.workspace_id, v.version) for v in views.values()]
            )
    finally:
        await pool.close()
    return views


def _apply(
    batch: BatchWrite, view: WorkspaceView, timers: DueTimers, event: Envelope, now: datetime
) -> None:
    def folded(e: Envelope, rows: set[Changed]) -> None:
        for table, key in rows:
            if table == "timers":
                timers.set(RunId(key))
        batch.log_row(view.version, e, dump_event(e), now, e is event, None)

    apply(view, event, now, folded)
