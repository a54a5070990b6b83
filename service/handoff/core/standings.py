"""Every member a routing decision could have looked at, and where each of them stood.

A decision examines only the members it passes over (`handoff.core.rules.choose`), and its
explanation lists at most 20 of them; `handoff explain` shows them all, from the view as the
log stood just before the decision. Whether each was eligible, and why not, comes from
`eligibility.candidate`, the very function the decision asks. This is O(team) and reads only
the view's rows: it builds no index, so it leaves the view as it found it.
"""

from dataclasses import dataclass
from datetime import datetime

from handoff.core.context import DecisionContext
from handoff.core.ids import TeamId, UserId
from handoff.core.rules.eligibility import Need, candidate
from handoff.core.steps.assign_to import DEDICATED

__all__ = ["MemberStanding", "of_team", "of_user"]


@dataclass(frozen=True, slots=True)
class MemberStanding:
    """One member as the decision saw them: presence, load and skills, eligible or why not,
    and what orders eligible members (open contacts; last assignment, for longest idle)."""

    user_id: UserId
    presence: str
    """online, away or offline (a user never seen is offline)."""
    open_contacts: int
    max_open_contacts: int | None
    """The user's own limit (None: none, or the user is unknown)."""
    skills: tuple[str, ...]
    eligible: bool
    reason: str | None
    last_assigned_at: datetime | None


def of_team(ctx: DecisionContext, team_id: TeamId | None, need: Need) -> list[MemberStanding]:
    """The team's members in team order (the round-robin order); for `workspace: true`
    (`team_id` None), every user of the workspace, in the order that step takes them (by id)."""
    if team_id is None:
        members: tuple[UserId, ...] = tuple(sorted(ctx.view.users))
    else:
        team = ctx.view.teams.get(team_id)
        members = team.members if team is not None else ()
    return [_standing(ctx, user_id, need) for user_id in members]


def of_user(ctx: DecisionContext, user_id: UserId) -> list[MemberStanding]:
    """The one user an `assign_to: {user_id}` step names."""
    return [_standing(ctx, user_id, DEDICATED)]


def _standing(ctx: DecisionContext, user_id: UserId, need: Need) -> MemberStanding:
    seen = candidate(ctx, user_id, need, idle=True)
    user = ctx.view.users.get(user_id)
    return MemberStanding(
        user_id=user_id,
        presence=ctx.view.presence.get(user_id, "offline"),
        open_contacts=seen.open_contacts,
        max_open_contacts=user.max_open_contacts if user is not None else None,
        skills=user.skills if user is not None else (),
        eligible=seen.eligible,
        reason=seen.reason,
        last_assigned_at=seen.last_assigned_at,
    )
