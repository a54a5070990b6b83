"""What the demo's day came to: the table and the chart's series, from the events alone.

A pure function of what went in (the input CloudEvents sent) and what came out (the output
CloudEvents read back), so it can be tested on a handmade list and could be pointed at any
recorded day. Times are turned into the simulated clock with the day's `start` and
`compression`.

Three choices worth knowing when reading the numbers:
- An assignment happens "when its cause happened": the simulated time of the input (or
  timer) that led to it, not the output's own `time`. The output's `time` is when the service
  decided, a few milliseconds later in wall time, which the compression would blow up into
  minutes of simulated time and make every wait look longer than the routing made it. The
  service's own speed is reported apart, in wall milliseconds (`decided in`).
- A reassignment is a conversation moved from one agent to another (see `Routing`). A contact
  who comes back with a new conversation and is routed afresh is not one, although its
  `contact.assigned` names the contact's previous assignee.
- Open contacts at the end follow the contract: contacts assigned to the agent whose latest
  conversation is still open.
"""

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handoff.demo.traffic import DAY, CloudEvent
from handoff.stats import quantile

__all__ = [
    "AgentRow",
    "AgentSeries",
    "Routing",
    "Summary",
    "WorkspaceRow",
    "queue_reason",
    "summarize",
]


@dataclass(frozen=True, slots=True)
class AgentRow:
    workspace_id: str
    user_id: str
    assignments: int
    took_over: int
    """Conversations moved to this agent from another (reassignments in)."""
    handed_off: int
    """Conversations moved from this agent to another (reassignments out)."""
    open_at_end: int


@dataclass(frozen=True, slots=True)
class WorkspaceRow:
    workspace_id: str
    opened: int
    assigned: int
    """Conversations assigned at least once."""
    never_assigned: int
    wait_median: float | None
    """Simulated seconds from `conversation.opened` to its first assignment."""
    wait_p90: float | None
    reassignments: int
    queued: Mapping[str, int]
    """`assignment.queued` by why nobody was eligible (see `queue_reason`)."""
    failed: Mapping[str, int]
    """`assignment.failed` by reason."""
    waiting_at_end: int
    """Contacts still in a queue when the day ended."""
    decided_p50_ms: float | None
    """Wall milliseconds from an input's time to the outputs it caused."""
    decided_p90_ms: float | None


@dataclass(frozen=True, slots=True)
class AgentSeries:
    """When (simulated seconds) each of an agent's assignments happened, for the chart."""

    workspace_id: str
    user_id: str
    times: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Summary:
    agents: tuple[AgentRow, ...]
    workspaces: tuple[WorkspaceRow, ...]
    series: tuple[AgentSeries, ...]
    nobody_online: Mapping[str, tuple[tuple[float, float], ...]]
    """Per workspace, the simulated spans when none of its agents was online."""
    waiting: Mapping[str, tuple[tuple[float, int], ...]]
    """Per workspace, (simulated second, contacts waiting in a queue) at each change."""
    outputs: Mapping[str, int] = field(default_factory=dict)
    """Outputs by type, all workspaces."""

    def render(self, roles: Mapping[tuple[str, str], str] | None = None) -> str:
        """The table, as plain text. `roles` labels agents, e.g. ("acme", "ann") -> "early
        06-14"."""
        roles = roles or {}
        lines = ["Per agent (simulated day 00:00-24:00)"]
        head = (
            f"{'workspace':<10} {'agent':<8} {'shift / role':<26} {'assigned':>8} "
            f"{'took over':>9} {'handed off':>10} {'open at end':>11}"
        )
        lines += [head, "-" * len(head)]
        previous = ""
        for a in self.agents:
            ws = a.workspace_id if a.workspace_id != previous else ""
            previous = a.workspace_id
            role = roles.get((a.workspace_id, a.user_id), "")
            lines.append(
                f"{ws:<10} {a.user_id:<8} {role:<26} {a.assignments:>8} {a.took_over:>9} "
                f"{a.handed_off:>10} {a.open_at_end:>11}"
            )
        lines += ["", "Per workspace (waits in simulated time; 'decided in' is wall time)"]
        head = (
            f"{'workspace':<10} {'opened':>6} {'assigned':>8} {'never':>5} "
            f"{'wait median':>11} {'wait p90':>9} {'reassigned':>10} {'queued':>6} "
            f"{'failed':>6} {'decided in p50/p90':>18}"
        )
        lines += [head, "-" * len(head)]
        for w in self.workspaces:
            decided = (
                f"{w.decided_p50_ms:.0f}/{w.decided_p90_ms:.0f} ms"
                if w.decided_p50_ms is not None and w.decided_p90_ms is not None
                else "-"
            )
            lines.append(
                f"{w.workspace_id:<10} {w.opened:>6} {w.assigned:>8} {w.never_assigned:>5} "
                f"{_duration(w.wait_median):>11} {_duration(w.wait_p90):>9} "
                f"{w.reassignments:>10} {sum(w.queued.values()):>6} "
                f"{sum(w.failed.values()):>6} {decided:>18}"
            )
        reasons = [
            f"  {w.workspace_id:<10} queued: {_counts(w.queued)}; failed: {_counts(w.failed)}; "
            f"still waiting at 24:00: {w.waiting_at_end}"
            for w in self.workspaces
            if w.queued or w.failed
        ]
        if reasons:
            lines += ["", "Why queued / failed", *reasons]
        if self.outputs:
            tally = ", ".join(f"{n} {kind}" for kind, n in sorted(self.outputs.items()))
            lines += ["", f"Outputs: {tally}"]
        return "\n".join(lines)


class Routing:
    """Who has each conversation, to tell a reassignment from a conversation's first routing.

    An assignment is per contact, and a contact keeps its assignee after a conversation
    closes, so `previous_assignee_id` alone cannot tell "moved mid-conversation" from "came
    back and was routed afresh". Worse, routing a returning contact to the agent it already
    has emits nothing (the contract's no-op), so such a conversation's holder is implicit.
    The rule: an assignment moves a conversation when the conversation was assigned before to
    someone else; or, with no routing output yet for the conversation (assigned, queued or
    failed), when the contact had an assignee and the cause is not the conversation's own
    `conversation.opened` (e.g. a `wait` timer found the implicit holder's chat unanswered).
    """

    def __init__(self) -> None:
        self._holder: dict[tuple[str, str], str] = {}
        self._routed: set[tuple[str, str]] = set()
        self._opened_by: dict[tuple[str, str], str] = {}

    def opened(self, event: CloudEvent) -> None:
        """Note a `conversation.opened` input (its id is the cause of a first routing)."""
        key = (event["workspaceid"], str(event["data"]["conversation_id"]))
        self._opened_by[key] = event["id"]

    def routed(self, workspace_id: str, conversation_id: str) -> bool:
        """Whether a routing output (assigned, queued, failed) named the conversation."""
        return (workspace_id, conversation_id) in self._routed

    def see(self, output: CloudEvent) -> tuple[str | None, bool]:
        """For a routing output: (the agent the conversation moved from, or None; whether
        that agent held it implicitly since it opened)."""
        data = output["data"]
        key = (output["workspaceid"], str(data.get("conversation_id")))
        if output["type"] != "contact.assigned":
            if output["type"] in ("assignment.queued", "assignment.failed"):
                self._routed.add(key)
            return None, False
        user, before, implicit = data["assignee_id"], self._holder.get(key), False
        previous = data.get("previous_assignee_id")
        first_routing = before is None and key not in self._routed
        if first_routing and previous and output.get("causationid") != self._opened_by.get(key):
            before, implicit = previous, True
        self._holder[key] = user
        self._routed.add(key)
        return (before if before is not None and before != user else None), implicit


def queue_reason(explanation: Mapping[str, Any]) -> str:
    """Why nobody could take a queued contact, from the reasons the explanation counts (or,
    in one logged before v1.1, its candidates' reasons), in a few words."""
    reasons = set(explanation.get("ineligible") or {}) or {
        _category(str(c.get("reason") or ""))
        for c in explanation.get("candidates", [])
        if not c["eligible"]
    }
    if not reasons:
        return "no members"
    if reasons <= {"offline", "away"}:
        return "nobody online"
    if reasons <= {"at capacity", "at the step's limit"}:
        return "all at capacity"
    if all(r.startswith("missing skill") for r in reasons):
        return "nobody with the skills"
    return "offline or at capacity"


def _category(reason: str) -> str:
    """A reason as v1.1 counts it, from one written before ("not online (away)", "at the
    user's limit (3/3)")."""
    if reason.startswith("not online ("):
        return reason.removeprefix("not online (").rstrip(")")
    if reason.startswith("at the user's limit"):
        return "at capacity"
    return reason.split(" (", 1)[0]


def summarize(
    inputs: Sequence[CloudEvent],
    outputs: Sequence[CloudEvent],
    start: datetime,
    compression: float,
) -> Summary:
    """The table's rows and the chart's series for one day.

    `inputs` are the events sent (in time order), `outputs` what came back, in the order read.
    Only `contact.assigned`, `contact.unassigned`, `assignment.queued` and `assignment.failed`
    count; other outputs are tallied in `Summary.outputs`.
    """

    def sim(at: str) -> float:
        return (datetime.fromisoformat(at) - start).total_seconds() * compression

    agents: dict[str, list[str]] = defaultdict(list)
    routing = Routing()
    input_time: dict[str, datetime] = {}
    opened: dict[tuple[str, str], float] = {}
    contact_of: dict[tuple[str, str], str] = {}
    latest: dict[tuple[str, str], tuple[str, bool]] = {}  # contact -> (conversation, open)
    for event in inputs:
        ws, data = event["workspaceid"], event.get("data", {})
        input_time[event["id"]] = datetime.fromisoformat(event["time"])
        match event["type"]:
            case "user.upserted" if data["user_id"] not in agents[ws]:
                agents[ws].append(data["user_id"])
            case "conversation.opened":
                opened[(ws, data["conversation_id"])] = sim(event["time"])
                contact_of[(ws, data["conversation_id"])] = data["contact_id"]
                routing.opened(event)
                latest[(ws, data["contact_id"])] = (data["conversation_id"], True)
            case "conversation.closed":
                if latest.get((ws, data["contact_id"]), ("", False))[0] == data["conversation_id"]:
                    latest[(ws, data["contact_id"])] = (data["conversation_id"], False)

    assignments: Counter[tuple[str, str]] = Counter()
    took_over: Counter[tuple[str, str]] = Counter()
    handed_off: Counter[tuple[str, str]] = Counter()
    series: dict[tuple[str, str], list[float]] = defaultdict(list)
    assignee: dict[tuple[str, str], str] = {}  # by contact
    holders: dict[tuple[str, str], list[tuple[float, str | None]]] = defaultdict(list)
    first: dict[tuple[str, str], float] = {}
    queued: dict[str, Counter[str]] = defaultdict(Counter)
    failed: dict[str, Counter[str]] = defaultdict(Counter)
    waiting: dict[str, list[tuple[float, int]]] = defaultdict(list)
    in_queue: dict[str, set[str]] = defaultdict(set)
    latency: dict[str, list[float]] = defaultdict(list)
    tally: Counter[str] = Counter()
    for event in sorted(outputs, key=lambda e: datetime.fromisoformat(e["time"])):
        ws, data, kind = event["workspaceid"], event.get("data", {}), event["type"]
        tally[kind] += 1
        decided = datetime.fromisoformat(event["time"])
        cause = input_time.get(str(event.get("causationid")))
        if cause is not None:
            latency[ws].append((decided - cause).total_seconds() * 1000)
        when = (cause if cause is not None else decided) - start
        at = when.total_seconds() * compression
        contact = data.get("contact_id", "")
        if kind == "contact.assigned":
            user, conversation = data["assignee_id"], data.get("conversation_id")
            assignments[(ws, user)] += 1
            series[(ws, user)].append(at)
            assignee[(ws, contact)] = user
            holders[(ws, contact)].append((at, user))
            before, implicit = routing.see(event)
            if before is not None:
                took_over[(ws, user)] += 1
                handed_off[(ws, before)] += 1
            if conversation is not None:
                # An implicit holder had the conversation from the moment it opened.
                since = opened.get((ws, conversation), at) if implicit else at
                first.setdefault((ws, conversation), since)
        elif kind == "contact.unassigned":
            assignee.pop((ws, contact), None)
            holders[(ws, contact)].append((at, None))
        elif kind == "assignment.queued":
            routing.see(event)
            queued[ws][queue_reason(data.get("explanation", {}))] += 1
        elif kind == "assignment.failed":
            routing.see(event)
            failed[ws][data["reason"]] += 1
        else:
            continue
        _track_queue(in_queue[ws], waiting[ws], kind, contact, at)

    for (ws, conversation), since in opened.items():
        # Never routed, yet the contact had an assignee when it opened: routing it to that
        # agent was a no-op, so the conversation was theirs from the start.
        if (ws, conversation) not in first and not routing.routed(ws, conversation):
            held = [
                user for at, user in holders[(ws, contact_of[(ws, conversation)])] if at <= since
            ]
            if held and held[-1] is not None:
                first[(ws, conversation)] = since

    open_at_end: Counter[tuple[str, str]] = Counter(
        (ws, user)
        for (ws, contact), user in assignee.items()
        if latest.get((ws, contact), ("", False))[1]
    )
    workspaces = list(agents) + [
        ws for ws in {w for w, _ in opened} | set(queued) | set(failed) if ws not in agents
    ]
    agent_rows = [
        AgentRow(
            ws,
            user,
            assignments[(ws, user)],
            took_over[(ws, user)],
            handed_off[(ws, user)],
            open_at_end[(ws, user)],
        )
        for ws in workspaces
        for user in agents[ws] + sorted({u for w, u in assignments if w == ws} - set(agents[ws]))
    ]
    workspace_rows = []
    for ws in workspaces:
        waits = sorted(
            first[key] - at for key, at in opened.items() if key[0] == ws and key in first
        )
        count = sum(1 for key in opened if key[0] == ws)
        workspace_rows.append(
            WorkspaceRow(
                workspace_id=ws,
                opened=count,
                assigned=len(waits),
                never_assigned=count - len(waits),
                wait_median=statistics.median(waits) if waits else None,
                wait_p90=quantile(waits, 0.9),
                reassignments=sum(n for (w, _), n in took_over.items() if w == ws),
                queued=dict(queued[ws]),
                failed=dict(failed[ws]),
                waiting_at_end=waiting[ws][-1][1] if waiting[ws] else 0,
                decided_p50_ms=quantile(sorted(latency[ws]), 0.5),
                decided_p90_ms=quantile(sorted(latency[ws]), 0.9),
            )
        )
    return Summary(
        agents=tuple(agent_rows),
        workspaces=tuple(workspace_rows),
        series=tuple(
            AgentSeries(ws, user, tuple(series[(ws, user)]))
            for ws in workspaces
            for user in agents[ws]
        ),
        nobody_online={ws: _nobody_online(inputs, ws, compression, start) for ws in workspaces},
        waiting={ws: tuple(waiting[ws]) for ws in workspaces},
        outputs=dict(tally),
    )


def _track_queue(
    queue: set[str], changes: list[tuple[float, int]], kind: str, contact: str, at: float
) -> None:
    """Keep the queue's length over time: queued joins, an assignment or a failure leaves."""
    before = len(queue)
    if kind == "assignment.queued":
        queue.add(contact)
    elif kind in ("contact.assigned", "assignment.failed"):
        queue.discard(contact)
    if len(queue) != before:
        changes.append((at, len(queue)))


def _nobody_online(
    inputs: Iterable[CloudEvent], ws: str, compression: float, start: datetime
) -> tuple[tuple[float, float], ...]:
    """The simulated spans of the day when no agent of `ws` was online."""
    status: dict[str, str] = {}
    spans: list[tuple[float, float]] = []
    since: float | None = 0.0
    for event in inputs:
        if event["workspaceid"] != ws or event["type"] != "user.presence_changed":
            continue
        at = (datetime.fromisoformat(event["time"]) - start).total_seconds() * compression
        status[event["data"]["user_id"]] = event["data"]["status"]
        anyone = "online" in status.values()
        if anyone and since is not None:
            if at > since:
                spans.append((since, at))
            since = None
        elif not anyone and since is None:
            since = at
    if since is not None:
        spans.append((since, DAY))
    return tuple(spans)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes} min"


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "-"
