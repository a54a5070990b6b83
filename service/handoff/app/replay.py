"""Replay the event log: re-decide every input to audit the decisions, rebuild projections.

The log holds each input, the clock reading its decision was given, and the decisions. Folding
the log from the start and calling `decide` again with that same reading must give the logged
decisions, compared as the core version that logged each made it
(`handoff.audit.versions`); any difference is reported. The folded views are the projections,
so the same pass rebuilds them. A rebuild without the audit only folds: nearly twice as
fast, since deciding costs more than folding.

Workspaces share nothing, so the log is cut into ranges of workspace ids holding about as
many events each, folded side by side: one here, the others in processes of their own, since
the fold is Python, bound to one core per process. A range is read in workspace order, so a
workspace's view is turned into its rows and dropped as soon as the log moves past it: memory
holds one view at a time, plus, for a rebuild, every range's rows until they are written.
The ranges are read in separate snapshots: replay a log nobody is writing to, as `handoff
replay --rebuild` asks (stop the service first).
"""

import asyncio
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from handoff.adapters.pg_log import Span, SSLMode, connection, read_log
from handoff.adapters.pg_store import (
    Connection,
    ProjectionRow,
    projection_rows,
    replace_projections,
)
from handoff.audit.versions import difference, version_of
from handoff.core.decide import decide
from handoff.core.envelope import OutputEnvelope
from handoff.core.view import WorkspaceView
from handoff_projections import evolve

__all__ = ["Replay", "cut", "replay"]


@dataclass
class Replay:
    events: int = 0
    inputs: int = 0
    workspaces: int = 0
    mismatches: list[str] = field(default_factory=list)


@dataclass
class _Folded(Replay):
    """One range's replay, and with a rebuild its projection rows and versions."""

    rows: list[ProjectionRow] = field(default_factory=list)
    versions: list[tuple[str, int]] = field(default_factory=list)


_RANGES_PER_WORKER = 4
"""Ranges are taken one at a time, so that processes finishing early take more."""


async def _fold(conn: Connection, span: Span, rebuild: bool, audit: bool) -> _Folded:
    result = _Folded()
    view: WorkspaceView | None = None
    expected: list[OutputEnvelope] = []
    where = ""

    def settle() -> None:
        if expected:
            result.mismatches.append(f"{where}: {len(expected)} logged decision(s) not re-decided")
            expected.clear()
            if view is not None:
                view.forget_indexes()  # they followed decisions the log does not hold

    def done(view: WorkspaceView) -> None:
        settle()
        result.workspaces += 1
        if rebuild:
            result.rows += projection_rows(view)
            result.versions.append((view.workspace_id, view.version))

    async for logged in read_log(conn, span):
        workspace_id, is_input, event = logged.workspace_id, logged.is_input, logged.event
        if view is None or view.workspace_id != workspace_id:
            if view is not None:
                done(view)
            view = WorkspaceView(workspace_id=workspace_id)
        evolve(view, event)
        result.events += 1
        if not audit:
            result.inputs += is_input
        elif is_input:
            settle()
            result.inputs += 1
            where = f"{workspace_id} input {event.id}"
            expected = decide(
                view, event, logged.decided_at, keep_index=True, core_version=version_of(logged)
            )
            expected.reverse()
        elif not expected:
            result.mismatches.append(f"{where}: logged {event.type} {event.id} not re-decided")
            view.forget_indexes()
        elif (found := difference(logged, expected.pop())) is not None:
            result.mismatches.append(
                f"{where}: logged {event.type} {event.id} differs at {found.path}"
            )
            expected.clear()
            view.forget_indexes()  # they followed the decisions made, not the logged ones
    if view is not None:
        done(view)
    return result


def _fold_in_process(
    dsn: str, ssl: SSLMode | None, span: Span, rebuild: bool, audit: bool
) -> _Folded:
    async def main() -> _Folded:
        async with connection(dsn, ssl) as conn:
            return await _fold(conn, span, rebuild, audit)

    return asyncio.run(main())


async def _fold_side_by_side(
    conn: Connection,
    dsn: str,
    ssl: SSLMode | None,
    spans: list[Span],
    workers: int,
    rebuild: bool,
    audit: bool,
) -> list[_Folded]:
    """Here and in `workers - 1` processes, each taking the next range when it is done, so a
    process that started late (a spawned one imports handoff first) takes fewer."""
    loop = asyncio.get_running_loop()
    folded: list[_Folded | None] = [None] * len(spans)
    pending = iter(range(len(spans)))
    # Spawned, not forked: a fork would copy this process's running loop and connections.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers - 1, mp_context=context) as pool:

        async def here() -> None:
            for i in pending:
                folded[i] = await _fold(conn, spans[i], rebuild, audit)

        async def there() -> None:
            for i in pending:
                folded[i] = await loop.run_in_executor(
                    pool, _fold_in_process, dsn, ssl, spans[i], rebuild, audit
                )

        async with asyncio.TaskGroup() as group:  # one failing cancels the others
            group.create_task(here())
            for _ in range(workers - 1):
                group.create_task(there())
    done = [f for f in folded if f is not None]
    assert len(done) == len(spans), "a range was not folded"
    return done


async def _ranges(conn: Connection, count: int) -> list[Span]:
    sizes = await conn.fetch(
        "SELECT workspace_id, max(seq) FROM event_log GROUP BY workspace_id ORDER BY workspace_id"
    )
    return cut([(ws, n) for ws, n in sizes], count)


def cut(sizes: Sequence[tuple[str, int]], count: int) -> list[Span]:
    """At most `count` ranges of the workspaces, given in the database's order with the
    events each logged, holding about as many events each; the first and the last are
    open-ended, so that a workspace the list missed still falls in one."""
    total = sum(n for _, n in sizes)
    starts: list[str | None] = [None]
    seen = 0
    for workspace_id, n in sizes:
        if seen >= total * len(starts) / count:
            starts.append(workspace_id)
        seen += n
    return list(zip(starts, [*starts[1:], None], strict=True))


async def replay(
    dsn: str,
    rebuild: bool = False,
    audit: bool = True,
    workers: int = 1,
    *,
    ssl: SSLMode | None = None,
) -> Replay:
    """Fold the whole log of the database at `dsn`; with `audit`, re-decide every input and
    report what differs; with `rebuild`, replace the stored projections with the folded
    views. With `workers` above one, that many processes fold a range of the log each."""
    async with connection(dsn, ssl) as conn:
        if workers <= 1:
            parts = [await _fold(conn, (None, None), rebuild, audit)]
        else:
            spans = await _ranges(conn, workers * _RANGES_PER_WORKER)
            parts = await _fold_side_by_side(conn, dsn, ssl, spans, workers, rebuild, audit)
        if rebuild:
            await replace_projections(
                conn, [r for p in parts for r in p.rows], [v for p in parts for v in p.versions]
            )
    result = Replay()
    for part in parts:
        result.events += part.events
        result.inputs += part.inputs
        result.workspaces += part.workspaces
        result.mismatches += part.mismatches
    return result
