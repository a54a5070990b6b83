"""The routing templates in deploy/workflows, each proven by a scenario through the real pipeline.

Every scenario loads the shipped file, points it at its own workspace, shortens its waits for
the test (the files keep the real durations) and publishes it as `workflow.published`. One
service runs for the module. Every event of a scenario carries an explicit time: real times
near now (so a 2 s wait fires about 2 s later), or for the shifts template fixed times that
fall on a weekday and hour in Madrid.
"""

import asyncio
import json
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


_DURATION_KEYS = ("duration", "timeout", "after", "relax_skills_after")
"""The keys of a workflow document whose values are durations: a wait's, a question's or a
queue's, an `assignee_unavailable` trigger's, a skill requirement's."""


def _shorten(node: Any, durations: dict[str, str]) -> Any:
    """The document with each duration (`_DURATION_KEYS`) in `durations` replaced (15m -> 2s)."""
    if isinstance(node, dict):
        return {
            k: durations.get(v, v)
            if k in _DURATION_KEYS and isinstance(v, str)
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


def test_the_templates_are_shipped() -> None:
    assert {p.name for p in TEMPLATES} >= {
        "round-robin-online-welcome.yaml",
        "least-open-contacts-online.yaml",
        "reassign-unanswered.yaml",
        "route-by-answer.yaml",
        "route-by-language.yaml",
        "shifts.yaml",
        "vip-dedicated-agent.yaml",
        "unassign-on-close.yaml",
        "reassign-when-offline.yaml",
        "vip-priority-queue.yaml",
        "language-skills-relaxed.yaml",
        "returning-customer-last-agent.yaml",
        "longest-idle-team.yaml",
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
    assert _load("reassign-when-offline.yaml")["trigger"]["after"] == "5m"
    assert _load("language-skills-relaxed.yaml")["steps"][0]["relax_skills_after"] == "2m"


def test_shorten_rewrites_every_kind_of_duration() -> None:
    doc = {
        "trigger": {"type": "assignee_unavailable", "after": "5m"},
        "steps": [
            {"type": "wait", "duration": "5m"},
            {"type": "assign_to", "timeout": "5m", "relax_skills_after": "5m", "name": "5m"},
        ],
    }
    assert _shorten(doc, {"5m": "2s"}) == {
        "trigger": {"type": "assignee_unavailable", "after": "2s"},
        "steps": [
            {"type": "wait", "duration": "2s"},
            {"type": "assign_to", "timeout": "2s", "relax_skills_after": "2s", "name": "5m"},
        ],
    }


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


# --- v1.1 templates: presence watches, queue priority, skills, last assignee, longest idle ---


def _time(output: Output) -> datetime:
    """When the service decided an output."""
    return datetime.fromisoformat(output["time"])


async def _logged(dsn: str, ws: str, *types: str) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of each event of `types` in the workspace's event log, in order."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT type, body->'data' AS data FROM event_log"
            " WHERE workspace_id = $1 AND type = ANY($2::text[]) ORDER BY seq",
            ws,
            list(types),
        )
    finally:
        await conn.close()
    return [(r["type"], json.loads(r["data"])) for r in rows]


def _assigned_by_inbox(contact: str, agent: str, ws: str, at: Clock) -> list[Envelope]:
    """A conversation an agent opened and took in the inbox: no workflow routes it."""
    return [
        opened(contact, source="user", ws=ws, at=at()),
        assignee_changed(contact, agent, ws=ws, at=at()),
    ]


OFFLINE_NOTE = "Reassigned to you: the previous agent went away or offline."


@integration
async def test_reassign_when_offline_moves_the_open_conversations_to_online_agents(
    stack: Stack,
) -> None:
    ws, at = _ws("offline"), _recent()
    await stack.send(
        *(user(u, ws=ws, at=at()) for u in ("ann", "bob", "cid")),
        *(presence(u, ws=ws, at=at()) for u in ("ann", "bob", "cid")),
        team("support", "ann", "bob", "cid", ws=ws, at=at()),
        _publish("reassign-when-offline.yaml", ws, at(), **{"5m": "2s"}),
        *_assigned_by_inbox("c1", "ann", ws, at),
        *_assigned_by_inbox("c2", "ann", ws, at),
        *_assigned_by_inbox("c3", "bob", ws, at),  # not ann's: stays
        *_assigned_by_inbox("c4", "ann", ws, at),
        closed("c4", ws=ws, at=at()),  # closed: nothing to reassign
    )
    gone = datetime.now(UTC)
    offline = presence("ann", "offline", ws=ws, at=gone)
    await stack.send(offline)
    outs = await stack.outputs(_has(ws, 2, "comment.created"))
    # oldest conversation first, each to the next online agent of the team
    assert _assigned(outs, ws) == [
        ("c1", "bob", "support", "round_robin"),
        ("c2", "cid", "support", "round_robin"),
    ]
    assigned = of_workspace(outs, ws, "contact.assigned")
    for output in assigned:
        assert output["data"]["previous_assignee_id"] == "ann"
        assert output["data"]["only_online"] is True
        assert output["data"]["workflow"]["id"] == "reassign-when-offline"
        assert output["data"]["workflow"]["step_id"] == "reassign"
        assert _time(output) >= gone + timedelta(seconds=2)  # ann stayed offline 2 s first
        assert output["causationid"] != offline.id  # the watch's timer caused it
    assert len({o["causationid"] for o in assigned}) == 1
    comments = [o["data"] for o in of_workspace(outs, ws, "comment.created")]
    assert [(c["contact_id"], c["mentions"], c["text"]) for c in comments] == [
        ("c1", ["bob"], OFFLINE_NOTE),
        ("c2", ["cid"], OFFLINE_NOTE),
    ]
    assert comments[0]["conversation_id"] == "conv-c1"


@integration
async def test_reassign_when_offline_leaves_an_agent_back_in_time(
    stack: Stack, database_url: str
) -> None:
    ws, at = _ws("back"), _recent()
    await stack.send(
        *(user(u, ws=ws, at=at()) for u in ("ann", "bob", "dan")),
        *(presence(u, ws=ws, at=at()) for u in ("ann", "bob", "dan")),
        team("support", "ann", "bob", "dan", ws=ws, at=at()),
        # 3 s, not 2: ann's return must be applied before her watch would fire, however
        # busy the machine
        _publish("reassign-when-offline.yaml", ws, at(), **{"5m": "3s"}),
        *_assigned_by_inbox("c-ann", "ann", ws, at),
        *_assigned_by_inbox("c-dan", "dan", ws, at),
    )
    gone = datetime.now(UTC)
    await stack.send(
        presence("ann", "away", ws=ws, at=gone),
        presence("dan", "offline", ws=ws, at=gone),  # dan stays offline: the witness
        presence("ann", "offline", ws=ws, at=gone + timedelta(milliseconds=300)),
        presence("ann", "online", ws=ws, at=gone + timedelta(milliseconds=600)),  # back
    )
    outs = await stack.outputs(_has(ws, 1, "comment.created"))
    # ann, back online, is the first online member of the team again
    assert _assigned(outs, ws) == [("c-dan", "ann", "support", "round_robin")]
    # well past when ann's watch would have fired (with dan's), had it not ended
    past_due = gone + timedelta(seconds=4.5) - datetime.now(UTC)
    await asyncio.sleep(max(0.0, past_due.total_seconds()))
    outs = await _all_within(stack, 1.0)
    assert _assigned(outs, ws) == [("c-dan", "ann", "support", "round_robin")]
    assert [c["data"]["contact_id"] for c in of_workspace(outs, ws, "comment.created")] == ["c-dan"]
    watches = await _logged(
        database_url, ws, "presence.watch_started", "presence.watch_ended", "run.started"
    )
    assert [(t, d.get("user_id") or d.get("contact_id")) for t, d in watches] == [
        ("presence.watch_started", "ann"),  # away; offline after away keeps the same watch
        ("presence.watch_started", "dan"),
        ("presence.watch_ended", "ann"),  # ann back in time
        ("presence.watch_ended", "dan"),  # dan's watch ran out: it ends as his runs start
        ("run.started", "c-dan"),
    ]


@integration
async def test_vip_priority_queue_serves_vips_first(stack: Stack) -> None:
    ws, at = _ws("vip-queue"), _recent()
    await stack.send(
        user("ann", max_open=1, ws=ws, at=at()),  # offline, and takes one contact at a time
        team("support", "ann", ws=ws, at=at()),
        _publish("vip-priority-queue.yaml", ws, at()),
        opened("c-plain", fields={"tier": "basic"}, ws=ws, at=at()),
        opened("c-tagged", tags=["vip"], ws=ws, at=at()),
        opened("c-field", fields={"tier": "VIP"}, ws=ws, at=at()),
    )
    outs = await stack.outputs(_has(ws, 3, "assignment.queued"))
    queued = [o["data"] for o in of_workspace(outs, ws, "assignment.queued")]
    assert [(q["contact_id"], q["priority"], q["workflow"]["step_id"]) for q in queued] == [
        ("c-plain", 0, "assign"),
        ("c-tagged", 10, "assign-vip"),
        ("c-field", 10, "assign-vip"),
    ]
    # ann comes online: the oldest VIP first, though the plain contact waited longer; then
    # each close frees ann for the next: the other VIP, then the plain contact
    causes = [
        presence("ann", ws=ws, at=at()),
        closed("c-tagged", ws=ws, at=at()),
        closed("c-field", ws=ws, at=at()),
    ]
    for n, cause in enumerate(causes, 1):
        await stack.send(cause)
        outs = await stack.outputs(_has(ws, n, "contact.assigned"))
    assert _assigned(outs, ws) == [
        ("c-tagged", "ann", "support", "round_robin"),
        ("c-field", "ann", "support", "round_robin"),
        ("c-plain", "ann", "support", "round_robin"),
    ]
    # one at a time: ann takes one contact, so each waited for the cause before it
    assigned = of_workspace(outs, ws, "contact.assigned")
    assert [o["causationid"] for o in assigned] == [c.id for c in causes]


@integration
async def test_language_skills_relaxed(stack: Stack) -> None:
    ws, at = _ws("skills"), _recent()
    await stack.send(
        user("eddie", skills=["en"], ws=ws, at=at()),
        user("sofia", skills=["es", "en"], ws=ws, at=at()),
        presence("eddie", ws=ws, at=at()),  # sofia is offline
        team("support", "eddie", "sofia", ws=ws, at=at()),
        _publish("language-skills-relaxed.yaml", ws, at(), **{"2m": "2s"}),
    )
    waited_from = datetime.now(UTC)
    await stack.send(opened("c1", fields={"language": "es"}, ws=ws, at=waited_from))
    outs = await stack.outputs(_has(ws, 1, "assignment.queued"))
    (queued,) = [o["data"] for o in of_workspace(outs, ws, "assignment.queued")]
    assert queued["skills"] == ["es"]
    reasons = {c["user_id"]: c["reason"] for c in queued["explanation"]["candidates"]}
    assert reasons == {"eddie": "missing skill es", "sofia": "offline"}
    # nobody speaking Spanish came online: after 2 s any online member may take it
    outs = await stack.outputs(_has(ws, 1, "contact.assigned"))
    assert _assigned(outs, ws) == [("c1", "eddie", "support", "round_robin")]
    (relaxed,) = of_workspace(outs, ws, "contact.assigned")
    assert _time(relaxed) >= waited_from + timedelta(seconds=2)
    # a Spanish speaker online takes a Spanish contact at once, and English goes round
    at = Clock(datetime.now(UTC))
    await stack.send(
        presence("sofia", ws=ws, at=at()),
        opened("c2", fields={"language": "es"}, ws=ws, at=at()),
        opened("c3", fields={"language": "en"}, ws=ws, at=at()),
        opened("c4", ws=ws, at=at()),  # no language: no skill required
    )
    outs = await stack.outputs(_has(ws, 4, "contact.assigned"))
    assert _assigned(outs, ws)[1:] == [
        ("c2", "sofia", "support", "round_robin"),
        ("c3", "eddie", "support", "round_robin"),
        ("c4", "sofia", "support", "round_robin"),
    ]
    assert len(of_workspace(outs, ws, "assignment.queued")) == 1  # c1 only


@integration
async def test_returning_customer_goes_back_to_the_last_agent(stack: Stack) -> None:
    ws, at = _ws("returning"), _recent()
    await stack.send(
        *(user(u, ws=ws, at=at()) for u in ("ann", "bob", "cid")),
        *(presence(u, ws=ws, at=at()) for u in ("ann", "bob", "cid")),
        team("support", "ann", "bob", "cid", ws=ws, at=at()),
        _publish("returning-customer-last-agent.yaml", ws, at()),
        _publish("unassign-on-close.yaml", ws, at()),  # so that a return assigns afresh
        opened("c1", ws=ws, at=at()),  # new: round robin
        opened("c2", ws=ws, at=at()),
        closed("c1", ws=ws, at=at()),
        opened("c1", "conv-c1-again", ws=ws, at=at()),  # round robin would say cid
    )
    outs = await stack.outputs(_has(ws, 3, "contact.assigned"))
    assert _assigned(outs, ws) == [
        ("c1", "ann", "support", "round_robin"),
        ("c2", "bob", "support", "round_robin"),
        ("c1", "ann", "support", "last_assignee"),
    ]
    back = of_workspace(outs, ws, "contact.assigned")[2]["data"]
    assert back["conversation_id"] == "conv-c1-again"
    assert back["previous_assignee_id"] is None  # unassigned on close
    assert [c["user_id"] for c in back["explanation"]["candidates"]] == ["ann"]
    # ann is offline when c1 comes back a third time: the next online agent instead
    await stack.send(
        closed("c1", "conv-c1-again", ws=ws, at=at()),
        presence("ann", "offline", ws=ws, at=at()),
        opened("c1", "conv-c1-third", ws=ws, at=at()),
    )
    outs = await stack.outputs(_has(ws, 4, "contact.assigned"))
    assert _assigned(outs, ws)[3] == ("c1", "bob", "support", "round_robin")
    third = of_workspace(outs, ws, "contact.assigned")[3]["data"]
    candidates = {c["user_id"]: c for c in third["explanation"]["candidates"]}
    assert candidates["ann"]["eligible"] is False
    assert candidates["ann"]["reason"] == "offline"
    assert third["explanation"]["ineligible"] == {"offline": 1}


@integration
async def test_longest_idle_team(stack: Stack) -> None:
    ws, at = _ws("idle"), _recent()
    await stack.send(
        *(user(u, ws=ws, at=at()) for u in ("ann", "bob", "cid", "dan")),
        *(presence(u, ws=ws, at=at()) for u in ("ann", "bob", "cid", "dan")),
        team("support", "ann", "bob", "cid", "dan", ws=ws, at=at()),
        _publish("longest-idle-team.yaml", ws, at()),
        *_assigned_by_inbox("c-old", "bob", ws, at),  # bob's last assignment is the older
        *_assigned_by_inbox("c-new", "ann", ws, at),
        *(opened(c, ws=ws, at=at()) for c in ("c1", "c2", "c3", "c4", "c5")),
    )
    outs = await stack.outputs(_has(ws, 5, "contact.assigned"))
    assert _assigned(outs, ws) == [
        ("c1", "cid", "support", "longest_idle"),  # never assigned (tie with dan: team order)
        ("c2", "dan", "support", "longest_idle"),  # never assigned
        ("c3", "bob", "support", "longest_idle"),  # idle since c-old
        ("c4", "ann", "support", "longest_idle"),  # idle since c-new
        ("c5", "cid", "support", "longest_idle"),  # idle since c1
    ]
    assert _said(outs, ws) == [(c, WELCOME) for c in ("c1", "c2", "c3", "c4", "c5")]
    third = of_workspace(outs, ws, "contact.assigned")[2]["data"]["explanation"]["candidates"]
    # the assignee, then the two eligible members that came closest (RUNNERS_UP), idlest first
    assert [c["user_id"] for c in third] == ["bob", "ann", "cid"]
    assert all("last_assigned_at" in c for c in third)
