"""Invariants over generated histories: presence churn, opens, closes, inbox reassignments."""

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from handoff.core.decide import decide
from handoff.core.events import ContactAssigned
from handoff.core.view import WorkspaceView
from handoff_projections import evolve
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
from tests.scenario import apply, history

AGENTS = ["ann", "bob", "cid", "dee"]
CONTACTS = [f"c{i}" for i in range(8)]

op = st.one_of(
    st.tuples(
        st.just("presence"), st.sampled_from(AGENTS), st.sampled_from(["online", "away", "offline"])
    ),
    st.tuples(st.just("open"), st.sampled_from(CONTACTS), st.just("")),
    st.tuples(st.just("close"), st.sampled_from(CONTACTS), st.just("")),
    st.tuples(st.just("inbox"), st.sampled_from(CONTACTS), st.sampled_from([*AGENTS, ""])),
)


def _setup(logic: str, limit: int | None) -> list[Any]:
    return [
        *(user(a, max_open=limit) for a in AGENTS),
        team("t", *AGENTS),
        workflow(assign_team("t", logic, only_online=True)),
    ]


def _event(kind: str, who: str, arg: str) -> Any:
    match kind:
        case "presence":
            return presence(who, arg)
        case "open":
            return opened(who)
        case "close":
            return closed(who)
        case _:
            return assignee_changed(who, arg or None)


def _recount(view: WorkspaceView) -> dict[str, int]:
    counts = Counter(view.assignees[c] for c in view.open_conversations if c in view.assignees)
    return dict(counts)


@settings(max_examples=150, deadline=None)
@given(
    ops=st.lists(op, max_size=40),
    logic=st.sampled_from(["round_robin", "least_open_contacts"]),
    limit=st.sampled_from([None, 1, 2]),
)
def test_routing_invariants_hold_over_any_history(
    ops: list[tuple[str, str, str]], logic: str, limit: int | None
) -> None:
    view = history(_setup(logic, limit))
    for kind, who, arg in ops:
        event = _event(kind, who, arg)
        for d in apply(view, event):
            if isinstance(d, ContactAssigned):
                # never to an agent who is not online when only_online is set
                assert view.presence.get(d.data.assignee_id) == "online"
                # and never past their limit (only the inbox may overrule it)
                chosen = next(
                    c for c in d.data.explanation.candidates if c.user_id == d.data.assignee_id
                )
                assert limit is None or chosen.open_contacts < limit
        # open counts are exactly what the assignees and open conversations say
        assert view.open_contacts == _recount(view)
        # the queue only holds open conversations
        assert all(
            view.conversations[e.conversation_id].status == "open" for e in view.queue.values()
        )


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(op, max_size=30), logic=st.sampled_from(["round_robin", "least_open_contacts"]))
def test_decide_is_deterministic(ops: list[tuple[str, str, str]], logic: str) -> None:
    events = [*_setup(logic, None), *(_event(*o) for o in ops)]
    first, second = history(events[:-1] or events), history(events[:-1] or events)
    last = events[-1]
    evolve(first, last)
    evolve(second, last)
    assert decide(first, last, last.time) == decide(second, last, last.time)


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=30),
    members=st.integers(min_value=1, max_value=4),
    logic=st.sampled_from(["round_robin", "least_open_contacts"]),
)
def test_equal_agents_get_equal_shares(n: int, members: int, logic: str) -> None:
    agents = AGENTS[:members]
    view = history(
        [
            *(user(a) for a in agents),
            *(presence(a) for a in agents),
            team("t", *agents),
            workflow(assign_team("t", logic)),
        ]
    )
    shares: Counter[str] = Counter()
    for i in range(n):
        for d in apply(view, opened(f"c{i}")):
            if isinstance(d, ContactAssigned):
                shares[d.data.assignee_id] += 1
    assert sum(shares.values()) == n
    assert max(shares.values()) - min(shares[a] for a in agents) <= 1
