"""Round robin: the first eligible member after the one who got the last assignment.

A cursor that is no longer a member (removed from the team) starts the turn at the top.
"""

from collections.abc import Iterator

from handoff.core.pools import Pool, Rank, from_cursor

__all__ = ["walk"]


def walk(pool: Pool, cursor: Rank | None) -> Iterator[Rank]:
    return from_cursor(pool.by_turn, cursor)
