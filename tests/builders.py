"""Event factories with defaults, so a test spells out only what it is about."""

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from handoff.core.envelope import Envelope
from handoff.core.inputs import INPUT_TYPES

T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
"""The start of every scenario's clock: fixed for a run, an hour before it started. Not a
fixed date: timers fire by the wall clock in integration tests, and a queue's 7-day timeout
must not start firing a week after the date a test was written."""
WS = "ws-1"
_ids = count(1)


def event(
    type_: str,
    data: dict[str, Any],
    *,
    ws: str = WS,
    id: str | None = None,
    at: datetime | None = None,
) -> Envelope:
    n = next(_ids)
    return INPUT_TYPES[type_].model_validate(
        {
            "id": id or f"in-{n}",
            "source": "/inbox",
            "type": type_,
            "time": at or T0 + timedelta(seconds=n),
            "workspaceid": ws,
            "data": data,
        }
    )


def user(
    user_id: str, max_open: int | None = None, skills: list[str] | None = None, **kw: Any
) -> Envelope:
    data: dict[str, Any] = {"user_id": user_id, "max_open_contacts": max_open}
    if skills is not None:
        data["skills"] = skills
    return event("user.upserted", data, **kw)


def presence(user_id: str, status: str = "online", **kw: Any) -> Envelope:
    return event("user.presence_changed", {"user_id": user_id, "status": status}, **kw)


def team(team_id: str, *members: str, **kw: Any) -> Envelope:
    return event("team.upserted", {"team_id": team_id, "members": list(members)}, **kw)


def workflow(
    *steps: dict[str, Any],
    id: str = "wf",
    trigger: str = "conversation_opened",
    source: list[str] | None = None,
    once_per_contact: bool = False,
    ws: str = WS,
    trigger_options: dict[str, Any] | None = None,
    **kw: Any,
) -> Envelope:
    """`trigger_options`: more of the trigger (`status`, `after` of assignee_unavailable)."""
    definition = {
        "id": id,
        "workspace_id": ws,
        "name": id,
        "trigger": {
            "type": trigger,
            **({"source": source} if source else {}),
            **({"once_per_contact": True} if once_per_contact else {}),
            **(trigger_options or {}),
        },
        "steps": [{"id": f"s{i}", **s} for i, s in enumerate(steps, 1)],
    }
    return event("workflow.published", {"definition": definition}, ws=ws, **kw)


def assign_team(team_id: str, logic: str = "round_robin", **options: Any) -> dict[str, Any]:
    return {"type": "assign_to", "team_id": team_id, "logic": logic, **options}


def opened(
    contact: str,
    conversation: str | None = None,
    source: str = "contact",
    fields: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    channel: str | None = None,
    **kw: Any,
) -> Envelope:
    data: dict[str, Any] = {
        "contact_id": contact,
        "conversation_id": conversation or f"conv-{contact}",
        "source": source,
        "channel": channel,
    }
    if fields is not None or tags is not None:
        data["contact"] = {"fields": fields or {}, "tags": tags or []}
    return event("conversation.opened", data, **kw)


def closed(contact: str, conversation: str | None = None, **kw: Any) -> Envelope:
    return event(
        "conversation.closed",
        {
            "contact_id": contact,
            "conversation_id": conversation or f"conv-{contact}",
        },
        **kw,
    )


def assignee_changed(contact: str, assignee: str | None, **kw: Any) -> Envelope:
    return event(
        "contact.assignee_changed",
        {
            "contact_id": contact,
            "assignee_id": assignee,
            "actor": {"type": "user", "user_id": "admin"},
        },
        **kw,
    )
