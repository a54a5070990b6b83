"""The routing templates in deploy/workflows, each proven by a scenario through the real pipeline.

Every scenario loads the shipped file, points it at its own workspace, shortens its waits for
the test (the files keep the real durations) and publishes it as `workflow.published`. One
service runs for the module. Every event of a scenario carries an explicit time: real times
near now (so a 2 s wait fires about 2 s later), or for the shifts template fixed times that
fall on a weekday and hour in Madrid.
"""

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import yaml

from handoff.core.conditions import Facts, holds
from handoff.core.envelope import Envelope
from handoff.core.workflow import BranchStep, Workflow
from tests.builders import assignee_changed, closed, event, opened, presence, team, user
from tests.integration.harness import Output, Stack, of_workspace, routed, running, settings_for

WORKFLOWS = Path(__file__).resolve().parents[2] / "deploy" / "workflows"
TEMPLATES = sorted(WORKFLOWS.glob("*.yaml"))
MADRID = ZoneInfo("Europe/Madrid")
_TOKEN = secrets.token_hex(3)


# --- helpers ---------------------------------------------------------------------------------


def _ws(name: str) -> str:
    """A workspace of this run only (the database is shared with the other modules)."""
    return f"tpl-{_TOKEN}-{name}"


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    return doc


def _shorten(node: Any, durations: dict[str, str]) -> Any:
    """The document with each `duration` / `timeout` in `durations` replaced (15m -> 2s)."""
    if isinstance(node, dict):
        return {
            k: durations.get(v, v)
            if k in ("duration", "timeout") and isinstance(v, str)
            else _shorten(v, durations)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_shorten(v, durations) for v in node]
    return node


def _publish(name: str, ws: str, at: datetime, **durations: str) -> Envelope:
    """The shipped template `name`, in workspace `ws`, as a `workflow.published` input.

    `durations` maps a written duration to the test's, e.g. `**{"15m": "2s"}`."""
    doc = _shorten(_load(name), durations)
    doc["workspace_id"] = ws
    return event("workflow.published", {"definition": doc}, ws=ws, at=at)


class Clock:
    """Event times for one scenario: from `start`, each call a little later."""

    def __init__(self, start: datetime) -> None:
        self.t = start

    def __call__(self, step: timedelta = timedelta(milliseconds=10)) -> datetime:
        self.t += step
        return self.t


def _recent() -> Clock:
    """Times just before now, so the setup comes before what the scenario opens."""
    return Clock(datetime.now(UTC) - timedelta(seconds=2))


def _upcoming(weekday: int, hour: int, minute: int) -> datetime:
    """The next `weekday` (0 = Monday) at `hour:minute` Madrid time, at least a day ahead:
    fixed in the scenario, and in the future so that no queue timeout of it ever falls due."""
    day = (datetime.now(MADRID) + timedelta(days=1)).date()
    day += timedelta(days=(weekday - day.weekday()) % 7)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=MADRID)


def _has(ws: str, n: int, *types: str) -> Callable[[list[Output]], bool]:
    return lambda outs: len(of_workspace(outs, ws, *types)) >= n


def _said(outputs: list[Output], ws: str) -> list[tuple[str, str]]:
    """(contact, text) of each message the service asked the inbox to send."""
    return [
        (o["data"]["contact_id"], o["data"]["text"])
        for o in of_workspace(outputs, ws, "message.requested")
    ]


def _assigned(outputs: list[Output], ws: str) -> list[tuple[str, str, str | None, str]]:
    """(contact, assignee, team, strategy) of each assignment."""
    return [
        (d["contact_id"], d["assignee_id"], d["team_id"], d["strategy"])
        for d in (o["data"] for o in of_workspace(outputs, ws, "contact.assigned"))
    ]


def _sent(contact: str, by: str | None, ws: str, at: datetime) -> Envelope:
    """A message sent to the contact: by user `by`, or (None) by a workflow."""
    sender = {"type": "user", "user_id": by} if by else {"type": "workflow"}
    return event(
        "message.sent",
        {
            "contact_id": contact,
            "conversation_id": f"conv-{contact}",
            "message_id": f"m-{secrets.token_hex(4)}",
            "sender": sender,
        },
        ws=ws,
        at=at,
    )


def _received(contact: str, text: str, ws: str, at: datetime) -> Envelope:
    return event(
        "message.received",
        {
            "contact_id": contact,
            "conversation_id": f"conv-{contact}",
            "message_id": f"m-{secrets.token_hex(4)}",
            "text": text,
        },
        ws=ws,
        at=at,
    )


WELCOME = "Hi! Thanks for reaching out. An agent will be with you shortly."


# --- the files themselves (no services) ------------------------------------------------------


def test_the_six_templates_are_shipped() -> None:
    assert {p.name for p in TEMPLATES} >= {
        "round-robin-online-welcome.yaml",
        "least-open-contacts-online.yaml",
        "reassign-unanswered.yaml",
        "route-by-answer.yaml",
        "route-by-language.yaml",
        "shifts.yaml",
        "vip-dedicated-agent.yaml",
        "unassign-on-close.yaml",
    }


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_every_template_validates(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#"), "each template starts with a comment saying what it does"
    workflow = Workflow.model_validate(yaml.safe_load(text))
    assert workflow.id == path.stem
    assert workflow.workspace_id == "example"


def test_the_shipped_files_keep_the_real_durations() -> None:
    reassign = _load("reassign-unanswered.yaml")
    assert [s["duration"] for s in reassign["steps"] if s["type"] == "wait"] == ["15m"]
    assert _load("route-by-answer.yaml")["steps"][0]["timeout"] == "1h"


def _shift_at(local: datetime) -> str:
    """The branch of shifts.yaml an event at `local` (Madrid time) takes."""
    workflow = Workflow.model_validate(_load("shifts.yaml"))
    step = workflow.step("shift")
    assert isinstance(step, BranchStep)
    facts = Facts(at=local.astimezone(UTC))
    return next((b.name for b in step.branches if holds(b.when, facts)), "away")


@pytest.mark.parametrize(
    ("local", "shift"),
    [
        (datetime(2026, 11, 23, 16, 30), "afternoon shift"),  # Monday 16:30
        (datetime(2026, 11, 23, 5, 59), "away"),  # Monday before 06:00: no Sunday night shift
        (datetime(2026, 11, 23, 6, 0), "morning shift"),
        (datetime(2026, 11, 23, 13, 59), "morning shift"),
        (datetime(2026, 11, 23, 14, 0), "afternoon shift"),
        (datetime(2026, 11, 23, 22, 0), "night shift"),
        (datetime(2026, 11, 24, 3, 0), "night shift"),  # Monday's night shift, on Tuesday
        (datetime(2026, 11, 27, 23, 30), "night shift"),  # Friday night
        (datetime(2026, 11, 28, 5, 59), "night shift"),  # ... runs into Saturday morning
        (datetime(2026, 11, 28, 6, 0), "away"),  # Saturday
        (datetime(2026, 11, 29, 23, 0), "away"),  # Sunday night
        (datetime(2026, 7, 6, 16, 30), "afternoon shift"),  # a Monday in summer time (UTC+2)
    ],
)
def test_shift_windows_by_madrid_time(local: datetime, shift: str) -> None:
    assert _shift_at(local.replace(tzinfo=MADRID)) == shift


# --- scenarios through the pipeline ----------------------------------------------------------

integration = pytest.mark.integration


@pytest.fixture(scope="module")
async def stack(kafka_bootstrap: str, database_url: str) -> AsyncIterator[Stack]:
    prefix = f"tpl{_TOKEN}."
    async with running(settings_for(kafka_bootstrap, database_url, prefix)) as s:
        yield s


async def _all_within(stack: Stack, seconds: float) -> list[Output]:
    """Every output that arrives within `seconds` from now (and all before)."""
    end = asyncio.get_running_loop().time() + seconds
    return await stack.outputs(lambda _: asyncio.get_running_loop().time() > end)


async def _run_outcomes(dsn: str, ws: str, n: int, timeout: float = 30.0) -> list[str]:
    """The outcomes of the workflow runs of `ws` in the event log, once there are `n`."""
    conn = await asyncpg.connect(dsn)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            rows = await conn.fetch(
                "SELECT body->'data'->>'outcome' AS o FROM event_log"
                " WHERE workspace_id = $1 AND type = 'run.ended' ORDER BY seq",
                ws,
            )
            if len(rows) >= n or loop.time() > deadline:
                return [r["o"] for r in rows]
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


@integration
async def test_round_robin_online_welcome(stack: Stack) -> None:
    ws, at = _ws("rr"), _recent()
    await stack.send(
        user("ann", ws=ws, at=at()),
        user("bob", ws=ws, at=at()),
        user("cid", ws=ws, at=at()),
        presence("ann", ws=ws, at=at()),
        presence("bob", "away", ws=ws, at=at()),
        presence("cid", ws=ws, at=at()),
        team("support", "ann", "bob", "cid", ws=ws, at=at()),
        _publish("round-robin-online-welcome.yaml", ws, at()),
        opened("c1", ws=ws, at=at()),
        opened("c2", ws=ws, at=at()),
        opened("c3", ws=ws, at=at()),
    )
    outs = await stack.outputs(_has(ws, 3, "contact.assigned"))
    assert _assigned(outs, ws) == [
        ("c1", "ann", "support", "round_robin"),
        ("c2", "cid", "support", "round_robin"),  # bob is away
        ("c3", "ann", "support", "round_robin"),
    ]
    assert _said(outs, ws) == [("c1", WELCOME), ("c2", WELCOME), ("c3", WELCOME)]
    first, second = [o["data"] for o in of_workspace(outs, ws, "contact.assigned")[:2]]
    assert first["only_online"] is True
    assert first["workflow"]["id"] == "round-robin-online-welcome"
    reasons = {c["user_id"]: c.get("reason") for c in second["explanation"]["candidates"]}
    assert reasons == {"cid": None, "bob": "away"}  # c2 passed over bob


@integration
async def test_least_open_contacts_online(stack: Stack) -> None:
    ws, at = _ws("loc"), _recent()
    await stack.send(
        user("ann", ws=ws, at=at()),
        user("bob", ws=ws, at=at()),
        user("cid", ws=ws, at=at()),
        presence("ann", ws=ws, at=at()),
        presence("bob", ws=ws, at=at()),
        team("support", "ann", "bob", "cid", ws=ws, at=at()),  # cid never comes online
        _publish("least-open-contacts-online.yaml", ws, at()),
        opened("c0", source="user", ws=ws, at=at()),  # not the workflow's: ann takes it herself
        assignee_changed("c0", "ann", ws=ws, at=at()),
        opened("c1", ws=ws, at=at()),
        opened("c2", ws=ws, at=at()),
        opened("c3", ws=ws, at=at()),
    )
    outs = await stack.outputs(_has(ws, 3, "contact.assigned"))
    # ann 1 / bob 0 -> bob; 1:1, the tie rotates on from bob -> ann; ann 2 / bob 1 -> bob
    assert _assigned(outs, ws) == [
        ("c1", "bob", "support", "least_open_contacts"),
        ("c2", "ann", "support", "least_open_contacts"),
        ("c3", "bob", "support", "least_open_contacts"),
    ]
    assert _said(outs, ws) == [("c1", WELCOME), ("c2", WELCOME), ("c3", WELCOME)]
    # the assignee, then the eligible members that came closest (cid, offline, is in no pool
    # an online-only step walks: the decision never looks at him)
    last = of_workspace(outs, ws, "contact.assigned")[-1]["data"]["explanation"]
    assert [(c["user_id"], c["open_contacts"], c["eligible"]) for c in last["candidates"]] == [
        ("bob", 1, True),
        ("ann", 2, True),
    ]
    assert (last["considered"], last["eligible"], last["truncated"]) == (2, 2, False)


async def _reassign_scenario(stack: Stack, ws: str, reply: bool) -> None:
    at = _recent()
    events = [
        user("first-agent", ws=ws, at=at()),
        user("bob", ws=ws, at=at()),
        presence("bob", ws=ws, at=at()),  # first-agent is not online
        team("support", "first-agent", "bob", ws=ws, at=at()),
        _publish("reassign-unanswered.yaml", ws, at(), **{"15m": "2s"}),
    ]
    opened_at = datetime.now(UTC)
    events.append(opened("c1", ws=ws, at=opened_at))
    # an automated message (another workflow's welcome, say) is no reply...
    events.append(_sent("c1", None, ws, opened_at + timedelta(milliseconds=200)))
    if reply:  # ...the first agent answering within the wait is
        events.append(_sent("c1", "first-agent", ws, opened_at + timedelta(milliseconds=500)))
    await stack.send(*events)


@integration
async def test_reassign_unanswered_goes_to_an_online_team_member_with_a_note(
    stack: Stack,
) -> None:
    ws = _ws("reassign")
    await _reassign_scenario(stack, ws, reply=False)
    outs = await stack.outputs(_has(ws, 1, "comment.created"))
    assert _assigned(outs, ws) == [
        ("c1", "first-agent", None, "specific_user"),
        ("c1", "bob", "support", "round_robin"),
    ]
    second = of_workspace(outs, ws, "contact.assigned")[1]["data"]
    assert second["previous_assignee_id"] == "first-agent"
    assert second["only_online"] is True
    assert second["workflow"]["step_id"] == "reassign"
    (comment,) = of_workspace(outs, ws, "comment.created")
    assert comment["data"]["mentions"] == ["bob"]
    assert comment["data"]["text"] == "Reassigned to you: no reply within 15 minutes."
    assert comment["data"]["conversation_id"] == "conv-c1"


@integration
async def test_reassign_unanswered_leaves_a_conversation_that_got_a_reply(
    stack: Stack, database_url: str
) -> None:
    ws = _ws("answered")
    await _reassign_scenario(stack, ws, reply=True)
    await stack.outputs(_has(ws, 1, "contact.assigned"))
    assert await _run_outcomes(database_url, ws, 1) == ["completed"]  # the wait is over
    outs = await _all_within(stack, 1.0)  # the relay's time, were there anything to relay
    assert _assigned(outs, ws) == [("c1", "first-agent", None, "specific_user")]
    assert of_workspace(outs, ws, "comment.created") == []


QUESTION = "Hi! Who would you like to talk to: Sales or Support?"
TOLD_SALES = "You have been assigned to our Sales team. An agent will reply shortly."
TOLD_SUPPORT = "You have been assigned to our Support team. An agent will reply shortly."


def _route_by_answer_setup(ws: str, at: Clock, **durations: str) -> list[Envelope]:
    return [
        user("sam", ws=ws, at=at()),
        user("sue", ws=ws, at=at()),
        presence("sam", ws=ws, at=at()),
        presence("sue", ws=ws, at=at()),
        team("sales", "sam", ws=ws, at=at()),
        team("support", "sue", ws=ws, at=at()),
        _publish("route-by-answer.yaml", ws, at(), **durations),
    ]


@integration
async def test_route_by_answer_by_text_and_by_number(stack: Stack) -> None:
    ws, at = _ws("answer"), _recent()
    await stack.send(
        *_route_by_answer_setup(ws, at),
        opened("c1", ws=ws, at=at()),
        opened("c2", ws=ws, at=at()),
        _received("c1", "  support ", ws, at()),  # the option's text, any case and spacing
        _received("c2", "1", ws, at()),  # the option's number: Sales
    )
    outs = await stack.outputs(_has(ws, 2, "contact.assigned"))
    assert sorted(_assigned(outs, ws)) == [
        ("c1", "sue", "support", "round_robin"),
        ("c2", "sam", "sales", "round_robin"),
    ]
    outs = await stack.outputs(_has(ws, 4, "message.requested"))
    said = _said(outs, ws)
    assert [text for c, text in said if c == "c1"] == [QUESTION, TOLD_SUPPORT]
    assert [text for c, text in said if c == "c2"] == [QUESTION, TOLD_SALES]
    question = of_workspace(outs, ws, "message.requested")[0]["data"]
    assert question["options"] == ["Sales", "Support"]


@integration
async def test_route_by_answer_asks_again_then_falls_back_to_support(stack: Stack) -> None:
    ws, at = _ws("answer-retries"), _recent()
    await stack.send(
        *_route_by_answer_setup(ws, at),
        opened("c1", ws=ws, at=at()),
        _received("c1", "billing", ws, at()),
        _received("c1", "3", ws, at()),  # no third option
        _received("c1", "sales please", ws, at()),  # retries (2) used up
    )
    outs = await stack.outputs(_has(ws, 1, "contact.assigned"))
    assert _assigned(outs, ws) == [("c1", "sue", "support", "round_robin")]
    outs = await stack.outputs(_has(ws, 4, "message.requested"))
    assert _said(outs, ws) == [("c1", QUESTION)] * 3 + [("c1", TOLD_SUPPORT)]
    fallback = of_workspace(outs, ws, "contact.assigned")[0]["data"]["workflow"]
    assert fallback["step_id"] == "fallback-assign"


@integration
async def test_route_by_answer_without_an_answer_falls_back_to_support(stack: Stack) -> None:
    ws, at = _ws("answer-timeout"), _recent()
    await stack.send(
        *_route_by_answer_setup(ws, at, **{"1h": "2s"}),
        opened("c1", ws=ws, at=datetime.now(UTC)),
    )
    outs = await stack.outputs(_has(ws, 2, "message.requested"))
    assert _said(outs, ws) == [("c1", QUESTION), ("c1", TOLD_SUPPORT)]
    assert _assigned(outs, ws) == [("c1", "sue", "support", "round_robin")]


@integration
async def test_route_by_language(stack: Stack) -> None:
    ws, at = _ws("language"), _recent()
    setup: list[Envelope] = []
    for team_id, agent in (("spanish", "sofia"), ("french", "fleur"), ("english", "eddie")):
        setup += [
            user(agent, ws=ws, at=at()),
            presence(agent, ws=ws, at=at()),
            team(team_id, agent, ws=ws, at=at()),
        ]
    await stack.send(
        *setup,
        _publish("route-by-language.yaml", ws, at()),
        opened("c-es", fields={"language": "es"}, ws=ws, at=at()),
        opened("c-fr", fields={"language": "FR"}, ws=ws, at=at()),  # any case
        opened("c-de", fields={"language": "de"}, ws=ws, at=at()),
        opened("c-none", ws=ws, at=at()),  # no language known
    )
    outs = await stack.outputs(_has(ws, 4, "contact.assigned"))
    assert _assigned(outs, ws) == [
        ("c-es", "sofia", "spanish", "round_robin"),
        ("c-fr", "fleur", "french", "round_robin"),
        ("c-de", "eddie", "english", "round_robin"),
        ("c-none", "eddie", "english", "round_robin"),
    ]


def _shift_setup(ws: str, at: Clock, morning_online: bool) -> list[Envelope]:
    events: list[Envelope] = []
    for team_id, agent in (("morning", "mia"), ("afternoon", "ana"), ("night", "nil")):
        events += [user(agent, ws=ws, at=at()), team(team_id, agent, ws=ws, at=at())]
        if team_id != "morning" or morning_online:
            events.append(presence(agent, ws=ws, at=at()))
    return [*events, _publish("shifts.yaml", ws, at())]


@integration
async def test_shifts_monday_afternoon_goes_to_the_afternoon_team(stack: Stack) -> None:
    ws = _ws("shift-monday")
    monday = _upcoming(0, 16, 30)  # Monday 16:30 in Madrid
    at = Clock(monday - timedelta(minutes=5))
    await stack.send(
        *_shift_setup(ws, at, morning_online=True),  # every team has someone online
        opened("c1", ws=ws, at=monday),
    )
    outs = await stack.outputs(_has(ws, 1, "contact.assigned"))
    assert _assigned(outs, ws) == [("c1", "ana", "afternoon", "round_robin")]
    outs = await stack.outputs(_has(ws, 2, "message.requested"))
    assert _said(outs, ws) == [
        ("c1", WELCOME),
        ("c1", "Our afternoon team has your conversation and will reply shortly."),
    ]


@integration
async def test_shifts_saturday_away_message_then_the_morning_team_queue(stack: Stack) -> None:
    ws = _ws("shift-saturday")
    saturday = _upcoming(5, 11, 0)  # Saturday 11:00 in Madrid: no shift
    at = Clock(saturday - timedelta(minutes=5))
    await stack.send(
        *_shift_setup(ws, at, morning_online=False),  # the afternoon team is online: no matter
        opened("c1", ws=ws, at=saturday),
    )
    outs = await stack.outputs(_has(ws, 1, "assignment.queued"))
    (queued,) = of_workspace(outs, ws, "assignment.queued")
    assert queued["data"]["team_id"] == "morning"
    assert queued["data"]["workflow"]["step_id"] == "assign-morning"
    assert [c["reason"] for c in queued["data"]["explanation"]["candidates"]] == ["offline"]
    assert [text for _, text in _said(outs, ws)] == [
        WELCOME,
        "We are away right now (our hours: Monday to Friday, around the clock). "
        "Our morning team will pick up your conversation when the next shift starts.",
    ]
    # the morning shift starts: mia comes online and the contact is hers
    await stack.send(presence("mia", ws=ws, at=saturday + timedelta(days=2, hours=-4)))
    outs = await stack.outputs(_has(ws, 3, "message.requested"))
    assert routed(outs, ws) == [
        ("assignment.queued", "c1", "queued"),
        ("contact.assigned", "c1", "mia"),
    ]
    assert _said(outs, ws)[-1] == (
        "c1",
        "Our morning team has your conversation and will reply shortly.",
    )


@integration
async def test_vip_dedicated_agent(stack: Stack) -> None:
    ws, at = _ws("vip"), _recent()
    await stack.send(
        user("vip-agent", ws=ws, at=at()),  # offline: a dedicated agent gets VIPs regardless
        user("sue", ws=ws, at=at()),
        presence("sue", ws=ws, at=at()),
        team("support", "sue", ws=ws, at=at()),
        _publish("vip-dedicated-agent.yaml", ws, at()),
        opened("c-tagged", tags=["vip", "newsletter"], ws=ws, at=at()),
        opened("c-field", fields={"tier": "VIP"}, ws=ws, at=at()),
        opened("c-plain", fields={"tier": "basic"}, tags=["newsletter"], ws=ws, at=at()),
    )
    outs = await stack.outputs(_has(ws, 3, "contact.assigned"))
    assert _assigned(outs, ws) == [
        ("c-tagged", "vip-agent", None, "specific_user"),
        ("c-field", "vip-agent", None, "specific_user"),
        ("c-plain", "sue", "support", "round_robin"),
    ]


@integration
async def test_unassign_on_close(stack: Stack) -> None:
    ws, at = _ws("unassign"), _recent()
    await stack.send(
        user("ann", ws=ws, at=at()),
        presence("ann", ws=ws, at=at()),
        team("support", "ann", ws=ws, at=at()),
        _publish("round-robin-online-welcome.yaml", ws, at()),
        _publish("unassign-on-close.yaml", ws, at()),
        opened("c1", ws=ws, at=at()),
        opened("c2", source="user", ws=ws, at=at()),  # nobody assigns it
        closed("c2", ws=ws, at=at()),  # closes without an assignee: nothing to undo
        closed("c1", ws=ws, at=at()),
    )
    outs = await stack.outputs(_has(ws, 1, "contact.unassigned"))
    assert _assigned(outs, ws) == [("c1", "ann", "support", "round_robin")]
    (unassigned,) = of_workspace(outs, ws, "contact.unassigned")
    assert unassigned["data"]["contact_id"] == "c1"
    assert unassigned["data"]["previous_assignee_id"] == "ann"
    assert unassigned["data"]["workflow"]["id"] == "unassign-on-close"
