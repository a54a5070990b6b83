"""The assignment queue: contacts nobody could take, served oldest first when that changes.

Every input that can make someone eligible (presence, a closed conversation, a limit, a team,
an assignment made in the inbox) drains the queue. Entries are tried in queue order, each
by its own request: an entry nobody can take yet does not hold back a later one that has a
different team or limit.
"""

from handoff.core.context import DecisionContext
from handoff.core.ids import ConversationId, RunId
from handoff.core.run import end, ref_of, resume
from handoff.core.steps.assign_to import Request, fail, try_assign
from handoff.core.view import QueueEntry

__all__ = ["drain", "leave_closed"]


def drain(ctx: DecisionContext) -> None:
    for run_id, entry in _in_order(ctx):
        ref = ref_of(ctx, run_id)
        if entry.team_id is not None and entry.team_id not in ctx.view.teams:
            fail(ctx, ref, entry.workflow, "unknown_team", team_id=entry.team_id)
            resume(ctx, ref)
        elif try_assign(Request.of(entry), ref, ctx, entry.workflow) is None:
            resume(ctx, ref)


def leave_closed(ctx: DecisionContext, conversation_id: ConversationId) -> None:
    """A closed conversation leaves the queue, and its waiting run is cancelled."""
    for run_id, entry in _in_order(ctx):
        if entry.conversation_id == conversation_id:
            ref = ref_of(ctx, run_id)
            fail(ctx, ref, entry.workflow, "conversation_closed", team_id=entry.team_id)
            end(ctx, ref, "cancelled")


def _in_order(ctx: DecisionContext) -> list[tuple[RunId, QueueEntry]]:
    entries = sorted(ctx.view.queue.items(), key=lambda item: item[1].position)
    return [(run_id, e) for run_id, e in entries if run_id not in ctx.resumed]
