"""decide(view, input, now) -> the events an input causes. Pure: no I/O, clock or randomness.

`view` is the workspace *after* the input itself was folded in (a conversation that just
opened is open; an agent who just came online is online); the returned events are folded in
after. `now` is the decision's clock reading, taken at the edge and kept in the event log, so
a replay passes the same `now` and gets the same events. Conditions and timers measure time
from the input's own `time`, which a replay has too.
"""

from datetime import datetime

from handoff.core import queue, run, unavailable
from handoff.core.context import DecisionContext
from handoff.core.envelope import Envelope, OutputEnvelope
from handoff.core.ids import ContactId
from handoff.core.inputs import (
    ContactAssigneeChanged,
    ConversationClosed,
    ConversationOpened,
    MessageReceived,
    UserPresenceChanged,
)
from handoff.core.run_ref import Goto
from handoff.core.steps import ask_question, assign_to
from handoff.core.steps.cancel import cancel, cancelled_if_closed
from handoff.core.timers import TimerElapsed
from handoff.core.version import CORE_VERSION
from handoff.core.view import WorkspaceView, contact_workflow_key
from handoff.core.workflow import AskQuestion, AssignTo

__all__ = ["decide"]

_MAY_FREE_AN_AGENT = frozenset(
    {
        "conversation.closed",
        "contact.assignee_changed",
        "user.presence_changed",
        "user.upserted",
        "team.upserted",
        "team.removed",
    }
)
"""Inputs after which someone may have become eligible, so the queue is tried again (as
after any decision that lowered someone's open contacts)."""


def decide(
    view: WorkspaceView,
    event: Envelope,
    now: datetime,
    *,
    keep_index: bool = False,
    core_version: int = CORE_VERSION,
) -> list[OutputEnvelope]:
    """`keep_index`: the caller folds the returned decisions into `view` next (as
    `handoff_projections.apply` does), so the routing index may stay as the decision moved
    it, which is where the fold would put it. Otherwise it is put back as the view has it.

    `core_version`: decide as that version of the core did (`handoff.core.version`), for an
    audit re-deciding a log an older core wrote."""
    ctx = DecisionContext(view, event, now)
    match event:
        case ConversationOpened():
            _start_runs(ctx, event)
        case ConversationClosed(data=data):
            queue.leave_closed(ctx, data.contact_id, data.conversation_id)
            _cancel_waiting_runs_of(ctx, data.conversation_id)
            _start_runs(ctx, event)
        case MessageReceived(data=data):
            _answer(ctx, data.conversation_id, data.text)
        case TimerElapsed():
            _wake(ctx, event)
        case ContactAssigneeChanged(data=data) if data.assignee_id is not None:
            _resume_queued_runs_of(ctx, data.contact_id)
        case UserPresenceChanged(data=data):
            unavailable.presence_changed(ctx, data.user_id, data.status)
        case _:
            pass
    if core_version < 3:
        ctx.queued.clear()  # version 2 served only what the view held queued
    if (view.queue or ctx.queued) and (event.type in _MAY_FREE_AN_AGENT or ctx.freed):
        # Serving the queue resumes runs, whose steps may free an agent again (a contact
        # moved to someone else): then the lines are tried again, until a pass frees nobody.
        ctx.freed = False
        while queue.drain(ctx) and ctx.freed:
            ctx.freed = False
    if not keep_index:
        ctx.restore_index()
    return ctx.events


def _start_runs(ctx: DecisionContext, event: ConversationOpened | ConversationClosed) -> None:
    """Start every matching workflow, in workflow id order (stable, and documented)."""
    trigger = (
        "conversation_opened" if isinstance(event, ConversationOpened) else ("conversation_closed")
    )
    contact_id = event.data.contact_id
    active = run.active(ctx)
    for workflow_id in sorted(ctx.view.workflows):
        published = ctx.view.workflows[workflow_id]
        workflow = ctx.view.workflow(workflow_id, published.version)
        if not published.active or workflow.trigger.type != trigger:
            continue
        sources = workflow.trigger.source
        if isinstance(event, ConversationOpened) and sources and event.data.source not in sources:
            continue
        if (workflow_id, contact_id) in active:
            continue
        if workflow.trigger.once_per_contact and ctx.view.contact_workflows.get(
            contact_workflow_key(workflow_id, contact_id)
        ):
            continue
        run.start(ctx, workflow, published.version, contact_id, event.data.conversation_id)


def _cancel_waiting_runs_of(ctx: DecisionContext, conversation_id: str) -> None:
    """A run waiting or asking in a conversation that closed ends now: its wait is where
    the contract ends it, `cancelled` (unless the close is what the workflow runs on)."""
    for run_id, r in sorted(ctx.view.runs.items()):
        if r.conversation_id == conversation_id and r.status in ("waiting", "asking"):
            ref = run.ref_of(ctx, run_id)
            if not ref.close_triggered and run_id not in ctx.resumed:
                cancel(ref, ctx)


def _answer(ctx: DecisionContext, conversation_id: str, text: str) -> None:
    for run_id, r in sorted(ctx.view.runs.items()):
        if r.conversation_id != conversation_id or r.status != "asking" or r.step_id is None:
            continue
        ref = run.ref_of(ctx, run_id)
        step = ref.workflow.step(r.step_id)
        assert isinstance(step, AskQuestion)
        flow = ask_question.answer(step, ref, ctx, text)
        if isinstance(flow, Goto):
            run.go(ctx, ref, flow.step_id)


def _wake(ctx: DecisionContext, timer: TimerElapsed) -> None:
    """A timer fell due. It counts only if the run is still where the timer was set."""
    if timer.data.kind == "unavailable":
        unavailable.watch_elapsed(ctx, timer)
        return
    r = ctx.view.runs.get(timer.data.run_id)
    if r is None or r.step_id != timer.data.step_id:
        return
    ref = run.ref_of(ctx, timer.data.run_id)
    step = ref.workflow.step(r.step_id)
    match timer.data.kind:
        case "wait" if r.status == "waiting":
            if not cancelled_if_closed(ref, ctx):
                run.resume(ctx, ref)
        case "question" if r.status == "asking" and isinstance(step, AskQuestion):
            run.go(ctx, ref, ask_question.fail(step, ref).step_id)
        case "queue" if r.status == "queued" and isinstance(step, AssignTo):
            request = assign_to.Request.of_entry(ctx.view.queue[timer.data.run_id])
            run.go(ctx, ref, assign_to.time_out(step, ref, ctx, request).step_id)
        case "relax" if r.status == "queued" and isinstance(step, AssignTo):
            if assign_to.relax(step, ref, ctx) == "next":
                run.resume(ctx, ref)
        case _:
            pass


def _resume_queued_runs_of(ctx: DecisionContext, contact_id: ContactId) -> None:
    """Someone in the inbox took the contact: its queued assignment is served, runs go on."""
    for run_id in queue.waiting_of(ctx, contact_id):
        run.resume(ctx, run.ref_of(ctx, run_id))
