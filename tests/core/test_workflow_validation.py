"""Workflow documents (contract: Workflow documents): every malformed document is rejected with
each problem on its own line at its path, the valid one is accepted, and the run order through
nested steps is what the document reads as. Pure: no broker, no database."""

import copy
import json
import re
from collections.abc import Callable
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from handoff.adapters.cloudevents import Accepted, Parsed, Rejected, dump_event, load_event, parse
from handoff.cli import main
from handoff.core.conditions import Schedule
from handoff.core.durations import MAX_DURATION
from handoff.core.inputs import WorkflowPublished
from handoff.core.problems import describe, describe_workflow
from handoff.core.workflow import (
    MAX_CONDITION_DEPTH,
    MAX_STEP_DEPTH,
    AssignTo,
    BranchStep,
    Workflow,
)

BASE = """\
id: unanswered-reassign
workspace_id: ws-1
name: Reassign unanswered conversations
trigger: {type: conversation_opened, source: [contact]}
steps:
  - {id: welcome, type: send_message, text: "Hi! An agent will be with you shortly."}
  - {id: first, type: assign_to, user_id: u-ana}
  - {id: wait, type: wait, duration: 15m}
  - id: check
    type: branch
    branches:
      - name: unanswered
        when: {all: [{conversation: status, op: eq, value: open},
                     {conversation: time_since_last_outgoing, op: not_exists}]}
        steps:
          - {id: second, type: assign_to, team_id: support, logic: round_robin, only_online: true}
          - {id: note, type: add_comment, text: "Reassigned: no reply within 15 minutes",
             mention: assignee}
    else: []
"""

Doc = dict[str, Any]
Edit = Callable[[Doc], None]
Expected = list[tuple[str, tuple[str, ...]]]
"""Per problem line, in order: its exact path, and words the rest of the line contains."""

_BRANCH = "steps[3].branches[0]"


def base() -> Doc:
    doc: Doc = yaml.safe_load(BASE)
    return doc


def problems_of(doc: Doc) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        Workflow.model_validate(doc)
    return describe_workflow(caught.value, doc)


# Edits address the document with the same paths the problems are reported at.


def _parts(path: str) -> list[str | int]:
    return [int(i) if i else key for key, i in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path)]


def _parent(doc: Doc, path: str) -> tuple[Any, str | int]:
    *steps, last = _parts(path)
    node: Any = doc
    for part in steps:
        node = node[part]
    return node, last


def put(path: str, value: Any) -> Edit:
    def edit(doc: Doc) -> None:
        node, last = _parent(doc, path)
        node[last] = copy.deepcopy(value)

    return edit


def drop(path: str) -> Edit:
    def edit(doc: Doc) -> None:
        node, last = _parent(doc, path)
        del node[last]

    return edit


def insert(path: str, value: Any) -> Edit:
    """Insert into a list, `value` becoming the item at `path` (`steps[4]` appends to 4)."""

    def edit(doc: Doc) -> None:
        node, last = _parent(doc, path)
        assert isinstance(last, int)
        node.insert(last, copy.deepcopy(value))

    return edit


def both(*edits: Edit) -> Edit:
    def edit(doc: Doc) -> None:
        for one in edits:
            one(doc)

    return edit


JUMP_NOWHERE = {"id": "again", "type": "jump", "to": "nowhere"}
ASK = {"id": "ask", "type": "ask_question", "text": "Sales or support?", "save_as": "topic"}
SCHEDULE = {"timezone": "Europe/Berlin", "days": ["mon"], "from": "09:00", "to": "17:00"}
ONE_TARGET = "needs exactly one of user_id, team_id, workspace, unassign"

CASES: list[Any] = [
    pytest.param(
        put(f"{_BRANCH}.when.all[0].op", "equals"),
        [(f"{_BRANCH}.when.all[0].op", ("unknown operator 'equals'", "'eq'", "'not_exists'"))],
        id="unknown-operator",
    ),
    pytest.param(
        put(f"{_BRANCH}.when", {"any": [{"contact_tag": "vip", "op": "is"}]}),
        [(f"{_BRANCH}.when.any[0].op", ("unknown operator 'is'",))],
        id="unknown-operator-in-any",
    ),
    pytest.param(
        put("steps[1].type", "assign"),
        [("steps[1]", ("unknown step type", "send_message", "assign_to", "jump"))],
        id="unknown-step-type",
    ),
    pytest.param(
        put(f"{_BRANCH}.steps[1].type", "comment"),
        [(f"{_BRANCH}.steps[1]", ("unknown step type", "add_comment"))],
        id="unknown-step-type-in-branch",
    ),
    pytest.param(
        drop("steps[0].text"),
        [("steps[0].text", ("Field required",))],
        id="send-message-without-text",
    ),
    pytest.param(
        drop("trigger"),
        [("trigger", ("Field required",))],
        id="no-trigger",
    ),
    pytest.param(
        put("steps[1].team_id", "support"),
        [("steps[1]", (ONE_TARGET,))],
        id="assign-to-two-targets",
    ),
    pytest.param(
        drop("steps[1].user_id"),
        [("steps[1]", (ONE_TARGET,))],
        id="assign-to-no-target",
    ),
    pytest.param(
        put(f"{_BRANCH}.steps[0].workspace", True),
        [(f"{_BRANCH}.steps[0]", (ONE_TARGET,))],
        id="assign-to-team-and-workspace-in-branch",
    ),
    pytest.param(
        put("steps[2].duration", "15 minutes"),
        [("steps[2].duration", ())],
        id="bad-duration",
    ),
    pytest.param(
        put(f"{_BRANCH}.steps[0].on_timeout", [{"id": "sorry", "type": "send_message"}]),
        [(f"{_BRANCH}.steps[0].on_timeout[0].text", ("Field required",))],
        id="missing-text-in-on-timeout-in-branch",
    ),
    pytest.param(
        insert("steps[4]", JUMP_NOWHERE),
        [("steps[4].to", ("unknown step id 'nowhere'",))],
        id="jump-to-unknown-id",
    ),
    pytest.param(
        insert(f"{_BRANCH}.steps[2]", JUMP_NOWHERE),
        [(f"{_BRANCH}.steps[2].to", ("unknown step id 'nowhere'",))],
        id="jump-to-unknown-id-in-branch",
    ),
    pytest.param(
        put(f"{_BRANCH}.steps[1].id", "welcome"),
        [(f"{_BRANCH}.steps[1].id", ("duplicate step id 'welcome'", "also at steps[0]"))],
        id="duplicate-id-in-branch",
    ),
    pytest.param(
        put("steps[3].else", [{"id": "second", "type": "wait", "duration": "1h"}]),
        [("steps[3].else[0].id", ("duplicate step id 'second'", f"also at {_BRANCH}.steps[0]"))],
        id="duplicate-id-between-branch-and-else",
    ),
    pytest.param(
        insert("steps[4]", {"id": "again", "type": "jump", "to": "wait", "max_jumps": 11}),
        [("steps[4].max_jumps", ("less than or equal to 10",))],
        id="max-jumps-over-10",
    ),
    pytest.param(
        put(f"{_BRANCH}.when.all[1]", {"conversaton": "status", "op": "eq", "value": "open"}),
        [(f"{_BRANCH}.when.all[1]", ("a condition needs one of", "conversation", "schedule"))],
        id="unknown-condition-key",
    ),
    pytest.param(
        put(f"{_BRANCH}.when.all[0].conversation", "state"),
        [(f"{_BRANCH}.when.all[0].conversation", ("unknown value 'state'", "'status'"))],
        id="unknown-conversation-attribute",
    ),
    pytest.param(
        put(f"{_BRANCH}.when.all[0].valu", "open"),
        [(f"{_BRANCH}.when.all[0].valu", ("Extra inputs are not permitted",))],
        id="unknown-field-in-condition",
    ),
    pytest.param(
        put(f"{_BRANCH}.when", {"schedule": {**SCHEDULE, "timezone": "Mars/Olympus"}}),
        [(f"{_BRANCH}.when.schedule.timezone", ("unknown timezone 'Mars/Olympus'",))],
        id="bad-schedule-timezone",
    ),
    pytest.param(
        put(f"{_BRANCH}.when", {"schedule": {**SCHEDULE, "days": ["monday"]}}),
        [(f"{_BRANCH}.when.schedule.days[0]", ("unknown value 'monday'", "'mon'"))],
        id="bad-schedule-day",
    ),
    pytest.param(
        put("steps[2].minutes", 15),
        [("steps[2].minutes", ("Extra inputs are not permitted",))],
        id="unknown-field-on-step",
    ),
    pytest.param(
        put("trigger.type", "conversation_started"),
        [("trigger.type", ("unknown value 'conversation_started'", "'conversation_opened'"))],
        id="unknown-trigger-type",
    ),
    pytest.param(
        insert("steps[3].branches[0]", {"name": "always", "when": {"all": []}, "steps": []}),
        [("steps[3].branches[1]", ("unreachable", "'always'", "{all: []}"))],
        id="branch-unreachable-after-all-empty",
    ),
    pytest.param(
        both(
            put(f"{_BRANCH}.when", {"all": []}),
            put("steps[3].else", [{"id": "late", "type": "add_comment", "text": "no"}]),
        ),
        [("steps[3].else", ("unreachable", "'unanswered' always holds"))],
        id="else-unreachable-after-all-empty",
    ),
    pytest.param(
        insert("steps[3]", {**ASK, "retries": -1}),
        [("steps[3].retries", ("greater than or equal to 0",))],
        id="ask-question-negative-retries",
    ),
    pytest.param(
        insert("steps[3]", {**ASK, "options": []}),
        [("steps[3].options", ("at least 1 item",))],
        id="ask-question-no-options",
    ),
    pytest.param(
        put("steps", []),
        [("steps", ("at least one step",))],
        id="no-steps",
    ),
    pytest.param(
        both(drop("steps[0].text"), put(f"{_BRANCH}.when.all[0].op", "equals")),
        [
            ("steps[0].text", ("Field required",)),
            (f"{_BRANCH}.when.all[0].op", ("unknown operator 'equals'",)),
        ],
        id="two-shape-problems-two-lines",
    ),
    pytest.param(
        both(put(f"{_BRANCH}.steps[1].id", "welcome"), insert("steps[4]", JUMP_NOWHERE)),
        [
            (f"{_BRANCH}.steps[1].id", ("duplicate step id 'welcome'",)),
            ("steps[4].to", ("unknown step id 'nowhere'",)),
        ],
        id="two-document-problems-two-lines",
    ),
    # v1.1: skills, prefer, relax_skills_after, priority; the assignee_unavailable trigger
    pytest.param(
        put("steps[1].skills", ["es"]),
        [("steps[1]", ("skills: only for a team_id or workspace target",))],
        id="skills-on-a-user-target",
    ),
    pytest.param(
        put(f"{_BRANCH}.steps[0].relax_skills_after", "2m"),
        [(f"{_BRANCH}.steps[0]", ("relax_skills_after needs skills",))],
        id="relax-without-skills",
    ),
    pytest.param(
        put(f"{_BRANCH}.steps[0].skills", ["es", {"contact_field": ""}, {"field": "x"}]),
        [
            (f"{_BRANCH}.steps[0].skills[1].contact_field", ("at least 1 character",)),
            (f"{_BRANCH}.steps[0].skills[2].contact_field", ("Field required",)),
            (f"{_BRANCH}.steps[0].skills[2].field", ("Extra inputs",)),
        ],
        id="malformed-skills",
    ),
    pytest.param(
        put(f"{_BRANCH}.steps[0].prefer", "last_agent"),
        [(f"{_BRANCH}.steps[0].prefer", ("last_assignee",))],
        id="unknown-prefer",
    ),
    pytest.param(
        put(f"{_BRANCH}.steps[0].logic", "random"),
        [(f"{_BRANCH}.steps[0].logic", ("longest_idle",))],
        id="unknown-logic",
    ),
    pytest.param(
        put(f"{_BRANCH}.steps[0].priority", 10**9),
        [(f"{_BRANCH}.steps[0].priority", ("less than or equal to 1000000",))],
        id="priority-out-of-range",
    ),
    pytest.param(
        put("trigger", {"type": "conversation_opened", "after": "5m"}),
        [("trigger", ("after: only for an assignee_unavailable trigger",))],
        id="after-on-another-trigger",
    ),
    pytest.param(
        put("trigger", {"type": "assignee_unavailable", "status": ["online"]}),
        [("trigger.status[0]", ("'away'", "'offline'"))],
        id="unavailable-status-online",
    ),
]


def test_v11_options_are_valid_where_they_belong() -> None:
    doc = base()
    doc["trigger"] = {"type": "assignee_unavailable", "status": ["away", "offline"], "after": "5m"}
    doc["steps"][3]["branches"][0]["steps"][0].update(
        logic="longest_idle",
        prefer="last_assignee",
        skills=["billing", {"contact_field": "language"}],
        relax_skills_after="2m",
        priority=10,
    )
    workflow = Workflow.model_validate(doc)
    assert workflow.trigger.unavailable_status == {"away", "offline"}


@pytest.mark.parametrize(("edit", "expected"), CASES)
def test_a_malformed_document_is_rejected_with_each_problem_at_its_path(
    edit: Edit, expected: Expected
) -> None:
    doc = base()
    edit(doc)
    lines = problems_of(doc)
    assert len(lines) == len(expected), lines
    for line, (path, words) in zip(lines, expected, strict=True):
        assert line.startswith(f"{path}: "), line
        for word in words:
            assert word in line, line
        assert "<" not in line.split(": ", 1)[0], f"a union tag in the path: {line}"


def test_a_bad_duration_is_explained_with_examples() -> None:
    doc = base()
    put("steps[2].duration", "15 minutes")(doc)
    assert problems_of(doc) == [
        "steps[2].duration: not a duration: '15 minutes' (write e.g. 30s, 15m, 2h, 1d)"
    ]


def test_shape_and_whole_document_problems_are_reported_together() -> None:
    doc = base()
    both(drop("steps[0].text"), insert("steps[4]", JUMP_NOWHERE))(doc)
    lines = problems_of(doc)
    assert [line.split(": ", 1)[0] for line in lines] == ["steps[0].text", "steps[4].to"]


def test_schedule_times_written_plainly_in_yaml_are_clock_times_or_rejected() -> None:
    doc = base()
    doc["steps"][3]["branches"][0]["when"] = yaml.safe_load(
        "{schedule: {timezone: Europe/Berlin, days: [mon], from: 09:00, to: 17:00}}"
    )
    try:
        workflow: Workflow | None = Workflow.model_validate(doc)
        problems: list[str] = []
    except ValidationError as err:
        workflow, problems = None, describe(err)
    if workflow is None:  # rejected, at the time it cannot read
        assert any(line.startswith(f"{_BRANCH}.when.schedule.to: ") for line in problems)
    else:  # or read as the clock times written
        check = workflow.step("check")
        assert isinstance(check, BranchStep)
        when = check.branches[0].when
        assert isinstance(when, Schedule)
        assert (when.schedule.from_, when.schedule.to) == (time(9), time(17))


def test_the_base_document_is_valid() -> None:
    workflow = Workflow.model_validate(base())
    assert workflow.id == "unanswered-reassign"
    assert [step.id for step in workflow.steps] == ["welcome", "first", "wait", "check"]
    check = workflow.step("check")
    assert isinstance(check, BranchStep)
    assert check.else_ == []
    assert [step.id for step in check.branches[0].steps] == ["second", "note"]


def test_the_run_order_goes_into_a_branch_and_on_after_it() -> None:
    doc = base()
    put(
        f"{_BRANCH}.steps[0].on_timeout", [{"id": "sorry", "type": "send_message", "text": "Sorry"}]
    )(doc)
    insert("steps[4]", {"id": "done", "type": "add_comment", "text": "routed"})(doc)
    workflow = Workflow.model_validate(doc)

    assert workflow.next_after("welcome") == "first"
    assert workflow.next_after("first") == "wait"
    assert workflow.next_after("wait") == "check"
    # the branch step itself goes on after the branch, past the steps nested in it
    after = workflow.next_after("check")
    assert after == "done"
    check = workflow.step("check")
    assert isinstance(check, BranchStep)
    assert workflow.first_of(check.branches[0].steps, after) == "second"
    assert workflow.first_of(check.else_, after) == "done"  # empty else: straight on
    assert workflow.next_after("second") == "note"
    assert workflow.next_after("note") == "done"  # the last step of a branch
    # on_timeout, two levels down, goes on with the step after its assign_to
    second = workflow.step("second")
    assert isinstance(second, AssignTo)
    assert workflow.first_of(second.on_timeout, workflow.next_after("second")) == "sorry"
    assert workflow.next_after("sorry") == "note"
    assert workflow.next_after("done") is None


def test_a_branch_that_ends_the_document_ends_the_run() -> None:
    workflow = Workflow.model_validate(base())
    assert workflow.next_after("check") is None
    assert workflow.next_after("note") is None
    check = workflow.step("check")
    assert isinstance(check, BranchStep)
    assert workflow.first_of(check.else_, None) is None


def test_cli_validate_prints_each_problem_at_its_path_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = base()
    both(
        drop("steps[0].text"),
        put("steps[2].duration", "15 minutes"),
        put(f"{_BRANCH}.when.all[0].op", "equals"),
    )(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))

    with pytest.raises(SystemExit) as exited:
        main(["workflow", "validate", str(path)])

    assert exited.value.code == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert [line.split(": ", 2)[:2] for line in lines] == [
        [str(path), "steps[0].text"],
        [str(path), "steps[2].duration"],
        [str(path), f"{_BRANCH}.when.all[0].op"],
    ]
    assert "unknown operator 'equals'" in lines[2]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_cli_validate_accepts_the_valid_document(
    suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / f"good{suffix}"
    path.write_text(BASE if suffix == ".yaml" else json.dumps(base()))

    assert main(["workflow", "validate", str(path)]) == 0

    out, err = capsys.readouterr()
    assert err == ""
    assert out == f"{path}: valid workflow 'unanswered-reassign' with 4 step(s)\n"


# --- on the wire: the same document in `workflow.published`, validated strictly ---------------

TEMPLATES = sorted((Path(__file__).resolve().parents[2] / "deploy" / "workflows").glob("*.yaml"))


def on_the_wire(doc: Doc) -> Parsed:
    """`doc` as `workflow.published` reaches the service: JSON, validated strictly."""
    record = {
        "specversion": "1.0",
        "id": "publish-1",
        "source": "/cli",
        "type": "workflow.published",
        "time": "2026-11-23T09:00:00Z",
        "workspaceid": doc.get("workspace_id", "ws-1"),
        "data": {"definition": doc},
    }
    return parse(json.dumps(record).encode(), 1 << 20)


@pytest.mark.parametrize(("edit", "expected"), CASES)
def test_given_a_malformed_document_on_the_wire_then_the_same_problems_at_the_same_paths(
    edit: Edit, expected: Expected
) -> None:
    """Strict validation (no coercion) of the record changes nothing for workflow documents:
    each problem is the one `handoff workflow validate` reports, under `data.definition`."""
    doc = base()
    edit(doc)
    parsed = on_the_wire(doc)
    assert isinstance(parsed, Rejected)
    lines = problems_of(doc)
    assert parsed.reason == f"{len(lines)} validation error(s): " + "; ".join(
        f"data.definition.{line}" for line in lines
    )


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_given_a_template_on_the_wire_then_accepted_as_the_cli_validates_it(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert main(["workflow", "validate", str(path)]) == 0
    parsed = on_the_wire(doc)
    assert isinstance(parsed, Accepted), parsed
    assert isinstance(parsed.event, WorkflowPublished)
    assert parsed.event.data.definition == Workflow.model_validate(doc)


def test_given_the_base_document_on_the_wire_then_accepted() -> None:
    parsed = on_the_wire(base())
    assert isinstance(parsed, Accepted)


# --- limits: nesting and durations ----------------------------------------------------------


def branches_deep(levels: int, when: Any = None) -> Doc:
    """A document whose first step is a branch in a branch ... `levels` deep, with a message
    at the bottom; the innermost branch's condition is `when`."""
    step: Doc = {"id": f"s{levels}", "type": "send_message", "text": "deep"}
    for i in reversed(range(1, levels)):
        inner = when if (when is not None and i == levels - 1) else {"contact_tag": "vip"}
        branch = {"name": "b", "when": inner, "steps": [step]}
        step = {"id": f"s{i}", "type": "branch", "branches": [branch]}
    doc = base()
    doc["steps"] = [step]
    return doc


def conditions_deep(levels: int) -> Any:
    """A condition `levels` deep: `all` in `any` in `all` ..., a leaf at the bottom."""
    condition: Any = {"contact_tag": "vip"}
    for i in range(levels - 1):
        condition = {"all" if i % 2 else "any": [condition]}
    return condition


STEPS_PATH = "steps[0]" + ".branches[0].steps[0]" * MAX_STEP_DEPTH


def test_given_steps_nested_past_the_limit_then_refused_at_the_first_step_past_it() -> None:
    """Given branches nested 33 levels deep (or 120: pydantic could not serialise it, and
    the service crashed with PydanticSerializationError), when validated, then one problem,
    at the first step past the 32-level limit, naming the limit."""
    for levels in (MAX_STEP_DEPTH + 1, 120):
        assert problems_of(branches_deep(levels)) == [
            f"{STEPS_PATH}: steps nested 33 levels deep; steps may nest at most 32 levels "
            "(in branches, else, on_timeout, on_failure)"
        ]


def test_given_steps_nested_past_the_limit_in_on_timeout_then_refused_there() -> None:
    step: Doc = {"id": "last", "type": "send_message", "text": "x"}
    for i in range(MAX_STEP_DEPTH):
        step = {"id": f"a{i}", "type": "assign_to", "team_id": "t", "on_timeout": [step]}
    doc = base()
    doc["steps"] = [step]
    path = "steps[0]" + ".on_timeout[0]" * MAX_STEP_DEPTH
    assert problems_of(doc) == [
        f"{path}: steps nested 33 levels deep; steps may nest at most 32 levels "
        "(in branches, else, on_timeout, on_failure)"
    ]


def test_given_conditions_nested_past_the_limit_then_refused_where_they_go_past() -> None:
    doc = base()
    doc["steps"][3]["branches"][0]["when"] = conditions_deep(MAX_CONDITION_DEPTH + 1)
    path = f"{_BRANCH}.when" + "".join(
        f".{'all' if i % 2 else 'any'}[0]" for i in reversed(range(MAX_CONDITION_DEPTH))
    )
    assert problems_of(doc) == [
        f"{path}: conditions nested 17 levels deep; all/any may nest at most 16 levels"
    ]


def test_given_the_deepest_document_allowed_then_it_validates_serialises_and_goes_on_the_wire() -> (
    None
):
    """32 levels of steps with 16 levels of conditions at the bottom: valid, written as the
    event log writes it, and read back off the wire, well within what JSON parsing and
    serialisation can handle."""
    doc = branches_deep(MAX_STEP_DEPTH, when=conditions_deep(MAX_CONDITION_DEPTH))
    workflow = Workflow.model_validate(doc)
    parsed = on_the_wire(doc)
    assert isinstance(parsed, Accepted), parsed
    assert load_event(dump_event(parsed.event)) == parsed.event
    assert isinstance(parsed.event, WorkflowPublished)
    assert parsed.event.data.definition == workflow


def test_cli_validate_refuses_a_document_nested_64_levels_at_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """64 levels: the first depth pydantic cannot serialise (the CLI said "valid" before)."""
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(branches_deep(64)))
    with pytest.raises(SystemExit) as exited:
        main(["workflow", "validate", str(path)])
    assert exited.value.code == 1
    assert capsys.readouterr().err == (
        f"{path}: {STEPS_PATH}: steps nested 33 levels deep; steps may nest at most 32 levels "
        "(in branches, else, on_timeout, on_failure)\n"
    )


@pytest.mark.parametrize(
    ("where", "value", "ok"),
    [
        ("steps[2].duration", "90d", True),
        ("steps[2].duration", "2160h", True),
        ("steps[2].duration", "91d", False),
        ("steps[2].duration", "7776001s", False),
        ("steps[1].timeout", "90d", True),
        ("steps[1].timeout", "129601m", False),
    ],
)
def test_durations_are_capped_at_90_days(where: str, value: str, ok: bool) -> None:
    """Every timer a run sets is at most `MAX_DURATION`, so an accepted event's timers fall
    due within the calendar (`handoff.core.envelope.LATEST_TIME`)."""
    doc = base()
    put(where, value)(doc)
    if ok:
        Workflow.model_validate(doc)
    else:
        assert problems_of(doc) == [
            f"{where}: {value!r} is longer than 90d, the longest a workflow may wait"
        ]
    assert timedelta(days=90) == MAX_DURATION
