"""`handoff replay --verify` (contract v1.1, Audit commands): the log re-decided and the
projections rebuilt aside, compared with the logged decisions and the live projections.

Each scenario puts a real log and its projections in PostgreSQL (`write_log`, or the v1
fixture log decided by the version-1 core itself), then runs the command as a user would,
through `handoff.cli.main` on `HANDOFF_DATABASE_URL`, and reads its output and exit code.
"""

from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from handoff.adapters.cloudevents import load_event
from handoff.adapters.pg_store import LOG_COLUMNS, migrate, projection_rows, replace_projections
from handoff.audit import verify as verify_module
from handoff.audit.verify import report, verify_database
from handoff.core.envelope import Envelope
from handoff.core.rules import RULES, least_open_contacts
from handoff.core.view import WorkspaceView
from handoff_projections import evolve
from tests.audit.commands import Command
from tests.audit.logbook import write_log
from tests.builders import assign_team, closed, opened, presence, team, user, workflow

V1_LOG = Path(__file__).parents[1] / "fixtures" / "v1_log.jsonl"
V2_LOG = Path(__file__).parents[1] / "fixtures" / "v2_log.jsonl"


verify = Command("replay", "--verify")


async def execute(dsn: str, sql: str, *params: object) -> list[asyncpg.Record]:
    """Run `sql` on the database at `dsn`: the rows it returns (`RETURNING`, `SELECT`)."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *params)
    finally:
        await conn.close()


def routed(ws: str = "ws-1") -> list[Envelope]:
    """Three online agents in team t, a round-robin workflow, and conversations c1 to c3
    (ann, bob, cid), of which c3 closes, then c4: round robin gives it to ann, while least
    open contacts would give it to cid, the only one with none."""
    return [
        *(user(a, ws=ws) for a in ("ann", "bob", "cid")),
        *(presence(a, ws=ws) for a in ("ann", "bob", "cid")),
        team("t", "ann", "bob", "cid", ws=ws),
        workflow(assign_team("t"), {"type": "add_comment", "text": "yours"}, ws=ws),
        *(opened(c, ws=ws) for c in ("c1", "c2", "c3")),
        closed("c3", ws=ws),
        opened("c4", ws=ws),
    ]


CHANGE_BOB = (
    "UPDATE projection_rows SET value = jsonb_set(value, '{max_open_contacts}', '7')"
    " WHERE workspace_id = 'ws-1' AND tbl = 'users' AND key = 'bob' RETURNING key"
)
"""bob's live `users` row changed behind the folds' back."""
ADD_ZED = (
    "INSERT INTO projection_rows VALUES"
    """ ('ws-1', 'users', 'zed', '{"name": null, "skills": [], "max_open_contacts": null}')"""
)
"""A live row of a user the log never mentions."""
C4_INPUT = (
    "(SELECT type || ' ' || event_id || ' (seq ' || seq || ')' FROM event_log"
    " WHERE type = 'conversation.opened' AND body->'data'->>'contact_id' = 'c4')"
)
"""The input that opened c4, the last of `routed`, named as a report names it (SQL)."""


async def test_a_log_and_projections_written_by_the_service_sequence_verify(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a log and projections written as the service writes them, when verified, then
    every decision and row compares equal and the command exits 0."""
    await write_log(fresh_database, routed())

    code, out = await verify(fresh_database, monkeypatch, capsys)

    assert code == 0, out
    assert "verified 1 workspace(s)" in out
    assert "no differences" in out
    assert "decisions compared (v3: " in out


async def test_a_corrupted_projection_row_is_named_by_workspace_table_and_key(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a verified log whose live `users` row of bob was changed behind the folds'
    back, when verified, then the command exits 1 and names that row, with the value the
    log folds to and the live one."""
    await write_log(fresh_database, routed())
    changed = await execute(fresh_database, CHANGE_BOB)
    assert [tuple(r) for r in changed] == [("bob",)]

    code, out = await verify(fresh_database, monkeypatch, capsys)

    assert code == 1, out
    assert "1 difference(s)" in out
    assert "first divergence, workspace ws-1: row (ws-1, users, bob)" in out
    expected, actual = _sides(out)
    assert orjson.loads(expected)["max_open_contacts"] is None
    assert orjson.loads(actual)["max_open_contacts"] == 7


async def test_a_live_row_the_log_does_not_fold_is_a_difference(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a verified log and a live `users` row of zed, whom the log never mentions,
    when verified, then that row is the one difference: nothing folded, the live value."""
    await write_log(fresh_database, routed())
    await execute(fresh_database, ADD_ZED)

    code, out = await verify(fresh_database, monkeypatch, capsys)

    assert code == 1, out
    assert "1 difference(s)" in out
    assert "first divergence, workspace ws-1: row (ws-1, users, zed)" in out
    assert _sides(out) == ("(no row)", '{"name": null, "skills": [], "max_open_contacts": null}')


async def test_a_live_version_the_log_does_not_reach_is_a_difference(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a verified log whose workspace's live version was moved on by 5 (projections
    claiming events the log does not hold), when verified, then the version is the one
    difference: the log's length against the live number."""
    await write_log(fresh_database, routed())
    ((logged, live),) = await execute(
        fresh_database,
        "UPDATE workspaces SET version = version + 5 WHERE workspace_id = 'ws-1'"
        " RETURNING version - 5, version",
    )

    code, out = await verify(fresh_database, monkeypatch, capsys)

    assert code == 1, out
    assert "1 difference(s)" in out
    assert "first divergence, workspace ws-1: row (ws-1, workspaces, version)" in out
    assert _sides(out) == (str(logged), str(live))


async def test_a_logged_decision_the_core_does_not_make_is_a_difference(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a log with a second `comment.created` after c4's decisions (id extra-1), when
    verified, then it is the first divergence, named with the input it follows: logged, and
    not re-decided, as logged against nothing."""
    await write_log(fresh_database, routed())
    ((seq, c4),) = await execute(
        fresh_database,
        "INSERT INTO event_log (workspace_id, seq, source, event_id, type, is_input,"
        " decided_at, body)"
        " SELECT workspace_id, seq + 2, source, 'extra-1', type, false, decided_at,"
        "   jsonb_set(body::jsonb, '{id}', '\"extra-1\"')::json"
        " FROM event_log WHERE type = 'comment.created' AND body->'data'->>'contact_id' = 'c4'"
        f" RETURNING seq, {C4_INPUT}",
    )

    code, out = await verify(fresh_database, monkeypatch, capsys)

    assert code == 1, out
    assert (
        f"first divergence, workspace ws-1: comment.created extra-1 (seq {seq})"
        f" (of {c4}): logged, not re-decided"
    ) in out
    expected, actual = _sides(out)
    assert orjson.loads(expected)["id"] == "extra-1"
    assert actual == "(nothing re-decided)"


async def test_a_decision_the_core_makes_and_the_log_lacks_is_a_difference(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a log that lost its last row (c4's `run.ended`), when verified, then the first
    divergence is that decision, named with its input: re-decided, not logged, nothing
    against the decision made."""
    await write_log(fresh_database, routed())
    ((ended, c4),) = await execute(
        fresh_database,
        "DELETE FROM event_log WHERE seq = (SELECT max(seq) FROM event_log)"
        f" RETURNING event_id, {C4_INPUT}",
    )

    code, out = await verify(fresh_database, monkeypatch, capsys)

    assert code == 1, out
    assert (
        f"first divergence, workspace ws-1: {c4}: re-decided run.ended {ended}, not logged"
    ) in out
    expected, actual = _sides(out)
    assert expected == "(nothing logged)"
    assert orjson.loads(actual)["id"] == ended


async def test_rows_are_compared_a_chunk_of_keys_per_round_trip(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given bob's live row changed, c1's live assignee row deleted and a live row of zed
    added, when verified 3 keys a round trip, then no query carries more than 3 rows, the
    rows take many, and each of the three is a difference, every row counted once."""
    views = await write_log(fresh_database, routed())
    await execute(fresh_database, CHANGE_BOB)
    await execute(fresh_database, ADD_ZED)
    await execute(
        fresh_database, "DELETE FROM projection_rows WHERE tbl = 'assignees' AND key = 'c1'"
    )
    monkeypatch.setattr(verify_module, "_ROWS_PER_TRIP", 3)
    sent: list[int] = []
    fetch = asyncpg.Connection.fetch

    async def counted(self: asyncpg.Connection, query: str, *args: object) -> object:
        sent.append(max((len(a) for a in args if isinstance(a, list)), default=0))
        return await fetch(self, query, *args)

    monkeypatch.setattr(asyncpg.Connection, "fetch", counted)

    result = await verify_database(fresh_database)

    folded = len(projection_rows(views["ws-1"]))
    assert max(sent) == 3
    assert len(sent) > folded // 3
    assert result.differences == 3
    assert result.rows == folded + 1 + 1  # zed's live row, and the workspace's version
    assert report(result)[1] == "first divergence, workspace ws-1: row (ws-1, users, bob)"


async def test_a_changed_routing_rule_is_caught_at_the_first_decision_it_changes(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a log decided by today's core, when it is verified by a build of the core whose
    round robin walks as least open contacts does, then the first divergence is c4's
    logged `contact.assigned` (ann), which the changed rule gives to cid, and it exits 1."""
    await write_log(fresh_database, routed())
    ((c4,),) = await execute(
        fresh_database,
        "SELECT event_id FROM event_log WHERE type = 'contact.assigned'"
        " AND body->'data'->>'contact_id' = 'c4'",
    )
    monkeypatch.setitem(RULES, "round_robin", least_open_contacts)

    code, out = await verify(fresh_database, monkeypatch, capsys)

    assert code == 1, out
    first = next(line for line in out.splitlines() if line.startswith("first divergence"))
    assert f"contact.assigned {c4} " in first, out
    assert "differs at data.assignee_id" in first
    assert _sides(out) == ('"ann"', '"cid"')


async def test_a_log_written_by_the_version_1_core_verifies_as_version_1_made_it(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given the fixture log decided by the version-1 core (every member listed, v1 reasons,
    no counts; `core_version` NULL) and its projections folded by today's folds, when
    verified, then its decisions count as version 1 and nothing differs; and when the same
    rows claim version 2, their explanations differ, so the fixture does exercise the rule."""
    decisions = await _verifies_as_logged(fresh_database, monkeypatch, capsys, V1_LOG, 1)

    await execute(fresh_database, "UPDATE event_log SET core_version = 2")
    code, out = await verify(fresh_database, monkeypatch, capsys)

    assert code == 1, out
    assert f"(v2: {decisions})" in out
    assert "differs at data.explanation" in out


async def test_a_log_written_by_the_version_2_core_re_decides_as_version_2_decided(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given the fixture log decided by the version-2 core, where c1, queued by one workflow,
    stays queued though another moved it away and freed bob, when verified, then nothing
    differs; and when the same rows claim version 3, the assignment of c1 to bob that
    version 3 makes in that decision is re-decided and not logged."""
    await _verifies_as_logged(fresh_database, monkeypatch, capsys, V2_LOG, 2)

    await execute(fresh_database, "UPDATE event_log SET core_version = 3")
    code, out = await verify(fresh_database, monkeypatch, capsys)

    assert code == 1, out
    assert "re-decided contact.assigned" in out, out
    assert "not logged" in out, out
    assert '"assignee_id":"bob"' in _sides(out)[1]


@pytest.mark.parametrize(
    ("stated", "path"),
    [
        ("cursor_before", "data.explanation.cursor_before"),
        ("open_contacts", "data.explanation.candidates[bob].open_contacts"),
    ],
)
async def test_a_version_1_explanation_is_compared_on_what_both_versions_state(
    fresh_database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stated: str,
    path: str,
) -> None:
    """Given the v1 fixture log with c2's assignment (bob's) stating another cursor before
    it, or another count of bob's open contacts, than the log's own state gives, when
    verified, then that is a difference at that place of the explanation: version 1's
    explanations are compared on what both versions state, not skipped."""
    rows = _rows(V1_LOG)
    c2 = next(r for r in rows if '"contact.assigned"' in r["body"] and '"c2"' in r["body"])
    body = orjson.loads(c2["body"])
    explanation = body["data"]["explanation"]
    if stated == "cursor_before":
        explanation["cursor_before"] = "cid"
    else:
        (bob,) = (c for c in explanation["candidates"] if c["user_id"] == "bob")
        bob["open_contacts"] = 3
    c2["body"] = orjson.dumps(body).decode()
    await _load_log(fresh_database, rows)

    code, out = await verify(fresh_database, monkeypatch, capsys)

    assert code == 1, out
    assert "1 difference(s)" in out
    assert f"(v1, of conversation.opened v1-in-15 (seq 21)) differs at {path}" in out


async def test_one_workspace_verifies_alone(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given two workspaces, b's live row of ann corrupted, when `--workspace a` is verified
    then it passes (exit 0), having looked at a alone; the whole database does not."""
    await write_log(fresh_database, [*routed("a"), *routed("b")])
    await execute(
        fresh_database,
        "UPDATE projection_rows SET value = '{}' WHERE workspace_id = 'b' AND tbl = 'users'"
        " AND key = 'ann'",
    )

    code, out = await verify(fresh_database, monkeypatch, capsys, "--workspace", "a")

    assert code == 0, out
    assert "verified 1 workspace(s)" in out
    code, out = await verify(fresh_database, monkeypatch, capsys)
    assert code == 1, out
    assert "verified 2 workspace(s)" in out
    assert "row (b, users, ann)" in out


async def test_verify_with_rebuild_or_a_workspace_without_a_log_is_misuse(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await write_log(fresh_database, routed())

    assert (await verify(fresh_database, monkeypatch, capsys, "--rebuild"))[0] == 2
    code, out = await verify(fresh_database, monkeypatch, capsys, "--workspace", "nobody")
    assert code == 2, out
    assert "has no log" in out


def _sides(out: str) -> tuple[str, str]:
    """The first divergence's expected and actual values, as printed."""
    lines = out.splitlines()
    expected = next(line for line in lines if line.startswith("  expected: "))
    actual = next(line for line in lines if line.startswith("  actual:   "))
    return expected.removeprefix("  expected: "), actual.removeprefix("  actual:   ")


async def _verifies_as_logged(
    dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fixture: Path,
    version: int,
) -> int:
    """Load `fixture`, a log an older core decided, and verify it: exit 0, every decision
    counted as `version`, nothing differs. Returns how many decisions it holds."""
    rows = _rows(fixture)
    await _load_log(dsn, rows)
    decisions = sum(not r["is_input"] for r in rows)

    code, out = await verify(dsn, monkeypatch, capsys)

    assert code == 0, out
    assert f"{decisions} decisions compared (v{version}: {decisions})" in out
    assert "no differences" in out
    return decisions


def _rows(fixture: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in fixture.read_text().splitlines()]


async def _load_log(dsn: str, rows: list[dict[str, object]]) -> None:
    """A fixture's rows as `event_log` holds them (`core_version` as the row has it; the v1
    fixture's have none: NULL), and the projections today's folds make of them, as stored
    after a `replay --rebuild`."""
    view = WorkspaceView(workspace_id=str(rows[0]["workspace_id"]))
    records = []
    for r in rows:
        body = str(r["body"])
        event = load_event(body)
        evolve(view, event)
        assert view.version == r["seq"]
        columns = {
            "workspace_id": r["workspace_id"],
            "seq": r["seq"],
            "source": event.source,
            "event_id": event.id,
            "type": event.type,
            "is_input": r["is_input"],
            "causation_id": getattr(event, "causationid", None),
            "decided_at": datetime.fromisoformat(str(r["decided_at"])),
            "body": body,
            "core_version": r.get("core_version"),
        }
        records.append(tuple(columns.get(c) for c in LOG_COLUMNS))
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            await conn.copy_records_to_table("event_log", records=records, columns=LOG_COLUMNS)
            await replace_projections(
                conn, projection_rows(view), [(view.workspace_id, view.version)]
            )
    finally:
        await pool.close()
