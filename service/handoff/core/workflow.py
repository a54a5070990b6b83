"""Workflow documents (contract: Workflow documents): the routing a team configures.

The models are the schema, and `Workflow.model_validate` is the whole validation: first how
deep the document nests (`MAX_STEP_DEPTH`, `MAX_CONDITION_DEPTH`), then shapes and values by
pydantic, then what only the whole document shows (duplicate step ids, jumps to nowhere,
branches nothing can reach), each reported at its path. Durations are at most
`handoff.core.durations.MAX_DURATION` (90 days).
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    model_validator,
)

from handoff.core.conditions import Condition
from handoff.core.durations import Duration
from handoff.core.ids import MAX_SKILLS, Skill, TeamId, UserId, WorkflowId

__all__ = [
    "MAX_CONDITION_DEPTH",
    "MAX_STEP_DEPTH",
    "AddComment",
    "AskQuestion",
    "AssignTo",
    "Branch",
    "BranchStep",
    "ContactFieldSkill",
    "Jump",
    "SendMessage",
    "Step",
    "Trigger",
    "Wait",
    "Workflow",
    "document_problems",
    "nesting_problems",
]

MAX_STEP_DEPTH = 32
"""Steps nest at most 32 levels deep: the document's `steps` are level 1, the steps of their
`branches`, `else`, `on_timeout` and `on_failure` level 2, and so on. A document nested deeper
is refused at the first step past the limit, before anything else is validated: far deeper
documents cannot be serialised (pydantic stops at about 64 levels of branches) or read by the
record parser (about 200 levels of JSON), and no routing needs more than a few levels."""
MAX_CONDITION_DEPTH = 16
"""Conditions nest at most 16 levels deep: a `when` is level 1, the conditions of its `all` or
`any` level 2, and so on. With `MAX_STEP_DEPTH`, the deepest valid document still nests well
within what a `workflow.published` record may (its JSON under 170 levels)."""

StepId = Annotated[str, Field(min_length=1, max_length=100)]


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class SendMessage(_Doc):
    id: StepId
    type: Literal["send_message"]
    text: str = Field(min_length=1)
    options: list[str] | None = None


class ContactFieldSkill(_Doc):
    """A required skill read from the contact: the value of this field (a language, say)."""

    contact_field: str = Field(min_length=1, max_length=200)


MAX_PRIORITY = 1_000_000


def _skill_kind(value: Any) -> str:
    return "<contact_field>" if isinstance(value, dict | ContactFieldSkill) else "<skill>"


RequiredSkill = Annotated[
    Annotated[Skill, Tag("<skill>")] | Annotated[ContactFieldSkill, Tag("<contact_field>")],
    Discriminator(_skill_kind),
]
"""A skill by name, or `{contact_field: NAME}`: the value of that field of the contact."""


class AssignTo(_Doc):
    """Exactly one target: a user, a team, the whole workspace, or nobody (`unassign`).

    A team or workspace assignment that finds nobody eligible waits in the queue for at most
    `timeout` (7 days unless set; `0s` fails at once), then takes the `on_timeout` steps.
    v1.1: `prefer: last_assignee`, `skills` (relaxed after `relax_skills_after` in the
    queue) and `priority` (the queue serves higher first) belong to team and workspace
    targets only.
    """

    id: StepId
    type: Literal["assign_to"]
    user_id: UserId | None = None
    team_id: TeamId | None = None
    workspace: bool = False
    unassign: bool = False
    logic: Literal["round_robin", "least_open_contacts", "longest_idle"] = "round_robin"
    only_online: bool = False
    max_open_contacts: int | None = Field(default=None, ge=1)
    timeout: Duration = "7d"
    on_timeout: list["Step"] = []
    prefer: Literal["last_assignee"] | None = None
    skills: list[RequiredSkill] = Field(default=[], max_length=MAX_SKILLS)
    relax_skills_after: Duration | None = None
    priority: int = Field(default=0, ge=-MAX_PRIORITY, le=MAX_PRIORITY)

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
        routed = {
            "prefer": self.prefer is not None,
            "skills": bool(self.skills),
            "relax_skills_after": self.relax_skills_after is not None,
            "priority": self.priority != 0,
        }
        if self.team_id is None and not self.workspace:
            given = [name for name, set_ in routed.items() if set_]
            if given:
                raise ValueError(f"{', '.join(given)}: only for a team_id or workspace target")
        if self.relax_skills_after is not None and not self.skills:
            raise ValueError("relax_skills_after needs skills to relax")
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
    """What starts a run. v1.1 `assignee_unavailable`: a user's presence went to one of
    `status` (default offline) and stayed there for `after`; every open contact assigned to
    them starts a run."""

    type: Literal["conversation_opened", "conversation_closed", "assignee_unavailable"]
    source: list[Literal["contact", "user", "workflow", "api", "broadcast"]] | None = None
    once_per_contact: bool = False
    status: list[Literal["away", "offline"]] | None = Field(default=None, min_length=1)
    after: Duration | None = None

    @model_validator(mode="after")
    def _options_of_its_type(self) -> Self:
        if self.type != "assignee_unavailable":
            given = [name for name in ("status", "after") if getattr(self, name) is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: only for an assignee_unavailable trigger")
        return self

    @property
    def unavailable_status(self) -> frozenset[str]:
        return frozenset(self.status or ("offline",))


@dataclass(frozen=True, slots=True)
class _Place:
    step: Step
    next_id: str | None
    """The step the run takes after this one (and after any steps nested in it)."""


class Workflow(_Doc):
    """A workflow document. Steps nest at most 32 levels deep (in branches, else,
    on_timeout, on_failure) and conditions at most 16 (all, any); durations are at most 90d."""

    id: WorkflowId = Field(min_length=1, max_length=200)
    workspace_id: str = Field(min_length=1)
    name: str = ""
    trigger: Trigger
    steps: list[Step]

    @model_validator(mode="before")
    @classmethod
    def _not_too_deep(cls, document: Any, info: ValidationInfo) -> Any:
        """Nesting first: validating (and later serialising) a document nested without end
        would exhaust the recursion that does it. (Not for a stored one: `AS_STORED`.)"""
        if (info.context or {}).get("as_stored"):
            return document
        problems = nesting_problems(document)
        if problems:
            raise ValueError("\n".join(problems))
        return document

    @model_validator(mode="after")
    def _whole_document(self) -> Self:
        problems = _structure_problems(self.model_dump(by_alias=True))
        if not self.steps:
            problems.insert(0, "steps: a workflow needs at least one step")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @cached_property
    def _places(self) -> dict[str, _Place]:
        places: dict[str, _Place] = {}
        for place in _walk(self.steps, None):
            places.setdefault(place.step.id, place)
        return places

    def step(self, step_id: str) -> Step:
        return self._places[step_id].step

    def next_after(self, step_id: str) -> str | None:
        return self._places[step_id].next_id

    def first_of(self, steps: Sequence[Step], then: str | None) -> str | None:
        """Where a run goes into `steps` (a branch, `on_timeout`): their first, or `then`."""
        return steps[0].id if steps else then


def _walk(steps: Sequence[Step], after: str | None) -> Iterator[_Place]:
    for i, step in enumerate(steps):
        following = steps[i + 1].id if i + 1 < len(steps) else after
        yield _Place(step, following)
        match step:
            case BranchStep():
                for branch in step.branches:
                    yield from _walk(branch.steps, following)
                yield from _walk(step.else_, following)
            case AssignTo():
                yield from _walk(step.on_timeout, following)
            case AskQuestion():
                yield from _walk(step.on_failure, following)
            case _:
                pass


def nesting_problems(document: object) -> list[str]:
    """Steps nested deeper than `MAX_STEP_DEPTH` and conditions deeper than
    `MAX_CONDITION_DEPTH`, each at the first place past the limit. Reads the raw document
    leniently, and never deeper than the limits, so it is safe on any input."""
    problems: list[str] = []
    if isinstance(document, dict):
        _step_nesting(document.get("steps"), "steps", 1, problems)
    return problems


def _step_nesting(steps: object, path: str, level: int, problems: list[str]) -> None:
    if not isinstance(steps, list):
        return
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        here = f"{path}[{i}]"
        if level > MAX_STEP_DEPTH:
            problems.append(
                f"{here}: steps nested {level} levels deep; steps may nest at most "
                f"{MAX_STEP_DEPTH} levels (in branches, else, on_timeout, on_failure)"
            )
            return
        branches = step.get("branches")
        for b, branch in enumerate(branches if isinstance(branches, list) else []):
            if isinstance(branch, dict):
                _condition_nesting(branch.get("when"), f"{here}.branches[{b}].when", 1, problems)
                _step_nesting(
                    branch.get("steps"), f"{here}.branches[{b}].steps", level + 1, problems
                )
        for nested in ("else", "on_timeout", "on_failure"):
            _step_nesting(step.get(nested), f"{here}.{nested}", level + 1, problems)


def _condition_nesting(condition: object, path: str, level: int, problems: list[str]) -> None:
    if not isinstance(condition, dict):
        return
    # the group it is, as `handoff.core.conditions` tells them apart (all before any)
    group = "all" if "all" in condition else "any" if "any" in condition else None
    parts = condition.get(group) if group else None
    if not isinstance(parts, list) or not parts:
        return
    if level >= MAX_CONDITION_DEPTH:
        problems.append(
            f"{path}.{group}[0]: conditions nested {level + 1} levels deep; all/any may nest "
            f"at most {MAX_CONDITION_DEPTH} levels"
        )
        return
    for c, part in enumerate(parts):
        _condition_nesting(part, f"{path}.{group}[{c}]", level + 1, problems)


def document_problems(document: object) -> list[str]:
    """What only the whole document shows: nesting past the limits, duplicate step ids,
    jumps to no step, branches nothing can reach. It reads the raw document leniently, so
    these are found even when pydantic has shape errors to report too (see
    `handoff.core.problems.describe_workflow`)."""
    return nesting_problems(document) + _structure_problems(document)


def _structure_problems(document: object) -> list[str]:
    """`document_problems` but nesting (checked before all else when a document validates)."""
    problems: list[str] = []
    places = list(_raw_walk(document.get("steps") if isinstance(document, dict) else None))
    seen: dict[str, str] = {}
    for path, step in places:
        step_id = step.get("id")
        if isinstance(step_id, str):
            first = seen.setdefault(step_id, path)
            if first != path:
                problems.append(f"{path}.id: duplicate step id {step_id!r} (also at {first})")
    for path, step in places:
        target = step.get("to")
        if step.get("type") == "jump" and isinstance(target, str) and target not in seen:
            problems.append(f"{path}.to: unknown step id {target!r}")
        if step.get("type") == "branch":
            problems += _unreachable(path, step)
    return problems


def _raw_walk(
    steps: object, path: str = "steps", level: int = 1
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every step with its path, down to `MAX_STEP_DEPTH` (deeper is a problem of its own)."""
    if not isinstance(steps, list) or level > MAX_STEP_DEPTH:
        return
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        here = f"{path}[{i}]"
        yield here, step
        branches = step.get("branches")
        for b, branch in enumerate(branches if isinstance(branches, list) else []):
            if isinstance(branch, dict):
                yield from _raw_walk(branch.get("steps"), f"{here}.branches[{b}].steps", level + 1)
        for nested in ("else", "on_timeout", "on_failure"):
            yield from _raw_walk(step.get(nested), f"{here}.{nested}", level + 1)


def _always(branch: object) -> bool:
    return isinstance(branch, dict) and branch.get("when") == {"all": []}


def _unreachable(path: str, step: dict[str, Any]) -> list[str]:
    branches = step.get("branches")
    if not isinstance(branches, list) or not branches:
        return []
    for b, branch in enumerate(branches[:-1]):
        if _always(branch):
            name = branch.get("name")
            return [
                f"{path}.branches[{b + 1}]: unreachable, branch {name!r} before it always "
                "holds (when: {all: []})"
            ]
    if step.get("else") and _always(branches[-1]):
        return [f"{path}.else: unreachable, branch {branches[-1].get('name')!r} always holds"]
    return []
