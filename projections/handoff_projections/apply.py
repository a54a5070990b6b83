"""The one sequence every caller runs for an input: fold it, decide, fold the decisions.

The service (`handoff.app.handle`), the benchmark's memory model and the tests' scenarios
all go through here, so a change to that sequence is made once.
"""

from collections.abc import Callable
from datetime import datetime

from handoff.core.decide import decide
from handoff.core.envelope import Envelope, OutputEnvelope
from handoff.core.view import WorkspaceView
from handoff_projections import Changed, evolve

__all__ = ["Folded", "apply"]

Folded = Callable[[Envelope, set[Changed]], None]
"""Told of each event as it is folded, with the rows it changed: the input, then each
decision in turn (the service logs and writes them there)."""


def apply(
    view: WorkspaceView, event: Envelope, now: datetime, folded: Folded | None = None
) -> list[OutputEnvelope]:
    """Fold `event` into `view`, decide on it with the clock reading `now`, and fold each
    decision in; returns the decisions."""
    changed = evolve(view, event)
    if folded is not None:
        folded(event, changed)
    decisions = decide(view, event, now, keep_index=True)
    for decision in decisions:
        changed = evolve(view, decision)
        if folded is not None:
            folded(decision, changed)
    return decisions
