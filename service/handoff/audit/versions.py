"""How a logged decision is compared with the one the current core makes again: as the
version of the core that logged it made it (`handoff.core.version`).

The log records which core decided each event (`event_log.core_version`); rows logged before
it did hold NULL, and `version_of` tells their version from their shape. A replay re-decides
every input with the current core, told which version decided it where the versions chose
differently (`decide(..., core_version=)`: version 3 serves a run queued by the same input
that version 2 left waiting); what the events state is the current core's. A decision logged
by version 1 states less and words some of it differently, so it is compared on what both
versions state, and a log written before an upgrade still verifies.

Versions 2 and 3 (routing v1.1, issue 14, and after): exact. The event as `dump_event` gives
it, its id and its data, explanation included.

Version 1 (contract v1): exact but for the explanation, after an upcast. The logged event is
parsed into today's models (`load_event`), which gives the fields version 1 lacked their
defaults (`priority` 0, no `skills`, no `relax_skills_at`, no `prefer`): a version-1 core
could make no other, so a re-decided value other than the default is a difference. Of the
explanation, only what both versions state is compared:

- `cursor_before` and `cursor_after`: both give the round-robin cursor as it stood and where
  the decision left it (the assignee, or where it was when nobody was assigned).
- The candidates version 2 lists (the assignee, the members it passed over or that came
  closest, at most 20): each must be listed by version 1, which listed every member of the
  team (of the workspace, for a workspace step), with the same `online`, `open_contacts` and
  `eligible`, and the same reason once version 1's wording is read as version 2's category
  (`_V1_REASONS`: "at the user's limit (1/1)" is "at capacity", "not online (away)" is "away").
- The assignee of a team or workspace step, where version 1 lists it, is eligible there (a
  specific user is assigned whatever their presence or load, so it may not be).

Not compared, and why: the members version 1 listed and version 2 does not (version 2 lists
at most 20, in an order of its own, not every member); the counts (`considered`, `eligible`,
`ineligible`, `passed_over`, `truncated`), which version 1 did not state (parsing gives them
their defaults, 0 and empty, which no version-2 decision that examined anyone has); a
candidate's `last_assigned_at`, which only longest idle states, a logic version 1 lacked.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from handoff.adapters.cloudevents import dump_event
from handoff.adapters.pg_log import Logged
from handoff.core.envelope import OutputEnvelope
from handoff.core.version import CORE_VERSION

__all__ = ["Difference", "difference", "version_of"]


@dataclass(frozen=True, slots=True)
class Difference:
    """Where a re-decided event first departs from the logged one: the path (`data.assignee_id`,
    `data.explanation.candidates[bob].open_contacts`) and the JSON at it on either side."""

    path: str
    expected: str
    """As logged (as the logging version stated it)."""
    actual: str
    """As the current core decides it."""


def version_of(logged: Logged) -> int:
    """The version of the core that decided `logged`: as recorded, or for a row logged before
    versions were, 2 when its explanation has `considered` (every version-2 explanation has
    it, no version-1 explanation does) and 1 otherwise. A row without an explanation logged
    before versions were counts as 1: its shape cannot tell, and both versions compare such
    a row alike (exactly), so the verdict does not depend on it."""
    if logged.core_version is not None:
        return logged.core_version
    if logged.is_input:  # no explanation, and a replay asks this of every input: no parse
        return 1
    data = orjson.loads(logged.body).get("data")
    explanation = data.get("explanation") if isinstance(data, dict) else None
    return 2 if isinstance(explanation, dict) and "considered" in explanation else 1


def difference(logged: Logged, decided: OutputEnvelope) -> Difference | None:
    """How `decided`, re-decided by the current core, differs from the logged decision it
    stands for, compared as the version that logged it made it (None: no difference)."""
    made = dump_event(decided)
    if logged.body.encode() == made:  # as the service logs it: the common case, costs least
        return None
    version = version_of(logged)
    rule = _RULES.get(version)
    if rule is None:  # logged by a newer core than this one: it cannot tell what that states
        return Difference("(core version)", str(version), f"{CORE_VERSION} (this core)")
    return rule(logged, made)


def _exactly(logged: Logged, made: bytes) -> Difference | None:
    return _first(orjson.loads(dump_event(logged.event)), orjson.loads(made))


def _as_version_1(logged: Logged, made: bytes) -> Difference | None:
    stated: dict[str, Any] = orjson.loads(dump_event(logged.event))  # upcast: today's defaults
    now: dict[str, Any] = orjson.loads(made)
    then = orjson.loads(logged.body).get("data", {}).pop("explanation", None)
    stated.get("data", {}).pop("explanation", None)
    explained = now.get("data", {}).pop("explanation", None)
    found = _first(stated, now)
    if found is not None:
        return found
    if then is None or explained is None:
        return _first(then, explained, "data.explanation")
    return _explanations_1(then, explained, stated)


_V1_REASONS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("unknown user (", lambda _: "unknown user"),
    ("not online (", lambda r: r.removeprefix("not online (").removesuffix(")")),
    ("at the user's limit (", lambda _: "at capacity"),
    ("at the step's limit (", lambda _: "at the step's limit"),
)
"""Version 1's reasons (`e31d8ef:service/handoff/core/rules/eligibility.py`) by their start,
and the category version 2 gives the same case (`handoff.core.rules.eligibility`)."""


def _reason_1(reason: str | None) -> str | None:
    for start, category in _V1_REASONS:
        if reason is not None and reason.startswith(start):
            return category(reason)
    return reason


def _explanations_1(
    then: dict[str, Any], now: dict[str, Any], event: dict[str, Any]
) -> Difference | None:
    at = "data.explanation"
    for cursor in ("cursor_before", "cursor_after"):
        found = _first(then.get(cursor), now.get(cursor), f"{at}.{cursor}")
        if found is not None:
            return found
    listed = {c["user_id"]: c for c in then.get("candidates", [])}
    for c in now.get("candidates", []):
        here = f"{at}.candidates[{c['user_id']}]"
        was = listed.get(c["user_id"])
        if was is None:
            return Difference(here, "(not listed)", _json(c))
        was = {**was, "reason": _reason_1(was.get("reason"))}
        for key in ("online", "open_contacts", "eligible", "reason"):
            found = _first(was.get(key), c.get(key), f"{here}.{key}")
            if found is not None:
                return found
    data = event.get("data", {})
    assignee = listed.get(data.get("assignee_id"))
    team_step = data.get("strategy") not in (None, "specific_user")
    if team_step and assignee is not None and not assignee.get("eligible"):
        where = f"{at}.candidates[{assignee['user_id']}].eligible"
        return Difference(where, "true (the assignee)", _json(assignee.get("eligible")))
    return None


_RULES: dict[int, Callable[[Logged, bytes], Difference | None]] = {
    1: _as_version_1,
    2: _exactly,
    3: _exactly,
}
assert CORE_VERSION in _RULES, "a new core version needs its comparison here"


def _first(expected: Any, actual: Any, path: str = "") -> Difference | None:
    """The first place two JSON values differ, depth first, keys in the expected's order."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in [*expected, *(k for k in actual if k not in expected)]:
            if key not in expected or key not in actual:
                return Difference(
                    _join(path, key),
                    _json(expected.get(key, _ABSENT)),
                    _json(actual.get(key, _ABSENT)),
                )
            found = _first(expected[key], actual[key], _join(path, key))
            if found is not None:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
            found = _first(e, a, f"{path}[{i}]")
            if found is not None:
                return found
        if len(expected) != len(actual):
            n = min(len(expected), len(actual))
            return Difference(f"{path}[{n}:]", _json(expected[n:]), _json(actual[n:]))
        return None
    if type(expected) is type(actual) and expected == actual:
        return None
    return Difference(path or "(event)", _json(expected), _json(actual))


_ABSENT = object()
"""A key one side lacks."""


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _json(value: Any) -> str:
    return "(absent)" if value is _ABSENT else orjson.dumps(value).decode()
