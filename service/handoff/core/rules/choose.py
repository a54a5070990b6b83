"""Choosing a member for a team or workspace step, looking only at the members it passes over.

The walk goes through the pool the step's presence and skills select, in the logic's order
from the cursor, and stops at the first member eligible by what the pool does not settle (a
step's limit). The index already holds what earlier assignments of the same decision did
(`DecisionContext._reassign` moves them), so the walk's order is the true one. What it
examined makes the explanation, at most `MAX_CANDIDATES` of them listed (contract v1.1).
"""

from collections import Counter
from collections.abc import Iterator
from itertools import islice

from handoff.core.context import DecisionContext
from handoff.core.events import MAX_CANDIDATES, Candidate, Explanation, Logic
from handoff.core.ids import UserId
from handoff.core.pools import Pool, Rank, Roster, member
from handoff.core.rules import RULES
from handoff.core.rules.eligibility import Need, candidate

__all__ = ["EXPLANATION_BUDGET", "RUNNERS_UP", "choose"]

RUNNERS_UP = 2
"""Least open contacts and longest idle list the assignee and at most this many eligible
members that came closest: enough to show the order, and a decision examines no more
members in a team of 5,000 than in one of 5 (`handoff explain` shows them all)."""

EXPLANATION_BUDGET = 5 * 1024
"""Bytes the listed candidates may take, about: with long user ids or reasons, fewer than
`MAX_CANDIDATES` are listed (and `truncated` says so), so an output stays a few KiB."""


def choose(
    ctx: DecisionContext,
    roster: Roster,
    need: Need,
    logic: Logic,
    cursor_user: UserId | None,
    *,
    passed: Candidate | None = None,
    explain: bool = True,
) -> tuple[UserId | None, Explanation | None]:
    """The member to assign (None: nobody is eligible), and why. `passed`: a member already
    examined and passed over (the last assignee), listed second. Without `explain`, nobody
    eligible costs no explanation (a queue drain that only wants to know)."""
    rule = RULES[logic]
    cursor = roster.rank_of.get(cursor_user) if cursor_user is not None else None
    seen: dict[UserId, Candidate] = {} if passed is None else {passed.user_id: passed}

    def look(user_id: UserId) -> Candidate:
        c = seen.get(user_id)
        if c is None:
            c = seen[user_id] = candidate(ctx, user_id, need, idle=logic == "longest_idle")
        return c

    chosen: Rank | None = None
    pool = _pool(roster, need)
    walk: Iterator[Rank] = rule.walk(pool, cursor) if pool is not None else iter(())
    for rank in walk:
        c = look(member(rank))
        if c.eligible:
            chosen = rank
            break
        if logic == "least_open_contacts" and c.reason == "at the step's limit":
            break  # the walk goes by open contacts: everyone after is at the limit too
    if chosen is None:
        if not explain:
            return None, None
        listed = [look(member(r)) for r in islice(roster.turn_from(cursor), MAX_CANDIDATES)]
        listed = _with(passed, listed)
        truncated = len(roster.order) > len(listed) or len(seen) > len(listed)
        return None, _explanation(seen, listed, cursor_user, cursor_user, truncated)
    assignee = member(chosen)
    listed = [look(assignee)]
    passed_over: int | None = None
    if logic == "round_robin":
        passed_over = roster.between(cursor, chosen)
        shown = min(passed_over, MAX_CANDIDATES - 1)
        listed += [look(member(r)) for r in islice(roster.turn_from(cursor), shown)]
    else:  # the eligible members that came closest
        for rank in islice(walk, RUNNERS_UP):
            if look(member(rank)).eligible:
                listed.append(seen[member(rank)])
    listed = _with(passed, listed)
    shown_ids = {c.user_id for c in listed}
    truncated = (passed_over or 0) > len(listed) - 1 or any(u not in shown_ids for u in seen)
    return assignee, _explanation(
        seen, listed, cursor_user, assignee, truncated, passed_over=passed_over
    )


def _pool(roster: Roster, need: Need) -> Pool | None:
    """The pool of everyone eligible by presence and skills; None when a step limit leaves
    nobody in it (its lightest member is at the limit already)."""
    pool = roster.pool(need.only_online, need.skills)
    limit = need.max_open_contacts
    if pool is None or (limit is not None and pool.ordered("load")[0][0] >= limit):
        return None
    return pool


def _with(passed: Candidate | None, listed: list[Candidate]) -> list[Candidate]:
    """The listed candidates with the passed-over last assignee second (unless listed),
    within `MAX_CANDIDATES` and `EXPLANATION_BUDGET`."""
    if passed is not None and all(c.user_id != passed.user_id for c in listed):
        listed = [*listed[:1], passed, *listed[1:]]
    kept: list[Candidate] = []
    size = 0
    for c in listed[:MAX_CANDIDATES]:
        size += 100 + len(c.user_id) + len(c.reason or "")
        if kept and size > EXPLANATION_BUDGET:
            break
        kept.append(c)
    return kept


def _explanation(
    seen: dict[UserId, Candidate],
    listed: list[Candidate],
    cursor_before: UserId | None,
    cursor_after: UserId | None,
    truncated: bool,
    passed_over: int | None = None,
) -> Explanation:
    ineligible = Counter(c.reason for c in seen.values() if c.reason is not None)
    return Explanation(
        candidates=listed,
        cursor_before=cursor_before,
        cursor_after=cursor_after,
        considered=len(seen),
        eligible=len(seen) - sum(ineligible.values()),
        ineligible=dict(sorted(ineligible.items())),
        passed_over=passed_over,
        truncated=truncated,
    )
