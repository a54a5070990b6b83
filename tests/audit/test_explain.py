"""`handoff explain` (contract v1.1, Audit commands): a contact's decision trail, from the log.

Each scenario puts a real log in PostgreSQL (`write_log`: the service's own fold and decide
sequence, timers fired in event time) and runs the command as a user would, through
`handoff.cli.main` on `HANDOFF_DATABASE_URL`, reading its output and exit code.
"""

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from handoff.adapters.pg_log import Logged
from handoff.audit import explain as explain_module
from handoff.core import conditions
from handoff.core.conditions import (
    All,
    AnyOf,
    Condition,
    ConversationIs,
    Facts,
    Schedule,
    evaluate,
    holds,
)
from handoff.core.envelope import Envelope
from tests.audit.commands import Command
from tests.audit.logbook import write_log
from tests.builders import (
    T0,
    WS,
    assign_team,
    assignee_changed,
    closed,
    event,
    opened,
    presence,
    team,
    user,
    workflow,
)
from tests.core.test_queue import TWO_WORKFLOWS_ONE_LIMITED

TEMPLATES = Path(__file__).resolve().parents[2] / "deploy" / "workflows"


explain = Command("explain", "--workspace", WS)


def member_row(text: str, user_id: str) -> list[str]:
    """The cells of `user_id`'s row in the (last) candidates table of `text`, marker first."""
    rows = [line for line in text.splitlines() if re.match(rf"\s+(> )?{user_id}\s", line)]
    assert rows, f"no row for {user_id} in:\n{text}"
    cells = re.split(r"\s{2,}", rows[-1].strip())
    return cells


def reassign_unanswered(first: str, team_id: str) -> Envelope:
    """The shipped template, its placeholders set to this scenario's workspace, user, team."""
    doc: dict[str, Any] = yaml.safe_load((TEMPLATES / "reassign-unanswered.yaml").read_text())
    doc["workspace_id"] = WS
    doc["steps"][0]["user_id"] = first
    doc["steps"][2]["branches"][0]["steps"][0]["team_id"] = team_id
    return event("workflow.published", {"definition": doc}, at=T0)


# --- every member of a round-robin decision -------------------------------------------------


def round_robin_team() -> list[Envelope]:
    """Team support: ann offline, bob online but at his limit of 1 (c-0), cid and dan online.
    c-1 goes to cid (the first eligible from the top), then c-2 to dan, after the cursor."""
    return [
        *(user(u, max_open=1 if u == "bob" else None) for u in ("ann", "bob", "cid", "dan")),
        presence("ann", "offline"),
        *(presence(u) for u in ("bob", "cid", "dan")),
        team("support", "ann", "bob", "cid", "dan"),
        opened("c-0"),
        assignee_changed("c-0", "bob"),
        workflow(assign_team("support", only_online=True)),
        opened("c-1"),
        opened("c-2"),
    ]


async def test_a_round_robin_decision_shows_every_member_with_why(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    views = await write_log(fresh_database, round_robin_team())
    assert views[WS].assignees["c-2"] == "dan"

    code, text = await explain(fresh_database, monkeypatch, capsys, "--contact", "c-2")

    assert code == 0, text
    assert "-> dan (round_robin in support), was nobody" in text
    assert "asked: round_robin in team support, only online (by the step)" in text
    assert "cursor: cid -> dan" in text
    assert member_row(text, "ann") == ["ann", "offline", "0", "-", "-", "no: offline"]
    assert member_row(text, "bob") == ["bob", "online", "1", "1", "-", "no: at capacity"]
    assert member_row(text, "cid") == ["cid", "online", "1", "-", "-", "yes"]
    assert member_row(text, "dan") == ["> dan", "online", "0", "-", "-", "yes"]
    table = [line.strip() for line in text.splitlines() if re.match(r"\s+(> )?\w+\s+o", line)]
    assert [row.removeprefix("> ").split()[0] for row in table] == ["ann", "bob", "cid", "dan"]


async def test_the_trail_as_json_lists_every_candidate_the_output_left_out(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await write_log(fresh_database, round_robin_team())

    code, out = await explain(fresh_database, monkeypatch, capsys, "--contact", "c-2", "--json")

    assert code == 0, out
    trail = orjson.loads(out)
    assert set(trail) == {"workspace_id", "contact_id", "entries"}
    assert (trail["workspace_id"], trail["contact_id"]) == (WS, "c-2")
    entries = trail["entries"]
    assert [e["type"] for e in entries] == [
        "conversation.opened",
        "run.started",
        "run.step_entered",
        "contact.assigned",
        "run.ended",
    ]
    assert set(entries[0]) == {
        *("seq", "decided_at", "time", "type", "input", "data"),
        *("step_type", "branch", "assignment"),
    }
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    assert [e["input"] for e in entries] == [True, False, False, False, False]
    assigned = entries[3]
    logged = [c["user_id"] for c in assigned["data"]["explanation"]["candidates"]]
    assert logged == ["dan"]  # the output lists the members passed over from the cursor
    assignment = assigned["assignment"]
    assert assignment["by"] == "step"
    assert (assignment["team_id"], assignment["logic"]) == ("support", "round_robin")
    assert (assignment["cursor_before"], assignment["cursor_after"]) == ("cid", "dan")
    assert [
        (c["user_id"], c["presence"], c["open_contacts"], c["eligible"], c["reason"])
        for c in assignment["candidates"]
    ] == [
        ("ann", "offline", 0, False, "offline"),
        ("bob", "online", 1, False, "at capacity"),
        ("cid", "online", 1, True, None),
        ("dan", "online", 0, True, None),
    ]
    assert entries[2]["step_type"] == "assign_to"


async def test_a_contact_the_log_never_mentions_is_an_error(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await write_log(fresh_database, round_robin_team())

    code, text = await explain(fresh_database, monkeypatch, capsys, "--contact", "c-9")

    assert code == 1
    assert "workspace 'ws-1' has no events of contact 'c-9'" in text


# --- the reassign-unanswered template -------------------------------------------------------


def unanswered() -> list[Envelope]:
    """c-1 opens at T0+1m and goes to ann; nobody replies; ann goes offline at +5m; the
    15-minute wait ends at +16m and fires before the next input (+17m): the branch sends
    c-1 to the next online member of support, bob, with a note."""
    return [
        *(user(u, at=T0) for u in ("ann", "bob", "cid")),
        presence("ann", at=T0),
        presence("bob", at=T0),
        presence("cid", "away", at=T0),
        team("support", "ann", "bob", "cid", at=T0),
        reassign_unanswered("ann", "support"),
        opened("c-1", at=T0 + timedelta(minutes=1)),
        presence("ann", "offline", at=T0 + timedelta(minutes=5)),
        presence("cid", "away", at=T0 + timedelta(minutes=17)),
    ]


async def test_a_contact_reassigned_after_15_unanswered_minutes(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    views = await write_log(fresh_database, unanswered())
    assert views[WS].assignees["c-1"] == "bob"

    code, text = await explain(fresh_database, monkeypatch, capsys, "--contact", "c-1")

    assert code == 0, text
    blocks = text.split("\n\n")
    opening, timer = blocks[1], blocks[2]
    assert "conversation.opened  conv-c-1 by contact" in opening
    assert "-> ann (specific_user), was nobody" in opening
    assert "asked: user ann (by the step)" in opening
    assert "wait until " + (T0 + timedelta(minutes=16)).strftime("%Y-%m-%d %H:%M:%SZ") in opening
    assert "timer.elapsed  wait of step wait" in timer
    assert "check (branch)" in timer
    assert "branch unanswered: holds" in timer
    assert "conversation status eq 'open': saw 'open', holds" in timer
    assert "conversation time_since_last_outgoing not_exists: saw nothing, holds" in timer
    assert "taken: unanswered" in timer
    assert "-> bob (round_robin in support), was ann" in timer
    assert member_row(timer, "ann") == ["ann", "offline", "1", "-", "-", "no: offline"]
    assert member_row(timer, "bob") == ["> bob", "online", "0", "-", "-", "yes"]
    assert member_row(timer, "cid") == ["cid", "away", "0", "-", "-", "no: away"]
    assert "comment.created     'Reassigned to you: no reply within 15 minutes.' @bob" in timer
    assert "run.ended           completed" in timer
    assert len(blocks) == 3  # cid's presence at +17m is not c-1's, and decided nothing of it


async def test_a_reply_within_the_wait_takes_the_else_branch_with_the_time_it_saw(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    replied = event(
        "message.sent",
        {
            "contact_id": "c-1",
            "conversation_id": "conv-c-1",
            "message_id": "m-1",
            "sender": {"type": "user", "user_id": "ann"},
        },
        at=T0 + timedelta(minutes=4),
    )
    inputs = unanswered()
    inputs.insert(-1, replied)  # before the wait ends
    views = await write_log(fresh_database, sorted(inputs, key=lambda e: e.time))
    assert views[WS].assignees["c-1"] == "ann"

    code, out = await explain(fresh_database, monkeypatch, capsys, "--contact", "c-1", "--json")

    assert code == 0, out
    branch = next(e["branch"] for e in orjson.loads(out)["entries"] if e["branch"])
    assert branch["taken"] is None
    when = branch["branches"][0]["when"]
    assert when["held"] is False
    assert when["all"][1] == {
        "condition": {"conversation": "time_since_last_outgoing", "op": "not_exists"},
        "seen": "12m",  # from the reply at +4m to the end of the wait at +16m
        "held": False,
    }


def test_evaluate_reports_every_leaf_and_agrees_with_holds() -> None:
    status_open = ConversationIs(conversation="status", op="eq", value="open")
    replied = ConversationIs(conversation="time_since_last_outgoing", op="exists")
    condition = AnyOf(any=[All(all=[replied, status_open]), status_open])
    facts = Facts(at=T0, conversation_status="open")

    evaluated = evaluate(condition, facts)

    assert evaluated.held is holds(condition, facts) is True
    first, second = evaluated.parts
    assert (first.held, second.held) == (False, True)
    # `holds` stops at the first leaf that fails; the evaluation reports the one after it too
    assert [(p.seen, p.held) for p in first.parts] == [(None, False), ("open", True)]


def test_a_nested_condition_looks_at_each_leaf_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """`all` and `any` take their verdict from their parts' (not from `holds` over the
    subtree again): a leaf three levels down is looked at once, not once per level."""
    status_open = ConversationIs(conversation="status", op="eq", value="open")
    condition = All(all=[AnyOf(any=[All(all=[status_open])])])
    looked: list[Condition] = []
    seen = conditions._seen

    def counted(leaf: Condition, facts: Facts) -> object:
        looked.append(leaf)
        return seen(leaf, facts)  # type: ignore[arg-type]

    monkeypatch.setattr(conditions, "_seen", counted)

    evaluated = evaluate(condition, Facts(at=T0, conversation_status="open"))

    assert evaluated.held is True
    assert looked == [status_open]


def test_a_schedule_is_evaluated_at_the_event_time_in_its_timezone() -> None:
    window = {"timezone": "Asia/Tokyo", "days": ["mon"], "from": "09:00", "to": "17:00"}
    schedule = Schedule.model_validate({"schedule": window})
    monday_10_tokyo = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)

    evaluated = evaluate(schedule, Facts(at=monday_10_tokyo))

    assert evaluated.held is holds(schedule, Facts(at=monday_10_tokyo)) is True
    assert evaluated.seen.isoformat() == "2026-12-07T10:00:00+09:00"


# --- a contact served from the queue ----------------------------------------------------------


def served_from_the_queue() -> list[Envelope]:
    """ann (at most one open contact) has c-0; c-1 opens and waits for support; c-0
    closes, and a decision of that input (another contact's) gives c-1 to ann."""
    return [
        user("ann", max_open=1),
        presence("ann"),
        team("support", "ann"),
        opened("c-0"),
        assignee_changed("c-0", "ann"),
        workflow(assign_team("support", only_online=True)),
        opened("c-1"),
        closed("c-0"),
    ]


async def test_a_queued_contact_served_when_another_conversation_closes(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    views = await write_log(fresh_database, served_from_the_queue())
    assert views[WS].assignees["c-1"] == "ann"

    code, text = await explain(fresh_database, monkeypatch, capsys, "--contact", "c-1")

    assert code == 0, text
    opening, drained = text.split("\n\n")[1:]
    assert "assignment.queued   waits for support (priority 0)" in opening
    assert "asked: round_robin in team support, only online (by the step)" in opening
    assert member_row(opening, "ann") == ["ann", "online", "1", "1", "-", "no: at capacity"]
    assert "conversation.closed  conv-c-0" in drained.splitlines()[0]
    assert "-> ann (round_robin in support), was nobody" in drained
    assert "asked: round_robin in team support, only online (from the queue)" in drained
    assert member_row(drained, "ann") == ["> ann", "online", "0", "1", "-", "yes"]
    assert "run.ended           completed" in drained


async def test_a_contact_queued_and_served_by_the_same_input(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given c1 queued by wa (ann and bob at its limit) and moved from bob to ann by wb in the
    same input, which frees bob (`tests.core.test_queue`), when c1 is explained, then that
    input's trail shows the wait, wb's assignment, and the queue serving c1 to bob there:
    ann at the step's limit, bob eligible with nobody open."""
    await write_log(fresh_database, [*TWO_WORKFLOWS_ONE_LIMITED, opened("c1")])

    code, text = await explain(fresh_database, monkeypatch, capsys, "--contact", "c1")

    assert code == 0, text
    again = text.split("\n\n")[-1]
    queued, served = again.split("-> ann (round_robin in support), was bob")
    assert "assignment.queued   waits for support (priority 0)" in queued
    assert "-> bob (round_robin in support), was ann" in served
    assert "asked: round_robin in team support, at most 1 open (from the queue)" in served
    assert member_row(served, "ann")[-1] == "no: at the step's limit"
    assert member_row(served, "bob") == ["> bob", "offline", "0", "-", "-", "yes"]


async def test_the_log_is_read_up_to_the_contacts_last_row_and_no_further(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given c-1 served from the queue by a decision of c-0's close, then two conversations
    more, when c-1 is explained, then the log is read from its start to c-1's last row (its
    run's end, after the close) and no further, and the trail still ends with the close,
    the assignment it made and the run's end."""
    await write_log(fresh_database, [*served_from_the_queue(), opened("c-2"), opened("c-3")])
    read: list[int] = []
    read_log = explain_module.read_log

    async def counted(*args: Any, **kwargs: Any) -> AsyncIterator[Logged]:
        async for logged in read_log(*args, **kwargs):
            read.append(logged.seq)
            yield logged

    monkeypatch.setattr(explain_module, "read_log", counted)

    code, out = await explain(fresh_database, monkeypatch, capsys, "--contact", "c-1", "--json")

    assert code == 0, out
    entries = orjson.loads(out)["entries"]
    assert [e["type"] for e in entries[-3:]] == [
        "conversation.closed",
        "contact.assigned",
        "run.ended",
    ]
    assert read == list(range(1, entries[-1]["seq"] + 1))


async def test_skills_relaxed_at_once_are_not_asked_of_the_candidates(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    step = assign_team("support", skills=["es"], relax_skills_after="0s")
    await write_log(
        fresh_database,
        [user("ann"), presence("ann"), team("support", "ann"), workflow(step), opened("c-1")],
    )

    code, text = await explain(fresh_database, monkeypatch, capsys, "--contact", "c-1")

    assert code == 0, text
    assert "run.skills_relaxed" in text
    assert "asked: round_robin in team support (by the step)" in text  # no skills asked
    assert member_row(text, "ann") == ["> ann", "online", "0", "-", "-", "yes"]
