"""`handoff replay --verify` after a `kill -9`: what two `handoff run` instances logged while
one was killed mid-stream re-decides to the letter, and the projections they stored are the
ones the log folds to, checked while the survivor still runs.

The stream is mixed: every step type (send_message, ask_question, branch, assign_to by a team
and by a queue with a timeout, wait, add_comment, jump) and every timer kind a run waits on
(an answer that never comes, a wait, a queue that times out), answers, presence changes and
closes, in four workspaces at once.
"""

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from handoff.cli import main
from handoff.core.envelope import Envelope
from tests.builders import assign_team, closed, event, opened, presence, team, user
from tests.integration.faults import (
    Feed,
    Stream,
    consumed_all,
    fetch,
    fleet,
    poll_until,
    streaming,
)
from tests.integration.harness import settings_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORKSPACES = [f"verify-{i}" for i in range(4)]
ROUNDS = 24
"""Rounds of inputs, one every 0.25 s: the kill comes after a third of them."""

MIXED: list[dict[str, Any]] = [
    {"id": "hello", "type": "send_message", "text": "Hi!"},
    {
        "id": "ask",
        "type": "ask_question",
        "text": "Sales or support?",
        "options": ["sales", "support"],
        "save_as": "topic",
        "timeout": "2s",
        "on_failure": [{"id": "unanswered", "type": "add_comment", "text": "no answer"}],
    },
    {
        "id": "route",
        "type": "branch",
        "branches": [
            {
                "name": "sales",
                "when": {"variable": "topic", "op": "eq", "value": "sales"},
                "steps": [{"id": "to-team", **assign_team("t", only_online=True)}],
            }
        ],
        "else": [
            {
                "id": "to-night",
                **assign_team("night", only_online=True),
                "timeout": "3s",
                "on_timeout": [
                    {"id": "to-least", **assign_team("t", "least_open_contacts")},
                ],
            }
        ],
    },
    {"id": "pause", "type": "wait", "duration": "1s"},
    {"id": "check", "type": "add_comment", "text": "how is it going?", "mention": "assignee"},
    {"id": "again", "type": "jump", "to": "pause", "max_jumps": 1},
]
"""One workflow with every step type; half the contacts answer "sales", the others never
answer, wait in the night team's queue (dan is offline) and go to the least loaded."""

EXPECTED_TYPES = {
    "message.requested",
    "run.question_asked",
    "run.answered",
    "comment.created",
    "contact.assigned",
    "assignment.queued",
    "assignment.failed",
    "run.jumped",
    "run.waiting",
    "timer.elapsed",
    "conversation.closed",
}


def setup(at: datetime) -> list[Envelope]:
    return [
        e
        for ws in WORKSPACES
        for e in (
            *(user(a, ws=ws, at=at) for a in ("ann", "bob", "cid", "dan")),
            *(presence(a, ws=ws, at=at) for a in ("ann", "bob", "cid")),
            presence("dan", "offline", ws=ws, at=at),
            team("t", "ann", "bob", "cid", ws=ws, at=at),
            team("night", "dan", ws=ws, at=at),
            _workflow(ws, at),
        )
    ]


def _workflow(ws: str, at: datetime) -> Envelope:
    definition = {
        "id": "mixed",
        "workspace_id": ws,
        "name": "mixed",
        "trigger": {"type": "conversation_opened"},
        "steps": MIXED,
    }
    return event("workflow.published", {"definition": definition}, ws=ws, at=at)


def a_round(r: int) -> list[Envelope]:
    """Round r: a conversation opens in each workspace; the one before answers "sales" if
    its number is even; every fourth, 12 rounds (3 s) on, closes while its run waits; bob
    goes away and back."""
    now = datetime.now(UTC)
    inputs: list[Envelope] = []
    for ws in WORKSPACES:
        inputs.append(opened(f"c{r}", ws=ws, at=now))
        if r >= 1 and (r - 1) % 2 == 0:
            inputs.append(_answer(f"c{r - 1}", "sales", ws, now))
        if r >= 12 and (r - 12) % 4 == 0:
            inputs.append(closed(f"c{r - 12}", ws=ws, at=now))
        if r % 6 == 3:
            inputs.append(presence("bob", "away" if r % 12 == 3 else "online", ws=ws, at=now))
    return inputs


def _answer(contact: str, text: str, ws: str, at: datetime) -> Envelope:
    data = {
        "contact_id": contact,
        "conversation_id": f"conv-{contact}",
        "message_id": f"m-{contact}",
        "text": text,
    }
    return event("message.received", data, ws=ws, at=at)


async def test_verify_passes_on_a_mixed_stream_with_an_instance_killed_mid_stream(
    kafka_bootstrap: str,
    fresh_database: str,
    topic_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Given two `handoff run` instances routing a mixed stream in four workspaces, when one
    is killed (SIGKILL) a third of the way in and the survivor takes its partitions and
    finishes every run, then `handoff replay --verify`, run beside the survivor while it
    writes and again once every run has ended, finds every logged decision re-decided alike
    and every projection row as the log folds it: exit 0."""
    settings = settings_for(
        kafka_bootstrap, fresh_database, topic_prefix, data_dir=tmp_path / "data"
    )
    async with fleet(settings, tmp_path) as instances, Feed(settings, kafka_bootstrap) as feed:
        a, b = instances.start("a"), instances.start("b")
        await a.wait_ready()
        await b.wait_ready()
        await feed.send(*setup(datetime.now(UTC)))
        monkeypatch.setenv("HANDOFF_DATABASE_URL", fresh_database)
        stream = Stream(feed, a_round, pace=0.25)
        async with streaming(stream, ROUNDS) as sending:
            await stream.at(ROUNDS // 3)
            a.kill()
            while not sending.done():  # beside the survivor, as it writes
                code = await asyncio.to_thread(main, ["replay", "--verify"])
                out = capsys.readouterr().out
                assert code == 0, out
            await sending
        assert await poll_until(consumed_all(fresh_database, settings.group_id, feed.sent), 60)

        async def runs_done() -> bool:
            rows = await fetch(fresh_database, "SELECT count(*) FROM timers")
            return int(rows[0][0]) == 0

        assert await poll_until(runs_done, 60), f"runs still waiting; {instances.errors()[:4]}"
        logged = await fetch(fresh_database, "SELECT DISTINCT type FROM event_log")
        assert {r[0] for r in logged} >= EXPECTED_TYPES, "the stream is not as mixed as meant"
        assert b.alive, b.tail()

        code = await asyncio.to_thread(main, ["replay", "--verify"])
        out = capsys.readouterr().out

    assert code == 0, out
    assert f"verified {len(WORKSPACES)} workspace(s)" in out
    assert "no differences" in out
