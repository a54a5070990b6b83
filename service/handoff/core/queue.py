"""The assignment queue: contacts nobody could take, served when that may have changed.

Every input that can make someone eligible (presence, a closed conversation, a limit, a team,
an assignment made in the inbox) drains the queue: the heads of its lines
(`handoff.core.queue_lines`) are served highest priority first, then oldest first, each by
its own request. A line whose head nobody can take keeps all its contacts, and holds back
no other line: a contact waiting for a skill nobody online has does not block the rest.
"""

import heapq

from handoff.core.context import DecisionContext
from handoff.core.ids import ContactId, ConversationId, RunId
from handoff.core.queue_lines import LineKey, Place
from handoff.core.run import end, ref_of, resume
from handoff.core.steps.assign_to import Request, fail, serve

__all__ = ["drain", "leave_closed", "waiting_of"]


def drain(ctx: DecisionContext) -> bool:
    """Serve what can be served now; True if anyone was."""
    served = False
    lines = ctx.view.queue_lines().lines
    heads: list[tuple[Place, int, LineKey]] = [(line[0], 0, key) for key, line in lines.items()]
    heapq.heapify(heads)
    while heads:
        (_, _, run_id), at, key = heapq.heappop(heads)
        if run_id not in ctx.resumed:
            if not _serve(ctx, run_id):
                continue  # nobody can take this line's head: nor anyone behind it
            served = True
        line = lines[key]
        if at + 1 < len(line):
            heapq.heappush(heads, (line[at + 1], at + 1, key))
    return served


def _serve(ctx: DecisionContext, run_id: RunId) -> bool:
    """Try the entry once; False when nobody is eligible for it."""
    entry = ctx.view.queue[run_id]
    ref = ref_of(ctx, run_id)
    if entry.team_id is not None and entry.team_id not in ctx.view.teams:
        fail(ctx, ref, entry.workflow, "unknown_team", team_id=entry.team_id)
    elif not serve(Request.of_entry(entry), ref, ctx, entry.workflow):
        return False
    resume(ctx, ref)
    return True


def waiting_of(ctx: DecisionContext, contact_id: ContactId) -> list[RunId]:
    """The contact's queued runs not yet moved on by this decision, oldest first."""
    waiting = ctx.view.queue_lines().waiting_of(contact_id)
    return [run_id for run_id in waiting if run_id not in ctx.resumed]


def leave_closed(
    ctx: DecisionContext, contact_id: ContactId, conversation_id: ConversationId
) -> None:
    """A closed conversation leaves the queue, and its waiting run is cancelled."""
    for run_id in waiting_of(ctx, contact_id):
        entry = ctx.view.queue[run_id]
        if entry.conversation_id == conversation_id:
            ref = ref_of(ctx, run_id)
            fail(ctx, ref, entry.workflow, "conversation_closed", team_id=entry.team_id)
            end(ctx, ref, "cancelled")
