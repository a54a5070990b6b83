"""Workflow step types, one module each; every module exposes `decide(step, run, ctx)`.

A step emits its events through the context and says where the run goes: on to the next
step (`"next"`), nowhere until something wakes it (`"blocked"`), or elsewhere (`Goto`).
"""

from collections.abc import Callable
from typing import Any, Literal

from handoff.core.context import DecisionContext
from handoff.core.run_ref import Goto, RunRef
from handoff.core.steps import (
    add_comment,
    ask_question,
    assign_to,
    branch,
    jump,
    send_message,
    wait,
)

__all__ = ["STEPS", "Flow"]

Flow = Literal["next", "blocked"] | Goto

STEPS: dict[str, Callable[[Any, RunRef, DecisionContext], Flow]] = {
    "send_message": send_message.decide,
    "assign_to": assign_to.decide,
    "add_comment": add_comment.decide,
    "wait": wait.decide,
    "branch": branch.decide,
    "ask_question": ask_question.decide,
    "jump": jump.decide,
}
