"""Timers in event time: a view's timers by due time, so that an input is applied only after
the timers of its workspace that fell due before it happened.

The poller fires timers by the wall clock; in a backlog applied late that is after inputs
that happened later (a conversation's close before the wait that ended earlier), and the
backlog would decide otherwise than live did. So before an input at time T is applied, its
workspace's timers due by T fire first (`handle_batch`), with the same derived ids the poller
gives them: whichever fires one first, the other finds it a duplicate.

A heap with lazy deletion: a timer re-set or gone leaves its old entry, dropped when it comes
to the top. Each timer set costs O(log n), each input a look at the top: nothing grows with
the workspace's waiting runs.
"""

import heapq
from datetime import datetime

from handoff.core.ids import RunId
from handoff.core.timers import TimerElapsed, elapsed
from handoff.core.view import WorkspaceView

__all__ = ["DueTimers"]


class DueTimers:
    def __init__(self, view: WorkspaceView) -> None:
        self._view = view
        self._heap = [(t.due_at, run_id) for run_id, t in view.timers.items()]
        heapq.heapify(self._heap)

    def set(self, run_id: RunId) -> None:
        """The view's timer of `run_id` was set (or moved)."""
        timer = self._view.timers.get(run_id)
        if timer is not None:
            heapq.heappush(self._heap, (timer.due_at, run_id))

    def pop_due(self, until: datetime) -> TimerElapsed | None:
        """The earliest timer due by `until`, as its input (None: none is), taken off."""
        heap, timers = self._heap, self._view.timers
        while heap:
            due_at, run_id = heap[0]
            timer = timers.get(run_id)
            if timer is None or timer.due_at != due_at:
                heapq.heappop(heap)  # gone, or moved: a newer entry stands for it
                continue
            if due_at > until:
                return None
            heapq.heappop(heap)
            ws = self._view.workspace_id
            return elapsed(ws, run_id, timer.step_id, timer.kind, due_at)
        return None
