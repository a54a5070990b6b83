"""The queue: nobody eligible -> queued; served oldest first when someone becomes eligible."""

from handoff.core.decide import decide
from tests.builders import (
    T0,
    assign_team,
    assignee_changed,
    closed,
    opened,
    presence,
    team,
    user,
    workflow,
)
from tests.scenario import history, scenario

SUPPORT = [user("ann"), user("bob"), team("support", "ann", "bob")]


def test_three_contacts_wait_for_an_agent_and_are_served_oldest_first() -> None:
    outcome = scenario(
        given=[
            *SUPPORT,
            workflow(
                assign_team("support", only_online=True),
                {"type": "add_comment", "text": "yours", "mention": "assignee"},
            ),
            opened("c1"),
            opened("c2"),
            opened("c3"),
        ],
        when=presence("bob"),
    )
    assert outcome.routed == [
        ("contact.assigned", "c1", "bob"),
        ("contact.assigned", "c2", "bob"),
        ("contact.assigned", "c3", "bob"),
    ]
    # each served run goes on to its next step with the new assignee
    mentions = [d.data.mentions for d in outcome.of_type("comment.created")]  # type: ignore[attr-defined]
    assert mentions == [["bob"], ["bob"], ["bob"]]
    assert outcome.view.queue == {}
    assert outcome.view.runs == {}


def test_capacity_reached_queues_and_a_closed_conversation_frees_a_slot() -> None:
    given = [
        user("ann", max_open=1),
        team("t", "ann"),
        workflow(assign_team("t")),
        opened("c1"),
        opened("c2"),
    ]
    outcome = scenario(given=given, when=closed("c1"))
    assert outcome.routed == [("contact.assigned", "c2", "ann")]
    assert outcome.view.open_contacts == {"ann": 1}


def test_queued_contacts_share_capacity_fairly_within_one_decision() -> None:
    outcome = scenario(
        given=[
            user("ann", max_open=1),
            user("bob", max_open=1),
            team("t", "ann", "bob"),
            workflow(assign_team("t", only_online=True)),
            opened("c1"),
            opened("c2"),
            opened("c3"),
        ],
        when=presence("ann"),
    )
    assert outcome.routed == [("contact.assigned", "c1", "ann")]
    assert [e.contact_id for e in outcome.view.queue.values()] == ["c2", "c3"]


def test_a_closed_conversation_leaves_the_queue() -> None:
    outcome = scenario(
        given=[*SUPPORT, workflow(assign_team("support", only_online=True)), opened("c1")],
        when=closed("c1"),
    )
    assert outcome.routed == [("assignment.failed", "c1", "conversation_closed")]
    assert outcome.view.queue == {}
    assert outcome.view.runs == {}


def test_an_assignment_made_in_the_inbox_serves_the_queued_contact() -> None:
    outcome = scenario(
        given=[*SUPPORT, workflow(assign_team("support", only_online=True)), opened("c1")],
        when=assignee_changed("c1", "ann"),
    )
    assert outcome.view.queue == {}
    assert outcome.view.runs == {}
    assert outcome.view.open_contacts == {"ann": 1}


def test_a_team_change_serves_the_queue() -> None:
    outcome = scenario(
        given=[
            *SUPPORT,
            user("cid"),
            presence("cid"),
            workflow(assign_team("support", only_online=True)),
            opened("c1"),
        ],
        when=team("support", "ann", "bob", "cid"),
    )
    assert outcome.routed == [("contact.assigned", "c1", "cid")]


def test_a_removed_team_fails_its_queued_contacts() -> None:
    from tests.builders import event

    outcome = scenario(
        given=[*SUPPORT, workflow(assign_team("support", only_online=True)), opened("c1")],
        when=event("team.removed", {"team_id": "support"}),
    )
    assert outcome.routed == [("assignment.failed", "c1", "unknown_team")]


def test_workspaces_do_not_see_each_other() -> None:
    from tests.scenario import apply

    a = history(
        [
            user("ann", ws="a"),
            presence("ann", ws="a"),
            team("t", "ann", ws="a"),
            workflow(assign_team("t", only_online=True), ws="a"),
        ],
        ws="a",
    )
    b = history(
        [
            user("ann", ws="b"),
            team("t", "ann", ws="b"),
            workflow(assign_team("t", only_online=True), ws="b"),
        ],
        ws="b",
    )
    assert [
        d.type for d in apply(b, opened("c1", ws="b")) if d.type.startswith(("contact", "assign"))
    ] == ["assignment.queued"]
    assert [
        d.type for d in apply(a, opened("c1", ws="a")) if d.type.startswith(("contact", "assign"))
    ] == ["contact.assigned"]


TWO_WORKFLOWS_ONE_LIMITED = [
    *SUPPORT,
    workflow(assign_team("support"), id="wa"),
    workflow(assign_team("support"), id="wb"),
    opened("c1"),  # wa gives c1 to ann, wb moves it to bob
    opened("c2"),  # ann, then bob
    assignee_changed("c2", "ann"),
    workflow(assign_team("support", max_open_contacts=1), id="wa"),
]
"""Both agents hold one contact when wa is republished with a limit of one."""


def test_a_contact_queued_by_an_input_is_served_when_the_same_input_frees_someone() -> None:
    # c1 comes back: wa finds both at its limit and queues c1; then wb moves c1 from bob to
    # ann, and bob, free now, is who c1 waits for
    outcome = scenario(given=TWO_WORKFLOWS_ONE_LIMITED, when=opened("c1"))
    assert outcome.routed == [
        ("assignment.queued", "c1", "queued"),
        ("contact.assigned", "c1", "ann"),
        ("contact.assigned", "c1", "bob"),
    ]
    assert outcome.view.queue == {}
    assert outcome.view.timers == {}


def test_core_version_2_left_that_contact_waiting() -> None:
    """A log version 2 wrote re-decides as it was decided (`handoff.core.version`)."""
    view = history(TWO_WORKFLOWS_ONE_LIMITED)
    decisions = decide(view, opened("c1"), T0, core_version=2)
    assert [(d.type, getattr(d.data, "assignee_id", None)) for d in decisions] == [
        ("run.started", None),
        ("run.step_entered", None),
        ("assignment.queued", None),
        ("run.waiting", None),
        ("run.started", None),
        ("run.step_entered", None),
        ("contact.assigned", "ann"),
        ("run.ended", None),
    ]
