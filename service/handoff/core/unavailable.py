"""The `assignee_unavailable` trigger (v1.1): a user who goes away or offline, and stays so
for the trigger's `after`, has each open contact assigned to them start a run (typically:
assign again to someone online, and say why in a comment).

With `after` the wait is a durable timer per (workflow, user), kept with the runs' timers
under `watch_key`: started by `presence.watch_started`, cancelled by `presence.watch_ended`
when the user comes back, fired as `timer.elapsed` like any other. So a user back in time
starts nothing, and a replay takes the same path.
"""

from datetime import UTC, datetime

from handoff.core import run
from handoff.core.context import DecisionContext
from handoff.core.durations import to_timedelta
from handoff.core.events import WatchEnded, WatchEndedData, WatchStarted, WatchStartedData
from handoff.core.ids import ContactId, ConversationId, UserId, WorkflowId
from handoff.core.timers import TimerElapsed, watch_key
from handoff.core.view import contact_workflow_key
from handoff.core.workflow import Workflow

__all__ = ["presence_changed", "watch_elapsed"]

_LONG_AGO = datetime.min.replace(tzinfo=UTC)
"""Where a conversation whose opening the view lacks (logged before v1.1) sorts."""


def presence_changed(ctx: DecisionContext, user_id: UserId, status: str) -> None:
    change = ctx.view.presence_changes.get(user_id)
    if change is None or change.seq != ctx.view.version:
        return  # the same status again: no change
    for workflow, version in _watching(ctx):
        key = watch_key(workflow.id, user_id)
        statuses = workflow.trigger.unavailable_status
        if status not in statuses:
            if key in ctx.view.timers:
                data = WatchEndedData(user_id=user_id, workflow_id=workflow.id)
                ctx.emit(WatchEnded, data, subject=user_id)
            continue
        if change.before in statuses:
            continue  # unavailable still (offline after away, say): started already
        after = to_timedelta(workflow.trigger.after or "0s")
        if after:
            until = ctx.cause.time + after
            data_ = WatchStartedData(user_id=user_id, workflow_id=workflow.id, until=until)
            ctx.emit(WatchStarted, data_, subject=user_id)
        else:
            _start_for(ctx, workflow, version, user_id)


def watch_elapsed(ctx: DecisionContext, timer: TimerElapsed) -> None:
    """A watch ran out: the user stayed unavailable for `after`. Only the live watch's
    firing counts (an ended one's, polled late, finds another due time or none)."""
    live = ctx.view.timers.get(timer.data.run_id)
    if live is None or live.due_at != timer.time:
        return
    workflow_id = WorkflowId(timer.data.step_id)
    user_id = UserId(timer.data.run_id.removeprefix(watch_key(workflow_id, "")))
    ended = WatchEndedData(user_id=user_id, workflow_id=workflow_id)
    ctx.emit(WatchEnded, ended, subject=user_id)
    for workflow, version in _watching(ctx):
        if workflow.id == workflow_id:
            _start_for(ctx, workflow, version, user_id)


def _watching(ctx: DecisionContext) -> list[tuple[Workflow, int]]:
    """The active `assignee_unavailable` workflows, in workflow id order."""
    found = []
    for workflow_id in sorted(ctx.view.workflows):
        published = ctx.view.workflows[workflow_id]
        workflow = ctx.view.workflow(workflow_id, published.version)
        if published.active and workflow.trigger.type == "assignee_unavailable":
            found.append((workflow, published.version))
    return found


def _start_for(ctx: DecisionContext, workflow: Workflow, version: int, user_id: UserId) -> None:
    """One run per open contact of the user, oldest conversation first."""
    view = ctx.view
    active = run.active(ctx)
    started: list[tuple[datetime, ConversationId, ContactId]] = []
    for contact_id in view.open_assignments().of_user.get(user_id, {}):
        open_ = view.open_conversations.get(contact_id)
        if not open_ or ctx.assignee(contact_id) != user_id:
            continue
        conversation = view.conversations.get(open_[-1])
        opened = conversation.opened_at if conversation and conversation.opened_at else _LONG_AGO
        started.append((opened, open_[-1], contact_id))
    for _, conversation_id, contact_id in sorted(started):
        if (workflow.id, contact_id) in active:
            continue
        if workflow.trigger.once_per_contact and view.contact_workflows.get(
            contact_workflow_key(workflow.id, contact_id)
        ):
            continue
        run.start(ctx, workflow, version, contact_id, conversation_id)
