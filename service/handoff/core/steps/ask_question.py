"""ask_question: ask, wait for the answer, save it as a variable.

`decide` asks; `answer` takes the contact's next message; `fail` is the timeout's or the
last wrong answer's way out, through the `on_failure` steps.
"""

from typing import Literal

from handoff.core.context import DecisionContext
from handoff.core.durations import to_timedelta
from handoff.core.events import (
    Answered,
    AnsweredData,
    MessageRequested,
    MessageRequestedData,
    QuestionAsked,
    QuestionAskedData,
)
from handoff.core.run_ref import Goto, RunRef
from handoff.core.steps.cancel import cancelled_if_closed
from handoff.core.steps.wait import sleep
from handoff.core.workflow import AskQuestion

__all__ = ["answer", "decide", "fail", "match"]


def decide(step: AskQuestion, run: RunRef, ctx: DecisionContext) -> Literal["blocked"]:
    if cancelled_if_closed(run, ctx):
        return "blocked"
    _ask(step, run, ctx, attempt=1)
    if step.timeout is not None:
        sleep(run, ctx, step.id, to_timedelta(step.timeout), "question")
    return "blocked"


def match(step: AskQuestion, text: str) -> str | None:
    """The option an answer picks: its text (case and surrounding space aside) or its
    number; with no options, any non-empty text."""
    said = text.strip()
    if step.options is None:
        return said or None
    for number, option in enumerate(step.options, 1):
        if said.casefold() == option.strip().casefold() or said == str(number):
            return option
    return None


def answer(
    step: AskQuestion, run: RunRef, ctx: DecisionContext, text: str
) -> Goto | Literal["blocked"]:
    """The contact wrote while the run was asking: save, ask again, or fail."""
    chosen = match(step, text)
    if chosen is not None:
        data = AnsweredData(run_id=run.run_id, step_id=step.id, variable=step.save_as, value=chosen)
        ctx.emit(Answered, data, subject=run.run.contact_id)
        return Goto(run.workflow.next_after(step.id))
    if run.run.attempts <= step.retries:
        _ask(step, run, ctx, attempt=run.run.attempts + 1)
        return "blocked"
    return fail(step, run)


def fail(step: AskQuestion, run: RunRef) -> Goto:
    return Goto(run.workflow.first_of(step.on_failure, run.workflow.next_after(step.id)))


def _ask(step: AskQuestion, run: RunRef, ctx: DecisionContext, attempt: int) -> None:
    ctx.emit(
        MessageRequested,
        MessageRequestedData(
            contact_id=run.run.contact_id,
            conversation_id=run.run.conversation_id,
            text=step.text,
            options=step.options,
            workflow=run.at(step.id),
        ),
        subject=run.run.contact_id,
    )
    data = QuestionAskedData(run_id=run.run_id, step_id=step.id, attempt=attempt)
    ctx.emit(QuestionAsked, data, subject=run.run.contact_id)
