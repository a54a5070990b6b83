"""`handoff state --at TIME`: a workspace's projections as they stood at a moment.

The log is folded up to the last event decided at or before TIME (`view_at`; decided: by
the service's clock, the time every logged event carries), so this is what the service
held then, whatever happened since. TIME is ISO 8601 with an offset (`Z` for UTC): a time
without one is refused (`handoff.audit.times`).

`--json` prints every table of the projections, each row as stored (`dump_row`), with the
last event folded:

    {"workspace_id": W, "as_of": {"seq", "decided_at"}, TABLE: {key: row, ...}, ...}

(TABLE: each of `handoff_projections.TABLES`, present even when empty.)
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from handoff.adapters.pg_log import SSLMode, connection
from handoff.adapters.pg_store import Connection, projection_rows
from handoff.audit.explain_text import aligned, clock
from handoff.audit.folded import view_at
from handoff.core.view import WORKSPACE_CURSOR, WorkspaceView
from handoff_projections import TABLES

__all__ = ["State", "render", "state_at", "state_json"]


@dataclass(frozen=True, slots=True)
class State:
    view: WorkspaceView
    seq: int
    """The log position of the last event folded."""
    decided_at: datetime


async def state_at(
    dsn: str, workspace_id: str, at: datetime, *, ssl: SSLMode | None = None
) -> State | None:
    """The workspace as of `at` (None: nothing of it was decided by then)."""
    async with connection(dsn, ssl) as conn:
        return await _state_at(conn, workspace_id, at)


async def _state_at(conn: Connection, workspace_id: str, at: datetime) -> State | None:
    """The fold and the position of its last event, from one snapshot of the log."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        view = await view_at(conn, workspace_id, until=at)
        last = await conn.fetchrow(
            "SELECT seq, decided_at FROM event_log WHERE workspace_id = $1 AND decided_at <= $2"
            " ORDER BY seq DESC LIMIT 1",
            workspace_id,
            at,
        )
    if last is None:
        return None
    return State(view, last["seq"], last["decided_at"])


def state_json(state: State) -> bytes:
    tables: dict[str, dict[str, Any]] = {table: {} for table in TABLES}
    for _, table, key, row in projection_rows(state.view):
        tables[table][key] = orjson.loads(row)
    as_of = {"seq": state.seq, "decided_at": state.decided_at}
    document = {"workspace_id": state.view.workspace_id, "as_of": as_of, **tables}
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)


def render(state: State) -> str:
    """The tables a person asks about, a section each: users, presence, teams, open
    contacts, round-robin cursors, the queue, runs and their timers."""
    view = state.view
    lines = [f"workspace {view.workspace_id} as of #{state.seq}, decided {clock(state.decided_at)}"]

    def section(title: str, rows: list[list[str]]) -> None:
        lines.extend(["", f"{title} ({len(rows)})"])
        if rows:
            lines.extend("  " + line for line in aligned(rows))

    section(
        "users",
        [
            [
                u,
                f"max {user.max_open_contacts}" if user.max_open_contacts is not None else "no max",
                "skills " + (",".join(user.skills) or "-"),
            ]
            for u, user in sorted(view.users.items())
        ],
    )
    section("presence", [[u, status] for u, status in sorted(view.presence.items())])
    section("teams", [[t, ", ".join(team.members)] for t, team in sorted(view.teams.items())])
    section("open contacts", [[u, str(n)] for u, n in sorted(view.open_contacts.items()) if n])
    section(
        "cursors",
        [
            ["(workspace)" if key == WORKSPACE_CURSOR else key, user]
            for key, user in sorted(view.rr_cursors.items())
        ],
    )
    queue = sorted(view.queue.items(), key=lambda item: (-item[1].priority, item[1].position))
    section(
        "queue",
        [
            [
                e.contact_id,
                e.team_id or "(workspace)",
                e.strategy,
                "only online" if e.only_online else "any presence",
                f"priority {e.priority}",
                "skills " + (",".join(e.required_skills) or "-"),
                "since " + clock(e.queued_at),
            ]
            for _, e in queue
        ],
    )
    section(
        "runs",
        [
            [
                _short(run_id),
                f"{r.workflow_id} v{r.version}",
                r.contact_id,
                f"step {r.step_id}",
                r.status,
            ]
            for run_id, r in sorted(view.runs.items())
        ],
    )
    section(
        "timers",
        [
            [
                _short(run_id),
                t.kind,
                f"step {t.step_id}",
                "due " + clock(t.due_at),
            ]
            for run_id, t in sorted(view.timers.items(), key=lambda item: item[1].due_at)
        ],
    )
    return "\n".join(lines)


def _short(run_id: str) -> str:
    """A run id (a UUID) by its first 8 characters; a watch's timer key in full."""
    return run_id[:8] if len(run_id) == 36 else run_id
