"""`handoff replay --verify`: the log re-decided and the projections rebuilt, beside the service.

For each workspace, its log is folded into a fresh view (scratch space: nothing is written),
each logged input (a timer's firing is one) is decided again with the current core and the
clock reading it was logged with, and the outputs are compared with the logged decisions
that follow it, in order: one logged and not re-decided, one re-decided and not logged, or
one that differs (`handoff.audit.versions`, as the core version that logged it made it) is a
divergence. Then the folded view's rows are compared with the live ones, row by row, a
chunk of keys per round trip (`_compare_rows`).

A workspace's log and its live rows are read in one repeatable-read snapshot: the service
writes a step's log rows, projection rows and workspace version in one transaction, so what
it writes meanwhile is either wholly in the snapshot or wholly out of it, never a difference.

Like with like: the service writes every row its folds change to `projection_rows`, whether
or not it keeps that row in memory (`handoff_projections.resident` only decides which rows
it reads back), so the live table holds every row of every projection (`TABLES`) and the
folded view is compared with all of it. The live rows are `jsonb`, which orders keys and
spaces its own way: each row is compared as `jsonb` in the database (the folded row's JSON,
as `dump_row` makes it, cast to `jsonb`), so only a different value is a difference. The
workspace's version (`workspaces.version`: how many events its projections fold) is compared
too. The `timers` table, the poller's index of the timer rows, is not compared: it mirrors the
`timers` projection, which is, and a rebuild (`replace_projections`) does not rewrite it.

One process, one workspace at a time (memory holds one view): on the 2-core machine about
12,000 events/s, near `handoff replay`'s audit in one process (13,600), since the fold and
the decisions cost most and the rows' comparison runs in the database. `handoff replay`'s
ranges of workspaces in several processes would divide the time by the cores it has.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from handoff.adapters.cloudevents import dump_event
from handoff.adapters.pg_log import Logged, SSLMode, connection, read_log
from handoff.adapters.pg_store import Connection, projection_rows
from handoff.audit.versions import Difference, difference, version_of
from handoff.core.decide import decide
from handoff.core.envelope import OutputEnvelope
from handoff.core.timers import TimerElapsed
from handoff.core.view import WorkspaceView
from handoff_projections import evolve

__all__ = [
    "SHOWN_CHARS",
    "Divergence",
    "Verified",
    "report",
    "verify",
    "verify_database",
    "workspaces",
]

SHOWN_CHARS = 600
"""The most of an expected or actual value a report shows; the rest is counted, not shown."""


@dataclass(frozen=True, slots=True)
class Divergence:
    """One difference: in which workspace, what (a logged event, or a row), and the two sides."""

    workspace_id: str
    what: str
    expected: str
    """From the log: the decision as logged, the row as the log folds it."""
    actual: str
    """Now: the decision the current core makes, the row as the service stored it."""


@dataclass
class Verified:
    workspaces: int = 0
    events: int = 0
    inputs: int = 0
    timers: int = 0
    """Of the inputs, timers that fell due."""
    decisions: Counter[int] = field(default_factory=Counter)
    """Logged decisions compared, by the core version that logged them."""
    rows: int = 0
    differences: int = 0
    first: Divergence | None = None

    def differs(self, divergence: Divergence) -> None:
        self.differences += 1
        if self.first is None:
            self.first = divergence


async def workspaces(conn: Connection) -> list[str]:
    """Every workspace with a log or live projections (rows without a log are differences)."""
    rows = await conn.fetch(
        "SELECT workspace_id FROM event_log GROUP BY 1"
        " UNION SELECT workspace_id FROM workspaces"
        " UNION SELECT workspace_id FROM projection_rows GROUP BY 1 ORDER BY 1"
    )
    return [r[0] for r in rows]


async def verify_database(
    dsn: str, workspace_id: str | None = None, *, ssl: SSLMode | None = None
) -> Verified:
    """Verify the log and projections of the database at `dsn`: every workspace, or one."""
    async with connection(dsn, ssl) as conn:
        ids = [workspace_id] if workspace_id is not None else await workspaces(conn)
        return await verify(conn, ids)


async def verify(conn: Connection, workspace_ids: list[str]) -> Verified:
    """Verify these workspaces, each in a snapshot of its own."""
    result = Verified()
    for workspace_id in workspace_ids:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            view = await _redecide(conn, workspace_id, result)
            await _compare_rows(conn, view, result)
            await _compare_version(conn, view, result)
        result.workspaces += 1
    return result


async def _redecide(conn: Connection, workspace_id: str, result: Verified) -> WorkspaceView:
    """Fold the workspace's log into a fresh view, re-deciding each input on the way."""
    view = WorkspaceView(workspace_id=workspace_id)
    cause: Logged | None = None
    pending: list[OutputEnvelope] = []
    """The re-decided outputs of `cause` not yet met in the log, the next one last."""

    def unlogged() -> None:
        for decided in reversed(pending):
            result.differs(
                Divergence(
                    workspace_id,
                    f"{_name(cause)}: re-decided {decided.type} {decided.id}, not logged",
                    "(nothing logged)",
                    dump_event(decided).decode(),
                )
            )
        if pending:
            pending.clear()
            view.forget_indexes()  # they followed decisions the log does not hold

    async for logged in read_log(conn, workspace_id=workspace_id):
        evolve(view, logged.event)
        result.events += 1
        if logged.is_input:
            unlogged()
            cause = logged
            result.inputs += 1
            result.timers += isinstance(logged.event, TimerElapsed)
            pending = decide(
                view,
                logged.event,
                logged.decided_at,
                keep_index=True,
                core_version=version_of(logged),
            )
            pending.reverse()
            continue
        result.decisions[version_of(logged)] += 1
        if not pending:
            result.differs(
                Divergence(
                    workspace_id,
                    f"{_name(logged)} (of {_name(cause)}): logged, not re-decided",
                    logged.body,
                    "(nothing re-decided)",
                )
            )
            view.forget_indexes()
            continue
        found = difference(logged, pending.pop())
        if found is not None:  # the next ones are still compared, each with its own
            result.differs(_differing(logged, cause, found))
            view.forget_indexes()  # they followed the decision made, not the logged one
    unlogged()
    return view


def _differing(logged: Logged, cause: Logged | None, found: Difference) -> Divergence:
    what = f"{_name(logged)} (v{version_of(logged)}, of {_name(cause)}) differs at {found.path}"
    return Divergence(logged.workspace_id, what, found.expected, found.actual)


def _name(logged: Logged | None) -> str:
    if logged is None:
        return "(no input)"
    return f"{logged.event.type} {logged.event.id} (seq {logged.seq})"


_ROWS_PER_TRIP = 5000
"""Projection rows compared per round trip. A workspace's rows never travel in one query:
closed conversations' rows stay, so a year of one workspace is hundreds of MB, and a query's
parameters stop at 1 GB."""


async def _compare_rows(conn: Connection, view: WorkspaceView, result: Verified) -> None:
    """The folded view's rows against the live ones.

    The live keys are read in their index's order, a chunk at a time, each chunk compared
    with the folded rows of the same keys (None where the log folds no such row); the folded
    rows no live key matched follow, in chunks too. Matching by key, not by a merge of two
    sorted lists, leaves the order to the database's collation, whatever it is."""
    workspace_id = view.workspace_id
    unmatched = {(table, key): row for _, table, key, row in projection_rows(view)}
    live_keys = await conn.cursor(
        "SELECT tbl, key FROM projection_rows WHERE workspace_id = $1 ORDER BY tbl, key",
        workspace_id,
    )
    while live := await live_keys.fetch(_ROWS_PER_TRIP):
        chunk = [(table, key, unmatched.pop((table, key), None)) for table, key in live]
        await _compare_chunk(conn, workspace_id, chunk, result)
    missing = sorted((table, key, row) for (table, key), row in unmatched.items())
    for start in range(0, len(missing), _ROWS_PER_TRIP):
        await _compare_chunk(conn, workspace_id, missing[start : start + _ROWS_PER_TRIP], result)


async def _compare_chunk(
    conn: Connection,
    workspace_id: str,
    chunk: Sequence[tuple[str, str, str | None]],
    result: Verified,
) -> None:
    """These (table, key, folded row) against the live rows of the same keys, as `jsonb`
    (module docstring), in the chunk's order."""
    differing = await conn.fetch(
        "SELECT f.tbl, f.key, f.value::jsonb::text AS folded, p.value::text AS live"
        " FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS f(tbl, key, value, n)"
        " LEFT JOIN projection_rows p"
        "   ON p.workspace_id = $1 AND p.tbl = f.tbl AND p.key = f.key"
        " WHERE f.value::jsonb IS DISTINCT FROM p.value"
        " ORDER BY f.n",
        workspace_id,
        [c[0] for c in chunk],
        [c[1] for c in chunk],
        [c[2] for c in chunk],
    )
    result.rows += len(chunk)
    for r in differing:
        result.differs(
            Divergence(
                workspace_id,
                f"row ({workspace_id}, {r['tbl']}, {r['key']})",
                r["folded"] or "(no row)",
                r["live"] or "(no row)",
            )
        )


async def _compare_version(conn: Connection, view: WorkspaceView, result: Verified) -> None:
    """The workspace's version (how many events its projections fold) against the live one."""
    workspace_id = view.workspace_id
    live = await conn.fetchval(
        "SELECT version FROM workspaces WHERE workspace_id = $1", workspace_id
    )
    version = view.version or None  # a workspace with no log has no version
    result.rows += 1
    if live != version:
        result.differs(
            Divergence(
                workspace_id,
                f"row ({workspace_id}, workspaces, version)",
                "(no row)" if version is None else str(version),
                "(no row)" if live is None else str(live),
            )
        )


def report(result: Verified) -> list[str]:
    """The summary, and the first divergence (each side at most `SHOWN_CHARS`)."""
    by_version = ", ".join(f"v{v}: {n}" for v, n in sorted(result.decisions.items(), reverse=True))
    lines = [
        f"verified {result.workspaces} workspace(s): {result.events} events,"
        f" {result.inputs} inputs re-decided ({result.timers} timers),"
        f" {result.decisions.total()} decisions compared ({by_version or 'none'}),"
        f" {result.rows} projection rows compared: "
        + (f"{result.differences} difference(s)" if result.differences else "no differences")
    ]
    first = result.first
    if first is not None:
        lines += [
            f"first divergence, workspace {first.workspace_id}: {first.what}",
            f"  expected: {_shown(first.expected)}",
            f"  actual:   {_shown(first.actual)}",
        ]
    return lines


def _shown(text: str) -> str:
    if len(text) <= SHOWN_CHARS:
        return text
    return f"{text[:SHOWN_CHARS]} … [cut: {len(text) - SHOWN_CHARS} more characters]"
