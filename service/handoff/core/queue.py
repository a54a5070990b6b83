"""The assignment queue: contacts nobody could take, served when that may have changed.

Every input that can make someone eligible (presence, a closed conversation, a limit, a team,
an assignment made in the inbox) drains the queue: the heads of its lines
(`handoff.core.queue_lines`) are served highest priority first, then oldest first, each by
its own request. A line whose head nobody can take keeps all its contacts, and holds back
no other line: a contact waiting for a skill nobody online has does not block the rest.
"""

import heapq
from collections.abc import Iterator

from handoff.core.context import DecisionContext
from handoff.core.ids import ContactId, ConversationId, RunId
from handoff.core.queue_lines import LineKey, Place, line_of
from handoff.core.run import end, ref_of, resume
from handoff.core.run_ref import RunRef
from handoff.core.steps.assign_to import Request, fail, serve
from handoff.core.view import QueueEntry

__all__ = ["drain", "leave_closed", "waiting_of"]


def drain(ctx: DecisionContext) -> bool:
    """Serve what can be served now; True if anyone was."""
    served = False
    lines = _lines(ctx)
    heads = [(place, key) for key, line in lines.items() if (place := next(line, None)) is not None]
    heapq.heapify(heads)
    while heads:
        place, key = heapq.heappop(heads)
        waiting = _waiting(ctx, place)
        if waiting is not None:
            if not _serve(ctx, *waiting):
                continue  # nobody can take this line's head: nor anyone behind it
            served = True
        if (after := next(lines[key], None)) is not None:
            heapq.heappush(heads, (after, key))
    return served


def _lines(ctx: DecisionContext) -> dict[LineKey, Iterator[Place]]:
    """The view's lines, with the entries this decision queued merged into their places."""
    kept = ctx.view.queue_lines().lines
    if not ctx.queued:  # the common case: nothing to merge
        return {key: iter(line) for key, line in kept.items()}
    fresh: dict[LineKey, list[Place]] = {}
    for run_id, (entry, _) in ctx.queued.items():
        fresh.setdefault(line_of(entry), []).append((-entry.priority, entry.position, run_id))
    return {
        key: heapq.merge(kept.get(key, ()), sorted(fresh.get(key, ())))
        for key in kept.keys() | fresh.keys()
    }


def _waiting(ctx: DecisionContext, place: Place) -> tuple[QueueEntry, RunRef] | None:
    """The entry at `place` and its run, if it still waits: one the view holds waits until
    this decision moves its run on; one this decision queued, until it is served."""
    _, position, run_id = place
    fresh = ctx.queued.get(run_id)
    if fresh is not None and fresh[0].position == position:
        return fresh
    if run_id in ctx.resumed:
        return None
    return ctx.view.queue[run_id], ref_of(ctx, run_id)


def _serve(ctx: DecisionContext, entry: QueueEntry, ref: RunRef) -> bool:
    """Try the entry once; False when nobody is eligible for it."""
    if entry.team_id is not None and entry.team_id not in ctx.view.teams:
        fail(ctx, ref, entry.workflow, "unknown_team", team_id=entry.team_id)
    elif not serve(Request.of_entry(entry), ref, ctx, entry.workflow):
        return False
    ctx.queued.pop(ref.run_id, None)
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
