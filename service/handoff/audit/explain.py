"""`handoff explain`: one contact's decision trail, rebuilt from the event log.

The workspace's log is folded once, event by event, as the service folded it. What concerns
the contact is kept, in log order: its inputs (conversation, messages, contact updates,
assignee changes in the inbox), the runs started for it and every step they took, the timers
of those runs firing, and the outputs about it; an input that is not the contact's (a
presence change that drained the queue) is kept when a decision of it is.

The fold stops at the last row that concerns the contact: nothing after it is kept, and what
is kept depends only on the log before it. That row is found first, in one query: the last
whose data names the contact (an input of another contact that served it from the queue is
followed by a decision naming it) or one of the runs started for it. A contact of a year-old
workspace's first day costs a day's fold, not a year's.

Two things the log does not say outright are worked out on the way, each from the view just
before the decision it explains (the input folded, and its decisions up to that one):
- a branch step entered: its conditions evaluated against the facts the decision saw
  (`conditions.evaluate`), every leaf with its value, and the branch taken;
- an assignment decision (`contact.assigned`, `assignment.queued`, `assignment.failed`): the
  request it served (from the workflow step, or from the queue entry when the queue served
  it) and every member's standing (`handoff.core.standings`), where the logged explanation
  lists at most 20; the cursor before and after are the logged explanation's.

`--json` prints `trail_json`:

    {"workspace_id": W, "contact_id": C, "entries": [ENTRY, ...]}       (log order)
    ENTRY = {"seq", "decided_at", "time", "type", "input": bool,
             "data": the event's data as logged,
             "step_type": a run.step_entered's step type, else null,
             "branch": null | {"branches": [{"name", "when": CHECK}], "taken": name | null (else)},
             "assignment": null | {"by": "step" | "queue", "team_id", "user_id", "logic",
                 "only_online", "max_open_contacts", "skills", "prefer", "cursor_before",
                 "cursor_after", "candidates": [{"user_id", "presence", "open_contacts",
                 "max_open_contacts", "skills", "eligible", "reason", "last_assigned_at"}]}}
    CHECK = {"all" | "any": [CHECK, ...], "held"} | {"condition": the leaf as written,
             "seen": its value (a time since as a duration like "16m"; null: none), "held"}

`input` false: a decision of the nearest input above it. `user_id` is set for an
`assign_to: {user_id}` step (logic null); `team_id` and `user_id` both null: `workspace: true`.
"""

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson

from handoff.adapters.pg_log import Logged, SSLMode, connection, read_log
from handoff.adapters.pg_store import Connection
from handoff.core.conditions import All, AnyOf, Evaluated, evaluate
from handoff.core.context import DecisionContext
from handoff.core.envelope import Envelope
from handoff.core.events import (
    AssignmentFailed,
    AssignmentQueued,
    ContactAssigned,
    Explanation,
    RunStarted,
    SkillsRelaxed,
    StepEntered,
    WorkflowRef,
)
from handoff.core.facts import facts_of
from handoff.core.ids import ContactId, RunId, UserId
from handoff.core.run import ref_of
from handoff.core.standings import MemberStanding, of_team, of_user
from handoff.core.steps.assign_to import Request
from handoff.core.view import WorkspaceView
from handoff.core.workflow import AssignTo, BranchStep
from handoff_projections import evolve

__all__ = [
    "Assignment",
    "Branch",
    "Entry",
    "duration_text",
    "trail",
    "trail_json",
]


@dataclass(frozen=True, slots=True)
class Branch:
    """A branch step as the decision tried it: each branch's condition, the one taken."""

    tried: list[tuple[str, Evaluated]]
    taken: str | None
    """The first branch whose condition held; None: `else`."""


@dataclass(frozen=True, slots=True)
class Assignment:
    """What an assignment decision was asked for, and every member's standing then."""

    by: Literal["step", "queue"]
    team_id: str | None
    user_id: UserId | None
    logic: str | None
    only_online: bool
    max_open_contacts: int | None
    skills: tuple[str, ...]
    prefer: str | None
    cursor_before: UserId | None
    cursor_after: UserId | None
    candidates: list[MemberStanding]


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    decided_at: datetime
    time: datetime
    type: str
    input: bool
    data: dict[str, Any]
    step_type: str | None = None
    branch: Branch | None = None
    assignment: Assignment | None = None


async def trail(
    dsn: str, workspace_id: str, contact_id: str, *, ssl: SSLMode | None = None
) -> list[Entry]:
    """The contact's entries in log order (none: the log never mentions it)."""
    async with connection(dsn, ssl) as conn:
        return await _trail(conn, workspace_id, ContactId(contact_id))


_LAST_MENTION = (
    "SELECT seq FROM event_log WHERE workspace_id = $1"
    " AND (body #>> '{data,contact_id}' = $2 OR body #>> '{data,run_id}' IN ("
    "   SELECT body #>> '{data,run_id}' FROM event_log WHERE workspace_id = $1"
    "   AND type = 'run.started' AND body #>> '{data,contact_id}' = $2))"
    " ORDER BY seq DESC LIMIT 1"
)
"""The position of the last row `_Follow` can keep: one whose data names the contact or a
run started for it (its `_concerns`, as the rows are logged). Read from the end, it stops at
the first match; `#>>` parses a body (`json`: the text as logged) once where `->`, `->>`
would parse it twice."""


async def _trail(conn: Connection, workspace_id: str, contact_id: ContactId) -> list[Entry]:
    view = WorkspaceView(workspace_id=workspace_id)
    follow = _Follow(contact_id)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        last = await conn.fetchval(_LAST_MENTION, workspace_id, contact_id)
        if last is None:
            return []
        async for logged in read_log(conn, workspace_id=workspace_id, upto_seq=last):
            follow.fold(view, logged)
    return follow.entries


class _Follow:
    """The fold that keeps the contact's entries, one logged event at a time."""

    def __init__(self, contact_id: ContactId) -> None:
        self.contact_id = contact_id
        self.entries: list[Entry] = []
        self.runs: set[RunId] = set()
        self.cause: Logged | None = None
        self.cause_kept = False
        self.ctx: DecisionContext | None = None
        self.relaxed: set[RunId] = set()
        """Runs whose skills relaxed in this input's decisions before they queued (a
        `relax_skills_after: 0s` step assigns without them at once)."""

    def fold(self, view: WorkspaceView, logged: Logged) -> None:
        event = logged.event
        if logged.is_input:
            evolve(view, event)
            self.cause, self.cause_kept, self.relaxed = logged, False, set()
            # It emits nothing, so it reads the view as folded so far: the decisions of this
            # input before the one explained are in it, as the decision's own overlay had them.
            self.ctx = DecisionContext(view, event, logged.decided_at)
            if self._concerns(event):
                self._keep(logged)
            return
        if self._concerns(event):
            assert self.ctx is not None
            assert self.cause is not None
            if not self.cause_kept:
                self._keep(self.cause)
            self._keep(logged, self.ctx)
        if isinstance(event, SkillsRelaxed):
            self.relaxed.add(event.data.run_id)
        evolve(view, event)

    def _concerns(self, event: Envelope) -> bool:
        """Whether the event is the contact's (and if it starts a run for it, note the run)."""
        if isinstance(event, RunStarted) and event.data.contact_id == self.contact_id:
            self.runs.add(event.data.run_id)
            return True
        data = getattr(event, "data", None)
        return (
            getattr(data, "contact_id", None) == self.contact_id
            or getattr(data, "run_id", None) in self.runs
        )

    def _keep(self, logged: Logged, ctx: DecisionContext | None = None) -> None:
        """Keep the event; `ctx`: a decision, worked out before it is folded."""
        event = logged.event
        entry = Entry(
            seq=logged.seq,
            decided_at=logged.decided_at,
            time=event.time,
            type=event.type,
            input=logged.is_input,
            data=orjson.loads(logged.body).get("data", {}),
        )
        if logged.is_input:
            self.cause_kept = True
        elif ctx is not None and isinstance(event, StepEntered):
            step = ctx.view.workflow(*_workflow_of(ctx, event.data.run_id)).step(event.data.step_id)
            branch = _branch(ctx, event.data.run_id, step) if isinstance(step, BranchStep) else None
            entry = replace(entry, step_type=step.type, branch=branch)
        elif ctx is not None and isinstance(
            event, ContactAssigned | AssignmentQueued | AssignmentFailed
        ):
            entry = replace(entry, assignment=_assignment(ctx, event, self.relaxed))
        self.entries.append(entry)


def _workflow_of(ctx: DecisionContext, run_id: RunId) -> tuple[str, int]:
    run = ctx.view.runs[run_id]
    return run.workflow_id, run.version


def _branch(ctx: DecisionContext, run_id: RunId, step: BranchStep) -> Branch:
    """The branch step's conditions against the facts the decision saw (as `branch.decide`
    gathers them), and the branch it took: the first that held."""
    facts = facts_of(ref_of(ctx, run_id), ctx)
    tried = [(b.name, evaluate(b.when, facts)) for b in step.branches]
    return Branch(tried, next((name for name, e in tried if e.held), None))


def _assignment(
    ctx: DecisionContext,
    event: ContactAssigned | AssignmentQueued | AssignmentFailed,
    relaxed: set[RunId],
) -> Assignment | None:
    """None: an assignment no workflow step made (the log of a version before steps said)."""
    data = event.data
    explanation: Explanation = data.explanation
    cursors = (explanation.cursor_before, explanation.cursor_after)
    dedicated = _dedicated(event)
    if dedicated is not None:
        candidates = of_user(ctx, dedicated)
        return Assignment(
            "step", None, dedicated, None, False, None, (), None, *cursors, candidates
        )
    ref = data.workflow
    if ref is None:
        return None
    entry = ctx.view.queue.get(ref.run_id)
    if entry is not None:
        by: Literal["step", "queue"] = "queue"
        request = Request.of_entry(entry)
    else:
        by = "step"
        request = _step_request(ctx, ref, relaxed)
    return Assignment(
        by,
        request.team_id,
        None,
        request.logic,
        request.only_online,
        request.max_open_contacts,
        request.skills,
        request.prefer,
        *cursors,
        of_team(ctx, request.team_id, request.need),
    )


def _dedicated(event: ContactAssigned | AssignmentQueued | AssignmentFailed) -> UserId | None:
    """The user an `assign_to: {user_id}` step named (None: a team or workspace step)."""
    match event:
        case ContactAssigned(data=d) if d.strategy == "specific_user":
            return d.assignee_id
        case AssignmentFailed(data=d):
            return d.user_id
    return None


def _step_request(ctx: DecisionContext, ref: WorkflowRef, relaxed: set[RunId]) -> Request:
    step = ctx.view.workflow(ref.id, ref.version).step(ref.step_id)
    assert isinstance(step, AssignTo)
    request = Request.of_step(step, ctx, ctx.view.runs[ref.run_id].contact_id)
    return replace(request, skills=()) if ref.run_id in relaxed else request


def duration_text(d: timedelta) -> str:
    """A duration as workflow documents write one (`16m`, `2h`), else in seconds."""
    seconds = d.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def trail_json(workspace_id: str, contact_id: str, entries: list[Entry]) -> bytes:
    """The `--json` shape (module docstring)."""
    return orjson.dumps(
        {
            "workspace_id": workspace_id,
            "contact_id": contact_id,
            "entries": [_entry_json(e) for e in entries],
        },
        option=orjson.OPT_INDENT_2,
    )


def _entry_json(entry: Entry) -> dict[str, Any]:
    branch = entry.branch
    assignment = entry.assignment
    return {
        "seq": entry.seq,
        "decided_at": entry.decided_at,
        "time": entry.time,
        "type": entry.type,
        "input": entry.input,
        "data": entry.data,
        "step_type": entry.step_type,
        "branch": None
        if branch is None
        else {
            "branches": [{"name": n, "when": _check_json(e)} for n, e in branch.tried],
            "taken": branch.taken,
        },
        "assignment": None if assignment is None else asdict(assignment),
    }


def _check_json(e: Evaluated) -> dict[str, Any]:
    if isinstance(e.condition, All | AnyOf):
        group = "all" if isinstance(e.condition, All) else "any"
        return {group: [_check_json(p) for p in e.parts], "held": e.held}
    written = e.condition.model_dump(mode="json", by_alias=True, exclude_none=True)
    seen = duration_text(e.seen) if isinstance(e.seen, timedelta) else e.seen
    return {"condition": written, "seen": seen, "held": e.held}
