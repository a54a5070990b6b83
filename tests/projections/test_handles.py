"""Each fold is offered only the event types in its HANDLES; this checks that no other type
would have changed anything, over every type a simulated day produces."""

import copy
from datetime import UTC, datetime

import orjson

from handoff.adapters.cloudevents import Accepted, parse
from handoff.core.decide import decide
from handoff.core.envelope import Envelope
from handoff.core.view import WorkspaceView
from handoff.demo.traffic import TrafficParams, day_events
from handoff_projections import PROJECTIONS, evolve
from tests.builders import event as an_input


def _a_day() -> tuple[dict[str, WorkspaceView], list[tuple[str, Envelope]]]:
    """Views after a simulated day, and, per event type, one event and its workspace."""
    params = TrafficParams(start=datetime(2026, 1, 5, tzinfo=UTC), workspaces=5, seed=3)
    views: dict[str, WorkspaceView] = {}
    samples: dict[str, tuple[str, Envelope]] = {}
    for raw in day_events(params):
        parsed = parse(orjson.dumps(raw), 1 << 20)
        assert isinstance(parsed, Accepted)
        event = parsed.event
        view = views.setdefault(event.workspaceid, WorkspaceView(workspace_id=event.workspaceid))
        evolve(view, event)
        samples.setdefault(event.type, (event.workspaceid, event))
        for decision in decide(view, event, event.time):
            evolve(view, decision)
            samples.setdefault(decision.type, (decision.workspaceid, decision))
    # inputs a day does not send
    for extra in (
        an_input(
            "contact.updated", {"contact_id": "ct-0001", "fields": {"tier": "gold"}}, ws="acme"
        ),
        an_input("team.removed", {"team_id": "support"}, ws="acme"),
        an_input("user.removed", {"user_id": "sue"}, ws="acme"),
        an_input("workflow.unpublished", {"workflow_id": "round-robin-online-welcome"}, ws="acme"),
    ):
        samples.setdefault(extra.type, ("acme", extra))
    return views, list(samples.values())


def test_no_fold_changes_anything_for_a_type_it_does_not_handle() -> None:
    views, samples = _a_day()
    assert len(samples) >= 20  # rich enough to say something
    for workspace_id, event in samples:
        for projection in PROJECTIONS:
            if event.type in projection.HANDLES:
                continue
            view = copy.deepcopy(views[workspace_id])
            changed = list(projection.evolve(view, event))
            assert changed == [], (projection.__name__, event.type)
            assert view == views[workspace_id], (projection.__name__, event.type)
