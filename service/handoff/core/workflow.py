"""Workflow documents (contract: Workflow documents): the routing a team configures.

The models are the schema: `Workflow.model_validate` is the whole validation, so every error
comes back from pydantic with its path (`steps.1.assign_to.logic`).
"""

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from handoff.core.ids import TeamId, UserId, WorkflowId

__all__ = [
    "AddComment",
    "AssignTo",
    "SendMessage",
    "Step",
    "Trigger",
    "Workflow",
]

StepId = Annotated[str, Field(min_length=1, max_length=100)]


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SendMessage(_Doc):
    id: StepId
    type: Literal["send_message"]
    text: str = Field(min_length=1)
    options: list[str] | None = None


class AssignTo(_Doc):
    """Exactly one target: a user, a team, the whole workspace, or nobody (`unassign`)."""

    id: StepId
    type: Literal["assign_to"]
    user_id: UserId | None = None
    team_id: TeamId | None = None
    workspace: bool = False
    unassign: bool = False
    logic: Literal["round_robin", "least_open_contacts"] = "round_robin"
    only_online: bool = False
    max_open_contacts: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        targets = [
            self.user_id is not None,
            self.team_id is not None,
            self.workspace,
            self.unassign,
        ]
        if sum(targets) != 1:
            raise ValueError("assign_to needs exactly one of user_id, team_id, workspace, unassign")
        return self


class AddComment(_Doc):
    id: StepId
    type: Literal["add_comment"]
    text: str = Field(min_length=1)
    mention: str | None = Field(default=None, min_length=1)


Step = Annotated[SendMessage | AssignTo | AddComment, Field(discriminator="type")]


class Trigger(_Doc):
    type: Literal["conversation_opened", "conversation_closed"]
    source: list[Literal["contact", "user", "workflow", "api", "broadcast"]] | None = None


class Workflow(_Doc):
    id: WorkflowId = Field(min_length=1, max_length=200)
    workspace_id: str = Field(min_length=1)
    name: str = ""
    trigger: Trigger
    steps: list[Step]

    @model_validator(mode="after")
    def _unique_step_ids(self) -> Self:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"duplicate step id {step.id!r}")
            seen.add(step.id)
        return self

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def step_after(self, step_id: str) -> Step | None:
        ids = [s.id for s in self.steps]
        index = ids.index(step_id) + 1
        return self.steps[index] if index < len(self.steps) else None
