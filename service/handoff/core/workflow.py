"""Workflow documents (contract: Workflow documents): the routing a team configures.

The models are the schema, and `Workflow.model_validate` is the whole validation: shapes and
values by pydantic, then what only the whole document shows (duplicate step ids, jumps to
nowhere, branches nothing can reach), each reported at its path.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from handoff.core.conditions import All, Condition
from handoff.core.durations import Duration
from handoff.core.ids import TeamId, UserId, WorkflowId

__all__ = [
    "AddComment",
    "AskQuestion",
    "AssignTo",
    "Branch",
    "BranchStep",
    "Jump",
    "SendMessage",
    "Step",
    "Trigger",
    "Wait",
    "Workflow",
]

StepId = Annotated[str, Field(min_length=1, max_length=100)]


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class SendMessage(_Doc):
    id: StepId
    type: Literal["send_message"]
    text: str = Field(min_length=1)
    options: list[str] | None = None


class AssignTo(_Doc):
    """Exactly one target: a user, a team, the whole workspace, or nobody (`unassign`).

    A team or workspace assignment that finds nobody eligible waits in the queue for at most
    `timeout` (7 days unless set; `0s` fails at once), then takes the `on_timeout` steps.
    """

    id: StepId
    type: Literal["assign_to"]
    user_id: UserId | None = None
    team_id: TeamId | None = None
    workspace: bool = False
    unassign: bool = False
    logic: Literal["round_robin", "least_open_contacts"] = "round_robin"
    only_online: bool = False
    max_open_contacts: int | None = Field(default=None, ge=1)
    timeout: Duration = "7d"
    on_timeout: list["Step"] = []

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


class Wait(_Doc):
    id: StepId
    type: Literal["wait"]
    duration: Duration


class Branch(_Doc):
    name: str = Field(min_length=1)
    when: Condition
    steps: list["Step"] = []


class BranchStep(_Doc):
    """The first branch whose `when` holds runs its steps; none: `else`. Then the run goes
    on after the branch step."""

    id: StepId
    type: Literal["branch"]
    branches: list[Branch] = Field(min_length=1)
    else_: list["Step"] = Field(default=[], alias="else")


class AskQuestion(_Doc):
    """Ask, then wait for the contact's answer: an option (its text, any case, or its
    number), or any text when there are no options. It is saved as the variable `save_as`.
    A non-matching answer asks again up to `retries` times; no answer within `timeout`, or
    retries used up, takes the `on_failure` steps."""

    id: StepId
    type: Literal["ask_question"]
    text: str = Field(min_length=1)
    options: list[str] | None = Field(default=None, min_length=1)
    save_as: str = Field(min_length=1)
    timeout: Duration | None = None
    retries: int = Field(default=0, ge=0, le=10)
    on_failure: list["Step"] = []


class Jump(_Doc):
    """Go to step `to`, at most `max_jumps` times in a run; then go on after the jump."""

    id: StepId
    type: Literal["jump"]
    to: StepId
    max_jumps: int = Field(default=3, ge=1, le=10)


_STEP_TYPES = ("send_message", "assign_to", "add_comment", "wait", "branch", "ask_question", "jump")


def _step_type(value: Any) -> str | None:
    """The step's tag, `<type>`: error paths leave such tags out (`steps[2].text`)."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return f"<{kind}>" if kind in _STEP_TYPES else None


Step = Annotated[
    Annotated[SendMessage, Tag("<send_message>")]
    | Annotated[AssignTo, Tag("<assign_to>")]
    | Annotated[AddComment, Tag("<add_comment>")]
    | Annotated[Wait, Tag("<wait>")]
    | Annotated[BranchStep, Tag("<branch>")]
    | Annotated[AskQuestion, Tag("<ask_question>")]
    | Annotated[Jump, Tag("<jump>")],
    Discriminator(
        _step_type,
        custom_error_type="unknown_step_type",
        custom_error_message=f"unknown step type; one of {', '.join(_STEP_TYPES)}",
    ),
]

for _model in (AssignTo, Branch, BranchStep, AskQuestion):
    _model.model_rebuild()


class Trigger(_Doc):
    type: Literal["conversation_opened", "conversation_closed"]
    source: list[Literal["contact", "user", "workflow", "api", "broadcast"]] | None = None
    once_per_contact: bool = False


@dataclass(frozen=True, slots=True)
class _Place:
    step: Step
    path: str
    next_id: str | None
    """The step the run takes after this one (and after any steps nested in it)."""


class Workflow(_Doc):
    id: WorkflowId = Field(min_length=1, max_length=200)
    workspace_id: str = Field(min_length=1)
    name: str = ""
    trigger: Trigger
    steps: list[Step]

    @model_validator(mode="after")
    def _whole_document(self) -> Self:
        problems = list(_problems(self))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @cached_property
    def _places(self) -> dict[str, _Place]:
        places: dict[str, _Place] = {}
        for place in _walk(self.steps, "steps", None):
            places.setdefault(place.step.id, place)
        return places

    def step(self, step_id: str) -> Step:
        return self._places[step_id].step

    def next_after(self, step_id: str) -> str | None:
        return self._places[step_id].next_id

    def first_of(self, steps: Sequence[Step], then: str | None) -> str | None:
        """Where a run goes into `steps` (a branch, `on_timeout`): their first, or `then`."""
        return steps[0].id if steps else then


def _walk(steps: Sequence[Step], path: str, after: str | None) -> Iterator[_Place]:
    for i, step in enumerate(steps):
        following = steps[i + 1].id if i + 1 < len(steps) else after
        here = f"{path}[{i}]"
        yield _Place(step, here, following)
        match step:
            case BranchStep():
                for b, branch in enumerate(step.branches):
                    yield from _walk(branch.steps, f"{here}.branches[{b}].steps", following)
                yield from _walk(step.else_, f"{here}.else", following)
            case AssignTo():
                yield from _walk(step.on_timeout, f"{here}.on_timeout", following)
            case AskQuestion():
                yield from _walk(step.on_failure, f"{here}.on_failure", following)
            case _:
                pass


def _problems(workflow: Workflow) -> Iterator[str]:
    places = list(_walk(workflow.steps, "steps", None))
    if not places:
        yield "steps: a workflow needs at least one step"
    seen: dict[str, str] = {}
    for place in places:
        first = seen.setdefault(place.step.id, place.path)
        if first != place.path:
            yield f"{place.path}.id: duplicate step id {place.step.id!r} (also at {first})"
    for place in places:
        step = place.step
        if isinstance(step, Jump) and step.to not in seen:
            yield f"{place.path}.to: unknown step id {step.to!r}"
        if isinstance(step, BranchStep):
            for b, branch in enumerate(step.branches[:-1]):
                if isinstance(branch.when, All) and not branch.when.all:
                    yield (
                        f"{place.path}.branches[{b + 1}]: unreachable, branch "
                        f"{branch.name!r} before it always holds (when: {{all: []}})"
                    )
                    break
            else:
                last = step.branches[-1]
                if step.else_ and isinstance(last.when, All) and not last.when.all:
                    yield f"{place.path}.else: unreachable, branch {last.name!r} always holds"
