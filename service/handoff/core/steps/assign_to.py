"""assign_to: give the contact to a user, a team member, anyone in the workspace, or nobody.

Team and workspace assignments that find nobody eligible queue the contact; the queue
(`handoff.core.queue`) serves it with `try_assign` the moment someone becomes eligible.
"""

from dataclasses import dataclass
from typing import Literal

from handoff.core.context import DecisionContext
from handoff.core.durations import to_timedelta
from handoff.core.events import (
    AssignmentFailed,
    AssignmentFailedData,
    AssignmentQueued,
    AssignmentQueuedData,
    ContactAssigned,
    ContactAssignedData,
    ContactUnassigned,
    ContactUnassignedData,
    Explanation,
    FailureReason,
    WorkflowRef,
)
from handoff.core.ids import TeamId, UserId
from handoff.core.rules import RULES
from handoff.core.rules.eligibility import candidates
from handoff.core.run_ref import Goto, RunRef
from handoff.core.steps.wait import sleep
from handoff.core.view import WORKSPACE_CURSOR, QueueEntry
from handoff.core.workflow import AssignTo

__all__ = ["Request", "decide", "fail", "time_out", "try_assign"]


@dataclass(frozen=True)
class Request:
    """A team or workspace assignment, as a step asks for it and as the queue keeps it."""

    team_id: TeamId | None
    strategy: Literal["round_robin", "least_open_contacts"]
    only_online: bool
    max_open_contacts: int | None

    @classmethod
    def of(cls, entry: QueueEntry | AssignTo) -> "Request":
        strategy = entry.logic if isinstance(entry, AssignTo) else entry.strategy
        assert strategy != "specific_user"
        return cls(entry.team_id, strategy, entry.only_online, entry.max_open_contacts)


def decide(step: AssignTo, run: RunRef, ctx: DecisionContext) -> Literal["next", "blocked"] | Goto:
    if step.unassign:
        _unassign(run, ctx, run.at(step.id))
        return "next"
    if step.user_id is not None:
        _assign_user(step.user_id, run, ctx, run.at(step.id))
        return "next"
    request = Request.of(step)
    if request.team_id is not None:
        team = ctx.view.teams.get(request.team_id)
        reason: Literal["unknown_team", "team_empty"] | None = (
            "unknown_team" if team is None else "team_empty" if not team.members else None
        )
        if reason is not None:
            fail(ctx, run, run.at(step.id), reason, team_id=request.team_id)
            return "next"
    explanation = try_assign(request, run, ctx, run.at(step.id))
    if explanation is None:
        return "next"
    timeout = to_timedelta(step.timeout)
    if not timeout:
        return time_out(step, run, ctx, explanation)
    ctx.emit(
        AssignmentQueued,
        AssignmentQueuedData(
            contact_id=run.run.contact_id,
            conversation_id=run.run.conversation_id,
            team_id=request.team_id,
            strategy=request.strategy,
            only_online=request.only_online,
            max_open_contacts=request.max_open_contacts,
            explanation=explanation,
            workflow=run.at(step.id),
        ),
        subject=run.run.contact_id,
    )
    sleep(run, ctx, step.id, timeout, "queue")
    return "blocked"


def time_out(
    step: AssignTo, run: RunRef, ctx: DecisionContext, explanation: Explanation | None = None
) -> Goto:
    """Nobody took the contact in time: it leaves the queue, the run takes `on_timeout`."""
    request = Request.of(step)
    explanation = explanation or _explain(request, ctx)
    fail(ctx, run, run.at(step.id), "timeout", team_id=request.team_id, explanation=explanation)
    return Goto(run.workflow.first_of(step.on_timeout, run.workflow.next_after(step.id)))


def fail(
    ctx: DecisionContext,
    run: RunRef,
    ref: WorkflowRef,
    reason: FailureReason,
    *,
    team_id: TeamId | None = None,
    user_id: UserId | None = None,
    explanation: Explanation | None = None,
) -> None:
    ctx.emit(
        AssignmentFailed,
        AssignmentFailedData(
            contact_id=run.run.contact_id,
            conversation_id=run.run.conversation_id,
            team_id=team_id,
            user_id=user_id,
            reason=reason,
            explanation=explanation or Explanation(candidates=[]),
            workflow=ref,
        ),
        subject=run.run.contact_id,
    )


def try_assign(
    request: Request, run: RunRef, ctx: DecisionContext, ref: WorkflowRef
) -> Explanation | None:
    """Assign by the request's rule; None when done, else why nobody was eligible."""
    explanation = _explain(request, ctx)
    chosen = RULES[request.strategy](explanation.candidates, explanation.cursor_before)
    if chosen is None:
        return explanation
    explanation = explanation.model_copy(update={"cursor_after": chosen})
    previous = ctx.assignee(run.run.contact_id)
    if chosen != previous:
        ctx.emit(
            ContactAssigned,
            ContactAssignedData(
                contact_id=run.run.contact_id,
                conversation_id=run.run.conversation_id,
                assignee_id=chosen,
                team_id=request.team_id,
                previous_assignee_id=previous,
                strategy=request.strategy,
                only_online=request.only_online,
                explanation=explanation,
                workflow=ref,
            ),
            subject=run.run.contact_id,
        )
    return None


def _explain(request: Request, ctx: DecisionContext) -> Explanation:
    """Every candidate of the request, eligible or why not, and the cursor as it stands."""
    if request.team_id is None:
        members = sorted(ctx.view.users)
        cursor_key = WORKSPACE_CURSOR
    else:
        team = ctx.view.teams.get(request.team_id)
        members = list(team.members) if team is not None else []
        cursor_key = request.team_id
    pool = candidates(
        ctx, members, only_online=request.only_online, max_open_contacts=request.max_open_contacts
    )
    cursor = ctx.cursor(cursor_key)
    return Explanation(candidates=pool, cursor_before=cursor, cursor_after=cursor)


def _assign_user(user_id: UserId, run: RunRef, ctx: DecisionContext, ref: WorkflowRef) -> None:
    contact_id = run.run.contact_id
    if user_id not in ctx.view.users:
        fail(ctx, run, ref, "unknown_user", user_id=user_id)
        return
    previous = ctx.assignee(contact_id)
    if previous == user_id:
        return
    # A dedicated agent gets the contact whatever their presence or load; the explanation
    # still shows both, so the choice is visible.
    (candidate,) = candidates(ctx, [user_id], only_online=False, max_open_contacts=None)
    ctx.emit(
        ContactAssigned,
        ContactAssignedData(
            contact_id=contact_id,
            conversation_id=run.run.conversation_id,
            assignee_id=user_id,
            team_id=None,
            previous_assignee_id=previous,
            strategy="specific_user",
            only_online=False,
            explanation=Explanation(candidates=[candidate]),
            workflow=ref,
        ),
        subject=contact_id,
    )


def _unassign(run: RunRef, ctx: DecisionContext, ref: WorkflowRef) -> None:
    previous = ctx.assignee(run.run.contact_id)
    if previous is None:
        return
    ctx.emit(
        ContactUnassigned,
        ContactUnassignedData(
            contact_id=run.run.contact_id,
            conversation_id=run.run.conversation_id,
            previous_assignee_id=previous,
            workflow=ref,
        ),
        subject=run.run.contact_id,
    )
