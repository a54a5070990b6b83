"""Replay the event log: re-decide every input to audit the decisions, rebuild projections.

The log holds each input, the clock reading its decision was given, and the decisions. Folding
the log from the start and calling `decide` again with that same reading must give the logged
decisions to the letter; any difference is reported. The folded views are the projections,
so the same pass rebuilds them. A rebuild without the audit only folds: nearly twice as
fast, since deciding costs more than folding.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

from handoff.adapters.cloudevents import dump_event, load_event
from handoff.adapters.pg_store import Connection, replace_projections
from handoff.core.decide import decide
from handoff.core.envelope import Envelope
from handoff.core.view import WorkspaceView
from handoff_projections import evolve

__all__ = ["Replay", "replay"]


@dataclass
class Replay:
    events: int = 0
    inputs: int = 0
    mismatches: list[str] = field(default_factory=list)
    views: dict[str, WorkspaceView] = field(default_factory=dict)


_PREFETCH = 5000
"""Log rows fetched per round trip (asyncpg's default is 50)."""


async def _log(conn: Connection) -> AsyncIterator[tuple[str, bool, datetime, Envelope]]:
    async with conn.transaction():
        async for r in conn.cursor(
            "SELECT workspace_id, is_input, decided_at, body::text FROM event_log"
            " ORDER BY workspace_id, seq",
            prefetch=_PREFETCH,
        ):
            yield r["workspace_id"], r["is_input"], r["decided_at"], load_event(r["body"])


async def replay(conn: Connection, rebuild: bool = False, audit: bool = True) -> Replay:
    """Fold the whole log; with `audit`, re-decide every input and report what differs;
    with `rebuild`, replace the stored projections with the folded views."""
    result = Replay()
    expected: list[bytes] = []
    where = ""

    def settle() -> None:
        if expected:
            result.mismatches.append(f"{where}: {len(expected)} logged decision(s) not re-decided")
            expected.clear()

    async for workspace_id, is_input, decided_at, event in _log(conn):
        view = result.views.setdefault(workspace_id, WorkspaceView(workspace_id=workspace_id))
        evolve(view, event)
        result.events += 1
        if not audit:
            result.inputs += is_input
        elif is_input:
            settle()
            result.inputs += 1
            where = f"{workspace_id} input {event.id}"
            expected = [dump_event(d) for d in decide(view, event, decided_at)]
            expected.reverse()
        elif not expected or expected.pop() != dump_event(event):
            result.mismatches.append(f"{where}: logged {event.type} {event.id} differs")
            expected.clear()
    settle()
    if rebuild:
        await replace_projections(conn, result.views.values())
    return result
