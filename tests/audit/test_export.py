"""`handoff log export` (contract v1.1, Audit commands): a workspace's log as CloudEvents JSON
lines, in log order, filtered by when each event was decided."""

from datetime import datetime, timedelta

import asyncpg
import orjson
import pytest

from handoff.adapters.cloudevents import load_event
from tests.audit.commands import Command
from tests.audit.logbook import write_log
from tests.builders import T0, WS, assign_team, opened, presence, team, user, workflow

export = Command("log", "export", "--workspace", WS)


def traffic(ws: str) -> list:  # type: ignore[type-arg]
    """Two agents, round robin, and four conversations a minute apart, in workspace `ws`."""
    return [
        *(user(a, at=T0, ws=ws) for a in ("ann", "bob")),
        *(presence(a, at=T0, ws=ws) for a in ("ann", "bob")),
        team("t", "ann", "bob", at=T0, ws=ws),
        workflow(assign_team("t"), {"type": "add_comment", "text": "yours"}, ws=ws, at=T0),
        *(opened(f"c{n}", at=T0 + timedelta(minutes=n), ws=ws) for n in range(1, 5)),
    ]


async def exported(
    dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> list[str]:
    """The lines of an export that succeeded."""
    code, out = await export(dsn, monkeypatch, capsys, *args)
    assert code == 0, out
    return out.splitlines()


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

    lines = await exported(fresh_database, monkeypatch, capsys)

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

    lines = await exported(
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


async def test_a_body_this_core_cannot_read_is_exported_as_it_was_logged(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a log whose last row is an event type this core does not know (as a newer
    core's log would hold), when exported, then that row goes out byte for byte with the
    others: an export copies the log, it never reads the events."""
    await write_log(fresh_database, traffic(WS))
    newer = orjson.dumps(
        {
            "specversion": "1.0",
            "id": "x-1",
            "source": "/handoff",
            "type": "contact.merged",
            "time": (T0 + timedelta(minutes=5)).isoformat(),
            "workspaceid": WS,
            "data": {"contact_id": "c1", "into": "c2"},
        }
    ).decode()
    conn = await asyncpg.connect(fresh_database)
    try:
        await conn.execute(
            "INSERT INTO event_log (workspace_id, seq, source, event_id, type, is_input,"
            " decided_at, body)"
            " SELECT workspace_id, seq + 1, '/handoff', 'x-1', 'contact.merged', false,"
            "   decided_at, $2::json FROM event_log WHERE workspace_id = $1"
            " ORDER BY seq DESC LIMIT 1",
            WS,
            newer,
        )
    finally:
        await conn.close()

    lines = await exported(fresh_database, monkeypatch, capsys)

    assert lines[-1] == newer
    assert len(lines) == len(await logged_ids(fresh_database, T0, T0 + timedelta(days=1)))


async def test_an_unknown_workspace_or_a_window_ending_before_it_starts_is_said(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A workspace with no log at all: exit 1, said (an empty window of a workspace that has
    one is no lines, exit 0); `--since` after `--until`: misuse, exit 2."""
    await write_log(fresh_database, traffic(WS))
    nobody = Command("log", "export", "--workspace", "nobody")
    later = (T0 + timedelta(days=1)).isoformat()

    unknown, said = await nobody(fresh_database, monkeypatch, capsys)
    empty_window = await exported(fresh_database, monkeypatch, capsys, "--since", later)
    backwards, misuse = await export(
        fresh_database, monkeypatch, capsys, "--since", later, "--until", T0.isoformat()
    )

    assert (unknown, empty_window, backwards) == (1, [], 2)
    assert "handoff log export: workspace 'nobody' has no events in the log" in said
    assert "handoff log export: --since is after --until" in misuse
