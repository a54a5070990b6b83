"""decide(view, input, now) -> the events an input causes. Pure: no I/O, clock or randomness.

`view` is the workspace *after* the input itself was folded in (a conversation that just
opened is open; an agent who just came online is online); the returned events are folded in
after. `now` is the decision's clock reading, taken at the edge and kept in the event log, so
a replay passes the same `now` and gets the same events.
"""

from datetime import datetime

from handoff.core import queue, run
from handoff.core.context import DecisionContext
from handoff.core.envelope import Envelope, OutputEnvelope
from handoff.core.inputs import (
    ContactAssigneeChanged,
    ConversationClosed,
    ConversationOpened,
)
from handoff.core.steps import RunRef
from handoff.core.view import WorkspaceView

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
"""Inputs after which someone may have become eligible, so the queue is tried again."""


def decide(view: WorkspaceView, event: Envelope, now: datetime) -> list[OutputEnvelope]:
    ctx = DecisionContext(view, event, now)
    match event:
        case ConversationOpened() | ConversationClosed():
            if isinstance(event, ConversationClosed):
                queue.leave_closed(ctx, event.data.conversation_id)
            _start_runs(ctx, event)
        case ContactAssigneeChanged(data=data) if data.assignee_id is not None:
            _resume_queued_runs_of(ctx, data.contact_id)
        case _:
            pass
    if view.queue and event.type in _MAY_FREE_AN_AGENT:
        queue.drain(ctx)
    return ctx.events


def _start_runs(ctx: DecisionContext, event: ConversationOpened | ConversationClosed) -> None:
    """Start every matching workflow, in workflow id order (stable, and documented)."""
    trigger = (
        "conversation_opened" if isinstance(event, ConversationOpened) else ("conversation_closed")
    )
    contact_id = event.data.contact_id
    active = {(r.workflow_id, r.contact_id) for r in ctx.view.runs.values()}
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
        run.start(ctx, workflow, published.version, contact_id, event.data.conversation_id)


def _resume_queued_runs_of(ctx: DecisionContext, contact_id: str) -> None:
    """Someone in the inbox took the contact: its queued assignment is served, runs go on."""
    for run_id, entry in sorted(ctx.view.queue.items(), key=lambda item: item[1].position):
        if entry.contact_id == contact_id:
            run.resume(ctx, RunRef(run_id, ctx.view.runs[run_id]))
