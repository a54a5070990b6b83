"""PostgreSQL: the event log, the projections' rows, consumer positions and the outbox.

Everything a step's batches produced is written by `commit_batches` in one transaction,
together with the consumer positions they reached. The positions are compare-and-set: an
instance that no longer owns a partition (a zombie after a rebalance) finds its expected
position gone and the whole transaction rolls back, so an input is applied at most once.
"""

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from handoff.core.envelope import Envelope, OutputEnvelope
from handoff.core.timers import TimerKind
from handoff.core.version import CORE_VERSION
from handoff.core.view import WorkspaceView
from handoff_projections import FORMAT, TABLES
from handoff_projections.resident import CONTACT_TABLES
from handoff_projections.rows import dump_row, load_row

__all__ = [
    "FROM_START",
    "BatchWrite",
    "Connection",
    "DueTimer",
    "Fenced",
    "InputKey",
    "OutboxEntry",
    "OutboxRow",
    "ProjectionRow",
    "Taken",
    "clear_outbox",
    "commit_batches",
    "count_outbox",
    "delete_outbox",
    "forget_positions",
    "input_key",
    "load_due_timers",
    "load_outbox",
    "load_positions",
    "load_rows",
    "load_views",
    "migrate",
    "projection_rows",
    "record_marker",
    "replace_projections",
    "seen_inputs",
    "take_positions",
]

TopicPartition = tuple[str, int]
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
"""A connection of its own or one lent by the pool: both run queries alike."""


class Fenced(Exception):
    """Another consumer moved a partition's stored position: this instance lost it."""

    def __init__(self, partitions: set[int], detail: str) -> None:
        self.partitions = partitions
        super().__init__(detail)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    topic: str
    key: bytes | None
    value: bytes


OutboxEntry = tuple[int, str, bytes | None, bytes]
"""(partition, topic, key, value): an output waiting to be produced."""


@dataclass
class BatchWrite:
    """What one polled batch of one partition produced, written atomically."""

    log: list[tuple[Any, ...]] = field(default_factory=list)
    outbox: list[OutboxEntry] = field(default_factory=list)
    rows_upserted: list[tuple[str, str, str, str]] = field(default_factory=list)
    rows_deleted: list[tuple[str, str, str]] = field(default_factory=list)
    timers_set: list[tuple[str, str, int, datetime, str, str]] = field(default_factory=list)
    timers_gone: list[tuple[str, str]] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)
    positions: dict[TopicPartition, tuple[int, int]] = field(default_factory=dict)
    """(topic, partition) -> (the stored position this batch started from, the one it reached),
    for every input topic of the partition, read from or not."""
    generation: int | None = None
    """The take of the partition this batch was decided under (`take_positions`); the commit
    is fenced unless it is still the stored one. None only where nothing takes partitions."""
    markers: dict[TopicPartition, str] = field(default_factory=dict)
    """(topic, partition) -> the marker of the last record read (`record_marker`)."""

    def log_row(
        self,
        seq: int,
        event: Envelope,
        body: bytes,
        decided_at: datetime,
        is_input: bool,
        source: tuple[str, int, int] | None,
    ) -> None:
        """`source` is the Kafka record an input came from (none for a timer's)."""
        topic, partition, offset = source if source else (None, None, None)
        self.log.append(
            (
                event.workspaceid,
                seq,
                event.source,
                event.id,
                event.type,
                is_input,
                event.causationid if isinstance(event, OutputEnvelope) else None,
                decided_at,
                body.decode(),
                topic,
                partition,
                offset,
                CORE_VERSION,
            )
        )


def _migrations_dir() -> Path:
    here = Path(__file__).resolve()
    for candidate in (here.parents[1] / "sql", here.parents[3] / "schemas" / "sql"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("SQL migrations not found (schemas/sql)")


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply the migrations not yet applied; returns their names. Safe with many instances."""
    applied: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('handoff.migrate'))")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for path in sorted(_migrations_dir().glob("*.sql")):
            if path.name not in done:
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", path.name)
                applied.append(path.name)
    return applied


async def load_views(conn: Connection, workspace_ids: Iterable[str]) -> dict[str, WorkspaceView]:
    """The workspaces' views with every row of their own tables and none of their contacts'
    and conversations' (`CONTACT_TABLES`): the caller reads back those it needs with
    `load_rows` (`handoff_projections.resident` says which)."""
    ids = list(workspace_ids)
    views = {ws: WorkspaceView(workspace_id=ws) for ws in ids}
    for r in await conn.fetch(
        "SELECT workspace_id, version FROM workspaces WHERE workspace_id = ANY($1::text[])", ids
    ):
        views[r["workspace_id"]].version = r["version"]
    for r in await conn.fetch(
        "SELECT workspace_id, tbl, key, value::text FROM projection_rows"
        " WHERE workspace_id = ANY($1::text[]) AND tbl <> ALL($2::text[])",
        ids,
        list(CONTACT_TABLES),
    ):
        load_row(views[r["workspace_id"]], r["tbl"], r["key"], r["value"])
    return views


async def load_rows(
    conn: Connection, views: Mapping[str, WorkspaceView], keys: Sequence[tuple[str, str, str]]
) -> None:
    """Read these (workspace, table, key) rows back into the views; a row not stored stays
    absent."""
    if not keys:
        return
    for r in await conn.fetch(
        "SELECT p.workspace_id, p.tbl, p.key, p.value::text FROM projection_rows p"
        " JOIN unnest($1::text[], $2::text[], $3::text[]) AS q(w, t, k)"
        "   ON p.workspace_id = q.w AND p.tbl = q.t AND p.key = q.k",
        *map(list, zip(*keys, strict=True)),
    ):
        load_row(views[r["workspace_id"]], r["tbl"], r["key"], r["value"])


InputKey = tuple[str, str, str]
"""(workspace, source, id): CloudEvents ids are unique per source, and tenants apart."""


def input_key(event: Envelope) -> InputKey:
    return event.workspaceid, event.source, event.id


async def seen_inputs(conn: Connection, keys: Sequence[InputKey]) -> set[InputKey]:
    """Which of these inputs the log already holds."""
    if not keys:
        return set()
    rows = await conn.fetch(
        "SELECT l.workspace_id, l.source, l.event_id FROM event_log l"
        " JOIN unnest($1::text[], $2::text[], $3::text[]) AS q(ws, source, id)"
        "   ON l.workspace_id = q.ws AND l.source = q.source AND l.event_id = q.id"
        " WHERE l.is_input",
        *map(list, zip(*keys, strict=True)),
    )
    return {(r["workspace_id"], r["source"], r["event_id"]) for r in rows}


FROM_START = -1
"""The stored position of a partition never consumed: read it from its earliest offset."""


async def load_positions(
    conn: Connection, group_id: str, tps: Iterable[TopicPartition]
) -> dict[TopicPartition, int]:
    """The positions of `tps`, creating `FROM_START` rows for those never consumed.

    Every partition then has a row, so each batch can compare-and-set all of its group's
    rows, including topics it read nothing from: a zombie is fenced whatever it read.
    """
    topics, partitions = zip(*tps, strict=True)
    rows = await conn.fetch(
        "WITH q AS (SELECT * FROM unnest($2::text[], $3::int[]) AS q(topic, partition)),"
        " created AS (INSERT INTO consumer_positions (group_id, topic, partition, next_offset)"
        "   SELECT $1, topic, partition, $4 FROM q ON CONFLICT DO NOTHING"
        "   RETURNING topic, partition, next_offset)"
        " SELECT * FROM created UNION ALL"
        " SELECT p.topic, p.partition, p.next_offset FROM consumer_positions p"
        "   JOIN q ON p.topic = q.topic AND p.partition = q.partition WHERE p.group_id = $1",
        group_id,
        list(topics),
        list(partitions),
        FROM_START,
    )
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


@dataclass(frozen=True, slots=True)
class Taken:
    """A partition's stored positions as a take found them, under its new generation."""

    generation: int
    positions: dict[TopicPartition, int]
    markers: dict[TopicPartition, str | None]


async def take_positions(conn: Connection, group_id: str, tps: Sequence[TopicPartition]) -> Taken:
    """Take partitions' positions (`tps`: every input topic of one partition) under a new
    generation: any commit decided under an earlier take of them is fenced from now on,
    whether or not it moves a position (a zombie's timer-only step included)."""
    async with conn.transaction():
        await load_positions(conn, group_id, tps)  # creates the rows never consumed
        generation = await conn.fetchval("SELECT nextval('position_generation')")
        rows = await conn.fetch(
            "UPDATE consumer_positions p SET generation = $4"
            " FROM unnest($2::text[], $3::int[]) AS q(topic, partition)"
            " WHERE p.group_id = $1 AND p.topic = q.topic AND p.partition = q.partition"
            " RETURNING p.topic, p.partition, p.next_offset, p.marker",
            group_id,
            [t for t, _ in tps],
            [p for _, p in tps],
            generation,
        )
    return Taken(
        generation,
        {(r["topic"], r["partition"]): r["next_offset"] for r in rows},
        {(r["topic"], r["partition"]): r["marker"] for r in rows},
    )


def record_marker(timestamp_ms: int | None, value: bytes | None) -> str:
    """What identifies a record beyond its offset: another broker or a recreated topic holds
    another record at that offset, whose marker differs."""
    return f"{timestamp_ms}:{zlib.crc32(value or b'')}"


async def forget_positions(conn: Connection, group_id: str) -> None:
    """Positions belong to the broker that issued them; a new embedded broker starts over."""
    await conn.execute("DELETE FROM consumer_positions WHERE group_id = $1", group_id)


LOG_COLUMNS = [
    "workspace_id",
    "seq",
    "source",
    "event_id",
    "type",
    "is_input",
    "causation_id",
    "decided_at",
    "body",
    "source_topic",
    "source_partition",
    "source_offset",
    "core_version",
]


async def commit_batches(
    conn: Connection, group_id: str, batches: Sequence[BatchWrite]
) -> tuple[int, int] | None:
    """Write the batches of one step atomically, or raise `Fenced` and write nothing; return
    the first and last outbox seq written (None: no outputs). Between the two lie this
    step's outputs only, for its partitions: another writer of a partition waits for the
    positions' row lock, taken first, so its seqs come before or after.

    One transaction for all of a step's partitions: a statement per kind of row, not per
    partition, since on a busy machine each round trip costs a context switch."""
    moves = [
        (t, p, expected, reached, b.generation, b.markers.get((t, p)))
        for b in batches
        for (t, p), (expected, reached) in b.positions.items()
    ]
    if not moves:
        return None
    outputs: tuple[int, int] | None = None

    def rows(name: str) -> list[Any]:
        return [row for b in batches for row in getattr(b, name)]

    async with conn.transaction():
        moved = await conn.fetch(
            "UPDATE consumer_positions p SET next_offset = q.reached,"
            "   marker = coalesce(q.marker, p.marker)"
            " FROM unnest($2::text[], $3::int[], $4::bigint[], $5::bigint[], $6::bigint[],"
            "   $7::text[]) AS q(topic, partition, expected, reached, generation, marker)"
            " WHERE p.group_id = $1 AND p.topic = q.topic AND p.partition = q.partition"
            "   AND p.next_offset = q.expected"
            "   AND (q.generation IS NULL OR p.generation = q.generation)"
            " RETURNING p.topic, p.partition",
            group_id,
            *map(list, zip(*moves, strict=True)),
        )
        if len(moved) != len(moves):
            kept = {(r["topic"], r["partition"]) for r in moved}
            lost = {m[1] for m in moves if (m[0], m[1]) not in kept}
            raise Fenced(lost, f"partition(s) {sorted(lost)} moved on or were taken without us")
        if log := rows("log"):
            await conn.copy_records_to_table("event_log", records=log, columns=LOG_COLUMNS)
        if outbox := rows("outbox"):
            written = await conn.fetchrow(
                "WITH written AS (INSERT INTO outbox (partition, topic, key, value)"
                "   SELECT p, t, k, v"
                "   FROM unnest($1::int[], $2::text[], $3::bytea[], $4::bytea[])"
                "     WITH ORDINALITY AS o(p, t, k, v, n) ORDER BY n"  # seq in written order
                "   RETURNING seq)"
                " SELECT min(seq), max(seq) FROM written",
                *map(list, zip(*outbox, strict=True)),
            )
            assert written is not None  # an aggregate has a row
            outputs = (written[0], written[1])
        if upserted := rows("rows_upserted"):
            await conn.execute(
                "INSERT INTO projection_rows (workspace_id, tbl, key, value)"
                " SELECT w, t, k, v::jsonb"
                " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])"
                "   AS r(w, t, k, v)"
                " ON CONFLICT (workspace_id, tbl, key) DO UPDATE SET value = EXCLUDED.value",
                *map(list, zip(*upserted, strict=True)),
            )
        if deleted := rows("rows_deleted"):
            await conn.execute(
                "DELETE FROM projection_rows p USING unnest($1::text[], $2::text[], $3::text[])"
                "   AS r(w, t, k) WHERE p.workspace_id = r.w AND p.tbl = r.t AND p.key = r.k",
                *map(list, zip(*deleted, strict=True)),
            )
        if timers_gone := rows("timers_gone"):
            await conn.execute(
                "DELETE FROM timers t USING unnest($1::text[], $2::text[]) AS g(w, r)"
                " WHERE t.workspace_id = g.w AND t.run_id = g.r",
                *map(list, zip(*timers_gone, strict=True)),
            )
        if timers_set := rows("timers_set"):
            await conn.execute(
                "INSERT INTO timers (workspace_id, run_id, partition, due_at, step_id, kind)"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[],"
                "   $5::text[], $6::text[])"
                " ON CONFLICT (workspace_id, run_id) DO UPDATE SET partition = EXCLUDED.partition,"
                "   due_at = EXCLUDED.due_at, step_id = EXCLUDED.step_id, kind = EXCLUDED.kind",
                *map(list, zip(*timers_set, strict=True)),
            )
        versions = {ws: v for b in batches for ws, v in b.versions.items()}
        if versions:
            await conn.execute(
                "INSERT INTO workspaces (workspace_id, version)"
                " SELECT * FROM unnest($1::text[], $2::bigint[])"
                " ON CONFLICT (workspace_id) DO UPDATE SET version = EXCLUDED.version",
                list(versions),
                list(versions.values()),
            )
    return outputs


@dataclass(frozen=True, slots=True)
class DueTimer:
    workspace_id: str
    partition: int
    run_id: str
    step_id: str
    kind: TimerKind
    due_at: datetime


async def load_due_timers(
    conn: Connection, partitions: Sequence[int], now: datetime, limit: int = 1000
) -> list[DueTimer]:
    rows = await conn.fetch(
        "SELECT workspace_id, partition, run_id, step_id, kind, due_at FROM timers"
        " WHERE partition = ANY($1::int[]) AND due_at <= $2 ORDER BY due_at LIMIT $3",
        list(partitions),
        now,
        limit,
    )
    return [DueTimer(**dict(r)) for r in rows]


async def load_outbox(conn: Connection, partition: int, limit: int = 10_000) -> list[OutboxRow]:
    rows = await conn.fetch(
        "SELECT seq, topic, key, value FROM outbox WHERE partition = $1 ORDER BY seq LIMIT $2",
        partition,
        limit,
    )
    return [OutboxRow(r["seq"], r["topic"], r["key"], r["value"]) for r in rows]


async def count_outbox(conn: Connection, partitions: Sequence[int]) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM outbox WHERE partition = ANY($1::int[])", list(partitions)
    )
    return count


async def delete_outbox(conn: Connection, partition: int, upto_seq: int) -> None:
    """The partition's rows relayed, up to `upto_seq`."""
    await conn.execute("DELETE FROM outbox WHERE partition = $1 AND seq <= $2", partition, upto_seq)


async def clear_outbox(
    conn: Connection, partitions: Sequence[int], written: tuple[int, int]
) -> None:
    """The rows of these partitions that one step wrote (`commit_batches`), relayed: what
    another writer of them wrote before or after stays for its relay."""
    await conn.execute(
        "DELETE FROM outbox WHERE partition = ANY($1::int[]) AND seq BETWEEN $2 AND $3",
        list(partitions),
        *written,
    )


ProjectionRow = tuple[str, str, str, str]
"""(workspace_id, table, key, the value's JSON), as `projection_rows` stores it."""


def projection_rows(view: WorkspaceView) -> list[ProjectionRow]:
    """Every row of a view, to be stored."""
    return [
        (view.workspace_id, table, key, dump_row(table, value).decode())
        for table in TABLES
        for key, value in getattr(view, table).items()
    ]


async def stale_projections(conn: Connection) -> str | None:
    """Why the stored projections cannot be decided on (None: they can): folded by an older
    version into a shape that lacks rows this one keeps."""
    stored = await conn.fetchval("SELECT version FROM projection_format")
    if stored is None or stored >= FORMAT:
        return None
    return (
        f"stored projections are format {stored}, this version folds format {FORMAT}: stop"
        " every instance and run `handoff replay --rebuild`"
    )


async def replace_projections(
    conn: Connection, rows: Sequence[ProjectionRow], versions: Sequence[tuple[str, int]]
) -> None:
    """Swap every projection row and workspace version for these (a rebuild from the log),
    atomically."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE projection_rows, workspaces IN EXCLUSIVE MODE")
        await conn.execute("DELETE FROM projection_rows")
        await conn.execute("DELETE FROM workspaces")
        await conn.copy_records_to_table(
            "projection_rows", records=rows, columns=["workspace_id", "tbl", "key", "value"]
        )
        await conn.copy_records_to_table(
            "workspaces", records=versions, columns=["workspace_id", "version"]
        )
        await conn.execute("UPDATE projection_format SET version = $1", FORMAT)
