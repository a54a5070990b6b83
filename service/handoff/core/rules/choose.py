"""Choosing a member for a team or workspace step, looking only at the members it passes over.

The walk goes through the pool the step's presence and skills select, in the logic's order
from the cursor, and stops at the first member eligible by what the pool does not settle (a
step's limit, a second skill). Members this decision already assigned are compared apart
(`DecisionContext.touched`). What it examined makes the explanation, at most
`MAX_CANDIDATES` of them listed (contract v1.1).
"""

from collections import Counter
from collections.abc import Callable, Iterator
from itertools import chain, islice

from handoff.core.context import DecisionContext
from handoff.core.events import MAX_CANDIDATES, Candidate, Explanation, Logic
from handoff.core.ids import UserId
from handoff.core.pools import Pool, Rank, Roster, member
from handoff.core.rules import RULES, Rule
from handoff.core.rules.eligibility import Need, candidate
from handoff.core.rules.round_robin import Key

__all__ = ["choose"]


def choose(
    ctx: DecisionContext, roster: Roster, need: Need, logic: Logic, cursor_user: UserId | None
) -> tuple[UserId | None, Explanation]:
    """The member to assign (None: nobody is eligible), and why."""
    rule = RULES[logic]
    cursor = roster.rank_of.get(cursor_user) if cursor_user is not None else None
    seen: dict[UserId, Candidate] = {}

    def look(user_id: UserId) -> Candidate:
        c = seen.get(user_id)
        if c is None:
            c = seen[user_id] = candidate(ctx, user_id, need, idle=logic == "longest_idle")
        return c

    touched = ctx.touched()
    best: tuple[Key, Rank] | None = None
    for user_id in touched:
        rank = roster.rank_of.get(user_id)
        if rank is not None and look(user_id).eligible:
            key = rule.key(ctx, rank, cursor)
            if best is None or key < best[0]:
                best = (key, rank)
    pool = _pool(roster, need)
    walk: Iterator[Rank] = rule.walk(pool, cursor) if pool is not None else iter(())
    stopped_at: list[Rank] = []
    for rank in walk:
        user_id = member(rank)
        if user_id in touched:
            continue
        key = rule.key(ctx, rank, cursor)
        if best is not None and best[0] < key:
            stopped_at.append(rank)
            break
        c = look(user_id)
        if c.eligible:
            best = (key, rank)
            break
        if logic == "least_open_contacts" and c.reason == "at the step's limit":
            break  # the walk goes by open contacts: everyone after is at the limit too
    cursor_after = member(best[1]) if best is not None else cursor_user
    if best is None:
        listed = [look(member(r)) for r in islice(roster.turn_from(cursor), MAX_CANDIDATES)]
        truncated = len(roster.order) > len(listed) or len(seen) > len(listed)
        return None, _explanation(seen, listed, cursor_user, cursor_after, truncated)
    chosen = member(best[1])
    listed = [look(chosen)]
    passed_over: int | None = None
    if logic == "round_robin":
        passed_over = roster.between(cursor, best[1])
        shown = min(passed_over, MAX_CANDIDATES - 1)
        listed += [look(member(r)) for r in islice(roster.turn_from(cursor), shown)]
    else:
        rest = chain(stopped_at, walk)
        listed += _closest(ctx, rule, roster, cursor, rest, touched, look, chosen)
    shown_ids = {c.user_id for c in listed}
    truncated = (passed_over or 0) > len(listed) - 1 or any(u not in shown_ids for u in seen)
    return chosen, _explanation(
        seen, listed, cursor_user, cursor_after, truncated, passed_over=passed_over
    )


def _pool(roster: Roster, need: Need) -> Pool | None:
    """The smallest pool holding everyone eligible by presence and skills."""
    if not need.skills:
        return roster.pool(need.only_online)
    pools = [roster.pool(need.only_online, skill) for skill in need.skills]
    if any(p is None for p in pools):
        return None
    return min((p for p in pools if p is not None), key=len)


def _closest(
    ctx: DecisionContext,
    rule: Rule,
    roster: Roster,
    cursor: Rank | None,
    rest: Iterator[Rank],
    touched: set[UserId],
    look: Callable[[UserId], Candidate],
    chosen: UserId,
) -> list[Candidate]:
    """Least open contacts and longest idle: the eligible members that came closest after
    the assignee, from the rest of the walk and from those this decision assigned."""
    keyed: list[tuple[Key, Candidate]] = []
    for user_id in touched:
        rank = roster.rank_of.get(user_id)
        if rank is not None and user_id != chosen and look(user_id).eligible:
            keyed.append((rule.key(ctx, rank, cursor), look(user_id)))
    for rank in islice((r for r in rest if member(r) not in touched), MAX_CANDIDATES - 1):
        c = look(member(rank))
        if c.eligible:
            keyed.append((rule.key(ctx, rank, cursor), c))
    keyed.sort(key=lambda kc: kc[0])
    return [c for _, c in keyed[: MAX_CANDIDATES - 1]]


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
