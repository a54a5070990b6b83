"""Our decisions: the outputs the contract names, and the run bookkeeping kept in the log.

Outputs (`contact.assigned`, ...) leave on Kafka. Run events (`run.*`) stay in the event log:
they record every step a run takes, so a replay and an audit see the same path.
"""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from handoff.core.envelope import OutputEnvelope
from handoff.core.ids import ContactId, ConversationId, RunId, TeamId, UserId, WorkflowId
from handoff.core.inputs import Input
from handoff.core.timers import TimerElapsed, TimerKind

__all__ = [
    "OUTPUT_TOPIC_OF",
    "Answered",
    "AssignmentFailed",
    "AssignmentQueued",
    "Candidate",
    "CommentCreated",
    "ContactAssigned",
    "ContactUnassigned",
    "Decision",
    "Event",
    "Explanation",
    "FailureReason",
    "Jumped",
    "Logic",
    "MessageRequested",
    "QuestionAsked",
    "RunEnded",
    "RunStarted",
    "RunWaiting",
    "SkillsRelaxed",
    "StepEntered",
    "Strategy",
    "WatchEnded",
    "WatchStarted",
    "WorkflowRef",
]

Logic = Literal["round_robin", "least_open_contacts", "longest_idle"]
"""How a team or workspace step picks among eligible members."""
Strategy = Literal[
    "round_robin", "least_open_contacts", "longest_idle", "last_assignee", "specific_user"
]
FailureReason = Literal[
    "timeout", "team_empty", "unknown_team", "unknown_user", "conversation_closed"
]


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WorkflowRef(_Data):
    id: WorkflowId
    version: int
    run_id: RunId
    step_id: str


class Candidate(_Data):
    user_id: UserId
    online: bool
    open_contacts: int
    eligible: bool
    reason: str | None = None
    last_assigned_at: datetime | None = Field(default=None, exclude_if=lambda at: at is None)
    """Longest idle (v1.1): when the member was last assigned (absent: never)."""


MAX_CANDIDATES = 20
"""Candidates an explanation lists at most (contract v1.1), whatever the size of the team."""


class Explanation(_Data):
    """Why a routing decision came out as it did: the members it examined, bounded (v1.1).

    `candidates` lists at most `MAX_CANDIDATES`; the counts say how many the decision
    examined (`considered`), how many of them were eligible and why the others were not.
    Explanations logged before v1.1 listed every member and lack the counts (their defaults).
    """

    candidates: list[Candidate]
    cursor_before: UserId | None = None
    cursor_after: UserId | None = None
    considered: int = 0
    eligible: int = 0
    ineligible: dict[str, int] = {}
    passed_over: int | None = Field(default=None, exclude_if=lambda n: n is None)
    """Round robin: members between the cursor and the assignee in team order."""
    truncated: bool = False


class ContactAssignedData(_Data):
    contact_id: ContactId
    conversation_id: ConversationId | None
    assignee_id: UserId
    team_id: TeamId | None
    previous_assignee_id: UserId | None
    strategy: Strategy
    only_online: bool
    explanation: Explanation
    workflow: WorkflowRef | None = None


class ContactAssigned(OutputEnvelope):
    type: Literal["contact.assigned"] = "contact.assigned"
    data: ContactAssignedData


class ContactUnassignedData(_Data):
    contact_id: ContactId
    conversation_id: ConversationId | None = None
    previous_assignee_id: UserId
    workflow: WorkflowRef | None = None


class ContactUnassigned(OutputEnvelope):
    type: Literal["contact.unassigned"] = "contact.unassigned"
    data: ContactUnassignedData


class AssignmentQueuedData(_Data):
    """The queue entry. `strategy`, `only_online`, `max_open_contacts`, `skills` (as resolved
    for this contact), `relax_skills_at` and `prefer` extend the contract: they are the
    request the queue retries, and downstream may show them."""

    contact_id: ContactId
    conversation_id: ConversationId
    team_id: TeamId | None
    strategy: Logic
    only_online: bool
    max_open_contacts: int | None = None
    explanation: Explanation
    workflow: WorkflowRef | None = None
    priority: int = 0
    skills: list[str] = []
    relax_skills_at: datetime | None = None
    prefer: Literal["last_assignee"] | None = None


class AssignmentQueued(OutputEnvelope):
    type: Literal["assignment.queued"] = "assignment.queued"
    data: AssignmentQueuedData


class AssignmentFailedData(_Data):
    contact_id: ContactId
    conversation_id: ConversationId | None = None
    team_id: TeamId | None = None
    user_id: UserId | None = None
    reason: FailureReason
    explanation: Explanation
    workflow: WorkflowRef | None = None


class AssignmentFailed(OutputEnvelope):
    type: Literal["assignment.failed"] = "assignment.failed"
    data: AssignmentFailedData


class CommentCreatedData(_Data):
    contact_id: ContactId
    conversation_id: ConversationId
    text: str
    mentions: list[UserId]
    workflow: WorkflowRef | None = None


class CommentCreated(OutputEnvelope):
    type: Literal["comment.created"] = "comment.created"
    data: CommentCreatedData


class MessageRequestedData(_Data):
    contact_id: ContactId
    conversation_id: ConversationId
    text: str
    options: list[str] | None = None
    workflow: WorkflowRef | None = None


class MessageRequested(OutputEnvelope):
    type: Literal["message.requested"] = "message.requested"
    data: MessageRequestedData


class RunStartedData(_Data):
    run_id: RunId
    workflow_id: WorkflowId
    version: int
    contact_id: ContactId
    conversation_id: ConversationId


class RunStarted(OutputEnvelope):
    type: Literal["run.started"] = "run.started"
    data: RunStartedData


class StepEnteredData(_Data):
    run_id: RunId
    step_id: str


class StepEntered(OutputEnvelope):
    type: Literal["run.step_entered"] = "run.step_entered"
    data: StepEnteredData


class RunWaitingData(_Data):
    """The run waits until `until` (a durable timer) for: the end of a `wait`, an answer
    (`question`), or an agent (`queue`, the assignment's timeout; `relax`, the time its
    skills relax)."""

    run_id: RunId
    step_id: str
    until: datetime
    kind: TimerKind


class RunWaiting(OutputEnvelope):
    type: Literal["run.waiting"] = "run.waiting"
    data: RunWaitingData


class SkillsRelaxedData(_Data):
    """A queued contact has waited `relax_skills_after`: it no longer requires the skills."""

    run_id: RunId
    step_id: str


class SkillsRelaxed(OutputEnvelope):
    type: Literal["run.skills_relaxed"] = "run.skills_relaxed"
    data: SkillsRelaxedData


class WatchStartedData(_Data):
    """A user went to a status an `assignee_unavailable` trigger waits `after` on: its
    timer runs until `until` (cancelled by `presence.watch_ended`)."""

    user_id: UserId
    workflow_id: WorkflowId
    until: datetime


class WatchStarted(OutputEnvelope):
    type: Literal["presence.watch_started"] = "presence.watch_started"
    data: WatchStartedData


class WatchEndedData(_Data):
    """The user came back (or left the trigger's statuses) before the timer ran out."""

    user_id: UserId
    workflow_id: WorkflowId


class WatchEnded(OutputEnvelope):
    type: Literal["presence.watch_ended"] = "presence.watch_ended"
    data: WatchEndedData


class QuestionAskedData(_Data):
    run_id: RunId
    step_id: str
    attempt: int


class QuestionAsked(OutputEnvelope):
    type: Literal["run.question_asked"] = "run.question_asked"
    data: QuestionAskedData


class AnsweredData(_Data):
    run_id: RunId
    step_id: str
    variable: str
    value: str


class Answered(OutputEnvelope):
    type: Literal["run.answered"] = "run.answered"
    data: AnsweredData


class JumpedData(_Data):
    run_id: RunId
    step_id: str
    to: str


class Jumped(OutputEnvelope):
    type: Literal["run.jumped"] = "run.jumped"
    data: JumpedData


class RunEndedData(_Data):
    run_id: RunId
    outcome: Literal["completed", "cancelled", "failed"]


class RunEnded(OutputEnvelope):
    type: Literal["run.ended"] = "run.ended"
    data: RunEndedData


Decision = Annotated[
    ContactAssigned
    | ContactUnassigned
    | AssignmentQueued
    | AssignmentFailed
    | CommentCreated
    | MessageRequested
    | RunStarted
    | StepEntered
    | RunWaiting
    | SkillsRelaxed
    | WatchStarted
    | WatchEnded
    | QuestionAsked
    | Answered
    | Jumped
    | RunEnded,
    Field(discriminator="type"),
]

Event = Annotated[Input | TimerElapsed | Decision, Field(discriminator="type")]

OUTPUT_TOPIC_OF: dict[str, str] = {
    "contact.assigned": "assignments",
    "contact.unassigned": "assignments",
    "assignment.queued": "assignments",
    "assignment.failed": "assignments",
    "comment.created": "comments",
    "message.requested": "messages",
}
"""Which output topic (by its role in the settings) each decision leaves on; run events stay."""
