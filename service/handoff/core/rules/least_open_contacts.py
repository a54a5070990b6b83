"""Least open contacts: the eligible member with the fewest; ties rotate from the cursor."""

from collections.abc import Sequence

from handoff.core.events import Candidate
from handoff.core.ids import UserId
from handoff.core.rules.round_robin import from_cursor

__all__ = ["pick"]


def pick(candidates: Sequence[Candidate], cursor: UserId | None) -> UserId | None:
    eligible = [c for c in from_cursor(candidates, cursor) if c.eligible]
    if not eligible:
        return None
    # min() keeps the first of equals, and the list is in turn order: equal loads rotate.
    return min(eligible, key=lambda c: c.open_contacts).user_id
