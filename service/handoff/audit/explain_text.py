"""`handoff explain` for people: one block per input, its decisions indented under it.

Under a branch step, each branch's condition with the value every leaf saw; under an
assignment, what it was asked for, the round-robin cursor, and a table of every member
(`>` marks the assignee).
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from handoff.audit.explain import Assignment, Branch, Entry, duration_text
from handoff.core.conditions import All, AnyOf, Evaluated

__all__ = ["aligned", "clock", "render"]

_INDENT = "      "


def render(workspace_id: str, contact_id: str, entries: list[Entry]) -> str:
    inputs = sum(e.input for e in entries)
    lines = [
        f"contact {contact_id} in workspace {workspace_id}: {inputs} input(s), "
        f"{len(entries) - inputs} decision(s)"
    ]
    for e in entries:
        if e.input:
            decided = "" if _same_second(e.time, e.decided_at) else f" (decided {_when(e)})"
            lines += ["", f"#{e.seq}  {clock(e.time)}  {e.type}  {_summary(e)}{decided}"]
            continue
        lines.append(f"  #{e.seq:<4} {e.type:<19} {_summary(e)}".rstrip())
        if e.branch is not None:
            lines += [_INDENT + line for line in _branch(e.branch)]
        if e.assignment is not None:
            assignee = e.data.get("assignee_id") if e.type == "contact.assigned" else None
            lines += [_INDENT + line for line in _assignment(e.assignment, assignee)]
    return "\n".join(lines)


def clock(t: datetime) -> str:
    """A moment as both commands print it: to the second, in UTC."""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _when(e: Entry) -> str:
    same_day = e.decided_at.astimezone(UTC).date() == e.time.astimezone(UTC).date()
    return e.decided_at.astimezone(UTC).strftime("%H:%M:%SZ") if same_day else clock(e.decided_at)


def _same_second(a: datetime, b: datetime) -> bool:
    return abs(a - b) < timedelta(seconds=1)


def _summary(e: Entry) -> str:
    d = e.data
    match e.type:
        case "conversation.opened":
            channel = f" on {d['channel']}" if d.get("channel") else ""
            return f"{d['conversation_id']} by {d['source']}{channel}"
        case "conversation.closed":
            by = f" by {d['closed_by']}" if d.get("closed_by") else ""
            return f"{d['conversation_id']}{by}"
        case "message.received":
            return repr(d["text"])
        case "message.sent":
            sender = d["sender"]
            return f"by {sender['type']} {sender.get('user_id') or ''}".rstrip()
        case "contact.assignee_changed":
            actor = f"{d['actor']['type']} {d['actor'].get('user_id') or ''}".rstrip()
            return f"-> {d['assignee_id'] or 'nobody'} by {actor}"
        case "user.presence_changed":
            return f"{d['user_id']} {d['status']}"
        case "timer.elapsed":
            return f"{d['kind']} of step {d['step_id']} (run {d['run_id'][:8]})"
        case "run.started":
            return f"{d['workflow_id']} v{d['version']} (run {d['run_id'][:8]})"
        case "run.step_entered":
            return f"{d['step_id']} ({e.step_type})" if e.step_type else d["step_id"]
        case "run.waiting":
            return f"{d['kind']} until {clock(datetime.fromisoformat(d['until']))}"
        case "run.ended" | "run.jumped" | "run.answered" | "run.question_asked":
            return _run_summary(e.type, d)
        case "contact.assigned":
            team = f" in {d['team_id']}" if d.get("team_id") else ""
            was = d.get("previous_assignee_id") or "nobody"
            return f"-> {d['assignee_id']} ({d['strategy']}{team}), was {was}"
        case "contact.unassigned":
            return f"was {d['previous_assignee_id']}"
        case "assignment.queued":
            return f"waits for {d.get('team_id') or 'the workspace'} (priority {d['priority']})"
        case "assignment.failed":
            return str(d["reason"])
        case "comment.created":
            mentions = "".join(f" @{m}" for m in d.get("mentions", []))
            return f"{d['text']!r}{mentions}"
        case "message.requested":
            options = f" options {d['options']}" if d.get("options") else ""
            return f"{d['text']!r}{options}"
    return " ".join(f"{k}={v}" for k, v in d.items() if k != "workflow")


def _run_summary(kind: str, d: dict[str, Any]) -> str:
    match kind:
        case "run.ended":
            return str(d["outcome"])
        case "run.jumped":
            return f"{d['step_id']} -> {d['to']}"
        case "run.answered":
            return f"{d['variable']} = {d['value']!r}"
    return f"{d['step_id']}, attempt {d['attempt']}"


def _branch(branch: Branch) -> list[str]:
    lines: list[str] = []
    for name, evaluated in branch.tried:
        lines.append(f"branch {name}: {_held(evaluated)}")
        lines += ["  " + line for line in _condition(evaluated)]
    lines.append(f"taken: {branch.taken or 'else'}")
    return lines


def _condition(e: Evaluated) -> list[str]:
    if isinstance(e.condition, All | AnyOf):
        group = "all" if isinstance(e.condition, All) else "any"
        lines = [f"{group} of: {_held(e)}"]
        for part in e.parts:
            lines += ["  " + line for line in _condition(part)]
        return lines
    return [f"{_leaf(e)}: saw {_seen(e.seen)}, {_held(e)}"]


def _held(e: Evaluated) -> str:
    return "holds" if e.held else "does not hold"


def _leaf(e: Evaluated) -> str:
    written = e.condition.model_dump(mode="json", by_alias=True)
    if "schedule" in written:
        w = written["schedule"]
        return f"schedule {','.join(w['days'])} {w['from']}-{w['to']} {w['timezone']}"
    kind, name = next((k, v) for k, v in written.items() if k not in ("op", "value"))
    op = written["op"]
    value = "" if op in ("exists", "not_exists") else f" {written['value']!r}"
    return f"{kind} {name} {op}{value}"


def _seen(seen: Any) -> str:
    if seen is None:
        return "nothing"
    if isinstance(seen, timedelta):
        return duration_text(seen)
    if isinstance(seen, datetime):
        return seen.strftime("%a %H:%M %Z")
    return repr(seen)


def _assignment(a: Assignment, assignee: str | None) -> list[str]:
    if a.user_id is not None:
        asked = f"user {a.user_id}"
    else:
        where = f"team {a.team_id}" if a.team_id is not None else "the workspace"
        asked = f"{a.logic} in {where}"
        if a.only_online:
            asked += ", only online"
        if a.max_open_contacts is not None:
            asked += f", at most {a.max_open_contacts} open"
        if a.skills:
            asked += f", skills {', '.join(a.skills)}"
        if a.prefer is not None:
            asked += f", prefer {a.prefer}"
    lines = [f"asked: {asked} ({'from the queue' if a.by == 'queue' else 'by the step'})"]
    if a.user_id is None:
        lines.append(f"cursor: {a.cursor_before or 'none'} -> {a.cursor_after or 'none'}")
    if not a.candidates:
        return [*lines, "nobody to consider"]
    idle = a.logic == "longest_idle"
    rows = [["member", "presence", "open", "max", "skills", *(["last assigned"] if idle else [])]]
    rows[0].append("eligible")
    for c in a.candidates:
        limit = "-" if c.max_open_contacts is None else str(c.max_open_contacts)
        row = [c.user_id, c.presence, str(c.open_contacts), limit, ",".join(c.skills) or "-"]
        if idle:
            row.append(clock(c.last_assigned_at) if c.last_assigned_at else "never")
        row.append("yes" if c.eligible else f"no: {c.reason}")
        rows.append(row)
    marks = ["  "] + ["> " if c.user_id == assignee else "  " for c in a.candidates]
    return lines + [mark + line for mark, line in zip(marks, aligned(rows), strict=True)]


def aligned(rows: list[list[str]]) -> list[str]:
    """Rows with their columns aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
