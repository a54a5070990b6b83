"""The audit commands on a database that is not the service's: a line saying so, exit 1."""

import asyncio

import pytest

from handoff.cli import main


async def test_a_database_without_the_event_log_is_said_not_a_traceback(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HANDOFF_DATABASE_URL", fresh_database)

    code = await asyncio.to_thread(main, ["explain", "--workspace", "w", "--contact", "c"])

    assert code == 1
    err = capsys.readouterr().err
    assert "no event log in that database" in err
    assert "Traceback" not in err
