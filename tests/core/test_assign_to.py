"""assign_to through the pure core: strategies, eligibility, explanation, failures."""

from handoff.core.events import ContactAssigned
from tests.builders import (
    assign_team,
    assignee_changed,
    closed,
    opened,
    presence,
    team,
    user,
    workflow,
)
from tests.scenario import scenario

AGENTS = [user("ann"), user("bob"), user("cid"), team("billing", "ann", "bob", "cid")]
ONLINE = [presence("ann"), presence("bob"), presence("cid")]


def test_round_robin_skips_an_offline_member_and_explains_why() -> None:
    outcome = scenario(
        given=[
            *AGENTS,
            *ONLINE,
            presence("bob", "offline"),
            workflow(assign_team("billing", only_online=True)),
            opened("c1"),
        ],
        when=opened("c2"),
    )
    (assigned,) = outcome.of_type("contact.assigned")
    assert isinstance(assigned, ContactAssigned)
    assert assigned.data.assignee_id == "cid"  # ann had c1, bob is offline
    assert assigned.data.explanation.cursor_before == "ann"
    assert assigned.data.explanation.cursor_after == "cid"
    bob = assigned.data.explanation.candidates[1]
    assert (bob.user_id, bob.eligible, bob.reason) == ("bob", False, "offline")
    assert assigned.data.explanation.passed_over == 1
    assert assigned.data.explanation.ineligible == {"offline": 1}
    assert assigned.causationid == outcome.decisions[0].causationid


def test_round_robin_wraps_around_the_member_order() -> None:
    given = [*AGENTS, *ONLINE, workflow(assign_team("billing"))]
    outcome = scenario(given=[*given, opened("c1"), opened("c2"), opened("c3")], when=opened("c4"))
    assert outcome.routed == [("contact.assigned", "c4", "ann")]


def test_least_open_contacts_ties_rotate_from_the_cursor() -> None:
    given = [*AGENTS, *ONLINE, workflow(assign_team("billing", "least_open_contacts"))]
    picks = []
    for i in range(1, 7):
        outcome = scenario(given=given, when=opened(f"c{i}"))
        picks.append(outcome.routed[0][2])
        given = [*given, opened(f"c{i}")]
    assert picks == ["ann", "bob", "cid", "ann", "bob", "cid"]


def test_least_open_contacts_prefers_the_least_loaded() -> None:
    outcome = scenario(
        given=[
            *AGENTS,
            *ONLINE,
            workflow(assign_team("billing", "least_open_contacts")),
            opened("c1"),
            opened("c2"),
            opened("c3"),
            closed("c2"),
        ],
        when=opened("c4"),
    )
    # ann has c1, bob's c2 closed (0 open), cid has c3: bob is least loaded.
    assert outcome.routed == [("contact.assigned", "c4", "bob")]
    assert outcome.view.open_contacts == {"ann": 1, "bob": 1, "cid": 1}


def test_specific_user_is_assigned_whatever_their_presence() -> None:
    outcome = scenario(
        given=[*AGENTS, workflow({"type": "assign_to", "user_id": "bob"})],
        when=opened("vip"),
    )
    (assigned,) = outcome.of_type("contact.assigned")
    assert isinstance(assigned, ContactAssigned)
    assert (assigned.data.assignee_id, assigned.data.strategy) == ("bob", "specific_user")
    assert assigned.data.explanation.candidates[0].online is False


def test_assigning_the_assignee_the_contact_already_has_emits_nothing() -> None:
    outcome = scenario(
        given=[
            *AGENTS,
            workflow({"type": "assign_to", "user_id": "bob"}, source=["contact"]),
            assignee_changed("c1", "bob"),
        ],
        when=opened("c1"),
    )
    assert outcome.of_type("contact.assigned") == []
    assert outcome.view.open_contacts == {"bob": 1}


def test_unknown_user_and_team_fail_with_their_reason() -> None:
    outcome = scenario(
        given=[
            *AGENTS,
            team("empty"),
            workflow(
                {"type": "assign_to", "user_id": "zed"}, assign_team("nope"), assign_team("empty")
            ),
        ],
        when=opened("c1"),
    )
    assert outcome.routed == [
        ("assignment.failed", "c1", "unknown_user"),
        ("assignment.failed", "c1", "unknown_team"),
        ("assignment.failed", "c1", "team_empty"),
    ]
    assert outcome.view.runs == {}  # the run went on and completed


def test_workspace_assignment_picks_among_every_user() -> None:
    outcome = scenario(
        given=[
            user("zoe"),
            user("amy"),
            presence("zoe"),
            workflow({"type": "assign_to", "workspace": True, "only_online": True}),
        ],
        when=opened("c1"),
    )
    assert outcome.routed == [("contact.assigned", "c1", "zoe")]


def test_user_and_step_capacity_limits_make_members_ineligible() -> None:
    outcome = scenario(
        given=[
            user("ann", max_open=1),
            user("bob"),
            team("t", "ann", "bob"),
            workflow(assign_team("t", max_open_contacts=2)),
            opened("c1"),
            opened("c2"),
            opened("c3"),
        ],
        when=opened("c4"),
    )
    # ann: c1 (at her limit of 1); bob: c2, c3 (at the step's limit of 2).
    (queued,) = outcome.of_type("assignment.queued")
    explanation = queued.data.explanation  # type: ignore[attr-defined]
    assert [(c.user_id, c.reason) for c in explanation.candidates] == [
        ("ann", "at capacity"),
        ("bob", "at the step's limit"),
    ]
    assert explanation.ineligible == {"at capacity": 1, "at the step's limit": 1}
    assert (explanation.eligible, explanation.truncated) == (0, False)


def test_unassign_step_removes_the_assignee() -> None:
    outcome = scenario(
        given=[
            *AGENTS,
            assignee_changed("c1", "ann"),
            workflow({"type": "assign_to", "unassign": True}, trigger="conversation_closed"),
            opened("c1"),
        ],
        when=closed("c1"),
    )
    assert [d.type for d in outcome.of_type("contact.unassigned")] == ["contact.unassigned"]
    assert outcome.view.assignees == {}
