"""The demo's summary: a pure function from the events in and out to the table's rows.

A handmade day on a simple clock (x60: a wall second is a simulated minute), then a whole
simulated day decided by the pure core, to see the generator and the summary agree with it.
"""

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import orjson
import pytest

from handoff.adapters.cloudevents import Accepted, parse
from handoff.core.view import WorkspaceView
from handoff.demo.summary import Routing, queue_reason, summarize
from handoff.demo.traffic import DAY, TrafficParams, simulate_day
from tests.scenario import apply

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
X60 = 60.0
_ids = count(1)
Event = dict[str, Any]


def at(minute: float, wall_ms: float = 0) -> str:
    """The real time of simulated `minute` at x60 (plus `wall_ms` of decision time)."""
    return (START + timedelta(seconds=minute, milliseconds=wall_ms)).isoformat()


def given(type_: str, minute: float, id: str | None = None, **data: Any) -> Event:
    return {
        "specversion": "1.0",
        "id": id or f"in-{next(_ids)}",
        "source": "/test",
        "type": type_,
        "time": at(minute),
        "workspaceid": "w",
        "data": data,
    }


def out(type_: str, minute: float, cause: str, **data: Any) -> Event:
    """An output decided 100 ms (wall) after its cause."""
    return {
        "specversion": "1.0",
        "id": f"out-{next(_ids)}",
        "source": "/handoff",
        "type": type_,
        "time": at(minute, wall_ms=100),
        "workspaceid": "w",
        "causationid": cause,
        "data": data,
    }


def candidates(*reasons: tuple[str, str | None]) -> dict[str, Any]:
    """An explanation as the core writes it: the candidates, and their reasons counted."""
    counted = Counter(r for _, r in reasons if r is not None)
    return {
        "ineligible": dict(counted),
        "candidates": [
            {
                "user_id": u,
                "online": r is None,
                "open_contacts": 0,
                "eligible": r is None,
                "reason": r,
            }
            for u, r in reasons
        ],
    }


def assigned(
    minute: float, cause: str, contact: str, conv: str, to: str, previous: str | None = None
) -> Event:
    return out(
        "contact.assigned",
        minute,
        cause,
        contact_id=contact,
        conversation_id=conv,
        assignee_id=to,
        previous_assignee_id=previous,
        team_id="support",
        strategy="round_robin",
        only_online=True,
        explanation=candidates((to, None)),
    )


def test_a_small_day_comes_to_the_expected_rows() -> None:
    o1 = given("conversation.opened", 10, contact_id="c1", conversation_id="cv-1", source="contact")
    o2 = given("conversation.opened", 20, contact_id="c2", conversation_id="cv-2", source="contact")
    o3 = given("conversation.opened", 30, contact_id="c3", conversation_id="cv-3", source="contact")
    bob_on = given("user.presence_changed", 60, user_id="bob", status="online")
    o4 = given("conversation.opened", 80, contact_id="c1", conversation_id="cv-4", source="contact")
    o5 = given("conversation.opened", 90, contact_id="c5", conversation_id="cv-5", source="contact")
    c5 = given("conversation.closed", 100, contact_id="c5", conversation_id="cv-5")
    inputs = [
        given("user.upserted", 0, user_id="ann"),
        given("user.upserted", 0, user_id="bob"),
        given("user.presence_changed", 0, user_id="ann", status="online"),
        given("user.presence_changed", 0, user_id="bob", status="offline"),
        o1,
        o2,
        o3,
        bob_on,
        given("conversation.closed", 70, contact_id="c1", conversation_id="cv-1"),
        o4,
        given("user.presence_changed", 85, user_id="ann", status="offline"),
        given("user.presence_changed", 88, user_id="bob", status="offline"),
        o5,
        c5,
    ]
    full = candidates(("ann", "at capacity"), ("bob", "at the step's limit"))
    nobody = candidates(("ann", "offline"), ("bob", "offline"))
    outputs = [
        assigned(10, o1["id"], "c1", "cv-1", "ann"),
        out("message.requested", 10, o1["id"], contact_id="c1", conversation_id="cv-1", text="Hi"),
        out(
            "assignment.queued",
            20,
            o2["id"],
            contact_id="c2",
            conversation_id="cv-2",
            explanation=full,
        ),
        assigned(30, o3["id"], "c3", "cv-3", "ann"),
        # A wait's timer (not an input) moves cv-3 to bob: a reassignment, at the timer's time.
        assigned(50, "timer-1", "c3", "cv-3", "bob", previous="ann"),
        # Bob comes online: the queue gives him cv-2, when his presence changed.
        assigned(60, bob_on["id"], "c2", "cv-2", "bob"),
        # c1 comes back and is routed afresh: not a reassignment, though ann was its assignee.
        assigned(80, o4["id"], "c1", "cv-4", "bob", previous="ann"),
        out(
            "assignment.queued",
            90,
            o5["id"],
            contact_id="c5",
            conversation_id="cv-5",
            explanation=nobody,
        ),
        out(
            "assignment.failed",
            100,
            c5["id"],
            contact_id="c5",
            reason="conversation_closed",
            explanation={"candidates": []},
        ),
    ]

    summary = summarize(inputs, outputs, START, X60)

    rows = {
        (a.user_id): (a.assignments, a.took_over, a.handed_off, a.open_at_end)
        for a in summary.agents
    }
    assert rows == {"ann": (2, 0, 1, 0), "bob": (3, 1, 0, 3)}
    (ws,) = summary.workspaces
    assert (ws.workspace_id, ws.opened, ws.assigned, ws.never_assigned) == ("w", 5, 4, 1)
    assert ws.wait_median == 0  # waits: 0, 0, 0 and cv-2's 40 minutes
    assert ws.wait_p90 == 40 * 60
    assert ws.reassignments == 1
    assert ws.queued == {"all at capacity": 1, "nobody online": 1}
    assert ws.failed == {"conversation_closed": 1}
    assert ws.decided_p50_ms == ws.decided_p90_ms == 100
    series = {s.user_id: [t / 60 for t in s.times] for s in summary.series}
    # The timer is no input: its assignment counts when decided (100 ms wall = 6 s later).
    assert series == {"ann": [10, 30], "bob": [pytest.approx(50.1), 60, 80]}
    assert summary.waiting["w"] == ((20 * 60, 1), (60 * 60, 0), (90 * 60, 1), (100 * 60, 0))
    assert summary.nobody_online["w"] == ((88 * 60, DAY),)
    assert summary.outputs["message.requested"] == 1

    table = summary.render({("w", "ann"): "early 06-14"})
    assert "ann      early 06-14" in table
    assert "40 min" in table
    assert "queued: all at capacity 1, nobody online 1; failed: conversation_closed 1" in table
    assert ws.waiting_at_end == 0
    assert table.endswith(
        "Outputs: 1 assignment.failed, 2 assignment.queued, 5 contact.assigned, 1 message.requested"
    )


def test_the_chart_is_a_png_with_a_panel_per_workspace(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")  # the optional `demo` extra
    from handoff.demo.chart import write_chart

    o1 = given("conversation.opened", 10, contact_id="c1", conversation_id="cv-1", source="contact")
    inputs = [given("user.upserted", 0, user_id="ann"), o1]
    summary = summarize(inputs, [assigned(10, o1["id"], "c1", "cv-1", "ann")], START, X60)
    path = write_chart(summary, tmp_path / "out" / "chart.png", {("w", "ann"): "early"}, "test")
    assert path.read_bytes().startswith(b"\x89PNG")


def test_a_conversation_held_without_an_assignment_event_is_reassigned_when_moved() -> None:
    """Routing a returning contact to the agent it has emits nothing (a no-op); a timer that
    then moves the conversation reassigns it, and its first assignment is its opening."""
    o1 = given("conversation.opened", 10, contact_id="c1", conversation_id="cv-1", source="contact")
    o2 = given(
        "conversation.opened", 100, contact_id="c1", conversation_id="cv-2", source="contact"
    )
    inputs = [
        given("user.upserted", 0, user_id="desk"),
        given("user.upserted", 0, user_id="ann"),
        o1,
        given("conversation.closed", 50, contact_id="c1", conversation_id="cv-1"),
        o2,
    ]
    outputs = [
        assigned(10, o1["id"], "c1", "cv-1", "desk"),
        assigned(120, "timer-2", "c1", "cv-2", "ann", previous="desk"),
    ]
    summary = summarize(inputs, outputs, START, X60)
    rows = {
        a.user_id: (a.assignments, a.took_over, a.handed_off, a.open_at_end) for a in summary.agents
    }
    assert rows == {"desk": (1, 0, 1, 0), "ann": (1, 1, 0, 1)}
    assert summary.workspaces[0].wait_p90 == 0


def test_a_conversation_of_a_contact_its_agent_keeps_counts_as_assigned_at_once() -> None:
    """No output at all for the second conversation: the contact kept its agent."""
    o1 = given("conversation.opened", 10, contact_id="c1", conversation_id="cv-1", source="contact")
    o2 = given(
        "conversation.opened", 100, contact_id="c1", conversation_id="cv-2", source="contact"
    )
    o3 = given(
        "conversation.opened", 110, contact_id="c3", conversation_id="cv-3", source="contact"
    )
    inputs = [
        given("user.upserted", 0, user_id="desk"),
        o1,
        given("conversation.closed", 50, contact_id="c1", conversation_id="cv-1"),
        o2,
        o3,
    ]
    summary = summarize(inputs, [assigned(10, o1["id"], "c1", "cv-1", "desk")], START, X60)
    (ws,) = summary.workspaces
    assert (ws.opened, ws.assigned, ws.never_assigned, ws.wait_p90) == (3, 2, 1, 0)
    assert summary.agents[0].open_at_end == 1


def test_routing_tells_a_move_from_a_first_routing() -> None:
    routing = Routing()
    opened = given("conversation.opened", 1, contact_id="c", conversation_id="cv", source="contact")
    routing.opened(opened)
    assert routing.see(assigned(1, opened["id"], "c", "cv", "ann", previous="old")) == (None, False)
    assert routing.see(assigned(2, "timer", "c", "cv", "ann")) == (None, False)  # same agent
    assert routing.see(assigned(3, "timer", "c", "cv", "bob", previous="ann")) == ("ann", False)


def test_queue_reasons_in_a_few_words() -> None:
    assert queue_reason(candidates(("a", "away"), ("b", "offline"))) == "nobody online"
    assert queue_reason(candidates(("a", "at capacity"))) == "all at capacity"
    assert queue_reason(candidates(("a", "missing skill es"))) == "nobody with the skills"
    assert queue_reason(candidates(("a", "at the step's limit"), ("b", "away"))) == (
        "offline or at capacity"
    )
    assert queue_reason({"candidates": []}) == "no members"
    logged_before_v11 = candidates(("a", "not online (away)"), ("b", "at the user's limit (3/3)"))
    del logged_before_v11["ineligible"]
    assert queue_reason(logged_before_v11) == "offline or at capacity"
    del logged_before_v11["candidates"][1]
    assert queue_reason(logged_before_v11) == "nobody online"


def test_a_simulated_day_decided_by_the_pure_core_sums_up() -> None:
    """The generator's day through the core (no timers fire here), then the summary: every
    conversation is accounted for, agents on duty get work, the business-hours workspace
    queues at night and its contacts give up."""
    day = simulate_day(TrafficParams(start=START, conversations_per_workspace=60))
    views: dict[str, WorkspaceView] = {}
    outputs: list[Event] = []
    for event in day.events:
        parsed = parse(orjson.dumps(event), 1 << 20)
        assert isinstance(parsed, Accepted)
        view = views.setdefault(
            event["workspaceid"], WorkspaceView(workspace_id=event["workspaceid"])
        )
        outputs += [d.model_dump(mode="json") for d in apply(view, parsed.event, parsed.event.time)]

    summary = summarize(list(day.events), outputs, day.params.start, day.params.compression)

    by_ws = {w.workspace_id: w for w in summary.workspaces}
    assert set(by_ws) == {"acme", "bistro", "cargo"}
    for row in by_ws.values():
        assert row.opened == 60
        assert row.assigned + row.never_assigned == row.opened
        assert row.decided_p90_ms == 0  # the core decided at the event's own time
    assert by_ws["acme"].never_assigned <= 3  # someone is always on duty
    assert by_ws["bistro"].queued.get("nobody online", 0) > 0  # closed at night
    assert by_ws["bistro"].failed.get("conversation_closed", 0) > 0  # contacts gave up
    assert sum(a.assignments for a in summary.agents if a.workspace_id == "acme") >= 57
    front_desk = next(a for p in day.workspaces for a in p.agents if a.role == "front desk")
    desk = next(
        a for a in summary.agents if (a.workspace_id, a.user_id) == ("cargo", front_desk.user_id)
    )
    assert desk.assignments > 50  # the front desk takes every chat first
