"""Routing rules (the contract's logics), one module each.

Each walks a pool of members (`handoff.core.pools`) in the order its logic picks them, from
the cursor; `handoff.core.rules.choose` takes the first eligible.
"""

from collections.abc import Iterator
from typing import Protocol

from handoff.core.events import Logic
from handoff.core.pools import Pool, Rank
from handoff.core.rules import least_open_contacts, longest_idle, round_robin

__all__ = ["RULES", "Rule"]


class Rule(Protocol):
    def walk(self, pool: Pool, cursor: Rank | None) -> Iterator[Rank]: ...


RULES: dict[Logic, Rule] = {
    "round_robin": round_robin,
    "least_open_contacts": least_open_contacts,
    "longest_idle": longest_idle,
}
