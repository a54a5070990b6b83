"""10. The audit commands (issue 16) timed on the log of (2), the service stopped.

`replay --verify` over the whole log, then, for a sample of its workspaces, the four commands
a person runs about one workspace: `explain` of a contact, `state --at`, `simulate` and `log
export`. Each is the command's own function called in this process, opening its own
connection as the CLI does; the CLI's parsing and the rendering of its text are left out.

The sample is evenly spaced through the workspaces ordered by id (ids are the family's name
and a number, so it spans the families), chosen from the log alone: the same for a seed and a
size. Of each, the contact explained is the first one the log assigns (`contact.assigned`; if
none, the first to open a conversation), the state is taken at the decision time nearest its
log's middle, the log goes to /dev/null, and the simulated document is its published workflow
with every team or workspace `assign_to` step switched to `least_open_contacts`: valid for any
of the stream's templates, a real question for all but `least-open-contacts-online`, which is
republished as it is. Each of these commands reads the workspace's whole log (`state`: up to
its middle), so their cost per event of that log is given too, and the whole log's time is an
estimate from the sample's rate, never a silent extrapolation.
"""

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from handoff.audit.explain import trail
from handoff.audit.export import export
from handoff.audit.simulate import simulate
from handoff.audit.state import state_at
from handoff.audit.verify import Verified, report, verify_database
from handoff.bench.stats import percentile
from handoff.bench.table import Section
from handoff.core.workflow import Workflow

__all__ = [
    "COMMANDS",
    "Asked",
    "AuditResult",
    "Sampled",
    "audit_section",
    "least_open",
    "measure_audit",
]

COMMANDS: dict[str, str] = {
    "explain": "trail entries",
    "state --at": "events folded",
    "simulate": "inputs re-decided",
    "log export": "lines",
}
"""The per-workspace commands, in the order each workspace runs them -> what its answer counts."""

_LEAST_OPEN = "least_open_contacts"


@dataclass(frozen=True, slots=True)
class Asked:
    """What the commands ask of one workspace of the sample, read from its log."""

    workspace_id: str
    events: int
    """Its log's length."""
    contact_id: str
    middle: datetime
    """`state --at` this: the decision time that splits its log nearest its middle (a drained
    backlog's events share the clock reading of their batch, so few times split it)."""
    workflow: Workflow
    """The document simulated."""
    switched: int
    """`assign_to` steps of its workflow switched to least open contacts (0: republished)."""


@dataclass(frozen=True, slots=True)
class Sampled:
    asked: Asked
    seconds: dict[str, float]
    """Command (`COMMANDS`) -> seconds."""
    answers: dict[str, int]
    """Command -> what it gave (`COMMANDS` says what)."""


@dataclass(frozen=True, slots=True)
class AuditResult:
    verify_seconds: float
    verified: Verified
    log_events: int
    """Events of the whole log, all workspaces."""
    log_workspaces: int
    sampled: list[Sampled]

    @property
    def sample_events(self) -> int:
        return sum(s.asked.events for s in self.sampled)

    def total(self, command: str | None = None) -> float:
        """Seconds over the sample, of one command or of all four."""
        names = list(COMMANDS) if command is None else [command]
        return sum(s.seconds[name] for s in self.sampled for name in names)


def least_open(document: dict[str, Any]) -> tuple[Workflow, int]:
    """The workflow document with every team or workspace `assign_to` step routing by least
    open contacts, and how many such steps routed otherwise (0: the document unchanged)."""
    switched = 0

    def rewrite(node: Any) -> Any:
        nonlocal switched
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        if not isinstance(node, dict):
            return node
        node = {key: rewrite(value) for key, value in node.items()}
        routed = node.get("team_id") is not None or node.get("workspace") is True
        if node.get("type") == "assign_to" and routed:
            switched += node.get("logic", "round_robin") != _LEAST_OPEN
            node["logic"] = _LEAST_OPEN
        return node

    return Workflow.model_validate({**document, "steps": rewrite(document["steps"])}), switched


async def measure_audit(dsn: str, sample: int, say: Callable[[str], None]) -> AuditResult:
    """`replay --verify` of the database at `dsn`, then the four commands on `sample`
    workspaces of its log, evenly spaced by id, one workspace after another."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT workspace_id, count(*) FROM event_log GROUP BY 1 ORDER BY 1"
        )
        lengths: dict[str, int] = {r[0]: r[1] for r in rows}
        ids = list(lengths)
        chosen = [ids[(2 * i + 1) * len(ids) // (2 * sample)] for i in range(min(sample, len(ids)))]
        asked = [await _ask(conn, ws, lengths[ws]) for ws in chosen]
    finally:
        await conn.close()
    events = sum(lengths.values())
    say(f"10. replay --verify of the whole log: {events:,} events ...")
    started = time.perf_counter()
    verified = await verify_database(dsn)
    verify_seconds = time.perf_counter() - started
    say(f"   {verify_seconds:.1f} s; {verified.differences} difference(s)")
    say(f"10. {', '.join(COMMANDS)} on {len(asked)} workspaces ...")
    sampled = [await _commands(dsn, a) for a in asked]
    return AuditResult(verify_seconds, verified, events, len(ids), sampled)


async def _ask(conn: asyncpg.Connection, workspace_id: str, events: int) -> Asked:
    contact = await conn.fetchval(
        "SELECT body::jsonb #>> '{data,contact_id}' FROM event_log"
        " WHERE workspace_id = $1 AND type IN ('contact.assigned', 'conversation.opened')"
        " ORDER BY type <> 'contact.assigned', seq LIMIT 1",
        workspace_id,
    )
    middle = await conn.fetchval(
        "SELECT decided_at FROM (SELECT decided_at, sum(count(*)) OVER (ORDER BY decided_at) AS"
        " upto FROM event_log WHERE workspace_id = $1 GROUP BY 1) AS t"
        " ORDER BY abs(upto - $2::bigint), decided_at LIMIT 1",
        workspace_id,
        events // 2,
    )
    document = await conn.fetchval(
        "SELECT body::jsonb #>> '{data,definition}' FROM event_log"
        " WHERE workspace_id = $1 AND is_input AND type = 'workflow.published'"
        " ORDER BY seq DESC LIMIT 1",
        workspace_id,
    )
    if contact is None or document is None:
        raise ValueError(f"workspace {workspace_id!r}: no conversation or no workflow")
    workflow, switched = least_open(orjson.loads(document))
    return Asked(workspace_id, events, contact, middle, workflow, switched)


async def _commands(dsn: str, a: Asked) -> Sampled:
    """The four commands on the workspace, each timed from its call to its answer."""

    async def explain_() -> int:
        return len(await trail(dsn, a.workspace_id, a.contact_id))

    async def state_() -> int:
        state = await state_at(dsn, a.workspace_id, a.middle)
        return 0 if state is None else state.view.version

    async def simulate_() -> int:
        return (await simulate(dsn, a.workspace_id, a.workflow)).inputs

    async def export_() -> int:
        with open(os.devnull, "w") as null:  # noqa: ASYNC230 - /dev/null does not block
            return await export(dsn, a.workspace_id, null)

    seconds: dict[str, float] = {}
    answers: dict[str, int] = {}
    for command, call in zip(COMMANDS, (explain_, state_, simulate_, export_), strict=True):
        started = time.perf_counter()
        answers[command] = await call()
        seconds[command] = time.perf_counter() - started
    return Sampled(a, seconds, answers)


def audit_section(r: AuditResult) -> Section:
    """The report's section."""
    s = Section("10. audit commands on the log of (2) (issue 16)")
    s.add(
        "how",
        "each command's function in this process, its own connection, its text not rendered;"
        "\none after another, after (4), the service stopped",
    )
    v = r.verified
    verdict = "0 differences" if not v.differences else "\n".join(report(v))
    s.add(
        "replay --verify",
        f"{r.verify_seconds:.1f} s, {v.events / r.verify_seconds:,.0f} events/s ({v.events:,}"
        f" events, {v.workspaces:,} workspaces,\n{v.decisions.total():,} decisions and"
        f" {v.rows:,} rows compared): {verdict}",
    )
    if not r.sampled:
        return s
    lengths = [x.asked.events for x in r.sampled]
    switched = sum(x.asked.switched > 0 for x in r.sampled)
    s.add(
        "sample",
        f"{len(r.sampled)} of {r.log_workspaces:,} workspaces, evenly spaced by id: logs of"
        f" {min(lengths):,} to {max(lengths):,} events (median {percentile(lengths, 50):,}).\n"
        "explain: the first contact assigned (else opened); state --at: the decision time\n"
        "nearest its log's middle; simulate: its workflow, team steps by least open contacts\n"
        f"({switched} switched, {len(r.sampled) - switched} already so: republished as is);"
        " log export: to /dev/null",
    )
    for command in COMMANDS:
        s.add(command, _per_workspace(r, command))
    whole = r.total()
    rate = whole / r.sample_events
    s.add(
        "in total, the sample",
        f"{whole:.2f} s for the four commands on {len(r.sampled)} workspaces"
        f" ({r.sample_events:,} events): {rate * 1e6:,.0f} µs per event",
    )
    s.add(
        "estimate, the whole log",
        f"{rate * r.log_events:,.1f} s for the four on all {r.log_workspaces:,} workspaces one"
        f" after another\n({r.log_events:,} events at the sample's µs per event; not measured)",
    )
    return s


def _per_workspace(r: AuditResult, command: str) -> str:
    seconds = [x.seconds[command] for x in r.sampled]
    slowest = max(r.sampled, key=lambda x: x.seconds[command])
    answers = [x.answers[command] for x in r.sampled]
    return (
        f"median {percentile(seconds, 50):.3f} s, max {max(seconds):.3f} s (a log of"
        f" {slowest.asked.events:,} events);\n{r.total(command) * 1e6 / r.sample_events:,.0f} µs"
        f" per event of the log; {min(answers):,} to {max(answers):,} {COMMANDS[command]}"
    )
