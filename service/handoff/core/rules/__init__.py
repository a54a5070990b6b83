"""Routing rules (the contract's logics), one module each.

Each orders a pool of members (`walk`) the way its logic picks them, and says where any one
member comes in that order (`key`), so a member the index cannot place (one this decision
already assigned) is compared with the walk's. `handoff.core.rules.choose` drives them.
"""

from collections.abc import Iterator
from typing import Protocol

from handoff.core.context import DecisionContext
from handoff.core.events import Logic
from handoff.core.pools import Pool, Rank
from handoff.core.rules import least_open_contacts, longest_idle, round_robin
from handoff.core.rules.round_robin import Key

__all__ = ["RULES", "Rule"]


class Rule(Protocol):
    def walk(self, pool: Pool, cursor: Rank | None) -> Iterator[Rank]: ...

    def key(self, ctx: DecisionContext, rank: Rank, cursor: Rank | None) -> Key: ...


RULES: dict[Logic, Rule] = {
    "round_robin": round_robin,
    "least_open_contacts": least_open_contacts,
    "longest_idle": longest_idle,
}
