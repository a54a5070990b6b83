"""Round robin: the first eligible member after the one who got the last assignment."""

from collections.abc import Sequence

from handoff.core.events import Candidate
from handoff.core.ids import UserId

__all__ = ["from_cursor", "pick"]


def from_cursor(candidates: Sequence[Candidate], cursor: UserId | None) -> list[Candidate]:
    """The members in turn order: those after the cursor, then from the top (wrapping).

    A cursor that is no longer a member (removed from the team) starts the turn at the top.
    """
    ids = [c.user_id for c in candidates]
    start = ids.index(cursor) + 1 if cursor in ids else 0
    return [*candidates[start:], *candidates[:start]]


def pick(candidates: Sequence[Candidate], cursor: UserId | None) -> UserId | None:
    return next((c.user_id for c in from_cursor(candidates, cursor) if c.eligible), None)
