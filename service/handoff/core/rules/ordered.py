"""Walking a pool ordered by a number (open contacts, last assignment), ties in turn order.

Shared by least open contacts and longest idle: the members with the lowest number first,
and among equals those after the cursor first, wrapping, so equal members rotate.
"""

from collections.abc import Iterator

from sortedcontainers import SortedList

from handoff.core.pools import Rank

__all__ = ["walk"]

_FIRST: Rank = (-1, "")
"""Below every rank."""


def walk(members: SortedList[tuple[int, Rank]], cursor: Rank | None) -> Iterator[Rank]:
    start, end_of_all = 0, len(members)
    while start < end_of_all:
        value = members[start][0]
        end = members.bisect_left((value + 1, _FIRST))
        middle = start if cursor is None else members.bisect_right((value, cursor))
        for _, rank in members.islice(middle, end):
            yield rank
        for _, rank in members.islice(start, middle):
            yield rank
        start = end
