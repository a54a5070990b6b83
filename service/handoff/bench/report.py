"""The figures of one run, and the table they make."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from handoff.bench.audit import AuditResult, audit_section
from handoff.bench.cpu import TIMER, TypeCost, pure_mix
from handoff.bench.drain import Instances
from handoff.bench.latency import LevelResult, Paced
from handoff.bench.memory import MemoryResult
from handoff.bench.options import BenchOptions
from handoff.bench.pipe import PipeResult
from handoff.bench.replay_rate import ReplayResult
from handoff.bench.restart import RestartResult, restart_section
from handoff.bench.routing import RoutingResult
from handoff.bench.servers import Drained
from handoff.bench.stream import STEP_TYPES
from handoff.bench.table import Section, render
from handoff.bench.team_size import DrainResult, PureResult, ratios

__all__ = ["Results", "build_report", "routing_ratio_line"]


@dataclass
class Results:
    options: BenchOptions
    machine: list[tuple[str, str]]
    servers: str
    partitions: int
    batch_max_records: int
    inputs: int
    mix: Counter[str]
    steps: Counter[str]
    """Step type -> workspaces whose workflow uses it."""
    start: str
    """The backlog's day, as its first event's time says."""
    produce_rate: float
    pipe: PipeResult
    drained: Drained
    replays: list[ReplayResult] = field(default_factory=list)
    levels: list[LevelResult] = field(default_factory=list)
    instances: list[Instances] = field(default_factory=list)
    pipe_processes: PipeResult | None = None
    """The no-op pipe over the same backlog in two processes, beside two instances."""
    memory: list[MemoryResult] = field(default_factory=list)
    team_pure: list[PureResult] = field(default_factory=list)
    team_drains: list[DrainResult] = field(default_factory=list)
    seconds: float = 0.0
    pipe_cpu_seconds: float | None = None
    """This process's CPU over the pipe's drain (1)."""
    drained_cpu_seconds: float | None = None
    """This process's CPU over the service's drain (2)."""
    routing: RoutingResult | None = None
    type_costs: list[TypeCost] = field(default_factory=list)
    restart: RestartResult | None = None
    audit: AuditResult | None = None
    """The audit commands on the log of (2) (10)."""

    @property
    def rate(self) -> float:
        """The sustained rate: inputs/s of the in-process backlog drain."""
        return self.drained.rate

    @property
    def ratio(self) -> float:
        return self.rate / self.pipe.rate


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _us_per(seconds: float | None, inputs: int, per: str = "input") -> str:
    """`N µs per input`, or `not measured`."""
    if seconds is None:
        return "not measured"
    return f"{1e6 * seconds / max(inputs, 1):,.0f} µs per {per}"


def _cpu(seconds: float | None, inputs: int, per: str = "input") -> str:
    """`; CPU N µs per input`, or nothing when not measured."""
    return "" if seconds is None else f"; CPU {_us_per(seconds, inputs, per)}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.0095 else f"{seconds * 1000:.1f} ms"


def _mib(value: float) -> str:
    return f"{value / 2**20:,.0f} MiB"


def _share(counts: Counter[str], total: int) -> str:
    return ", ".join(f"{kind} {100 * n / total:.0f}%" for kind, n in counts.most_common())


def _steps(steps: Counter[str], workspaces: int) -> str:
    return ", ".join(f"{step} {steps.get(step, 0)}" for step in STEP_TYPES) + (
        f" (of {workspaces} workspaces)"
    )


def _setup(r: Results) -> Section:
    o = r.options
    s = Section("parameters")
    s.add("run", ("quick" if o.quick else "full") + f", seed {o.seed}")
    s.add("servers", r.servers)
    s.add("backlog", f"{o.workspaces:,} workspaces, teams of {o.agents[0]} to {o.agents[1]} agents")
    s.add("", f"{o.conversations} conversations per workspace over a simulated day ({r.start})")
    s.add("inputs", f"{r.inputs:,} events: {_share(r.mix, r.inputs)}")
    s.add("step types used", _steps(r.steps, o.workspaces))
    s.add("partitions", f"{r.partitions} per topic (HANDOFF_PARTITIONS)")
    s.add("batch", f"getmany max_records {r.batch_max_records} (HANDOFF_BATCH_MAX_RECORDS)")
    s.add("backlog produced at", f"{_n(r.produce_rate)} records/s (acks=all)")
    return s


def _throughput(r: Results) -> Section:
    s = Section("1-2. throughput: a pre-produced backlog, drained")
    p, d = r.pipe, r.drained
    s.add(
        "baseline: no-op aiokafka pipe",
        f"{_n(p.rate)} records/s ({p.records:,} records in {p.seconds:.1f} s, {p.batches} polls)"
        + _cpu(r.pipe_cpu_seconds, p.records, "record"),
    )
    s.add(
        "handoff, end to end",
        f"{_n(r.rate)} events/s ({d.inputs:,} inputs in {d.seconds:.1f} s)"
        + _cpu(r.drained_cpu_seconds, d.inputs),
    )
    s.add(
        "",
        f"logged {d.decisions:,} decisions, {d.outputs:,} of them outputs; "
        f"{d.timer_inputs:,} timers fired",
    )
    s.add("decisions by type", _decided(d.decided))
    s.add("handoff / pipe", f"{r.ratio:.2f}")
    return s


def _decided(decided: Counter[str]) -> str:
    """`type n, ...`, a few to a line."""
    items = [f"{kind} {n:,}" for kind, n in decided.most_common()]
    return "\n".join(", ".join(items[i : i + 4]) for i in range(0, len(items), 4)) or "none"


def _latency(r: Results) -> Section:
    s = Section("3. latency: produce of an input -> arrival of each output it caused")
    for level in r.levels:
        what = f"{_n(level.target_rate)}/s (fixed)"
        if level.share is not None:
            what = f"{level.share:.0%} ({_n(level.target_rate)}/s)"
        s.add(what, _paced("handoff", level.handoff))
        if level.pipe is not None:
            s.add("", _paced("no-op pipe", level.pipe))
    return s


def _paced(who: str, paced: Paced) -> str:
    head = (
        f"sent {paced.sent:,} in {paced.seconds:.1f} s ({_n(paced.achieved_rate)}/s); "
        f"{paced.inputs_answered:,} inputs answered"
    )
    lat = paced.latency
    if lat is None:
        return f"{who}: {head}; no outputs"
    return (
        f"{who}: p50 {_ms(lat.p50)}  p99 {_ms(lat.p99)}  max {_ms(lat.max)}"
        f"  ({lat.samples:,} outputs)\n{head}"
    )


def _replay(r: Results) -> Section:
    s = Section("4. replay: the log of (2) folded into the projections, and re-decided")
    d = r.drained
    written = (d.inputs + d.timer_inputs + d.decisions) / d.seconds
    if not r.replays:
        s.add("replay", "not run")
    for x in r.replays:
        what = "audit (re-decide)" if x.audit else "rebuild (fold)"
        s.add(
            f"{what}, {x.workers} process{'es' if x.workers > 1 else ''}",
            f"{_n(x.rate)} events/s ({x.events:,} events: inputs, timers and decisions; "
            f"{x.workspaces:,} workspaces; {x.seconds:.1f} s)\n"
            f"{x.rate / written:.1f}x the {_n(written)} events/s the live drain logged",
        )
    for x in r.replays:
        if x.audit:
            s.add(
                "mismatches",
                f"{len(x.mismatches)}" + "".join(f"\n{m}" for m in x.mismatches[:3]),
            )
    return s


def _memory(r: Results) -> Section:
    s = Section("5. memory: RSS of a process holding N workspaces' views")
    if r.memory:
        s.add(
            "how",
            "WorkspaceViews folded with evolve+decide as the service holds them (idle contacts'"
            "\nrows evicted, read back when named), copied per workspace (pickle)",
        )
    for m in r.memory:
        what = f"{m.workspaces:,} workspaces" + (f", {m.days}x log" if m.days > 1 else "")
        s.add(
            what,
            f"{_mib(m.rss_after)} ({_mib(m.rss_after - m.rss_before)} of views, "
            f"{m.per_workspace / 1024:,.0f} KiB per workspace; "
            f"log {_n(m.log_per_workspace)} events per workspace)",
        )
    return s


def _instances(r: Results) -> Section:
    s = Section(
        "6. one instance vs two: `handoff run` processes in one consumer group, and the pipe"
    )
    one = next((i for i in r.instances if i.count == 1), None)
    for i in r.instances:
        rate = i.drained.rate
        vs = f"; x{rate / one.drained.rate:.2f}" if one else ""
        s.add(
            f"{i.count} process{'es' if i.count > 1 else ''}",
            f"{_n(rate)} events/s ({i.drained.inputs:,} inputs in {i.drained.seconds:.1f} s"
            f"{vs}){_cpu(sum(i.cpu_seconds) if i.cpu_seconds else None, i.drained.inputs)};"
            f" partitions {'+'.join(map(str, i.partitions))}, "
            f"applied {'+'.join(f'{a:,}' for a in i.applied)}",
        )
    if p := r.pipe_processes:
        s.add(
            "no-op pipe, 2 processes",
            f"{_n(p.rate)} records/s ({p.records:,} records in {p.seconds:.1f} s; "
            f"x{p.rate / r.pipe.rate:.2f} the pipe in one process, 1-2)",
        )
    return s


_KIB = 1024


def _team_size(r: Results) -> Section:
    o = r.options
    s = Section("7. decision cost by team size (issue 14)")
    if r.team_pure:
        s.add(
            "pure path: how",
            "fold, decide, fold the decisions, dump_event each; no I/O. One workspace, every"
            "\nuser online, no max_open_contacts; one step: assign_to the team, only_online."
            f"\n{o.team_conversations:,} openings by distinct contacts (none closed) after "
            f"{o.team_warmup:,} more;\nCPU time (time.process_time) per routed conversation, "
            f"fastest of {o.team_rounds} round{'s' if o.team_rounds > 1 else ''}",
        )
    ratio = ratios(r.team_pure)
    for logic in dict.fromkeys(x.logic for x in r.team_pure):
        mine = sorted((x for x in r.team_pure if x.logic == logic), key=lambda x: x.size)
        lines = [
            f"team {x.size:,}: {x.us_per_routed:,.0f} µs, {_n(x.bytes_per_conversation)} B of "
            f"decisions per conversation, largest {x.max_bytes:,} B"
            for x in mine
        ]
        if logic in ratio:
            lines.append(
                f"team {mine[-1].size:,} / team {mine[0].size:,}: {ratio[logic]:.2f}x"
                " (target: within 1.5x)"
            )
        s.add(logic, "\n".join(lines))
    if r.team_pure:
        top = max(r.team_pure, key=lambda x: x.max_bytes)
        s.add(
            "largest decision",
            f"{top.max_bytes:,} B ({top.max_bytes / _KIB:.1f} KiB): {top.max_type}, "
            f"{top.logic}, team {top.size:,} (target: under 8 KiB)",
        )
    if r.team_drains:
        s.add(
            "service drain: how",
            f"round robin, {o.drain_workspaces} workspaces of each size, their setup folded "
            f"first;\nper size and round {o.drain_openings:,} openings sent at once to the "
            "service (in this\nprocess), timed until logged and relayed; fastest of "
            f"{o.drain_rounds} round{'s' if o.drain_rounds > 1 else ''}",
        )
    best: dict[int, DrainResult] = {}
    for d in r.team_drains:
        if d.size not in best or d.rate > best[d.size].rate:
            best[d.size] = d
    for size, d in sorted(best.items()):
        rounds = [f"{x.rate:,.0f}" for x in r.team_drains if x.size == size]
        s.add(
            f"teams of {size:,}",
            f"{_n(d.rate)} routed conversations/s ({d.routed:,} in {d.seconds:.1f} s; "
            f"rounds: {', '.join(rounds)})",
        )
    if len(best) > 1:
        small, large = min(best), max(best)
        s.add(
            f"teams of {large:,} / of {small:,}",
            f"{best[large].rate / best[small].rate:.2f} (target: at least 0.67)",
        )
    return s


def _routing(r: Results) -> Section:
    s = Section("8. routing: a backlog of conversation openings alone (issue 15)")
    x = r.routing
    if x is None:
        return s
    s.add(
        "how",
        f"{x.workspaces:,} workspaces, each a team of {x.size} agents, all online, and one step:"
        "\nassign_to the team, round robin, only_online; their setup "
        f"({x.setup:,} inputs) applied first\nby a service that then stopped. {x.openings:,}"
        " openings (contacts of their own, none\nclosed), produced once, alone on the"
        " conversations topic: drained by the pipe, then\nby a new service in this process"
        " (each view read from the database at first)",
    )
    p = x.pipe
    s.add(
        "baseline: no-op aiokafka pipe",
        f"{_n(x.pipe_rate)} routed conversations/s ({p.records:,} openings piped in "
        f"{p.seconds:.1f} s, {p.batches} polls){_cpu(x.pipe_cpu_seconds, p.records, 'opening')}",
    )
    s.add(
        "handoff, end to end",
        f"{_n(x.rate)} routed conversations/s ({x.routed:,} of {x.openings:,} openings routed "
        f"in {x.seconds:.1f} s){_cpu(x.cpu_seconds, x.openings, 'opening')}",
    )
    s.add("handoff / pipe", f"{x.ratio:.2f}")
    return s


_NAMED = ("conversation.opened", "message.received", "user.presence_changed", "conversation.closed")


def _cpu_section(r: Results) -> Section:
    s = Section("9. CPU per input (issue 15)")
    measured = (r.pipe_cpu_seconds, r.drained_cpu_seconds, r.routing, r.type_costs)
    if not any(x for x in measured) and not any(i.cpu_seconds for i in r.instances):
        return s
    s.add(
        "drains: how",
        "CPU time over a drain, over its inputs, timers' cost counted in: of this process"
        "\n(time.process_time) for the pipe, its clients' start and stop left out, and for the"
        "\nservice in this process from ready, this process's polling of the database for the"
        "\ndrain's end (a query every 0.1 s) included; of each `handoff run` process from"
        "\nready (/proc/<pid>/stat utime+stime)",
    )
    mixed = [f"pipe {_us_per(r.pipe_cpu_seconds, r.pipe.records, 'record')}"]
    mixed.append(f"handoff in this process {_us_per(r.drained_cpu_seconds, r.drained.inputs)}")
    for i in r.instances:
        if i.cpu_seconds:
            mixed.append(f"{i.count} `handoff run` {i.us_per_input:,.0f} µs per input")
    s.add("drains, mixed stream (1-2, 6)", ",\n".join(mixed))
    if x := r.routing:
        s.add(
            "drains, routing (8)",
            f"pipe {x.pipe_us_per_opening:,.0f} µs, handoff {x.us_per_opening:,.0f} µs per opening",
        )
    if not r.type_costs:
        return s
    o = r.options
    s.add(
        "pure path: how",
        f"the generator of (1-2), {o.cpu_workspaces} workspaces, on a Saturday; input by input"
        " in\norder: fold, decide, fold the decisions, dump_event each (a timer fired when due,"
        "\nbefore the next input); CPU (time.process_time_ns) per input, its parse timed apart;"
        f"\nno I/O; each type its fastest of {o.cpu_rounds} round{'s' if o.cpu_rounds > 1 else ''}",
    )
    by_type = {c.type: c for c in r.type_costs}
    for kind in _NAMED:
        if c := by_type.get(kind):
            s.add(
                kind,
                f"{c.us:,.0f} µs, parse {c.parse_us:,.0f} µs more; "
                f"{c.decisions_per_input:.2f} decisions per input ({c.inputs:,} inputs)",
            )
    others = [c for c in r.type_costs if c.type not in _NAMED]
    items = [
        f"{c.type} {c.us:,.0f} µs" + ("" if c.type == TIMER else f" (parse {c.parse_us:,.0f})")
        for c in others
    ]
    if items:
        s.add(
            "other inputs", "\n".join(", ".join(items[i : i + 3]) for i in range(0, len(items), 3))
        )
    mix = pure_mix(r.type_costs)
    line = f"{mix:,.0f} µs per input, parse included, timers spread over the inputs"
    if r.drained_cpu_seconds is not None:
        served = 1e6 * r.drained_cpu_seconds / max(r.drained.inputs, 1)
        line += (
            f";\nthe service in this process spent {served:,.0f} µs per input over (2),"
            f" {served / mix:.1f}x"
        )
    s.add("pure path, the stream's mix", line)
    return s


def routing_ratio_line(ratio: float) -> str:
    """The report's line before last: `handoff/pipe routing ratio: R` (8), two decimals."""
    return f"handoff/pipe routing ratio: {ratio:.2f}"


def _with_routing_line(text: str, r: Results) -> str:
    """The routing ratio's line put just before the last (the throughput ratio's)."""
    if r.routing is None:
        return text
    head, last = text.rsplit("\n", 1)
    return f"{head}\n{routing_ratio_line(r.routing.ratio)}\n{last}"


def build_report(r: Results) -> str:
    machine = Section("machine")
    for what, figure in r.machine:
        machine.add(what, figure)
    title = f"handoff bench{' --quick' if r.options.quick else ''}"
    if r.seconds:
        title += f" (the run took {r.seconds:.0f} s)"
    sections: Sequence[Section] = [
        machine,
        _setup(r),
        _throughput(r),
        _latency(r),
        _replay(r),
        _memory(r),
        _instances(r),
        *[s for s in (_team_size(r),) if s.rows],
        *[s for s in (_routing(r), _cpu_section(r)) if s.rows],
        *([restart_section(r.restart)] if r.restart is not None else []),
        *([audit_section(r.audit)] if r.audit is not None else []),
    ]
    return _with_routing_line(render(title, sections, r.ratio), r)
