"""Routing rules (the contract's strategies), one module each, all exposing `pick`.

`pick(candidates, cursor)` takes the candidates in the team's member order and returns the
user to assign, or None when nobody is eligible.
"""

from collections.abc import Callable, Sequence

from handoff.core.events import Candidate
from handoff.core.ids import UserId
from handoff.core.rules import least_open_contacts, round_robin

__all__ = ["RULES", "Rule"]

Rule = Callable[[Sequence[Candidate], UserId | None], UserId | None]

RULES: dict[str, Rule] = {
    "round_robin": round_robin.pick,
    "least_open_contacts": least_open_contacts.pick,
}
