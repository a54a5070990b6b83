"""assign_to: give the contact to a user, a team member, anyone in the workspace, or nobody.

Team and workspace assignments that find nobody eligible queue the contact; the queue
(`handoff.core.queue`) serves it with `try_assign` the moment someone becomes eligible. Who
is eligible and who comes first is `handoff.core.rules.choose`'s, over the routing index.
"""

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Literal

from handoff.core.context import DecisionContext
from handoff.core.durations import to_timedelta
from handoff.core.events import (
    AssignmentFailed,
    AssignmentFailedData,
    AssignmentQueued,
    AssignmentQueuedData,
    Candidate,
    ContactAssigned,
    ContactAssignedData,
    ContactUnassigned,
    ContactUnassignedData,
    Explanation,
    FailureReason,
    Logic,
    SkillsRelaxed,
    SkillsRelaxedData,
    Strategy,
    WorkflowRef,
)
from handoff.core.ids import MAX_SKILL_LENGTH, ContactId, TeamId, UserId
from handoff.core.rules.choose import choose
from handoff.core.rules.eligibility import Need, candidate
from handoff.core.run_ref import Goto, RunRef
from handoff.core.steps.wait import sleep
from handoff.core.view import WORKSPACE_CURSOR, QueueEntry
from handoff.core.workflow import AssignTo, ContactFieldSkill

__all__ = ["DEDICATED", "Request", "decide", "fail", "relax", "serve", "time_out", "try_assign"]

DEDICATED = Need(only_online=False, max_open_contacts=None)
"""What an `assign_to: {user_id}` step asks of its user: nothing. A dedicated agent gets the
contact whatever their presence or load (`_assign_user`); `handoff explain` shows them
against the same need (`handoff.core.standings`)."""


@dataclass(frozen=True, slots=True)
class Request:
    """A team or workspace assignment, as a step asks for it and as the queue keeps it."""

    team_id: TeamId | None
    logic: Logic
    only_online: bool
    max_open_contacts: int | None
    skills: tuple[str, ...] = ()
    prefer: Literal["last_assignee"] | None = None

    @classmethod
    def of_step(cls, step: AssignTo, ctx: DecisionContext, contact_id: ContactId) -> "Request":
        return cls(
            step.team_id,
            step.logic,
            step.only_online,
            step.max_open_contacts,
            _skills(step, ctx, contact_id),
            step.prefer,
        )

    @classmethod
    def of_entry(cls, entry: QueueEntry) -> "Request":
        return cls(
            entry.team_id,
            entry.strategy,
            entry.only_online,
            entry.max_open_contacts,
            entry.required_skills,
            entry.prefer,
        )

    @property
    def need(self) -> Need:
        return Need(self.only_online, self.max_open_contacts, self.skills)


def _skills(step: AssignTo, ctx: DecisionContext, contact_id: ContactId) -> tuple[str, ...]:
    """The step's skills for this contact: a `{contact_field}` entry is that field's value,
    and dropped when the contact lacks it."""
    fields = c.fields if (c := ctx.view.contacts.get(contact_id)) is not None else {}
    skills: list[str] = []
    for skill in step.skills:
        if not isinstance(skill, ContactFieldSkill):
            skills.append(skill)
        elif (value := fields.get(skill.contact_field)) is not None:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            # A skill is at most 100 characters; a longer value, cut and marked so, is one
            # nobody holds, and its explanations stay small.
            skills.append(text if len(text) <= MAX_SKILL_LENGTH else f"{text[:100]}…")
    return tuple(dict.fromkeys(skills))


def decide(step: AssignTo, run: RunRef, ctx: DecisionContext) -> Literal["next", "blocked"] | Goto:
    if step.unassign:
        _unassign(run, ctx, run.at(step.id))
        return "next"
    if step.user_id is not None:
        _assign_user(step.user_id, run, ctx, run.at(step.id))
        return "next"
    request = Request.of_step(step, ctx, run.run.contact_id)
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
    relax_after = _relax_after(step, request)
    if relax_after == timedelta(0):
        data = SkillsRelaxedData(run_id=run.run_id, step_id=step.id)
        ctx.emit(SkillsRelaxed, data, subject=run.run.contact_id)
        request = replace(request, skills=())
        explanation = try_assign(request, run, ctx, run.at(step.id))
        if explanation is None:
            return "next"
    timeout = to_timedelta(step.timeout)
    if not timeout:
        return time_out(step, run, ctx, request, explanation)
    relaxes = relax_after is not None and timedelta(0) < relax_after < timeout
    queued = ctx.emit(
        AssignmentQueued,
        AssignmentQueuedData(
            contact_id=run.run.contact_id,
            conversation_id=run.run.conversation_id,
            team_id=request.team_id,
            strategy=request.logic,
            only_online=request.only_online,
            max_open_contacts=request.max_open_contacts,
            explanation=explanation,
            workflow=run.at(step.id),
            priority=step.priority,
            skills=list(request.skills),
            relax_skills_at=ctx.cause.time + relax_after if relaxes and relax_after else None,
            prefer=request.prefer,
        ),
        subject=run.run.contact_id,
    )
    position = ctx.view.version + len(ctx.events)  # after every entry the view holds
    ctx.queued[run.run_id] = (QueueEntry.of_queued(queued, run.at(step.id), position), run)
    if relaxes and relax_after is not None:
        sleep(run, ctx, step.id, relax_after, "relax")
    else:
        sleep(run, ctx, step.id, timeout, "queue")
    return "blocked"


def _relax_after(step: AssignTo, request: Request) -> timedelta | None:
    if step.relax_skills_after is None or not request.skills:
        return None
    return to_timedelta(step.relax_skills_after)


def relax(step: AssignTo, run: RunRef, ctx: DecisionContext) -> Literal["next", "blocked"]:
    """The contact has waited `relax_skills_after`: from now on any member eligible without
    the skills may take it; it waits the rest of its timeout for one."""
    entry = ctx.view.queue[run.run_id]
    ctx.emit(
        SkillsRelaxed, SkillsRelaxedData(run_id=run.run_id, step_id=step.id), run.run.contact_id
    )
    request = replace(Request.of_entry(entry), skills=())
    if serve(request, run, ctx, entry.workflow):
        return "next"
    assert step.relax_skills_after is not None
    rest = to_timedelta(step.timeout) - to_timedelta(step.relax_skills_after)
    sleep(run, ctx, step.id, rest, "queue")
    return "blocked"


def time_out(
    step: AssignTo,
    run: RunRef,
    ctx: DecisionContext,
    request: Request,
    explanation: Explanation | None = None,
) -> Goto:
    """Nobody took the contact in time: it leaves the queue, the run takes `on_timeout`."""
    if explanation is None:
        explanation = _why_nobody(request, run, ctx)
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
    """Assign by the request; None when done, else why nobody was eligible."""
    done, explanation = _assign(request, run, ctx, ref, explain=True)
    if done:
        return None
    assert explanation is not None
    return explanation


def serve(request: Request, run: RunRef, ctx: DecisionContext, ref: WorkflowRef) -> bool:
    """Assign by the request if anyone is eligible (the queue: nobody costs no explanation)."""
    return _assign(request, run, ctx, ref, explain=False)[0]


def _assign(
    request: Request, run: RunRef, ctx: DecisionContext, ref: WorkflowRef, *, explain: bool
) -> tuple[bool, Explanation | None]:
    roster = ctx.view.pools().roster(request.team_id)
    if roster is None:
        return False, Explanation(candidates=[])
    cursor = ctx.cursor(request.team_id or WORKSPACE_CURSOR)
    contact_id = run.run.contact_id
    passed: Candidate | None = None
    if request.prefer == "last_assignee" and (last := ctx.last_assignee(contact_id)):
        passed = candidate(ctx, last, request.need)
        if passed.eligible and last not in roster.rank_of:
            passed = passed.model_copy(update={"eligible": False, "reason": "not in the team"})
    strategy: Strategy
    if passed is not None and passed.eligible:
        chosen: UserId | None = passed.user_id
        strategy = "last_assignee"
        explanation: Explanation | None = Explanation(
            candidates=[passed], cursor_before=cursor, cursor_after=chosen, considered=1, eligible=1
        )
    else:
        strategy = request.logic
        chosen, explanation = choose(
            ctx, roster, request.need, request.logic, cursor, passed=passed, explain=explain
        )
    if chosen is None:
        return False, explanation
    assert explanation is not None
    previous = ctx.assignee(contact_id)
    if chosen != previous:
        ctx.emit(
            ContactAssigned,
            ContactAssignedData(
                contact_id=contact_id,
                conversation_id=run.run.conversation_id,
                assignee_id=chosen,
                team_id=request.team_id,
                previous_assignee_id=previous,
                strategy=strategy,
                only_online=request.only_online,
                explanation=explanation,
                workflow=ref,
            ),
            subject=contact_id,
        )
    return True, None


def _why_nobody(request: Request, run: RunRef, ctx: DecisionContext) -> Explanation:
    roster = ctx.view.pools().roster(request.team_id)
    if roster is None:
        return Explanation(candidates=[])
    cursor = ctx.cursor(request.team_id or WORKSPACE_CURSOR)
    explanation = choose(ctx, roster, request.need, request.logic, cursor)[1]
    assert explanation is not None
    return explanation


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
    chosen = candidate(ctx, user_id, DEDICATED)
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
            explanation=Explanation(
                candidates=[chosen],
                considered=1,
                eligible=int(chosen.eligible),
                ineligible={chosen.reason: 1} if chosen.reason is not None else {},
            ),
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
