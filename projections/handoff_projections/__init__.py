"""Projections: pure folds of handoff's event log into the rows a decision reads.

Each module folds one concern into one or two tables of a `WorkspaceView` and says which rows
it changed, so the app writes back only those (in the same transaction as the events). They
run in the order below: `open_contacts` reads assignees and open conversations as they were
*before* the event, so it goes first.

The view's indexes (`handoff.core.pools`, `handoff.core.queue_lines`) follow the rows each
event changed, once all its folds have run.
"""

from collections.abc import Iterable
from typing import Protocol

from handoff.core.envelope import Envelope
from handoff.core.view import WorkspaceView
from handoff_projections import (
    assignees,
    contacts,
    conversations,
    last_assignment,
    open_contacts,
    presence,
    queue,
    rr_cursors,
    runs,
    teams,
    timers,
    users,
    workflows,
)

__all__ = ["FORMAT", "PROJECTIONS", "TABLES", "Changed", "evolve"]

FORMAT = 2
"""The shape of the projections these folds make, stored beside them (`projection_format`):
raised when a fold starts keeping rows that projections folded before it lack, so stored
ones are rebuilt from the log (`handoff replay --rebuild`) before they are decided on.
2: routing v1.1 (`last_assigned`, `last_assignees`, `presence_changes`)."""

Changed = tuple[str, str]
"""(table, key): a row a fold changed or deleted."""


class Projection(Protocol):
    @property
    def TABLES(self) -> tuple[str, ...]: ...

    @property
    def HANDLES(self) -> frozenset[str]:
        """The event types the fold changes anything for (the others are not offered)."""
        ...

    def evolve(self, view: WorkspaceView, event: Envelope) -> Iterable[Changed]: ...


PROJECTIONS: tuple[Projection, ...] = (
    open_contacts,
    users,
    presence,
    teams,
    contacts,
    assignees,
    last_assignment,
    conversations,
    rr_cursors,
    workflows,
    queue,
    runs,
    timers,
)

TABLES: tuple[str, ...] = tuple(t for p in PROJECTIONS for t in p.TABLES)

_FOLDS_OF: dict[str, tuple[Projection, ...]] = {}
"""Event type -> the folds it concerns, in `PROJECTIONS` order: most folds ignore most events,
and asking each of them costs more than the folding itself."""


def evolve(view: WorkspaceView, event: Envelope) -> set[Changed]:
    """Fold one logged event into the view; returns the rows that changed."""
    view.version += 1
    folds = _FOLDS_OF.get(event.type)
    if folds is None:
        folds = _FOLDS_OF[event.type] = tuple(p for p in PROJECTIONS if event.type in p.HANDLES)
    changed: set[Changed] = set()
    for projection in folds:
        changed.update(projection.evolve(view, event))
    view.follow(changed)
    return changed
