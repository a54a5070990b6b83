"""`handoff state --at TIME` (contract v1.1, Audit commands): the projections as they stood.

A real log in PostgreSQL (`write_log`, each input decided at its own time), and the command
run as a user would, through `handoff.cli.main` on `HANDOFF_DATABASE_URL`.
"""

from datetime import timedelta

import orjson
import pytest

from handoff.core.envelope import Envelope
from handoff_projections import TABLES
from tests.audit.commands import Command
from tests.audit.logbook import write_log
from tests.builders import T0, WS, assign_team, opened, presence, team, user, workflow

state = Command("state", "--workspace", WS)


def two_openings() -> list[Envelope]:
    """Ann and bob online in support (round robin): c-1 opens at T0+1m and goes to ann, c-2
    at T0+3m and goes to bob."""
    return [
        user("ann", max_open=3, skills=["es"], at=T0),
        user("bob", at=T0),
        presence("ann", at=T0),
        presence("bob", at=T0),
        team("support", "ann", "bob", at=T0),
        workflow(assign_team("support"), at=T0),
        opened("c-1", at=T0 + timedelta(minutes=1)),
        opened("c-2", at=T0 + timedelta(minutes=3)),
    ]


def between() -> str:
    return (T0 + timedelta(minutes=2)).isoformat()


async def test_state_between_two_inputs_shows_the_first_and_not_the_second(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    views = await write_log(fresh_database, two_openings())
    assert views[WS].open_contacts == {"ann": 1, "bob": 1}

    code, text = await state(fresh_database, monkeypatch, capsys, "--at", between())

    assert code == 0, text
    sections = {block.splitlines()[0]: block.splitlines()[1:] for block in text.split("\n\n")}
    assert [line.split() for line in sections["users (2)"]] == [
        ["ann", "max", "3", "skills", "es"],
        ["bob", "no", "max", "skills", "-"],
    ]
    assert [line.split() for line in sections["open contacts (1)"]] == [["ann", "1"]]
    assert [line.split() for line in sections["cursors (1)"]] == [["support", "ann"]]
    assert [line.split() for line in sections["teams (1)"]] == [["support", "ann,", "bob"]]
    assert sections["queue (0)"] == []


async def test_state_as_json_has_every_table_and_the_last_event_folded(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await write_log(fresh_database, two_openings())

    code, out = await state(fresh_database, monkeypatch, capsys, "--at", between(), "--json")

    assert code == 0, out
    projections = orjson.loads(out)
    assert set(projections) == {"workspace_id", "as_of", *TABLES}
    assert projections["assignees"] == {"c-1": "ann"}
    assert projections["open_contacts"] == {"ann": 1}
    assert projections["rr_cursors"] == {"support": "ann"}
    assert projections["users"]["ann"] == {"name": None, "max_open_contacts": 3, "skills": ["es"]}
    as_of = projections["as_of"]
    assert as_of["decided_at"] == (T0 + timedelta(minutes=1)).isoformat()
    assert as_of["seq"] == 6 + 5  # six inputs, then c-1: the input and four decisions


async def test_a_time_before_the_workspace_began_is_an_error(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await write_log(fresh_database, two_openings())
    before = (T0 - timedelta(seconds=1)).isoformat()

    code, text = await state(fresh_database, monkeypatch, capsys, "--at", before)

    assert code == 1
    assert f"workspace 'ws-1' has no events decided by {before}" in text


async def test_a_time_without_an_offset_is_refused(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await write_log(fresh_database, two_openings())

    with pytest.raises(SystemExit) as exited:
        await state(fresh_database, monkeypatch, capsys, "--at", "2026-12-07T09:00:00")

    assert exited.value.code == 2
    assert "has no offset" in capsys.readouterr().err
