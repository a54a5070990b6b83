"""Given these events, when this arrives, then these decisions leave: the pure core, no I/O.

`given` is folded through the projections and decided exactly as the service does, so a
test's history includes the decisions it caused (a queue, cursors, counts).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handoff.core.envelope import Envelope, OutputEnvelope
from handoff.core.view import WorkspaceView
from handoff_projections.apply import apply as fold_and_decide
from tests.builders import T0, WS


def apply(view: WorkspaceView, event: Envelope, now: datetime = T0) -> list[OutputEnvelope]:
    """What the service does with one input: fold it, decide, fold the decisions."""
    return fold_and_decide(view, event, now)


def history(events: Iterable[Envelope], ws: str = WS) -> WorkspaceView:
    view = WorkspaceView(workspace_id=ws)
    for e in events:
        apply(view, e)
    return view


@dataclass
class Outcome:
    view: WorkspaceView
    decisions: list[OutputEnvelope]

    def of_type(self, *types: str) -> list[OutputEnvelope]:
        return [d for d in self.decisions if d.type in types]

    @property
    def routed(self) -> list[tuple[str, Any]]:
        """The routing outcome in brief: (type, contact, assignee or team) per output."""
        out = []
        for d in self.of_type("contact.assigned", "assignment.queued", "assignment.failed"):
            data: Any = d.data  # type: ignore[attr-defined]
            target = getattr(data, "assignee_id", None) or getattr(data, "reason", None) or "queued"
            out.append((d.type, data.contact_id, target))
        return out


def scenario(given: Iterable[Envelope], when: Envelope, now: datetime = T0) -> Outcome:
    view = history(given)
    return Outcome(view, apply(view, when, now))
