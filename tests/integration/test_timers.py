"""Durable timers: a wait survives a SIGKILL and fires once when the service is back."""

import asyncio
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from handoff.app.replay import replay
from tests.builders import opened, user, workflow
from tests.integration.harness import Output, Stack, process_env, settings_for, start_process

pytestmark = pytest.mark.integration


def _said(outputs: list[Output], text: str) -> list[Output]:
    return [o for o in outputs if o["type"] == "message.requested" and o["data"]["text"] == text]


async def test_a_wait_due_while_the_service_was_killed_fires_once_after_restart(
    kafka_bootstrap: str, fresh_database: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = settings_for(kafka_bootstrap, fresh_database, topic_prefix)
    env = process_env(settings)
    stack = Stack(settings)
    ws = "timers"
    first = start_process(env, tmp_path / "first.log")
    try:
        setup_at = datetime.now(UTC) - timedelta(seconds=1)  # times order the merge: keep them real
        await stack.send(
            user("ann", ws=ws, at=setup_at),
            workflow(
                {"type": "send_message", "text": "hello"},
                {"type": "wait", "duration": "10s"},
                {"type": "send_message", "text": "after the wait"},
                ws=ws,
                at=setup_at,
            ),
        )
        opened_at = datetime.now(UTC)
        await stack.send(opened("c1", ws=ws, at=opened_at))
        await stack.outputs(lambda o: bool(_said(o, "hello")), timeout=60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert datetime.now(UTC) - opened_at < timedelta(seconds=10), (
        "the service was not killed before the timer fell due; the test proves nothing"
    )
    due = opened_at + timedelta(seconds=11) - datetime.now(UTC)
    await asyncio.sleep(due.total_seconds())  # the timer falls due while nothing runs
    second = start_process(env, tmp_path / "second.log")
    try:
        outs = await stack.outputs(lambda o: bool(_said(o, "after the wait")), timeout=60)
        await asyncio.sleep(3)  # long enough for a second firing to show, were there one
        outs = await stack.outputs(lambda o: True)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
        await stack.close()
    assert len(_said(outs, "after the wait")) == 1
    conn = await asyncpg.connect(fresh_database)
    try:
        fired = await conn.fetchval(
            "SELECT count(*) FROM event_log WHERE type = 'timer.elapsed' AND is_input"
        )
        ended = await conn.fetch(
            "SELECT body->'data'->>'outcome' AS o FROM event_log WHERE type = 'run.ended'"
        )
        left = await conn.fetchval("SELECT count(*) FROM timers")
        # the timer's firing is in the log: a replay takes its path
        audit = await replay(fresh_database)
    finally:
        await conn.close()
    assert fired == 1
    assert [r["o"] for r in ended] == ["completed"]
    assert left == 0
    assert audit.mismatches == []
    assert audit.inputs == 4  # three from Kafka, one from the clock
