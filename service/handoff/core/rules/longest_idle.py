"""Longest idle: the eligible member whose last assignment (by handoff or in the inbox) is
oldest; members never assigned come first; ties rotate from the cursor."""

from collections.abc import Iterator

from handoff.core.context import DecisionContext
from handoff.core.pools import Pool, Rank, member
from handoff.core.rules import ordered
from handoff.core.rules.round_robin import Key, turn

__all__ = ["key", "walk"]


def walk(pool: Pool, cursor: Rank | None) -> Iterator[Rank]:
    return ordered.walk(pool.by_idle, cursor)


def key(ctx: DecisionContext, rank: Rank, cursor: Rank | None) -> Key:
    return turn(ctx.idle(member(rank)), rank, cursor)
