"""Least open contacts: the eligible member with the fewest; ties rotate from the cursor."""

from collections.abc import Iterator

from handoff.core.context import DecisionContext
from handoff.core.pools import Pool, Rank, member
from handoff.core.rules import ordered
from handoff.core.rules.round_robin import Key, turn

__all__ = ["key", "walk"]


def walk(pool: Pool, cursor: Rank | None) -> Iterator[Rank]:
    return ordered.walk(pool.by_load, cursor)


def key(ctx: DecisionContext, rank: Rank, cursor: Rank | None) -> Key:
    return turn(ctx.open_contacts(member(rank)), rank, cursor)
