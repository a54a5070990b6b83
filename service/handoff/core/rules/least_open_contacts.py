"""Least open contacts: the eligible member with the fewest; ties rotate from the cursor."""

from collections.abc import Iterator

from handoff.core.pools import Pool, Rank
from handoff.core.rules import ordered

__all__ = ["walk"]


def walk(pool: Pool, cursor: Rank | None) -> Iterator[Rank]:
    return ordered.walk(pool.ordered("load"), cursor)
