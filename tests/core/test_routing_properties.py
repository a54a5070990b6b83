"""Properties of v1.1 routing (contract: "Projections and assignment semantics", "Output
data", the `assignee_unavailable` trigger), each a given/when/then scenario over generated
teams, presence, loads and histories. The expected outcome is worked out from the contract's
words by the test itself, never by the routing index.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import count
from random import Random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handoff.adapters.cloudevents import dump_event
from handoff.core.envelope import Envelope, OutputEnvelope
from handoff.core.events import (
    MAX_CANDIDATES,
    AssignmentFailed,
    AssignmentQueued,
    ContactAssigned,
    Explanation,
    RunStarted,
    SkillsRelaxed,
)
from handoff.core.timers import TimerElapsed, elapsed
from handoff.core.view import WorkspaceView
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
from tests.core.routing_model import Ask, apply_seen, pick, ranking, reason, rotation
from tests.scenario import apply, history

AGENTS = ["ann", "bob", "cid", "dee", "eve", "fay"]
STATUSES = ["online", "away", "offline"]


def _assigned(decisions: Sequence[OutputEnvelope]) -> list[ContactAssigned]:
    return [d for d in decisions if isinstance(d, ContactAssigned)]


# (a) Longest idle ------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    order=st.permutations(AGENTS),
    size=st.integers(min_value=2, max_value=len(AGENTS)),
    online=st.lists(st.booleans(), min_size=len(AGENTS), max_size=len(AGENTS)),
    history_=st.lists(
        st.one_of(
            st.tuples(st.just("route"), st.integers(min_value=0, max_value=9)),
            st.tuples(st.just("route"), st.integers(min_value=0, max_value=9)),
            st.tuples(st.just("inbox"), st.integers(min_value=0, max_value=9), st.integers(0, 5)),
            st.tuples(st.just("presence"), st.integers(0, 5), st.just("online")),
            st.tuples(st.just("presence"), st.integers(0, 5), st.sampled_from(STATUSES)),
            st.tuples(st.just("close"), st.integers(min_value=0, max_value=9)),
        ),
        max_size=30,
    ),
    capacity=st.sampled_from([None, None, 1, 2]),
)
def test_longest_idle_picks_the_eligible_member_idle_longest(
    order: list[str],
    size: int,
    online: list[bool],
    history_: list[tuple[Any, ...]],
    capacity: int | None,
) -> None:
    """Given a team whose members were last assigned at various points (by handoff or in
    the inbox), when a contact arrives, then it goes to the eligible member whose last
    assignment is oldest, never-assigned first, ties in round-robin order from the cursor."""
    team_members = order[:size]
    status = {a: "online" if on else "offline" for a, on in zip(AGENTS, online, strict=True)}
    view = history(
        [
            *(user(a, max_open=capacity) for a in AGENTS),
            *(presence(a, s) for a, s in status.items()),
            team("t", *team_members),
            workflow(assign_team("t", "longest_idle", only_online=True)),
        ]
    )
    last: dict[str, int] = {}  # user -> the place of their latest assignment, as seen here
    last_at: dict[str, datetime] = {}
    cursor: list[str] = []
    places = count(1)

    def assigned(who: str, at: datetime) -> None:
        last[who] = next(places)
        last_at[who] = at

    def route(contact: str) -> None:
        seen, decisions = apply_seen(view, opened(contact), T0)
        waiting = any(q.contact_id == contact for q in seen.queue.values())
        eligible = [
            u
            for u in rotation(team_members, cursor[-1] if cursor else None)
            if status[u] == "online" and (capacity is None or seen.load(u) < capacity)
        ]
        expected = sorted(eligible, key=lambda u: last.get(u, -1))
        got = _assigned(decisions)
        if waiting:  # its run is still in the queue: no new run
            assert got == []
        elif not expected:
            assert got == [], got
            assert [d.type for d in decisions if isinstance(d, AssignmentQueued)]
        elif expected[0] == seen.assignees.get(contact):
            assert got == []  # assigning the assignee it has is a no-op
        else:
            (a,) = got
            assert a.data.assignee_id == expected[0], (expected, last, cursor)
            assert a.data.strategy == "longest_idle"
            chosen = a.data.explanation.candidates[0]
            assert chosen.user_id == a.data.assignee_id
            assert chosen.last_assigned_at == last_at.get(a.data.assignee_id)
        record(decisions)

    def record(decisions: Sequence[OutputEnvelope]) -> None:
        for d in _assigned(decisions):
            assigned(d.data.assignee_id, d.time)
            cursor.append(d.data.assignee_id)

    for step in history_:
        match step:
            case ("route", c):
                route(f"c{c}")
            case ("inbox", c, who):
                e = assignee_changed(f"c{c}", order[who])
                assigned(order[who], e.time)
                record(apply(view, e))
            case ("presence", who, s):
                member = team_members[who % size]  # mostly members: they are the point
                status[member] = s
                record(apply(view, presence(member, s)))
            case ("close", c):
                record(apply(view, closed(f"c{c}")))
    route("new")


# (b) prefer: last_assignee ---------------------------------------------------------------

LOGICS = ["round_robin", "least_open_contacts", "longest_idle"]


def _listed(explanation: Explanation, user_id: str) -> tuple[bool, str | None] | None:
    found = [c for c in explanation.candidates if c.user_id == user_id]
    return (found[0].eligible, found[0].reason) if found else None


@settings(max_examples=100, deadline=None)
@given(
    team_members=st.lists(st.sampled_from(AGENTS), min_size=1, max_size=6, unique=True),
    status=st.lists(st.sampled_from(STATUSES), min_size=6, max_size=6),
    capacity=st.lists(st.sampled_from([None, 0, 1, 2]), min_size=6, max_size=6),
    held=st.lists(st.sets(st.sampled_from(["es", "en"])), min_size=6, max_size=6),
    last=st.sampled_from([*AGENTS, "gone"]),
    load=st.lists(st.sampled_from(AGENTS), max_size=6),
    kept=st.booleans(),
    logic=st.sampled_from(LOGICS),
    only_online=st.booleans(),
    limit=st.sampled_from([None, 1, 2]),
    need=st.sets(st.sampled_from(["es", "en"]), max_size=1),
)
def test_the_last_assignee_gets_the_contact_back_whenever_eligible(
    team_members: list[str],
    status: list[str],
    capacity: list[int | None],
    held: list[set[str]],
    last: str,
    load: list[str],
    kept: bool,
    logic: str,
    only_online: bool,
    limit: int | None,
    need: set[str],
) -> None:
    """Given a contact whose last assignee is anyone (a member or not, present or not, at
    capacity or not, since removed), when it comes back to a `prefer: last_assignee` step,
    then the last assignee gets it if eligible (strategy last_assignee); otherwise the logic
    decides, and the explanation lists the last assignee with why they were passed over."""
    skills = sorted(need)
    view = history(
        [
            *(
                user(a, max_open=cap, skills=sorted(s))
                for a, cap, s in zip(AGENTS, capacity, held, strict=True)
            ),
            user("gone"),
            *(presence(a, s) for a, s in zip(AGENTS, status, strict=True)),
            team("t", *team_members),
            *(
                e
                for i, a in enumerate(load)
                for e in (opened(f"o{i}"), assignee_changed(f"o{i}", a))
            ),
            opened("c"),
            assignee_changed("c", last),
            closed("c"),
            *([] if kept else [assignee_changed("c", None)]),
            event("user.removed", {"user_id": "gone"}),
            workflow(
                assign_team(
                    "t",
                    logic,
                    only_online=only_online,
                    prefer="last_assignee",
                    skills=skills,
                    **({"max_open_contacts": limit} if limit else {}),
                )
            ),
        ]
    )
    seen, decisions = apply_seen(view, opened("c"), T0)
    assert seen.last_assignees["c"] == last
    ask = Ask(only_online, limit, tuple(skills))
    why = reason(seen, last, ask) or (None if last in team_members else "not in the team")
    got = _assigned(decisions)
    if why is None:
        if seen.assignees.get("c") == last:
            assert got == []
        else:
            (a,) = got
            assert (a.data.assignee_id, a.data.strategy) == (last, "last_assignee")
            assert _listed(a.data.explanation, last) == (True, None)
        return
    queued = [d for d in decisions if isinstance(d, AssignmentQueued)]
    explanations = [d.data.explanation for d in got] + [d.data.explanation for d in queued]
    instead = pick(seen, "t", logic, ask)
    if instead is None:
        assert got == []
        assert len(queued) == 1
    elif instead == seen.assignees.get("c"):
        assert got == []
    else:
        (a,) = got
        assert (a.data.assignee_id, a.data.strategy) == (instead, logic)
    for explanation in explanations:
        assert _listed(explanation, last) == (False, why), explanation
        assert explanation.ineligible.get(why, 0) >= 1


# (c) Skills ------------------------------------------------------------------------------

SKILLS = ["es", "en", "vip"]


def _earliest_timer(view: WorkspaceView) -> TimerElapsed | None:
    """The timer the poller fires next."""
    if not view.timers:
        return None
    run_id, timer = min(view.timers.items(), key=lambda kv: (kv[1].due_at, kv[0]))
    return elapsed(WS, run_id, timer.step_id, timer.kind, timer.due_at)


_DURATIONS = {"0s": timedelta(0), "1m": timedelta(minutes=1), "10m": timedelta(minutes=10)}


@pytest.mark.parametrize("relax", [None, "1m", "10m", "0s"])
@settings(max_examples=60, deadline=None)
@given(
    held=st.lists(st.sets(st.sampled_from(SKILLS)), min_size=4, max_size=4),
    status=st.lists(st.sampled_from(STATUSES), min_size=4, max_size=4),
    required=st.sets(st.sampled_from(SKILLS), max_size=2),
    by_field=st.booleans(),
    logic=st.sampled_from(LOGICS),
    only_online=st.booleans(),
    limit=st.sampled_from([None, 1, 2]),
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("open"), st.integers(0, 5), st.sampled_from([None, *SKILLS])),
            st.tuples(st.just("close"), st.integers(0, 5)),
            st.tuples(st.just("presence"), st.integers(0, 3), st.sampled_from(STATUSES)),
            st.tuples(st.just("skills"), st.integers(0, 3), st.sets(st.sampled_from(SKILLS))),
            st.tuples(st.just("timer")),
            st.tuples(st.just("timer")),
        ),
        min_size=1,
        max_size=30,
    ),
)
def test_skills_are_never_violated_before_the_contact_waited_the_relax_time(
    relax: str | None,
    held: list[set[str]],
    status: list[str],
    required: set[str],
    by_field: bool,
    logic: str,
    only_online: bool,
    limit: int | None,
    ops: list[tuple[Any, ...]],
) -> None:
    """Given a step requiring skills (named, and the contact's `lang`), when contacts come
    and go, agents change presence and skills and timers fire, then every assignment goes
    to a member holding every skill the contact needs, unless `run.skills_relaxed` was
    logged for that run before it, by its relax timer, `relax_skills_after` after it queued."""
    agents = AGENTS[:4]
    skills: list[Any] = [*sorted(required), *([{"contact_field": "lang"}] if by_field else [])]
    clock = T0
    view = WorkspaceView(workspace_id=WS)
    setup = [
        *(user(a, skills=sorted(s), at=clock) for a, s in zip(agents, held, strict=True)),
        *(presence(a, s, at=clock) for a, s in zip(agents, status, strict=True)),
        team("t", *agents, at=clock),
        workflow(
            assign_team(
                "t",
                logic,
                only_online=only_online,
                **({"skills": skills} if skills else {}),
                **({"relax_skills_after": relax} if relax and skills else {}),
                **({"max_open_contacts": limit} if limit else {}),
            ),
            at=clock,
        ),
    ]
    for given_event in setup:
        apply(view, given_event, clock)
    lang: dict[str, str | None] = {}
    needs: dict[str, tuple[str, ...]] = {}  # run -> the skills it requires
    queued_at: dict[str, datetime] = {}
    relaxed: set[str] = set()
    for o in ops:
        clock += timedelta(seconds=7)
        e: Envelope | None
        match o:
            case ("open", c, lng):
                lang[f"c{c}"] = lng
                e = opened(f"c{c}", fields={"lang": lng} if lng else {}, at=clock)
            case ("close", c):
                e = closed(f"c{c}", at=clock)
            case ("presence", a, s):
                e = presence(agents[a], s, at=clock)
            case ("skills", a, s):
                e = user(agents[a], skills=sorted(s), at=clock)
            case _:
                e = _earliest_timer(view)
        if e is None:
            continue
        clock = max(clock, e.time)
        seen, decisions = apply_seen(view, e, clock)
        for d in decisions:
            if isinstance(d, RunStarted):
                field = lang.get(d.data.contact_id)
                needs[d.data.run_id] = (*sorted(required), *([field] if by_field and field else []))
            elif isinstance(d, AssignmentQueued):
                assert d.data.workflow is not None
                queued_at[d.data.workflow.run_id] = d.time
            elif isinstance(d, SkillsRelaxed):
                assert relax is not None
                if relax != "0s":  # relaxed by the relax timer, once the contact waited
                    assert isinstance(e, TimerElapsed)
                    assert e.data.kind == "relax"
                    assert e.time >= queued_at[d.data.run_id] + _DURATIONS[relax]
                relaxed.add(d.data.run_id)
            elif isinstance(d, ContactAssigned):
                assert d.data.workflow is not None
                run_id = d.data.workflow.run_id
                if run_id in relaxed:
                    continue
                holds = seen.users[d.data.assignee_id].skills
                missing = set(needs[run_id]) - set(holds)
                assert not missing, (d.data.assignee_id, holds, needs[run_id], relax)


# (d) The queue: priority, then age, no head-of-line blocking -------------------------------

SOURCES = ["contact", "user", "workflow", "api"]
"""Each source starts its own workflow, with its own priority; `broadcast` starts none."""


@settings(max_examples=100, deadline=None)
@given(
    priority=st.lists(st.integers(min_value=-2, max_value=2), min_size=4, max_size=4),
    waiting=st.lists(
        st.tuples(st.sampled_from(SOURCES), st.sampled_from([None, "es", "en", "de"])),
        min_size=1,
        max_size=10,
    ),
    held=st.sets(st.sampled_from(["es", "en"])),
    capacity=st.sampled_from([None, 1, 2, 3, 5]),
    freed_by=st.sampled_from(["online", "close", "capacity"]),
)
def test_the_queue_serves_by_priority_then_age_and_a_missing_skill_blocks_nobody(
    priority: list[int],
    waiting: list[tuple[str, str | None]],
    held: set[str],
    capacity: int | None,
    freed_by: str,
) -> None:
    """Given contacts queued for a team of one (random priorities, some needing a language
    the agent lacks), when the agent comes online, a conversation of theirs closes, or their
    capacity grows, then the queue is served highest priority first, then oldest first,
    skipping (not stopping at) those the agent cannot take, until the agent is full."""
    wait_for = {
        s: workflow(
            assign_team("t", only_online=True, priority=p, skills=[{"contact_field": "lang"}]),
            id=f"wf-{s}",
            source=[s],
        )
        for s, p in zip(SOURCES, priority, strict=True)
    }
    cap = capacity if freed_by != "close" or capacity is not None else 1
    busy = cap if freed_by == "close" and cap is not None else 0
    given_ = [
        user("ann", max_open=cap if freed_by != "capacity" else 0, skills=sorted(held)),
        *([presence("ann")] if freed_by != "online" else []),
        team("t", "ann"),
        *wait_for.values(),
        *(
            e
            for i in range(busy)
            for e in (opened(f"busy{i}", source="broadcast"), assignee_changed(f"busy{i}", "ann"))
        ),
        *(
            opened(f"w{i}", source=s, fields={"lang": lang} if lang else None)
            for i, (s, lang) in enumerate(waiting)
        ),
    ]
    view = history(given_)
    assert len(view.queue) == len(waiting)
    when = {
        "online": presence("ann"),
        "close": closed("busy0"),
        "capacity": user("ann", max_open=cap, skills=sorted(held)),
    }[freed_by]
    decisions = apply(view, when)
    slots = 1 if freed_by == "close" else cap
    by_priority_then_age = sorted(
        range(len(waiting)), key=lambda i: (-priority[SOURCES.index(waiting[i][0])], i)
    )
    takeable = [f"w{i}" for i in by_priority_then_age if waiting[i][1] in (None, *held)]
    expected = takeable if slots is None else takeable[:slots]
    assert [d.data.contact_id for d in _assigned(decisions)] == expected
    assert {d.data.assignee_id for d in _assigned(decisions)} <= {"ann"}
    left = {e.contact_id for e in view.queue.values()}
    assert left == {f"w{i}" for i in range(len(waiting))} - set(expected)


def _waiting(view: WorkspaceView) -> list[str]:
    return [e.contact_id for e in view.queue.values()]


def test_a_line_passed_over_in_a_drain_is_served_once_a_later_service_frees_its_agent() -> None:
    """Given ann at capacity only because of cb, which waits in another line, and ca (it
    needs es, which only ann has) waiting with a higher priority, when bob comes online,
    then cb goes to bob, which frees ann, and ca goes to ann in the same decision: the
    contract serves a waiting contact the moment someone becomes eligible."""
    view = history(
        [
            user("ann", max_open=1, skills=["es"]),
            user("bob"),
            presence("ann"),
            team("t", "ann", "bob"),
            workflow(
                assign_team("t", only_online=True, skills=["es"], priority=1),
                id="wa",
                source=["contact"],
            ),
            workflow(assign_team("t", only_online=True), id="wb", source=["api"]),
            assignee_changed("cb", "ann"),
            opened("cb", source="api"),  # ann is at capacity (cb is hers), bob is offline
            opened("ca"),  # ann is at capacity, bob is offline and lacks es
        ]
    )
    assert _waiting(view) == ["cb", "ca"]
    decisions = apply(view, presence("bob"))
    assert [(d.data.contact_id, d.data.assignee_id) for d in _assigned(decisions)] == [
        ("cb", "bob"),
        ("ca", "ann"),
    ]
    assert _waiting(view) == []


def test_a_contact_relaxed_away_from_its_assignee_lets_the_queue_have_them() -> None:
    """Given c1, ann's, waiting for an es speaker under ann's step limit, and c2 waiting for
    the same (without relaxing), when c1's relax timer fires and c1 goes to bob, then ann,
    free now, takes c2 in the same decision."""
    limit_es: dict[str, Any] = {"max_open_contacts": 1, "skills": ["es"]}
    view = history(
        [
            user("ann", skills=["es"]),
            user("bob"),
            presence("ann"),
            presence("bob"),
            team("t", "ann", "bob"),
            workflow(
                assign_team("t", **limit_es, relax_skills_after="1m"), id="wa", source=["contact"]
            ),
            workflow(assign_team("t", **limit_es), id="wb", source=["api"]),
            assignee_changed("c1", "ann"),
            opened("c1"),  # ann is at the step's limit (c1 is hers), bob lacks es
            opened("c2", source="api"),  # the same, with no relaxing
        ]
    )
    assert _waiting(view) == ["c1", "c2"]
    timer = _earliest_timer(view)
    assert timer is not None
    assert timer.data.kind == "relax"
    decisions = apply(view, timer)
    assert [(d.data.contact_id, d.data.assignee_id) for d in _assigned(decisions)] == [
        ("c1", "bob"),
        ("c2", "ann"),
    ]
    assert _waiting(view) == []


def test_a_workflow_moving_a_contact_away_lets_the_queue_have_its_assignee() -> None:
    """Given ann and bob at the step's limit and c3 waiting, when a second conversation of
    ann's contact c1 opens and a workflow gives c1 to cid, then ann, free now, takes c3."""
    view = history(
        [
            user("ann"),
            user("bob"),
            user("cid"),
            presence("ann"),
            presence("bob"),
            team("t", "ann", "bob"),
            workflow(assign_team("t", max_open_contacts=1), id="wa", source=["contact"]),
            workflow({"type": "assign_to", "user_id": "cid"}, id="wb", source=["api"]),
            opened("c1"),  # ann
            opened("c2"),  # bob
            opened("c3"),  # both at the step's limit: waits
        ]
    )
    assert _waiting(view) == ["c3"]
    decisions = apply(view, opened("c1", "conv-c1-email", source="api"))
    assert [(d.data.contact_id, d.data.assignee_id) for d in _assigned(decisions)] == [
        ("c1", "cid"),
        ("c3", "ann"),
    ]
    assert _waiting(view) == []


# (e) assignee_unavailable ----------------------------------------------------------------

_AFTER = {"0s": 0, "1m": 60_000, "5m": 300_000}
"""`after` in milliseconds: the test's clock."""


def _expected_starts(
    changes: list[tuple[int, str]], watched: set[str], after: int, end: int
) -> list[int]:
    """When runs start (ms from the start), from the contract's words: the user's presence
    changes to one of `watched` (from one that is not) and stays in `watched` for `after`;
    online again (or any status not watched) before that, nothing starts. The user starts
    online; `end` is how long the test lets the last status stand."""
    starts: list[int] = []
    previous = "online"
    entered: int | None = None
    for at, status in [*changes, (end, "online")]:
        if entered is not None and status not in watched:
            if at - entered >= after:
                starts.append(entered + after)
            entered = None
        if previous not in watched and status in watched and at < end:
            entered = at
        previous = status
    return starts


@settings(max_examples=100, deadline=None)
@given(
    contacts=st.integers(min_value=1, max_value=3),
    watched=st.sampled_from([["offline"], ["away"], ["away", "offline"]]),
    after=st.sampled_from(list(_AFTER)),
    changes=st.lists(
        st.tuples(st.integers(min_value=1, max_value=200), st.sampled_from(STATUSES)),
        max_size=12,
    ),
    stays=st.booleans(),
)
def test_assignee_unavailable_starts_runs_only_for_a_user_away_for_after(
    contacts: int,
    watched: list[str],
    after: str,
    changes: list[tuple[int, str]],
    stays: bool,
) -> None:
    """Given a user with open contacts and an `assignee_unavailable` workflow, when their
    presence changes any number of times (repeats included) and the due watch timers fire
    as time passes, then runs start for their contacts exactly when they went unavailable
    and stayed so for `after`, at that moment, oldest conversation first; a user back
    online (or to a status not watched) in time starts nothing."""
    clock = T0
    view = WorkspaceView(workspace_id=WS)
    for e in [
        user("ann", at=clock),
        presence("ann", at=clock),
        *(
            e
            for i in range(contacts)
            for e in (
                opened(f"c{i}", source="broadcast", at=clock + timedelta(seconds=i)),
                assignee_changed(f"c{i}", "ann", at=clock + timedelta(seconds=i)),
            )
        ),
        workflow(
            {"type": "add_comment", "text": "ann is away"},
            trigger="assignee_unavailable",
            trigger_options={"status": watched, "after": after},
            at=clock,
        ),
    ]:
        apply(view, e, e.time)
    start = T0 + timedelta(minutes=1)
    timeline: list[tuple[int, str]] = []
    at = 0
    for gap, status in changes:
        # a millisecond more per change: no change falls on a due time (`after` past another)
        at += gap * 1000 + 1
        timeline.append((at, status))
    end = at + (_AFTER[after] + 10_000 if stays else 250)
    started: list[tuple[int, str, str]] = []

    def ms(t: datetime) -> int:
        return (t - start) // timedelta(milliseconds=1)

    def run(e: Envelope) -> None:
        for d in apply(view, e, e.time):
            if isinstance(d, RunStarted):
                started.append((ms(e.time), d.data.contact_id, e.type))

    def fire_until(until: int) -> None:
        while (timer := _earliest_timer(view)) and ms(timer.time) < until:
            run(timer)

    for at, status in timeline:
        fire_until(at)
        run(presence("ann", status, at=start + timedelta(milliseconds=at)))
    fire_until(end)
    cause = "user.presence_changed" if after == "0s" else "timer.elapsed"
    expected = [
        (t, f"c{i}", cause)
        for t in _expected_starts(timeline, set(watched), _AFTER[after], end)
        for i in range(contacts)
    ]
    assert started == expected


@settings(max_examples=30, deadline=None)
@given(
    after=st.sampled_from(["1m", "5m"]),
    status=st.sampled_from(["away", "offline"]),
    back=st.booleans(),
)
def test_a_user_who_stays_away_starts_runs_and_one_back_in_time_does_not(
    after: str, status: str, back: bool
) -> None:
    """The two halves of the trigger, spelled out: away for `after` starts a run per open
    contact; online one second before `after` starts none."""
    given_ = [
        user("ann"),
        presence("ann"),
        opened("c1", source="broadcast"),
        assignee_changed("c1", "ann"),
        workflow(
            {"type": "add_comment", "text": "ann is away"},
            trigger="assignee_unavailable",
            trigger_options={"status": ["away", "offline"], "after": after},
        ),
    ]
    view = history(given_)
    gone = presence("ann", status)
    assert not [d for d in apply(view, gone) if isinstance(d, RunStarted)]
    ((key, timer),) = view.timers.items()
    assert timer.due_at == gone.time + timedelta(milliseconds=_AFTER[after])
    if back:
        apply(view, presence("ann", "online", at=timer.due_at - timedelta(seconds=1)))
        assert view.timers == {}
        return
    fired = apply(view, elapsed(WS, key, timer.step_id, timer.kind, timer.due_at))
    assert [d.data.contact_id for d in fired if isinstance(d, RunStarted)] == ["c1"]
    assert {d.causationid for d in fired} == {
        elapsed(WS, key, timer.step_id, timer.kind, timer.due_at).id
    }


# (f) The explanation is bounded ----------------------------------------------------------

MAX_OUTPUT = 8 * 1024


def _check_explanation(explanation: Explanation, passed: int) -> None:
    """Bounded, counted, and `truncated` exactly when some member the decision passed over
    (`passed` of them) or examined is not listed."""
    listed = len(explanation.candidates)
    assert listed <= MAX_CANDIDATES
    assert explanation.eligible + sum(explanation.ineligible.values()) == explanation.considered
    assert listed <= explanation.considered
    hidden = explanation.considered > listed or passed > listed
    assert explanation.truncated == hidden, (passed, explanation)


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=300),
    seed=st.integers(min_value=0, max_value=2**32),
    online=st.integers(min_value=0, max_value=10),
    id_len=st.integers(min_value=8, max_value=64),
    logic=st.sampled_from(LOGICS),
    only_online=st.booleans(),
    prefer=st.booleans(),
    need=st.sets(st.sampled_from(SKILLS), max_size=2),
    limit=st.sampled_from([None, 1, 2]),
    timeout=st.sampled_from(["7d", "0s"]),
)
def test_the_explanation_is_bounded_whatever_the_size_of_the_team(
    size: int,
    seed: int,
    online: int,
    id_len: int,
    logic: str,
    only_online: bool,
    prefer: bool,
    need: set[str],
    limit: int | None,
    timeout: str,
) -> None:
    """Given a team of up to a few hundred members, any share of them online, at capacity
    or without the step's skills, when contacts arrive (some returning to a last assignee),
    then every output lists at most 20 candidates, counts the rest, says when it left some
    out, and stays under 8 KiB as JSON; a round robin assignee comes after `passed_over`
    members none of whom was eligible, and least open contacts and longest idle list, after
    the assignee, the eligible members that came next."""
    rnd = Random(seed)
    agents = [f"agent-{i:04d}-".ljust(id_len, "x") for i in range(size)]
    order = list(agents)
    rnd.shuffle(order)
    setup: list[Envelope] = []
    for a in agents:
        held = sorted(s for s in SKILLS if rnd.random() < 0.6)
        setup.append(user(a, max_open=rnd.choice([None, None, 0, 1, 2]), skills=held))
        if rnd.randrange(10) < online:
            setup.append(presence(a, "online"))
    for i in range(4):
        setup += [assignee_changed(f"back{i}", rnd.choice(agents)), closed(f"back{i}")]
    for i in range(rnd.randrange(6)):
        setup += [
            opened(f"busy{i}", source="broadcast"),
            assignee_changed(f"busy{i}", rnd.choice(agents)),
        ]
    setup += [
        team("t", *order),
        workflow(
            assign_team(
                "t",
                logic,
                only_online=only_online,
                skills=sorted(need),
                timeout=timeout,
                **({"prefer": "last_assignee"} if prefer else {}),
                **({"max_open_contacts": limit} if limit else {}),
            )
        ),
    ]
    view = history(setup)
    contacts = [*(f"back{i}" for i in range(4)), *(f"new{i}" for i in range(4))]
    ask = Ask(only_online, limit, tuple(sorted(need)))
    for c in contacts:
        seen, decisions = apply_seen(view, opened(c), T0)
        for d in decisions:
            assert len(dump_event(d)) < MAX_OUTPUT, (d.type, len(dump_event(d)))
            if isinstance(d, AssignmentQueued | AssignmentFailed):
                _check_explanation(d.data.explanation, passed=size)  # nobody was eligible
            if not isinstance(d, ContactAssigned) or d.data.strategy == "last_assignee":
                continue
            e = d.data.explanation
            _check_explanation(e, passed=1 + (e.passed_over or 0))
            assert e.candidates[0].user_id == d.data.assignee_id
            turn = rotation(order, seen.cursors.get("t"))
            if logic == "round_robin":
                at = turn.index(d.data.assignee_id)
                assert e.passed_over == at
                assert all(reason(seen, u, ask) is not None for u in turn[:at])
                came_next = turn[: min(at, MAX_CANDIDATES - 1)]
            else:
                ranked = ranking(seen, "t", logic, ask)
                assert ranked[0] == d.data.assignee_id
                came_next = ranked[1:]
            others: list[str] = [x.user_id for x in e.candidates[1:]]
            last = seen.last_assignees.get(c)
            if prefer and last is not None and last in others and last not in came_next:
                others.remove(last)  # listed as the last assignee `prefer` passed over
            assert others == came_next[: len(others)]
            if logic == "round_robin":  # every member passed over, as many as fit
                assert len(others) == len(came_next) or len(e.candidates) == MAX_CANDIDATES
