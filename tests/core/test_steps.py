"""The step types beyond assignment: wait, branch, ask_question, jump, queue timeouts."""

from datetime import timedelta

from handoff.core.events import RunWaiting
from handoff.core.timers import elapsed
from handoff.core.view import WorkspaceView
from tests.builders import (
    T0,
    WS,
    assign_team,
    closed,
    event,
    opened,
    presence,
    team,
    user,
    workflow,
)
from tests.scenario import apply, history

AGENTS = [user("ann"), user("bob"), presence("ann"), team("sales", "ann"), team("support", "bob")]


def _timer(view: WorkspaceView, kind: str | None = None):  # type: ignore[no-untyped-def]
    """The timer.elapsed the poller would make for the (one) waiting run."""
    (run_id, timer), *_ = view.timers.items()
    assert kind is None or timer.kind == kind
    return elapsed(WS, run_id, timer.step_id, timer.kind, timer.due_at)


def _said(decisions: list, *types: str) -> list[str]:  # type: ignore[type-arg]
    return [d.type for d in decisions if not types or d.type in types]


def received(text: str, contact: str = "c1") -> object:
    return event(
        "message.received",
        {
            "contact_id": contact,
            "conversation_id": f"conv-{contact}",
            "message_id": text,
            "text": text,
        },
    )


def test_a_wait_sets_a_timer_and_the_run_goes_on_when_it_fires() -> None:
    view = history(
        [
            *AGENTS,
            workflow(
                {"type": "wait", "duration": "15m"},
                {"type": "send_message", "text": "still there?"},
            ),
        ]
    )
    first = apply(view, opened("c1", at=T0))
    (waiting,) = [d for d in first if isinstance(d, RunWaiting)]
    assert waiting.data.until == T0 + timedelta(minutes=15)
    assert _said(first, "message.requested") == []
    timer = _timer(view, "wait")
    assert _said(apply(view, timer), "message.requested", "run.ended") == [
        "message.requested",
        "run.ended",
    ]
    assert view.timers == {}
    assert view.runs == {}
    assert apply(view, timer) == []  # a stale timer (already served) does nothing


def test_a_closed_conversation_cancels_a_waiting_run() -> None:
    view = history(
        [
            *AGENTS,
            workflow({"type": "wait", "duration": "15m"}, {"type": "send_message", "text": "x"}),
            opened("c1"),
        ]
    )
    ended = [d for d in apply(view, closed("c1")) if d.type == "run.ended"]
    assert [d.data.outcome for d in ended] == ["cancelled"]  # type: ignore[attr-defined]
    assert view.runs == {}
    assert view.timers == {}


def test_branch_on_a_contact_field_routes_by_language() -> None:
    language = {
        "type": "branch",
        "branches": [
            {
                "name": "spanish",
                "when": {"contact_field": "language", "op": "eq", "value": "ES"},
                "steps": [{**assign_team("sales"), "id": "es"}],
            }
        ],
        "else": [{**assign_team("support"), "id": "other"}],
    }
    view = history([*AGENTS, workflow(language)])
    spanish = opened("c1", fields={"language": "es"})
    assigned = [d for d in apply(view, spanish) if d.type == "contact.assigned"]
    assert [d.data.team_id for d in assigned] == ["sales"]  # type: ignore[attr-defined]
    other = [
        d for d in apply(view, opened("c2")) if d.type in ("contact.assigned", "assignment.queued")
    ]
    assert [d.data.team_id for d in other] == ["support"]  # type: ignore[attr-defined]


def _ask(**options: object) -> dict[str, object]:
    return {
        "type": "ask_question",
        "text": "Sales or Support?",
        "options": ["Sales", "Support"],
        "save_as": "team",
        **options,
    }


def _route_by_answer() -> dict[str, object]:
    return {
        "type": "branch",
        "branches": [
            {
                "name": "sales",
                "when": {"variable": "team", "op": "eq", "value": "Sales"},
                "steps": [{**assign_team("sales"), "id": "to-sales"}],
            }
        ],
        "else": [{**assign_team("support"), "id": "to-support"}],
    }


def test_an_answer_is_matched_by_text_or_number_and_routes_the_run() -> None:
    for said, team_id in [("  sales ", "sales"), ("2", "support")]:
        view = history([*AGENTS, workflow(_ask(), _route_by_answer()), opened("c1")])
        decisions = apply(view, received(said))
        routed = [
            d.data.team_id
            for d in decisions  # type: ignore[attr-defined]
            if d.type in ("contact.assigned", "assignment.queued")
        ]
        assert routed == [team_id], said


def test_a_wrong_answer_asks_again_then_takes_the_failure_steps() -> None:
    failure = [{"type": "add_comment", "text": "no answer", "id": "f1"}]
    view = history([*AGENTS, workflow(_ask(retries=1, on_failure=failure)), opened("c1")])
    again = apply(view, received("billing?"))
    assert _said(again, "message.requested") == ["message.requested"]
    out = apply(view, received("still billing"))
    assert _said(out, "comment.created", "run.ended") == ["comment.created", "run.ended"]


def test_no_answer_within_the_timeout_takes_the_failure_steps() -> None:
    failure = [{"type": "add_comment", "text": "no answer", "id": "f1"}]
    view = history([*AGENTS, workflow(_ask(timeout="1h", on_failure=failure)), opened("c1")])
    out = apply(view, _timer(view, "question"))
    assert _said(out, "comment.created", "run.ended") == ["comment.created", "run.ended"]
    assert apply(view, received("Sales")) == []  # too late: the run is over


def test_a_jump_loops_at_most_max_jumps_times_then_goes_on() -> None:
    steps = (
        {"type": "send_message", "text": "ping"},
        {"type": "jump", "to": "s1", "max_jumps": 2},
        {"type": "send_message", "text": "done"},
    )
    view = history([*AGENTS, workflow(*steps)])
    texts = [
        d.data.text
        for d in apply(view, opened("c1"))  # type: ignore[attr-defined]
        if d.type == "message.requested"
    ]
    assert texts == ["ping", "ping", "ping", "done"]


def test_a_queue_timeout_fails_the_assignment_and_takes_on_timeout() -> None:
    wait_for_support = assign_team(
        "support",
        only_online=True,
        timeout="10m",
        on_timeout=[{"id": "t1", "type": "assign_to", "user_id": "ann"}],
    )
    view = history([*AGENTS, workflow(wait_for_support), opened("c1")])
    assert [e.contact_id for e in view.queue.values()] == ["c1"]
    out = apply(view, _timer(view, "queue"))
    routed = [
        (d.type, getattr(d.data, "reason", None) or d.data.assignee_id)  # type: ignore[attr-defined]
        for d in out
        if d.type in ("assignment.failed", "contact.assigned")
    ]
    assert routed == [("assignment.failed", "timeout"), ("contact.assigned", "ann")]
    assert view.queue == {}
    assert view.runs == {}


def test_a_zero_timeout_fails_at_once() -> None:
    view = history([*AGENTS, workflow(assign_team("support", only_online=True, timeout="0s"))])
    out = apply(view, opened("c1"))
    assert _said(out, "assignment.failed", "assignment.queued") == ["assignment.failed"]
    assert view.queue == {}


def test_once_per_contact_runs_a_workflow_once_for_each_contact() -> None:
    wf = workflow({"type": "send_message", "text": "welcome"})
    once = wf.model_copy(
        update={
            "data": wf.data.model_copy(
                update={
                    "definition":  # type: ignore[attr-defined]
                    wf.data.definition.model_copy(
                        update={
                            "trigger": wf.data.definition.trigger.model_copy(  # type: ignore[attr-defined]
                                update={"once_per_contact": True}
                            )
                        }
                    )
                }
            )
        }
    )
    view = history([once, opened("c1"), closed("c1")])
    assert _said(apply(view, opened("c1", "conv-2")), "message.requested") == []
    assert _said(apply(view, opened("c2")), "message.requested") == ["message.requested"]


def test_schedule_windows_follow_the_business_timezone_and_cross_midnight() -> None:
    from handoff.core.conditions import Facts, Schedule, holds

    def at(day: int, hour: int, minute: int = 0) -> Facts:  # 2026-11-23 is a Monday
        from datetime import datetime
        from zoneinfo import ZoneInfo

        local = datetime(2026, 11, 23 + day, hour, minute, tzinfo=ZoneInfo("Europe/Madrid"))
        return Facts(at=local)

    afternoon = Schedule.model_validate(
        {
            "schedule": {
                "timezone": "Europe/Madrid",
                "days": ["mon", "tue", "wed", "thu", "fri"],
                "from": "14:00",
                "to": "22:00",
            }
        }
    )
    night = Schedule.model_validate(
        {
            "schedule": {
                "timezone": "Europe/Madrid",
                "days": ["mon", "tue", "wed", "thu", "fri"],
                "from": "22:00",
                "to": "06:00",
            }
        }
    )
    assert holds(afternoon, at(0, 16, 30))  # Monday 16:30
    assert not holds(afternoon, at(0, 22, 0))
    assert holds(night, at(0, 23, 0))  # Monday night
    assert holds(night, at(5, 3, 0))  # Saturday 03:00 belongs to Friday's night shift
    assert not holds(night, at(6, 3, 0))  # Sunday 03:00: Saturday has no night shift


def test_only_a_reply_counts_as_outgoing_not_the_workflow_s_own_message() -> None:
    def sent(sender: str) -> object:
        return event(
            "message.sent",
            {
                "contact_id": "c1",
                "conversation_id": "conv-c1",
                "message_id": sender,
                "sender": {"type": sender, "user_id": "ann" if sender == "user" else None},
            },
        )

    view = history([opened("c1"), sent("workflow"), sent("broadcast")])
    assert view.conversations["conv-c1"].last_outgoing_at is None
    apply(view, sent("user"))
    assert view.conversations["conv-c1"].last_outgoing_at is not None


def _branch_on(when: dict[str, object]) -> dict[str, object]:
    return {
        "type": "branch",
        "branches": [
            {
                "name": "yes",
                "when": when,
                "steps": [{"id": "yes", "type": "add_comment", "text": "yes"}],
            }
        ],
        "else": [{"id": "no", "type": "add_comment", "text": "no"}],
    }


def _comment(view: WorkspaceView, when_opened: object) -> str:
    texts = [
        d.data.text
        for d in apply(view, when_opened)  # type: ignore[attr-defined]
        if d.type == "comment.created"
    ]
    return texts[-1]


def test_conditions_on_the_assignee_the_channel_and_the_last_incoming_text() -> None:
    on_ann_online = _branch_on(
        {
            "all": [
                {"assignee": "id", "op": "eq", "value": "ann"},
                {"assignee": "status", "op": "eq", "value": "online"},
            ]
        }
    )
    view = history([*AGENTS, workflow({"type": "assign_to", "user_id": "ann"}, on_ann_online)])
    assert _comment(view, opened("c1")) == "yes"
    view = history(
        [
            *AGENTS,
            presence("ann", "away"),
            workflow({"type": "assign_to", "user_id": "ann"}, on_ann_online),
        ]
    )
    assert _comment(view, opened("c1")) == "no"

    on_whatsapp = _branch_on({"conversation": "channel", "op": "in", "value": ["whatsapp", "sms"]})
    view = history([workflow(on_whatsapp)])
    assert _comment(view, opened("c1", channel="WhatsApp")) == "yes"
    assert _comment(view, opened("c2", channel="webchat")) == "no"

    on_refund = _branch_on(
        {"conversation": "last_incoming_text", "op": "contains", "value": "refund"}
    )
    view = history([workflow({"type": "wait", "duration": "1m"}, on_refund), opened("c1")])
    apply(view, received("I want a REFUND please"))
    texts = [
        d.data.text
        for d in apply(view, _timer(view, "wait"))  # type: ignore[attr-defined]
        if d.type == "comment.created"
    ]
    assert texts == ["yes"]


def test_matching_workflows_start_in_workflow_id_order_each_at_its_version() -> None:
    view = history(
        [
            workflow({"type": "send_message", "text": "b"}, id="b-second"),
            workflow({"type": "send_message", "text": "a v1"}, id="a-first"),
            workflow({"type": "send_message", "text": "a v2"}, id="a-first"),
        ]
    )
    said = [
        (d.data.text, d.data.workflow.version)  # type: ignore[attr-defined]
        for d in apply(view, opened("c1"))
        if d.type == "message.requested"
    ]
    assert said == [("a v2", 2), ("b", 1)]
