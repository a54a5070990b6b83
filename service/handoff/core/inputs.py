"""Facts from outside, named as the contract names them (contract: Input data).

Input payloads ignore unknown fields so an upstream may add optional fields without breaking us.
Records are validated strictly (`handoff.adapters.cloudevents.parse`): every field of its
declared JSON type, nothing coerced (`"5"` is no integer, `true` no number, `1` no boolean).
"""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from handoff.core.envelope import Envelope
from handoff.core.ids import (
    MAX_SKILLS,
    ContactId,
    ConversationId,
    Skill,
    TeamId,
    UserId,
    WorkflowId,
    derive_id,
)
from handoff.core.workflow import Workflow

__all__ = [
    "INPUT_TYPES",
    "Actor",
    "ContactAssigneeChanged",
    "ContactSnapshot",
    "ContactUpdated",
    "ConversationClosed",
    "ConversationOpened",
    "Input",
    "MessageReceived",
    "MessageSent",
    "Sender",
    "TeamRemoved",
    "TeamUpserted",
    "UserPresenceChanged",
    "UserRemoved",
    "UserUpserted",
    "WorkflowPublished",
    "WorkflowUnpublished",
    "publication",
]

Presence = Literal["online", "away", "offline"]
FieldValue = str | int | float | bool | None


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ContactSnapshot(_Data):
    fields: dict[str, FieldValue] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)


class ConversationOpenedData(_Data):
    contact_id: ContactId = Field(min_length=1)
    conversation_id: ConversationId = Field(min_length=1)
    source: Literal["contact", "user", "workflow", "api", "broadcast"]
    channel: str | None = None
    contact: ContactSnapshot | None = None


class ConversationOpened(Envelope):
    type: Literal["conversation.opened"]
    data: ConversationOpenedData


class ConversationClosedData(_Data):
    contact_id: ContactId = Field(min_length=1)
    conversation_id: ConversationId = Field(min_length=1)
    closed_by: UserId | None = None


class ConversationClosed(Envelope):
    type: Literal["conversation.closed"]
    data: ConversationClosedData


class MessageReceivedData(_Data):
    contact_id: ContactId = Field(min_length=1)
    conversation_id: ConversationId = Field(min_length=1)
    message_id: str = Field(min_length=1)
    text: str


class MessageReceived(Envelope):
    type: Literal["message.received"]
    data: MessageReceivedData


class Sender(_Data):
    type: Literal["user", "workflow", "ai", "api", "broadcast"]
    user_id: UserId | None = None


class MessageSentData(_Data):
    contact_id: ContactId = Field(min_length=1)
    conversation_id: ConversationId = Field(min_length=1)
    message_id: str = Field(min_length=1)
    sender: Sender


class MessageSent(Envelope):
    type: Literal["message.sent"]
    data: MessageSentData


class ContactUpdatedData(_Data):
    contact_id: ContactId = Field(min_length=1)
    fields: dict[str, FieldValue] = Field(default_factory=dict)
    tags: list[str] | None = None


class ContactUpdated(Envelope):
    type: Literal["contact.updated"]
    data: ContactUpdatedData


class Actor(_Data):
    type: Literal["user", "api"]
    user_id: UserId | None = None


class ContactAssigneeChangedData(_Data):
    contact_id: ContactId = Field(min_length=1)
    assignee_id: UserId | None
    actor: Actor


class ContactAssigneeChanged(Envelope):
    type: Literal["contact.assignee_changed"]
    data: ContactAssigneeChangedData


class UserPresenceChangedData(_Data):
    user_id: UserId = Field(min_length=1)
    status: Presence


class UserPresenceChanged(Envelope):
    type: Literal["user.presence_changed"]
    data: UserPresenceChangedData


class UserUpsertedData(_Data):
    user_id: UserId = Field(min_length=1)
    name: str | None = None
    max_open_contacts: int | None = Field(default=None, ge=0)
    skills: list[Skill] | None = Field(default=None, max_length=MAX_SKILLS)
    """v1.1: what the user can take (`assign_to.skills`); absent means none."""


class UserUpserted(Envelope):
    type: Literal["user.upserted"]
    data: UserUpsertedData


class UserRemovedData(_Data):
    user_id: UserId = Field(min_length=1)


class UserRemoved(Envelope):
    type: Literal["user.removed"]
    data: UserRemovedData


class TeamUpsertedData(_Data):
    team_id: TeamId = Field(min_length=1)
    name: str | None = None
    members: list[UserId]


class TeamUpserted(Envelope):
    type: Literal["team.upserted"]
    data: TeamUpsertedData


class TeamRemovedData(_Data):
    team_id: TeamId = Field(min_length=1)


class TeamRemoved(Envelope):
    type: Literal["team.removed"]
    data: TeamRemovedData


class WorkflowPublishedData(_Data):
    definition: Workflow


class WorkflowPublished(Envelope):
    type: Literal["workflow.published"]
    data: WorkflowPublishedData


def publication(workflow: Workflow, at: datetime, source: str) -> WorkflowPublished:
    """`workflow` published at `at` by `source`: what `handoff workflow publish` sends and
    what `handoff simulate` publishes at its window's start, so the two cannot drift. The id
    is derived from the workflow and the time, so the same publish sent twice is one."""
    return WorkflowPublished(
        id=derive_id("publish", workflow.id, at.isoformat()),
        source=source,
        type="workflow.published",
        time=at,
        workspaceid=workflow.workspace_id,
        data=WorkflowPublishedData(definition=workflow),
    )


class WorkflowUnpublishedData(_Data):
    workflow_id: WorkflowId = Field(min_length=1)


class WorkflowUnpublished(Envelope):
    type: Literal["workflow.unpublished"]
    data: WorkflowUnpublishedData


Input = Annotated[
    ConversationOpened
    | ConversationClosed
    | MessageReceived
    | MessageSent
    | ContactUpdated
    | ContactAssigneeChanged
    | UserPresenceChanged
    | UserUpserted
    | UserRemoved
    | TeamUpserted
    | TeamRemoved
    | WorkflowPublished
    | WorkflowUnpublished,
    Field(discriminator="type"),
]

INPUT_TYPES: dict[str, type[Envelope]] = {
    "conversation.opened": ConversationOpened,
    "conversation.closed": ConversationClosed,
    "message.received": MessageReceived,
    "message.sent": MessageSent,
    "contact.updated": ContactUpdated,
    "contact.assignee_changed": ContactAssigneeChanged,
    "user.presence_changed": UserPresenceChanged,
    "user.upserted": UserUpserted,
    "user.removed": UserRemoved,
    "team.upserted": TeamUpserted,
    "team.removed": TeamRemoved,
    "workflow.published": WorkflowPublished,
    "workflow.unpublished": WorkflowUnpublished,
}
