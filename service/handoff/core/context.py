"""One decision in progress: what it has emitted so far, and what that changed.

A decision can make several assignments (draining a queue serves many contacts), and each
must see the open counts and cursors the earlier ones left. The view is folded only after the
decision, so the context keeps those few changes as an overlay on top of it.
"""

from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel

from handoff.core.envelope import Envelope, OutputEnvelope
from handoff.core.events import Answered, ContactAssigned, ContactUnassigned, Jumped
from handoff.core.ids import ContactId, RunId, UserId, derive_id
from handoff.core.run_ref import RunRef
from handoff.core.view import WORKSPACE_CURSOR, QueueEntry, Run, WorkspaceView

__all__ = ["DecisionContext"]

E = TypeVar("E", bound=OutputEnvelope)


class DecisionContext:
    def __init__(self, view: WorkspaceView, cause: Envelope, now: datetime) -> None:
        self.view = view
        self.cause = cause
        self.now = now
        self.events: list[OutputEnvelope] = []
        self._open_delta: dict[UserId, int] = {}
        self._cursors: dict[str, UserId] = {}
        self._assignees: dict[ContactId, UserId | None] = {}
        self._assigned_now: dict[UserId, int] = {}
        """User -> the place in this decision of the output that last assigned them (1 for
        the first output): the log position folding it will give is the view's plus that."""
        self._last_assignees: dict[ContactId, UserId] = {}
        self._variables: dict[RunId, dict[str, str]] = {}
        self._jumps: dict[tuple[RunId, str], int] = {}
        self.resumed: set[RunId] = set()
        self.freed = False
        """Someone's open contacts went down in this decision: the queue may be served."""
        self.shifted: set[UserId] = set()
        """Users this decision moved in the routing index (`restore_index`)."""
        self.queued: dict[RunId, tuple[QueueEntry, RunRef]] = {}
        """Runs this decision queued and has not served yet. The view's queue has them only
        once the decision is folded, but a later step of the same decision may free someone
        they wait for (another workflow moving the contact away): `handoff.core.queue.drain`
        serves them too."""

    def emit(self, kind: type[E], data: BaseModel, subject: str | None) -> E:
        """Append an output whose id is derived from the cause and its place in the decision."""
        event = kind.model_validate(
            {
                "id": self.derive_id(len(self.events)),
                "time": self.now,
                "workspaceid": self.view.workspace_id,
                "subject": subject,
                "causationid": self.cause.id,
                "data": data,
            }
        )
        self.events.append(event)
        if isinstance(event, ContactAssigned):
            self._assigned_now[event.data.assignee_id] = len(self.events)
            self._reassign(event.data.contact_id, event.data.assignee_id)
            self._last_assignees[event.data.contact_id] = event.data.assignee_id
            if event.data.strategy != "specific_user":
                cursor_key = event.data.team_id or WORKSPACE_CURSOR
                self._cursors[cursor_key] = event.data.assignee_id
        elif isinstance(event, ContactUnassigned):
            self._reassign(event.data.contact_id, None)
        elif isinstance(event, Answered):
            self._variables.setdefault(event.data.run_id, {})[event.data.variable] = (
                event.data.value
            )
        elif isinstance(event, Jumped):
            key = (event.data.run_id, event.data.step_id)
            self._jumps[key] = self._jumps.get(key, 0) + 1
        return event

    def derive_id(self, *parts: str | int) -> str:
        """An id for something this decision makes: unique to the cause (its workspace,
        source and id, since CloudEvents ids are unique only per source) and to `parts`."""
        cause = self.cause
        return derive_id(cause.workspaceid, cause.source, cause.id, *parts)

    def _reassign(self, contact_id: ContactId, assignee: UserId | None) -> None:
        """Keep the overlay, and the routing index, as folding the decision so far would."""
        previous = self.assignee(contact_id)
        self._assignees[contact_id] = assignee
        if self.view.open_conversations.get(contact_id):
            if previous is not None:
                self._open_delta[previous] = self._open_delta.get(previous, 0) - 1
                self.freed = True
            if assignee is not None:
                self._open_delta[assignee] = self._open_delta.get(assignee, 0) + 1
        pools = self.view.pools()
        for user_id in {previous, assignee} - {None}:
            assert user_id is not None
            pools.shift(self.view, user_id, self.open_contacts(user_id), self.idle(user_id))
            self.shifted.add(user_id)

    def assignee(self, contact_id: ContactId) -> UserId | None:
        if contact_id in self._assignees:
            return self._assignees[contact_id]
        return self.view.assignees.get(contact_id)

    def last_assignee(self, contact_id: ContactId) -> UserId | None:
        """The contact's most recent assignee, kept across closes and unassignments."""
        last = self._last_assignees.get(contact_id)
        return last if last is not None else self.view.last_assignees.get(contact_id)

    def open_contacts(self, user_id: UserId) -> int:
        return self.view.open_contacts.get(user_id, 0) + self._open_delta.get(user_id, 0)

    def idle(self, user_id: UserId) -> int:
        """Where the user's last assignment stands in the log (0: never): one made by this
        decision comes after every logged one, in the order made."""
        now = self._assigned_now.get(user_id)
        if now is not None:
            return self.view.version + now
        last = self.view.last_assigned.get(user_id)
        return last.seq if last is not None else 0

    def assigned_at(self, user_id: UserId) -> datetime | None:
        """When the user was last assigned (this decision's clock for one it made)."""
        if user_id in self._assigned_now:
            return self.now
        last = self.view.last_assigned.get(user_id)
        return last.at if last is not None else None

    def restore_index(self) -> None:
        """Put the users this decision moved back where the view's rows place them: for a
        caller that will not fold the decisions (`decide(..., keep_index=False)`)."""
        if self.shifted:
            self.view.pools().follow(self.view, [("users", u) for u in self.shifted])

    def variables(self, run_id: RunId, run: Run) -> dict[str, str]:
        return {**run.variables, **self._variables.get(run_id, {})}

    def jumps(self, run_id: RunId, run: Run, step_id: str) -> int:
        return run.jumps.get(step_id, 0) + self._jumps.get((run_id, step_id), 0)

    def cursor(self, key: str) -> UserId | None:
        return self._cursors.get(key, self.view.rr_cursors.get(key))
