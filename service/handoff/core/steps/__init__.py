"""Workflow step types, one module each; every module exposes `decide(step, run, ctx)`.

A step emits its events through the context and says whether the run goes on to the next
step (`NEXT`) or stops here until something else resumes it (`BLOCKED`).
"""

from collections.abc import Callable
from typing import Any, Literal

from handoff.core.context import DecisionContext
from handoff.core.steps import add_comment, assign_to, send_message
from handoff.core.steps.run_ref import RunRef

__all__ = ["STEPS", "Flow", "RunRef"]

Flow = Literal["next", "blocked"]

STEPS: dict[str, Callable[[Any, RunRef, DecisionContext], Flow]] = {
    "send_message": send_message.decide,
    "assign_to": assign_to.decide,
    "add_comment": add_comment.decide,
}
