"""Who may take a contact (contract: Eligible), with the reason for everyone who may not."""

from collections.abc import Iterable

from handoff.core.context import DecisionContext
from handoff.core.events import Candidate
from handoff.core.ids import UserId

__all__ = ["candidates"]


def candidates(
    ctx: DecisionContext,
    members: Iterable[UserId],
    *,
    only_online: bool,
    max_open_contacts: int | None,
) -> list[Candidate]:
    return [_candidate(ctx, m, only_online, max_open_contacts) for m in members]


def _candidate(
    ctx: DecisionContext, user_id: UserId, only_online: bool, step_limit: int | None
) -> Candidate:
    online = ctx.view.presence.get(user_id) == "online"
    open_contacts = ctx.open_contacts(user_id)
    user = ctx.view.users.get(user_id)
    reason: str | None = None
    if user is None:
        reason = "unknown user (no user.upserted)"
    elif only_online and not online:
        reason = f"not online ({ctx.view.presence.get(user_id, 'offline')})"
    elif user.max_open_contacts is not None and open_contacts >= user.max_open_contacts:
        reason = f"at the user's limit ({open_contacts}/{user.max_open_contacts})"
    elif step_limit is not None and open_contacts >= step_limit:
        reason = f"at the step's limit ({open_contacts}/{step_limit})"
    return Candidate(
        user_id=user_id,
        online=online,
        open_contacts=open_contacts,
        eligible=reason is None,
        reason=reason,
    )
