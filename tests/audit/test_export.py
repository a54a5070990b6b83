"""`handoff log export` (contract v1.1, Audit commands): a workspace's log as CloudEvents JSON
lines, in log order, filtered by when each event was decided."""

import asyncio
from datetime import datetime, timedelta

import asyncpg
import orjson
import pytest

from handoff.adapters.cloudevents import load_event
from handoff.cli import main
from tests.audit.logbook import write_log
from tests.builders import T0, WS, assign_team, opened, presence, team, user, workflow


def traffic(ws: str) -> list:  # type: ignore[type-arg]
    """Two agents, round robin, and four conversations a minute apart, in workspace `ws`."""
    return [
        *(user(a, at=T0, ws=ws) for a in ("ann", "bob")),
        *(presence(a, at=T0, ws=ws) for a in ("ann", "bob")),
        team("t", "ann", "bob", at=T0, ws=ws),
        workflow(assign_team("t"), {"type": "add_comment", "text": "yours"}, ws=ws, at=T0),
        *(opened(f"c{n}", at=T0 + timedelta(minutes=n), ws=ws) for n in range(1, 5)),
    ]


async def export(
    dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> list[str]:
    monkeypatch.setenv("HANDOFF_DATABASE_URL", dsn)
    code = await asyncio.to_thread(main, ["log", "export", "--workspace", WS, *args])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out.splitlines()


async def logged_ids(dsn: str, since: datetime, until: datetime) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [
            r[0]
            for r in await conn.fetch(
                "SELECT event_id FROM event_log WHERE workspace_id = $1"
                " AND decided_at BETWEEN $2 AND $3 ORDER BY seq",
                WS,
                since,
                until,
            )
        ]
    finally:
        await conn.close()


async def test_the_log_exports_as_cloudevents_in_log_order(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given two workspaces' logs, when ws-1's is exported, then each line is one of its
    CloudEvents (inputs and decisions), in log order, and every row of its log is there."""
    await write_log(fresh_database, [*traffic(WS), *traffic("ws-2")])

    lines = await export(fresh_database, monkeypatch, capsys)

    events = [load_event(line) for line in lines]
    assert [e.id for e in events] == await logged_ids(fresh_database, T0, T0 + timedelta(days=1))
    assert {e.workspaceid for e in events} == {WS}
    assert all(orjson.loads(line)["specversion"] == "1.0" for line in lines)
    assert {"conversation.opened", "contact.assigned", "comment.created"} <= {
        e.type for e in events
    }


async def test_since_and_until_bound_the_export_both_inclusive(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given conversations opened a minute apart, when the export is bounded by the second
    and third, then it holds exactly the log rows decided from the one to the other."""
    await write_log(fresh_database, traffic(WS))
    since, until = T0 + timedelta(minutes=2), T0 + timedelta(minutes=3)

    lines = await export(
        fresh_database,
        monkeypatch,
        capsys,
        "--since",
        since.isoformat(),
        "--until",
        until.isoformat(),
    )

    expected = await logged_ids(fresh_database, since, until)
    assert [load_event(line).id for line in lines] == expected
    assert [load_event(line).type for line in lines].count("conversation.opened") == 2
