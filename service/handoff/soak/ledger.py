"""What the event log holds: while the soak waits for it (inputs logged, the outbox, the
stored positions) and at the end, every input row and every output row.

The database is the soak's own, so every input row is one the soak sent or a timer's.
"""

from dataclasses import dataclass

import asyncpg

from handoff.core.events import OUTPUT_TOPIC_OF
from handoff.core.timers import TIMER_SOURCE

__all__ = ["Ledger", "LoggedInput", "LoggedOutput", "positions", "progress", "read_ledger"]

Where = tuple[str, int, int]
"""(topic, partition, offset) of a Kafka record."""


@dataclass(slots=True)
class LoggedInput:
    decided_at: float
    """Of its first row, as seconds since the epoch."""
    timer: bool
    where: Where | None
    rows: int = 1


@dataclass(slots=True)
class LoggedOutput:
    type: str
    workspace: str
    seq: int
    cause: str | None
    contact: str | None
    decided_at: float
    rows: int = 1


@dataclass(slots=True)
class Ledger:
    inputs: dict[str, LoggedInput]
    outputs: dict[str, LoggedOutput]
    """Rows whose type is an output type (`OUTPUT_TOPIC_OF`), by id."""
    decisions: int
    """Every row that is not an input (run events included)."""
    outbox_left: int
    positions: dict[tuple[str, int], int]


async def progress(dsn: str) -> tuple[int, int]:
    """(distinct Kafka inputs logged, outbox rows not yet relayed)."""
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        logged: int = await conn.fetchval(
            "SELECT count(DISTINCT event_id) FROM event_log WHERE is_input AND source <> $1",
            TIMER_SOURCE,
        )
        outbox: int = await conn.fetchval("SELECT count(*) FROM outbox")
    finally:
        await conn.close()
    return logged, outbox


async def _positions(conn: asyncpg.Connection, group_id: str) -> dict[tuple[str, int], int]:
    rows = await conn.fetch(
        "SELECT topic, partition, next_offset FROM consumer_positions WHERE group_id = $1",
        group_id,
    )
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def positions(dsn: str, group_id: str) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the next offset stored for the consumer group."""
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return await _positions(conn, group_id)
    finally:
        await conn.close()


async def read_ledger(dsn: str, group_id: str) -> Ledger:
    """Every input row and every output row of the log (streamed: it can be large)."""
    conn = await asyncpg.connect(dsn, timeout=10)
    inputs: dict[str, LoggedInput] = {}
    outputs: dict[str, LoggedOutput] = {}
    try:
        async with conn.transaction():
            async for r in conn.cursor(
                "SELECT event_id, source, extract(epoch FROM decided_at)::float8 AS at,"
                " source_topic, source_partition, source_offset"
                " FROM event_log WHERE is_input ORDER BY decided_at",
                prefetch=10_000,
            ):
                known = inputs.get(r["event_id"])
                if known is not None:
                    known.rows += 1
                    continue
                where = (
                    (r["source_topic"], r["source_partition"], r["source_offset"])
                    if r["source_topic"] is not None
                    else None
                )
                inputs[r["event_id"]] = LoggedInput(r["at"], r["source"] == TIMER_SOURCE, where)
            async for r in conn.cursor(
                "SELECT event_id, type, workspace_id, seq, causation_id,"
                " body->'data'->>'contact_id' AS contact,"
                " extract(epoch FROM decided_at)::float8 AS at"
                " FROM event_log WHERE NOT is_input AND type = ANY($1::text[])"
                " ORDER BY workspace_id, seq",
                list(OUTPUT_TOPIC_OF),
                prefetch=10_000,
            ):
                known_output = outputs.get(r["event_id"])
                if known_output is not None:
                    known_output.rows += 1
                    continue
                outputs[r["event_id"]] = LoggedOutput(
                    r["type"], r["workspace_id"], r["seq"], r["causation_id"], r["contact"], r["at"]
                )
        decisions: int = await conn.fetchval("SELECT count(*) FROM event_log WHERE NOT is_input")
        outbox: int = await conn.fetchval("SELECT count(*) FROM outbox")
        stored = await _positions(conn, group_id)
    finally:
        await conn.close()
    return Ledger(inputs, outputs, decisions, outbox, stored)
