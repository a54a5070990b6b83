"""Teams: their members, in the order that is the round-robin order."""

from collections.abc import Iterator

from handoff.core.envelope import Envelope
from handoff.core.inputs import TeamRemoved, TeamUpserted
from handoff.core.view import Team, WorkspaceView

HANDLES = frozenset({"team.upserted", "team.removed"})
TABLES = ("teams",)


def evolve(view: WorkspaceView, event: Envelope) -> Iterator[tuple[str, str]]:
    match event:
        case TeamUpserted(data=d):
            members = tuple(dict.fromkeys(d.members))  # a repeated member gets one turn
            view.teams[d.team_id] = Team(name=d.name, members=members)
            yield "teams", d.team_id
        case TeamRemoved(data=d) if d.team_id in view.teams:
            del view.teams[d.team_id]
            yield "teams", d.team_id
