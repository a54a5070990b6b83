"""Routing v1.1 through the pure core: skills, longest idle, the last assignee, priority,
relaxing skills in the queue, the assignee_unavailable trigger, the bounded explanation."""

from datetime import timedelta
from typing import Any

from handoff.adapters.cloudevents import dump_event
from handoff.core.envelope import OutputEnvelope
from handoff.core.events import AssignmentQueued, ContactAssigned
from handoff.core.timers import TimerElapsed, elapsed
from handoff.core.view import WorkspaceView
from tests.builders import (
    T0,
    WS,
    assign_team,
    assignee_changed,
    closed,
    opened,
    presence,
    team,
    user,
    workflow,
)
from tests.scenario import apply, history, scenario


def assigned(decisions: list[OutputEnvelope]) -> list[ContactAssigned]:
    return [d for d in decisions if isinstance(d, ContactAssigned)]


def timer_of(view: WorkspaceView, kind: str) -> TimerElapsed:
    """The view's one pending timer of `kind`, as it fires at its due time."""
    ((key, timer),) = [(k, t) for k, t in view.timers.items() if t.kind == kind]
    return elapsed(WS, key, timer.step_id, timer.kind, timer.due_at)


def fire(view: WorkspaceView, kind: str) -> list[OutputEnvelope]:
    return apply(view, timer_of(view, kind))


LANGUAGES = [
    user("ann", skills=["en"]),
    user("bea", skills=["es", "billing"]),
    user("cid", skills=["es"]),
    presence("ann"),
    presence("bea"),
    presence("cid"),
    team("support", "ann", "bea", "cid"),
]


def by_language(**options: Any) -> dict[str, Any]:
    return assign_team("support", skills=[{"contact_field": "language"}], **options)


def test_a_contact_goes_only_to_a_member_with_the_skill_its_field_names() -> None:
    outcome = scenario(
        given=[*LANGUAGES, workflow(by_language(only_online=True))],
        when=opened("c1", fields={"language": "es"}),
    )
    (a,) = assigned(outcome.decisions)
    assert a.data.assignee_id == "bea"  # ann lacks es, bea is next in turn
    assert a.data.explanation.candidates[0].user_id == "bea"


def test_a_contact_without_the_field_needs_no_skill() -> None:
    outcome = scenario(given=[*LANGUAGES, workflow(by_language())], when=opened("c1"))
    assert [a.data.assignee_id for a in assigned(outcome.decisions)] == ["ann"]


def test_every_required_skill_must_be_held() -> None:
    outcome = scenario(
        given=[*LANGUAGES, workflow(assign_team("support", skills=["es", "billing"]))],
        when=opened("c1"),
    )
    assert [a.data.assignee_id for a in assigned(outcome.decisions)] == ["bea"]


def test_nobody_with_the_skill_queues_and_explains_the_missing_skill() -> None:
    outcome = scenario(
        given=[*LANGUAGES, workflow(by_language())], when=opened("c1", fields={"language": "fr"})
    )
    (queued,) = outcome.of_type("assignment.queued")
    assert isinstance(queued, AssignmentQueued)
    assert queued.data.skills == ["fr"]
    assert queued.data.explanation.ineligible == {"missing skill fr": 3}


def test_skills_relax_after_the_wait_and_the_contact_goes_to_anyone() -> None:
    view = history([*LANGUAGES, workflow(by_language(relax_skills_after="2m", timeout="1h"))])
    (queued,) = [
        d
        for d in apply(view, opened("c1", fields={"language": "fr"}))
        if isinstance(d, AssignmentQueued)
    ]
    assert queued.data.relax_skills_at is not None
    relax_timer = next(iter(view.timers.values()))
    assert relax_timer.kind == "relax"
    decisions = fire(view, "relax")
    assert [d.type for d in decisions][:2] == ["run.skills_relaxed", "contact.assigned"]
    assert [a.data.assignee_id for a in assigned(decisions)] == ["ann"]
    assert view.queue == {}


def test_relaxed_skills_still_wait_the_rest_of_the_timeout() -> None:
    view = history(
        [
            user("ann", skills=["en"]),
            team("support", "ann"),
            workflow(by_language(relax_skills_after="2m", timeout="10m", only_online=True)),
        ]
    )
    apply(view, opened("c1", fields={"language": "fr"}))
    (relax_timer,) = view.timers.values()
    decisions = fire(view, "relax")
    assert [d.type for d in decisions] == ["run.skills_relaxed", "run.waiting"]
    (timer,) = view.timers.values()
    assert (timer.kind, timer.due_at - relax_timer.due_at) == ("queue", timedelta(minutes=8))
    # ann comes online: the contact no longer needs fr, so she takes it
    decisions = apply(view, presence("ann"))
    assert [a.data.assignee_id for a in assigned(decisions)] == ["ann"]


def test_longest_idle_gives_the_member_never_assigned_first_then_the_oldest() -> None:
    view = history(
        [
            user("ann"),
            user("bob"),
            user("cid"),
            team("t", "ann", "bob", "cid"),
            assignee_changed("x1", "bob"),
            assignee_changed("x2", "ann"),
            workflow(assign_team("t", logic="longest_idle")),
        ]
    )
    order = [assigned(apply(view, opened(f"c{i}")))[0].data.assignee_id for i in range(1, 5)]
    # cid was never assigned; then bob (x1) before ann (x2); then cid again
    assert order == ["cid", "bob", "ann", "cid"]


def test_the_last_assignee_gets_a_returning_contact() -> None:
    view = history(
        [
            *LANGUAGES,
            workflow(assign_team("support", prefer="last_assignee", only_online=True)),
        ]
    )
    first = assigned(apply(view, opened("c1")))[0]
    assert first.data.assignee_id == "ann"
    apply(view, opened("c2"))  # bea, by round robin
    apply(view, closed("c1"))
    again = assigned(apply(view, opened("c1", "conv-c1-b")))
    assert [(a.data.assignee_id, a.data.strategy) for a in again] == []  # still ann's: no-op
    apply(view, assignee_changed("c1", None))
    again = assigned(apply(view, opened("c1", "conv-c1-c")))
    assert [(a.data.assignee_id, a.data.strategy) for a in again] == [("ann", "last_assignee")]


def test_an_offline_last_assignee_is_passed_over_and_named_in_the_explanation() -> None:
    view = history(
        [
            *LANGUAGES,
            workflow(assign_team("support", prefer="last_assignee", only_online=True)),
            assignee_changed("c1", "ann"),
            assignee_changed("c1", None),
            presence("ann", "offline"),
        ]
    )
    (a,) = assigned(apply(view, opened("c1")))
    assert (a.data.assignee_id, a.data.strategy) == ("bea", "round_robin")
    listed = [(c.user_id, c.reason) for c in a.data.explanation.candidates]
    assert listed[:2] == [("bea", None), ("ann", "offline")]


def test_the_queue_serves_higher_priority_first_then_oldest() -> None:
    view = history(
        [
            user("ann", max_open=2),
            team("t", "ann"),
            workflow(assign_team("t", only_online=True), id="normal", source=["contact"]),
            workflow(assign_team("t", only_online=True, priority=5), id="vip", source=["api"]),
            opened("c1"),
            opened("c2", source="api"),
            opened("c3"),
            opened("c4", source="api"),
        ]
    )
    priorities = sorted((e.priority, e.contact_id) for e in view.queue.values())
    assert priorities == [(0, "c1"), (0, "c3"), (5, "c2"), (5, "c4")]
    served = [a.data.contact_id for a in assigned(apply(view, presence("ann")))]
    assert served == ["c2", "c4"]  # her two places go to the VIPs, oldest first


def test_a_contact_nobody_can_take_does_not_hold_back_the_ones_behind_it() -> None:
    view = history(
        [
            user("ann", skills=["en"]),
            team("t", "ann"),
            workflow(assign_team("t", only_online=True, skills=[{"contact_field": "language"}])),
            opened("c1", fields={"language": "de"}),
            opened("c2", fields={"language": "en"}),
        ]
    )
    served = [a.data.contact_id for a in assigned(apply(view, presence("ann")))]
    assert served == ["c2"]
    assert [e.contact_id for e in view.queue.values()] == ["c1"]


UNAVAILABLE_WORKFLOW = [
    user("ann"),
    user("bob"),
    presence("ann"),
    presence("bob"),
    team("t", "ann", "bob"),
    workflow(
        assign_team("t", only_online=True),
        {"type": "add_comment", "text": "Moved: your agent went offline", "mention": "assignee"},
        id="reassign",
        trigger="assignee_unavailable",
        trigger_options={"after": "5m"},
    ),
    assignee_changed("c2", "ann"),
    assignee_changed("c1", "ann"),
    opened("c1"),
    opened("c2"),
    opened("c3"),
    closed("c3"),
    assignee_changed("c3", "ann"),  # closed: not reassigned
]


def test_an_agent_offline_for_the_whole_wait_has_their_open_contacts_reassigned() -> None:
    view = history(UNAVAILABLE_WORKFLOW)
    started = apply(view, presence("ann", "offline"))
    assert [d.type for d in started] == ["presence.watch_started"]
    timer = timer_of(view, "unavailable")
    decisions = apply(view, timer)
    moved = [(a.data.contact_id, a.data.assignee_id) for a in assigned(decisions)]
    assert moved == [("c1", "bob"), ("c2", "bob")]  # oldest conversation first
    assert {d.causationid for d in decisions} == {timer.id}  # the timer's, not the presence's


def test_an_agent_back_before_the_wait_ends_keeps_their_contacts() -> None:
    view = history(UNAVAILABLE_WORKFLOW)
    apply(view, presence("ann", "offline"))
    ended = apply(view, presence("ann", "online"))
    assert [d.type for d in ended] == ["presence.watch_ended"]
    assert view.timers == {}
    assert view.runs == {}


def test_without_a_wait_the_runs_start_with_the_presence_change() -> None:
    given = [e for e in UNAVAILABLE_WORKFLOW if e.type != "workflow.published"]
    given.append(
        workflow(
            assign_team("t", only_online=True),
            id="reassign",
            trigger="assignee_unavailable",
            trigger_options={"status": ["away", "offline"]},
        )
    )
    outcome = scenario(given=given, when=presence("ann", "away"))
    assert [(a.data.contact_id, a.data.assignee_id) for a in assigned(outcome.decisions)] == [
        ("c1", "bob"),
        ("c2", "bob"),
    ]
    runs = {d.data.run_id for d in outcome.of_type("run.started")}  # type: ignore[attr-defined]
    assert len(runs) == 2


def test_the_explanation_of_a_large_team_is_bounded() -> None:
    members = [f"u{i:04d}" for i in range(1000)]
    view = history(
        [
            *(user(m) for m in members),
            presence("u0950"),
            team("big", *members),
            workflow(assign_team("big", only_online=True)),
        ]
    )
    (a,) = assigned(apply(view, opened("c1")))
    explanation = a.data.explanation
    assert a.data.assignee_id == "u0950"
    assert len(explanation.candidates) == 20
    assert explanation.passed_over == 950
    assert explanation.truncated is True
    assert explanation.considered == 20
    assert explanation.ineligible == {"offline": 19}
    assert len(dump_event(a)) < 8 * 1024


def test_queued_contacts_carry_their_priority() -> None:
    outcome = scenario(
        given=[
            user("ann"),
            team("t", "ann"),
            workflow(assign_team("t", only_online=True, priority=3)),
        ],
        when=opened("c1", at=T0),
    )
    (queued,) = outcome.of_type("assignment.queued")
    assert isinstance(queued, AssignmentQueued)
    assert queued.data.priority == 3
