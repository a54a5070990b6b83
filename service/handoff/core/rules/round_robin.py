"""Round robin: the first eligible member after the one who got the last assignment.

A cursor that is no longer a member (removed from the team) starts the turn at the top.
"""

from collections.abc import Iterator

from handoff.core.context import DecisionContext
from handoff.core.pools import Pool, Rank

__all__ = ["Key", "key", "turn", "walk"]

Key = tuple[int, int, Rank]
"""Where a member comes in a logic's order (lower first): (the logic's number, then the
turn from the cursor: 0 after it, 1 from the top, then the rank)."""


def turn(value: int, rank: Rank, cursor: Rank | None) -> Key:
    return (value, 0, rank) if cursor is None or rank > cursor else (value, 1, rank)


def walk(pool: Pool, cursor: Rank | None) -> Iterator[Rank]:
    if cursor is None:
        yield from pool.by_turn
        return
    yield from pool.by_turn.irange(minimum=cursor, inclusive=(False, True))
    yield from pool.by_turn.irange(maximum=cursor)


def key(ctx: DecisionContext, rank: Rank, cursor: Rank | None) -> Key:
    return turn(0, rank, cursor)
