"""The simulated day: deterministic, in time order, valid inputs, believable shifts and order.

Pure: no broker, no database, no wall clock (the day starts at a fixed time).
"""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from handoff.adapters.cloudevents import Accepted, parse
from handoff.demo.traffic import (
    DAY,
    DEFAULT_COMPRESSION,
    Agent,
    Day,
    TrafficParams,
    day_events,
    simulate_day,
)

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_MIN = 60.0


@pytest.fixture(scope="module")
def day() -> Day:
    return simulate_day(TrafficParams(start=START))


def _sim(day: Day, event: dict[str, Any]) -> float:
    return day.sim(datetime.fromisoformat(event["time"]))


def test_the_same_parameters_give_the_same_day() -> None:
    params = TrafficParams(start=START, workspaces=2, conversations_per_workspace=40, seed=7)
    assert day_events(params) == day_events(params)
    other = day_events(TrafficParams(start=START, workspaces=2, conversations_per_workspace=40))
    assert other != day_events(params)


def test_a_workspace_added_leaves_the_others_traffic_as_it_was() -> None:
    two = day_events(TrafficParams(start=START, workspaces=2, conversations_per_workspace=30))
    three = day_events(TrafficParams(start=START, workspaces=3, conversations_per_workspace=30))
    assert [e for e in three if e["workspaceid"] != "cargo"] == two


def test_events_come_in_time_order_within_the_day(day: Day) -> None:
    times = [datetime.fromisoformat(e["time"]) for e in day.events]
    assert times == sorted(times)
    assert times[0] >= START
    assert times[-1] < START + timedelta(seconds=DAY / DEFAULT_COMPRESSION)
    assert list(day.sim_times) == sorted(day.sim_times)
    assert len(day.sim_times) == len(day.events)


def test_the_default_day_lasts_75_wall_seconds_and_keeps_the_clocks_apart(day: Day) -> None:
    assert day.wall(DAY) - START == timedelta(seconds=75)
    assert day.sim(START + timedelta(seconds=7.5)) == pytest.approx(DAY / 10)


@pytest.mark.parametrize("workspaces", [3, 6])
def test_every_event_is_an_input_the_service_accepts(workspaces: int) -> None:
    events = day_events(
        TrafficParams(start=START, workspaces=workspaces, conversations_per_workspace=60)
    )
    refused = [
        (e["id"], parsed)
        for e in events
        if not isinstance(parsed := parse(orjson.dumps(e), 1 << 20), Accepted)
    ]
    assert refused == []
    assert len({e["id"] for e in events}) == len(events)
    assert len({e["workspaceid"] for e in events}) == workspaces


def test_ids_and_workspaces_can_be_made_unique_per_run() -> None:
    events = day_events(
        TrafficParams(
            start=START,
            workspaces=1,
            conversations_per_workspace=5,
            id_prefix="run7-",
            workspace_suffix="-run7",
        )
    )
    assert all(e["id"].startswith("run7-acme-run7-") for e in events)
    assert {e["workspaceid"] for e in events} == {"acme-run7"}
    published = next(e for e in events if e["type"] == "workflow.published")
    assert published["data"]["definition"]["workspace_id"] == "acme-run7"


def test_each_workspace_is_set_up_before_its_first_conversation(day: Day) -> None:
    for plan in day.workspaces:
        events = [e for e in day.events if e["workspaceid"] == plan.workspace_id]
        kinds = [e["type"] for e in events]
        first_conversation = kinds.index("conversation.opened")
        assert "workflow.published" in kinds[:first_conversation]
        assert "team.upserted" in kinds[:first_conversation]
        upserted = {
            e["data"]["user_id"]
            for e in events[:first_conversation]
            if e["type"] == "user.upserted"
        }
        assert upserted == {a.user_id for a in plan.agents}
        published = events[kinds.index("workflow.published")]["data"]["definition"]
        assert published["workspace_id"] == plan.workspace_id
        assert published["id"] == plan.template


def test_a_user_exists_before_their_presence_changes(day: Day) -> None:
    known: set[tuple[str, str]] = set()
    for e in day.events:
        key = (e["workspaceid"], e["data"].get("user_id", ""))
        if e["type"] == "user.upserted":
            known.add(key)
        elif e["type"] == "user.presence_changed":
            assert key in known, e


def test_the_templates_are_pointed_at_the_workspace_and_shortened(day: Day) -> None:
    cargo = next(p for p in day.workspaces if p.workspace_id == "cargo")
    steps = {s["id"]: s for s in cargo.workflow["steps"]}
    front_desk = next(a for a in cargo.agents if a.role == "front desk")
    assert steps["first"]["user_id"] == front_desk.user_id  # was the `first-agent` placeholder
    assert steps["wait"]["duration"] == "1s"  # 15m at x1152 is 0.78 s: at least a second
    assert cargo.shortened == (
        "reassign-unanswered: duration 15m -> 1s (about 19 min of simulated time)",
    )
    real_time = simulate_day(TrafficParams(start=START, workspaces=3, compression=1))
    assert real_time.workspaces[2].workflow["steps"][1]["duration"] == "15m"
    assert real_time.workspaces[2].shortened == ()


def _status_at(agent: Agent, sim: float) -> str:
    status = "offline"
    for at, value in agent.presence:
        if at <= sim:
            status = value
    return status


def test_presence_follows_the_shifts(day: Day) -> None:
    for plan in day.workspaces:
        sent: dict[str, list[tuple[float, str]]] = defaultdict(list)
        for e in day.events:
            if e["workspaceid"] == plan.workspace_id and e["type"] == "user.presence_changed":
                sent[e["data"]["user_id"]].append((_sim(day, e), e["data"]["status"]))
        for agent in plan.agents:
            # What is sent is the agent's plan (the midnight status once setup is done).
            assert [s for _, s in sent[agent.user_id]] == [s for _, s in agent.presence]
            shift = agent.shift
            if shift.end <= DAY:  # a day shift: online only around it, and most of it
                for start, end in agent.online_spans():
                    assert start >= shift.start - 10 * _MIN
                    assert end <= shift.end + 20 * _MIN
                online = sum(end - start for start, end in agent.online_spans())
                assert online >= 0.75 * (shift.end - shift.start)
                assert _status_at(agent, shift.start - 30 * _MIN) == "offline"
                assert _status_at(agent, shift.end + 30 * _MIN) == "offline"
            else:  # a night shift: on at midnight, off in the morning, on again at night
                assert agent.presence[0] == (0.0, "online")
                assert _status_at(agent, (shift.end - DAY) + 30 * _MIN) == "offline"
                assert _status_at(agent, DAY - 30 * _MIN) == "online"
                assert _status_at(agent, 12 * 3600) == "offline"


def test_someone_is_on_duty_through_an_around_the_clock_workspace(day: Day) -> None:
    acme = day.workspaces[0]
    assert acme.business.endswith("around the clock")
    on_duty = [
        any(_status_at(a, hour * 3600 + 1800) != "offline" for a in acme.agents)
        for hour in range(24)
    ]
    assert all(on_duty)


def test_conversations_are_opened_written_in_answered_and_closed_in_order(day: Day) -> None:
    opened: dict[tuple[str, str], float] = {}
    closed: set[tuple[str, str]] = set()
    kinds: dict[str, int] = defaultdict(int)
    for e in day.events:
        data, ws = e["data"], e["workspaceid"]
        kinds[e["type"]] += 1
        if e["type"] == "conversation.opened":
            assert data["source"] == "contact"
            assert data["channel"]
            opened[(ws, data["conversation_id"])] = _sim(day, e)
        elif e["type"] in ("message.received", "message.sent", "conversation.closed"):
            key = (ws, data["conversation_id"])
            assert key in opened, e
            assert key not in closed, e
            if e["type"] == "conversation.closed":
                closed.add(key)
    # A believable mix: most chats answered and closed, some never answered, some left open.
    assert kinds["conversation.opened"] == 3 * 150
    assert kinds["message.received"] > kinds["conversation.opened"]
    assert 0.6 * kinds["conversation.opened"] < kinds["conversation.closed"]
    assert kinds["conversation.closed"] < kinds["conversation.opened"]
    answered = {
        (e["workspaceid"], e["data"]["conversation_id"])
        for e in day.events
        if e["type"] == "message.sent"
    }
    assert 0.6 * len(opened) < len(answered) < 0.98 * len(opened)
    snapshots = [
        e for e in day.events if e["type"] == "conversation.opened" and "contact" in e["data"]
    ]
    assert any(s["data"]["contact"]["fields"] for s in snapshots)
    assert any(s["data"]["contact"]["tags"] for s in snapshots)


def test_agents_answer_only_as_users_and_the_busy_hours_are_busier(day: Day) -> None:
    senders = {e["data"]["sender"]["type"] for e in day.events if e["type"] == "message.sent"}
    assert senders == {"user"}
    hours = [int(_sim(day, e) // 3600) for e in day.events if e["type"] == "conversation.opened"]
    night = sum(1 for h in hours if h < 6)
    late_morning = sum(1 for h in hours if 9 <= h < 15)
    assert late_morning > 4 * night


def test_the_team_sizes_follow_the_range() -> None:
    day = simulate_day(
        TrafficParams(
            start=START, workspaces=5, agents_per_team=(2, 2), conversations_per_workspace=10
        )
    )
    for plan in day.workspaces:
        assert all(len(members) == 2 for _, members in plan.teams)
    with pytest.raises(ValueError, match="agents_per_team"):
        simulate_day(TrafficParams(start=START, agents_per_team=(3, 1)))
    with pytest.raises(ValueError, match="timezone-aware"):
        simulate_day(TrafficParams(start=datetime(2026, 1, 5)))
