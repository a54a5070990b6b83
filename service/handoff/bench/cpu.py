"""CPU per input: of a process over a drain, and on the pure path by input type (issue 15).

- A drain's CPU: `time.process_time` around it for what runs in this process (the no-op
  pipe, `timed_pipe`, less what its clients' start and stop take; the service in this
  process, from ready), `process_cpu` (utime + stime of `/proc/<pid>/stat`) for a `handoff
  run` process. Either is divided by the inputs drained.

- The pure path by input type (`measure_types`), no I/O and no profiler: the benchmark's
  stream (`handoff.bench.stream`, every family) for a few workspaces, on a fixed Saturday,
  goes through the service's sequence input by input in its order: a timer that falls due
  before the next input of its workspace fires first (as the poller would), then the input
  is folded, decided with its time as the clock, its decisions folded
  (`handoff_projections.apply.apply`) and serialised (`handoff.adapters.cloudevents
  .dump_event`). Each input (and each timer) is timed on its own with
  `time.process_time_ns`, less what a clock read costs; its parse
  (`handoff.adapters.cloudevents.parse` of the record's bytes) is timed apart, beforehand.
  The collector runs as in the service (`fewer_collections`), with what came before frozen.
  Over several rounds (each from empty views), each type keeps its round with the least
  CPU per input. Views keep every row (the service evicts idle contacts' rows and reads them
  back when named: I/O this leaves out).
"""

import gc
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from handoff.adapters.cloudevents import Accepted, dump_event, parse
from handoff.app.collector import fewer_collections
from handoff.app.settings import Settings
from handoff.bench.pipe import PipeResult, run_pipe
from handoff.bench.stream import stream_params
from handoff.core.envelope import Envelope
from handoff.core.ids import RunId
from handoff.core.timers import elapsed
from handoff.core.view import WorkspaceView
from handoff.demo.traffic import day_events
from handoff_projections.apply import apply

__all__ = [
    "SATURDAY",
    "TIMER",
    "TypeCost",
    "measure_types",
    "process_cpu",
    "pure_mix",
    "timed_pipe",
]

SATURDAY = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
"""The pure path's day: a Saturday (in Madrid too), as the backlog's is a weekend."""

TIMER = "timer.elapsed"
"""The type a fired timer is counted under."""

_MAX_BYTES = 1 << 20


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a running process has used, from `/proc/<pid>/stat`."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    # After the command's closing parenthesis: field 3 (state) first; utime, stime are 14, 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def timed_pipe(settings: Settings, out_topic: str, records: int) -> tuple[PipeResult, float]:
    """The no-op pipe over `records` records (`run_pipe`), and this process's CPU seconds
    over it, less those of a pipe that pipes nothing run just before (its clients' start,
    seek and stop, which handoff's figure, taken from ready, leaves out too)."""
    cpu = time.process_time()
    await run_pipe(settings, out_topic, 0)
    idle = time.process_time() - cpu
    cpu = time.process_time()
    piped = await run_pipe(settings, out_topic, records)
    return piped, max(0.0, time.process_time() - cpu - idle)


@dataclass(frozen=True, slots=True)
class TypeCost:
    """One input type on the pure path, in its fastest round."""

    type: str
    inputs: int
    cpu_seconds: float
    """Fold, decide, fold the decisions, serialise them: over all `inputs`."""
    parse_seconds: float
    """Parsing the records' bytes (none for timers, which the service makes itself)."""
    decisions: int

    @property
    def us(self) -> float:
        """CPU µs per input, parse aside."""
        return 1e6 * self.cpu_seconds / max(self.inputs, 1)

    @property
    def parse_us(self) -> float:
        return 1e6 * self.parse_seconds / max(self.inputs, 1)

    @property
    def decisions_per_input(self) -> float:
        return self.decisions / max(self.inputs, 1)


def _clock_cost() -> int:
    """Nanoseconds a `process_time_ns` read adds to what two of them time (a system call
    here; the least of a few tries: being taken off the CPU only adds)."""
    clock = time.process_time_ns
    best = None
    for _ in range(5):
        n = 2000
        start = clock()
        for _ in range(n):
            clock()
            clock()
        each = (clock() - start) // (n * 2)
        best = each if best is None else min(best, each)
    return best or 0


def _round(records: Sequence[bytes], clock_cost: int) -> dict[str, TypeCost]:
    """One pass over the stream from empty views."""
    clock = time.process_time_ns
    parsed: list[Envelope] = []
    parse_ns: defaultdict[str, int] = defaultdict(int)
    for raw in records:
        start = clock()
        result = parse(raw, _MAX_BYTES)
        spent = clock() - start - clock_cost
        if not isinstance(result, Accepted):
            raise ValueError(f"the stream holds an input the service refuses: {result}")
        parsed.append(result.event)
        parse_ns[result.event.type] += spent
    views: dict[str, WorkspaceView] = {}
    count: defaultdict[str, int] = defaultdict(int)
    spent_ns: defaultdict[str, int] = defaultdict(int)
    decided: defaultdict[str, int] = defaultdict(int)

    def step(kind: str, view: WorkspaceView, event: Envelope) -> None:
        start = clock()
        decisions = apply(view, event, event.time)
        for decision in decisions:
            dump_event(decision)
        spent_ns[kind] += clock() - start - clock_cost
        count[kind] += 1
        decided[kind] += len(decisions)

    thawed = gc.get_freeze_count() == 0
    gc.collect()
    gc.freeze()
    try:
        with fewer_collections():
            for event in parsed:
                ws = event.workspaceid
                view = views.get(ws)
                if view is None:
                    view = views[ws] = WorkspaceView(workspace_id=ws)
                while due := [
                    (t.due_at, run_id)
                    for run_id, t in view.timers.items()
                    if t.due_at <= event.time
                ]:
                    at, run_id = min(due)
                    timer = view.timers[run_id]
                    step(TIMER, view, elapsed(ws, RunId(run_id), timer.step_id, timer.kind, at))
                step(event.type, view, event)
    finally:
        if thawed:
            gc.unfreeze()
    return {
        kind: TypeCost(kind, n, spent_ns[kind] / 1e9, parse_ns[kind] / 1e9, decided[kind])
        for kind, n in count.items()
    }


def measure_types(
    workspaces: int,
    conversations: int,
    agents: tuple[int, int],
    seed: int = 1,
    rounds: int = 1,
    say: Callable[[str], None] | None = None,
) -> list[TypeCost]:
    """The pure path by input type (the module's doc says how), most inputs first."""
    spec = stream_params(workspaces, conversations, SATURDAY, agents, seed=seed)
    records = [orjson.dumps(e) for e in day_events(spec)]
    clock_cost = _clock_cost()
    best: dict[str, TypeCost] = {}
    for round_ in range(rounds):
        costs = _round(records, clock_cost)
        for kind, cost in costs.items():
            kept = best.get(kind)
            if kept is None or cost.us < kept.us:
                best[kind] = cost
        if say is not None:
            total = sum(c.cpu_seconds for c in costs.values())
            inputs = sum(c.inputs for c in costs.values())
            say(f"round {round_ + 1}: {1e6 * total / inputs:,.0f} µs per input ({inputs:,})")
    return sorted(best.values(), key=lambda c: (-c.inputs, c.type))


def pure_mix(costs: Sequence[TypeCost]) -> float:
    """CPU µs per input of the whole stream (its timers counted in, spread over its inputs),
    parse included: what the pure path costs an input of the stream's mix."""
    inputs = sum(c.inputs for c in costs if c.type != TIMER)
    seconds = sum(c.cpu_seconds + c.parse_seconds for c in costs)
    return 1e6 * seconds / max(inputs, 1)
