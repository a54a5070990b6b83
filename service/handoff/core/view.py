"""What a decision may read about one workspace: the projections' rows, held together.

Each attribute is one projection's table (key -> row), filled by the folds in
`handoff_projections`. The decision core only reads it; the app folds events into it.

Rows are immutable values, and a view holds many: frozen slotted dataclasses, which take a
fraction of a pydantic model's memory and time to make or change. They are made only from
validated events; `handoff_projections.rows` validates what is read from the database.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from handoff.core.events import AssignmentQueued, Logic, WorkflowRef
from handoff.core.ids import ContactId, ConversationId, RunId, TeamId, UserId, WorkflowId
from handoff.core.open_assignments import OpenAssignments
from handoff.core.pools import Pools
from handoff.core.queue_lines import QueueLines
from handoff.core.timers import TimerKind
from handoff.core.workflow import Workflow

__all__ = [
    "WORKSPACE_CURSOR",
    "Contact",
    "Conversation",
    "LastAssignment",
    "PresenceChange",
    "PublishedWorkflow",
    "QueueEntry",
    "Run",
    "RunStatus",
    "Team",
    "Timer",
    "User",
    "WorkspaceView",
    "contact_workflow_key",
]


def contact_workflow_key(workflow_id: str, contact_id: str) -> str:
    """The key of `WorkspaceView.contact_workflows`."""
    return f"{workflow_id}/{contact_id}"


RunStatus = Literal["running", "queued", "waiting", "asking"]

WORKSPACE_CURSOR = ""
"""The round-robin cursor key of `assign_to: {workspace: true}`: no team id is empty."""


@dataclass(frozen=True, slots=True)
class User:
    name: str | None = None
    max_open_contacts: int | None = None
    skills: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """A user's latest change of presence: the status before it, and its place in the log
    (an input that repeats the status changes nothing)."""

    before: str
    seq: int


@dataclass(frozen=True, slots=True)
class LastAssignment:
    """A user's most recent assignment, by handoff or in the inbox: `seq` is its place in
    the workspace's log, which orders assignments without trusting anyone's clock."""

    seq: int
    at: datetime


@dataclass(frozen=True, slots=True)
class Team:
    name: str | None = None
    members: tuple[UserId, ...] = ()


@dataclass(frozen=True, slots=True)
class Contact:
    fields: dict[str, str | int | float | bool] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Conversation:
    contact_id: ContactId
    status: Literal["open", "closed"]
    channel: str | None = None
    last_incoming_at: datetime | None = None
    last_outgoing_at: datetime | None = None
    last_incoming_text: str | None = None
    opened_at: datetime | None = None
    """When it (last) opened: `assignee_unavailable` runs start oldest conversation first."""


@dataclass(frozen=True, slots=True)
class PublishedWorkflow:
    version: int
    active: bool


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """A contact waiting for an eligible agent. The queue serves higher `priority` first,
    then lower `position` (oldest first). `skills` are as resolved for this contact; once
    `relaxed` it no longer requires them."""

    position: int
    contact_id: ContactId
    conversation_id: ConversationId
    team_id: TeamId | None
    strategy: Logic
    only_online: bool
    max_open_contacts: int | None
    workflow: WorkflowRef
    queued_at: datetime
    priority: int = 0
    skills: tuple[str, ...] = ()
    relaxed: bool = False
    prefer: Literal["last_assignee"] | None = None

    @classmethod
    def of_queued(
        cls, event: AssignmentQueued, workflow: WorkflowRef, position: int
    ) -> "QueueEntry":
        """The entry `event` puts in the queue: made by the fold, and by a decision that
        serves the queue after queueing (`DecisionContext.queued`)."""
        d = event.data
        return cls(
            position=position,
            contact_id=d.contact_id,
            conversation_id=d.conversation_id,
            team_id=d.team_id,
            strategy=d.strategy,
            only_online=d.only_online,
            max_open_contacts=d.max_open_contacts,
            workflow=workflow,
            queued_at=event.time,
            priority=d.priority,
            skills=tuple(d.skills),
            prefer=d.prefer,
        )

    @property
    def required_skills(self) -> tuple[str, ...]:
        return () if self.relaxed else self.skills


@dataclass(frozen=True, slots=True)
class Run:
    """One workflow run for one conversation; `step_id` is the step it is in (or last took)."""

    workflow_id: WorkflowId
    version: int
    contact_id: ContactId
    conversation_id: ConversationId
    step_id: str | None = None
    status: RunStatus = "running"
    attempts: int = 0
    """Times the current question was asked."""
    jumps: dict[str, int] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Timer:
    """When a waiting run is to be woken, and for what."""

    due_at: datetime
    step_id: str
    kind: TimerKind


_INDEXED = frozenset(
    {"users", "presence", "open_contacts", "last_assigned", "teams"}
    | {"queue"}
    | {"assignees", "open_conversations"}
)
"""The tables the indexes are made of: `Pools`, `QueueLines`, `OpenAssignments`."""


@dataclass
class WorkspaceView:
    """The folded state of one workspace. `version` is the position of its last logged event."""

    workspace_id: str
    version: int = 0
    users: dict[UserId, User] = field(default_factory=dict)
    presence: dict[UserId, str] = field(default_factory=dict)
    presence_changes: dict[UserId, PresenceChange] = field(default_factory=dict)
    teams: dict[TeamId, Team] = field(default_factory=dict)
    contacts: dict[ContactId, Contact] = field(default_factory=dict)
    assignees: dict[ContactId, UserId] = field(default_factory=dict)
    conversations: dict[ConversationId, Conversation] = field(default_factory=dict)
    open_conversations: dict[ContactId, tuple[ConversationId, ...]] = field(default_factory=dict)
    open_contacts: dict[UserId, int] = field(default_factory=dict)
    last_assigned: dict[UserId, LastAssignment] = field(default_factory=dict)
    last_assignees: dict[ContactId, UserId] = field(default_factory=dict)
    """Contact -> its most recent assignee, kept across closes and unassignments."""
    rr_cursors: dict[str, UserId] = field(default_factory=dict)
    workflows: dict[WorkflowId, PublishedWorkflow] = field(default_factory=dict)
    workflow_versions: dict[str, Workflow] = field(default_factory=dict)
    queue: dict[RunId, QueueEntry] = field(default_factory=dict)
    runs: dict[RunId, Run] = field(default_factory=dict)
    timers: dict[RunId, Timer] = field(default_factory=dict)
    contact_workflows: dict[str, int] = field(default_factory=dict)
    """`workflow_id/contact_id` -> runs started: what `once_per_contact` asks about."""
    _pools: Pools | None = field(default=None, compare=False, repr=False)
    _lines: QueueLines | None = field(default=None, compare=False, repr=False)
    _open: OpenAssignments | None = field(default=None, compare=False, repr=False)

    def workflow(self, workflow_id: str, version: int) -> Workflow:
        return self.workflow_versions[f"{workflow_id}/{version}"]

    def pools(self) -> Pools:
        """The routing index of this view's rows, built when first asked for."""
        if self._pools is None:
            self._pools = Pools.of(self)
        return self._pools

    def queue_lines(self) -> QueueLines:
        """The queue's entries by what they wait for, built when first asked for."""
        if self._lines is None:
            self._lines = QueueLines.of(self)
        return self._lines

    def open_assignments(self) -> OpenAssignments:
        """Each user's open contacts, built when first asked for."""
        if self._open is None:
            self._open = OpenAssignments.of(self)
        return self._open

    def follow(self, changed: Iterable[tuple[str, str]]) -> None:
        """Keep the indexes built so far in step with rows a fold changed; called by
        `handoff_projections.evolve` after every event (and by whoever changes rows)."""
        if self._pools is None and self._lines is None and self._open is None:
            return
        changed = [row for row in changed if row[0] in _INDEXED]
        if not changed:
            return  # most events change only runs, timers, conversations
        if self._pools is not None:
            self._pools.follow(self, changed)
        if self._lines is not None:
            self._lines.follow(self, changed)
        if self._open is not None:
            self._open.follow(self, changed)

    def forget_indexes(self) -> None:
        """Rows were loaded or changed behind the folds' back: build the indexes afresh."""
        self._pools = None
        self._lines = None
        self._open = None
