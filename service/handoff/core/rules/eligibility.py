"""Who may take a contact (contract: Eligible), with the reason for everyone who may not.

The reasons are categories, so an explanation can count them (`ineligible`); the numbers
behind one (open contacts, presence) are on the candidate itself.
"""

from dataclasses import dataclass

from handoff.core.context import DecisionContext
from handoff.core.events import Candidate
from handoff.core.ids import UserId

__all__ = ["Need", "candidate"]


@dataclass(frozen=True, slots=True)
class Need:
    """What a step asks of a member, beyond being in its team."""

    only_online: bool
    max_open_contacts: int | None
    skills: tuple[str, ...] = ()


def candidate(
    ctx: DecisionContext, user_id: UserId, need: Need, *, idle: bool = False
) -> Candidate:
    """The member as this decision sees them; `idle` adds when they were last assigned."""
    presence = ctx.view.presence.get(user_id, "offline")
    open_contacts = ctx.open_contacts(user_id)
    user = ctx.view.users.get(user_id)
    reason: str | None = None
    if user is None:
        reason = "unknown user"
    elif need.only_online and presence != "online":
        reason = presence
    elif user.max_open_contacts is not None and open_contacts >= user.max_open_contacts:
        reason = "at capacity"
    elif need.max_open_contacts is not None and open_contacts >= need.max_open_contacts:
        reason = "at the step's limit"
    else:
        missing = next((s for s in need.skills if s not in user.skills), None)
        if missing is not None:
            reason = f"missing skill {missing}"
    return Candidate(
        user_id=user_id,
        online=presence == "online",
        open_contacts=open_contacts,
        eligible=reason is None,
        reason=reason,
        last_assigned_at=ctx.assigned_at(user_id) if idle else None,
    )
