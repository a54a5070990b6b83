"""`handoff simulate`: a workspace's recorded inputs re-decided as if a workflow document had
been published at the window's start, in views of its own: the live log and projections are
only read.

One pass over the workspace's log, row by row (`Simulation.feed`), with two views:
- rows decided before `since` are folded into both, nothing decided;
- at the window's start the document is published at `since` (`publication`, the event
  `handoff workflow publish` sends), decided like any input, in the simulated view;
- every row of the window (decided from `since` to `until`, both inclusive) is folded into
  the recorded view as it was logged; each recorded input is applied to the simulated view
  (folded, decided with its recorded clock reading, its decisions folded: the service's
  `apply`) after the simulation's own timers due by its event time have fired. Recorded
  decisions and recorded `timer.elapsed` inputs are not offered to it: it makes its own, and
  its timers fire in event time (`DueTimers`), each decided at its due time;
- a recorded publish or unpublish of the document's id inside the window is skipped (and
  counted): the document stays in force for the whole window, which is the question asked;
- at the end, the simulation's timers due by `until` fire.

The figures, taken alike from both sides (`Tally`):
- assignments: `contact.assigned` per assignee.
- peak open contacts: the most open contacts (the contract's count) the agent held at any
  moment of the window, its start included.
- reassignments: a `contact.assigned` for a contact that had another assignee (its
  `previous_assignee_id`, which the inbox's own changes keep true), counted for the agent it
  went to. The assignee is kept across closes (contract), so a contact that comes back with
  a new conversation and goes to someone else counts too.
- queue waits: event time from the input that queued a contact (`assignment.queued`) to the
  input or timer whose decision served it (`contact.assigned`), per agent served and in all;
  a contact that left its queue otherwise (timed out, conversation closed, assigned in the
  inbox) is not a wait. Timed out and still waiting at the end are counted apart.
- changed: each contact's last assignee from handoff in the window, recorded against
  simulated; a contact assigned on one side only has null on the other.
- fairness: the spread of assignments between the busiest and the least busy agent among
  the agents who could have taken contacts: those online at some moment of the window, and
  any agent assigned on either side. It is one set for both sides (presence is replayed as
  it happened), so the two spreads compare.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from handoff.adapters.pg_log import Logged, SSLMode, connection, read_log
from handoff.audit.folded import EmptyLog
from handoff.core.envelope import Envelope, OutputEnvelope
from handoff.core.event_time import DueTimers
from handoff.core.events import AssignmentFailed, AssignmentQueued, ContactAssigned
from handoff.core.ids import ContactId, RunId, UserId
from handoff.core.inputs import WorkflowPublished, WorkflowUnpublished, publication
from handoff.core.timers import TimerElapsed
from handoff.core.view import WorkspaceView
from handoff.core.workflow import Workflow
from handoff.stats import quantile
from handoff_projections import Changed, evolve
from handoff_projections.apply import apply

__all__ = [
    "CANNOT_KNOW",
    "SOURCE",
    "Change",
    "EmptyLog",
    "Figures",
    "Outcome",
    "Simulation",
    "as_json",
    "simulate",
]

SOURCE = "/handoff/simulate"
"""The source of the publish the simulation makes (its id is derived from it)."""

CANNOT_KNOW = (
    "Contacts and agents are replayed as they behaved: a message an agent sent, a "
    "conversation an agent closed, a contact moved by hand in the inbox and every presence "
    "change stay as recorded, even where the simulated routing would have given the contact "
    "to someone else, who might have answered sooner, later or not at all."
)


@dataclass(frozen=True, slots=True)
class Figures:
    """One side's figures over the window (see the module's docstring)."""

    assignments: dict[UserId, int]
    peak_open_contacts: dict[UserId, int]
    reassignments: dict[UserId, int]
    waits: dict[UserId, list[float]]
    """Seconds each contact the agent got from a queue had waited, in ascending order."""
    queued: int
    timed_out: int
    left: int
    """Contacts that left a queue unserved otherwise: their conversation closed, they were
    assigned in the inbox, their run moved on."""
    waiting_at_end: int
    last_assignees: dict[ContactId, UserId]

    def all_waits(self) -> list[float]:
        return sorted(w for waits in self.waits.values() for w in waits)


@dataclass(frozen=True, slots=True)
class Change:
    contact_id: ContactId
    recorded: UserId | None
    simulated: UserId | None


@dataclass(frozen=True, slots=True)
class Outcome:
    workspace_id: str
    workflow_id: str
    replaces: bool
    """The document's id was a live workflow at the window's start, or was published in the
    window: the document runs in its place. Otherwise it runs beside the recorded ones."""
    since: datetime
    until: datetime
    inputs: int
    """Recorded inputs of the window re-decided."""
    timers: tuple[int, int]
    """`timer.elapsed` in the window: recorded, and fired by the simulation."""
    skipped_publishes: int
    """Recorded publishes and unpublishes of the document's id in the window, not applied."""
    recorded: Figures
    simulated: Figures
    changed: list[Change]
    agents: list[UserId]
    """The agents the fairness figure counts."""

    def spread(self, figures: Figures) -> tuple[UserId, UserId, int] | None:
        """(busiest, least busy, the difference in assignments) among `agents`."""
        if not self.agents:
            return None
        counts = figures.assignments
        busiest = max(self.agents, key=lambda u: (counts.get(u, 0), u))
        least = min(self.agents, key=lambda u: (counts.get(u, 0), u))
        return busiest, least, counts.get(busiest, 0) - counts.get(least, 0)


class Tally:
    """One side's figures, followed event by event through the rows each fold changed."""

    def __init__(self, view: WorkspaceView) -> None:
        self._view = view
        self._cause_at = datetime.min.replace(tzinfo=UTC)
        """The event time of the input or timer whose decisions are being folded."""
        self._waiting = {run_id: entry.queued_at for run_id, entry in view.queue.items()}
        """Run -> when its contact was queued (for those already waiting at the window's
        start, the clock of the decision that queued them: the queue row keeps no more)."""
        self.assignments: Counter[UserId] = Counter()
        self.reassignments: Counter[UserId] = Counter()
        self.peaks: dict[UserId, int] = dict(view.open_contacts)
        self.waits: dict[UserId, list[float]] = {}
        self.queued = 0
        self.timed_out = 0
        self.left = 0
        self.last_assignees: dict[ContactId, UserId] = {}
        self.online = {u for u, status in view.presence.items() if status == "online"}

    def fold(self, event: Envelope, changed: set[Changed]) -> None:
        """`event` was folded into the view, changing `changed`."""
        view = self._view
        if isinstance(event, ContactAssigned):
            data = event.data
            self.assignments[data.assignee_id] += 1
            self.last_assignees[data.contact_id] = data.assignee_id
            previous = data.previous_assignee_id
            if previous is not None and previous != data.assignee_id:
                self.reassignments[data.assignee_id] += 1
        elif isinstance(event, AssignmentQueued):
            self.queued += 1
        elif not isinstance(event, OutputEnvelope):
            self._cause_at = event.time  # an input or a timer: its decisions follow
        for table, key in changed:
            if table == "open_contacts":
                user = UserId(key)
                count = view.open_contacts.get(user, 0)
                if count > self.peaks.get(user, 0):
                    self.peaks[user] = count
            elif table == "presence" and view.presence.get(UserId(key)) == "online":
                self.online.add(UserId(key))
            elif table == "queue":
                self._queue_changed(event, RunId(key))

    def _queue_changed(self, event: Envelope, run_id: RunId) -> None:
        if run_id in self._view.queue:
            self._waiting.setdefault(run_id, self._cause_at)
            return
        queued_at = self._waiting.pop(run_id, None)
        if queued_at is None:
            return
        if isinstance(event, ContactAssigned):
            wait = (self._cause_at - queued_at).total_seconds()
            self.waits.setdefault(event.data.assignee_id, []).append(wait)
        elif isinstance(event, AssignmentFailed) and event.data.reason == "timeout":
            self.timed_out += 1
        else:
            self.left += 1

    def figures(self) -> Figures:
        return Figures(
            assignments=dict(self.assignments),
            peak_open_contacts={u: n for u, n in self.peaks.items() if n > 0},
            reassignments=dict(self.reassignments),
            waits={u: sorted(w) for u, w in self.waits.items()},
            queued=self.queued,
            timed_out=self.timed_out,
            left=self.left,
            waiting_at_end=len(self._view.queue),
            last_assignees=self.last_assignees,
        )


@dataclass
class _Window:
    """What exists once the window has begun."""

    recorded: Tally
    simulated: Tally
    timers: DueTimers
    was_live: bool
    """The document's id was an active workflow at the window's start."""
    inputs: int = 0
    recorded_timers: int = 0
    simulated_timers: int = 0
    skipped_publishes: int = 0
    last_at: datetime | None = None
    """When the last row of the window was decided."""


class Simulation:
    """Fed a workspace's log rows in order, then `finish`ed: pure, no I/O."""

    def __init__(
        self,
        workspace_id: str,
        workflow: Workflow,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> None:
        self._workflow = workflow
        self._since = since
        self._until = until
        self._recorded = WorkspaceView(workspace_id=workspace_id)
        self._simulated = WorkspaceView(workspace_id=workspace_id)
        self._window: _Window | None = None

    def feed(self, logged: Logged) -> None:
        """The next row of the workspace's log."""
        at = logged.decided_at
        if self._since is None:
            self._since = at
        if self._until is not None and at > self._until:
            return
        window = self._window
        if window is None:
            if at < self._since:
                evolve(self._recorded, logged.event)
                evolve(self._simulated, logged.event)
                return
            window = self._begin(self._since)
        window.last_at = at
        event = logged.event
        window.recorded.fold(event, evolve(self._recorded, event))
        if not logged.is_input:
            return
        if isinstance(event, TimerElapsed):
            window.recorded_timers += 1
        elif self._is_the_documents(event):
            window.skipped_publishes += 1
        else:
            window.inputs += 1
            self._fire(window, event.time)
            self._apply(window, event, at)

    def finish(self) -> Outcome:
        """The outcome, once the simulation's timers due by `until` have fired."""
        if self._since is None:
            raise EmptyLog(self._recorded.workspace_id)
        window = self._window or self._begin(self._since)
        until = self._until or window.last_at or self._since
        self._fire(window, until)
        recorded, simulated = window.recorded.figures(), window.simulated.figures()
        return Outcome(
            workspace_id=self._recorded.workspace_id,
            workflow_id=self._workflow.id,
            replaces=window.was_live or window.skipped_publishes > 0,
            since=self._since,
            until=until,
            inputs=window.inputs,
            timers=(window.recorded_timers, window.simulated_timers),
            skipped_publishes=window.skipped_publishes,
            recorded=recorded,
            simulated=simulated,
            changed=_changes(recorded.last_assignees, simulated.last_assignees),
            agents=sorted(
                window.recorded.online | set(recorded.assignments) | set(simulated.assignments)
            ),
        )

    def _begin(self, since: datetime) -> _Window:
        live = self._simulated.workflows.get(self._workflow.id)
        window = _Window(
            recorded=Tally(self._recorded),
            simulated=Tally(self._simulated),
            timers=DueTimers(self._simulated),
            was_live=live is not None and live.active,
        )
        self._window = window
        self._fire(window, since)
        self._apply(window, publication(self._workflow, since, SOURCE), since)
        return window

    def _is_the_documents(self, event: Envelope) -> bool:
        """A recorded publish or unpublish of the simulated document's id."""
        match event:
            case WorkflowPublished(data=data):
                return data.definition.id == self._workflow.id
            case WorkflowUnpublished(data=data):
                return data.workflow_id == self._workflow.id
        return False

    def _fire(self, window: _Window, until: datetime) -> None:
        while (timer := window.timers.pop_due(until)) is not None:
            window.simulated_timers += 1
            self._apply(window, timer, timer.time)

    def _apply(self, window: _Window, event: Envelope, now: datetime) -> None:
        timers, tally = window.timers, window.simulated

        def folded(e: Envelope, changed: set[Changed]) -> None:
            for table, key in changed:
                if table == "timers":
                    timers.set(RunId(key))
            tally.fold(e, changed)

        apply(self._simulated, event, now, folded)


def _changes(recorded: dict[ContactId, UserId], simulated: dict[ContactId, UserId]) -> list[Change]:
    """Contacts whose last assignee differs, in the order they were first assigned (recorded
    first, then those assigned in the simulation alone)."""
    contacts = [*recorded, *(c for c in simulated if c not in recorded)]
    return [
        Change(c, recorded.get(c), simulated.get(c))
        for c in contacts
        if recorded.get(c) != simulated.get(c)
    ]


async def simulate(
    dsn: str,
    workspace_id: str,
    workflow: Workflow,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    ssl: SSLMode | None = None,
) -> Outcome:
    """The simulation over `workspace_id`'s log in the database at `dsn`, read in one
    snapshot; raises `EmptyLog` when the workspace has none."""
    simulation = Simulation(workspace_id, workflow, since, until)
    async with connection(dsn, ssl) as conn:
        async for logged in read_log(conn, workspace_id=workspace_id, until=until):
            simulation.feed(logged)
    return simulation.finish()


def as_json(outcome: Outcome) -> dict[str, Any]:
    """The `--json` document: the contract's keys (`recorded`/`simulated` `assignments`,
    `changed`) and the project's."""
    return {
        "workspace_id": outcome.workspace_id,
        "workflow_id": outcome.workflow_id,
        "replaces": outcome.replaces,
        "since": outcome.since.isoformat(),
        "until": outcome.until.isoformat(),
        "inputs": outcome.inputs,
        "timers": {"recorded": outcome.timers[0], "simulated": outcome.timers[1]},
        "skipped_publishes": outcome.skipped_publishes,
        "recorded": _side_json(outcome, outcome.recorded),
        "simulated": _side_json(outcome, outcome.simulated),
        "changed": [
            {"contact_id": c.contact_id, "recorded": c.recorded, "simulated": c.simulated}
            for c in outcome.changed
        ],
        "fairness_agents": outcome.agents,
        "cannot_know": CANNOT_KNOW,
    }


def _side_json(outcome: Outcome, figures: Figures) -> dict[str, Any]:
    spread = outcome.spread(figures)
    waits = figures.all_waits()
    return {
        "assignments": dict(sorted(figures.assignments.items())),
        "peak_open_contacts": dict(sorted(figures.peak_open_contacts.items())),
        "reassignments": dict(sorted(figures.reassignments.items())),
        "queue": {
            "queued": figures.queued,
            "served": len(waits),
            "timed_out": figures.timed_out,
            "left_unserved": figures.left,
            "waiting_at_end": figures.waiting_at_end,
            "wait_median_s": quantile(waits, 0.5),
            "wait_p90_s": quantile(waits, 0.9),
        },
        "queue_waits": {
            user: {"served": len(w), "median_s": quantile(w, 0.5), "p90_s": quantile(w, 0.9)}
            for user, w in sorted(figures.waits.items())
        },
        "fairness": None
        if spread is None
        else {"busiest": spread[0], "least_busy": spread[1], "spread": spread[2]},
    }
