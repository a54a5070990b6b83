"""Decision cost by team size (issue 14): the pure path, and a drain through the service.

- The pure path (`measure`), no I/O. One workspace: its users (all online, none with a
  `max_open_contacts`), one team of them all and a workflow whose one step is `assign_to`
  the team by one logic with `only_online: true` are folded first; then conversation
  openings, each by a contact of its own and none of them closed, go through the service's
  sequence (`handoff_projections.apply.apply`: fold, decide with the event's time as the
  clock, fold the decisions), and every decision is serialised
  (`handoff.adapters.cloudevents.dump_event`). The inputs are parsed beforehand, a warm-up
  of openings goes first, and the collector is frozen over what came before the measured
  ones. The figure is CPU time (`time.process_time`) per routed conversation (an opening
  that ended in a `contact.assigned`); over several rounds, each (logic, team size) keeps
  its fastest. A team larger than the openings before the measured ones still has members
  never assigned, whom longest idle finds first (its cheapest walk, all of them tied);
  `--warmup` above the team size measures it with every member assigned.

  `python -m handoff.bench.team_size` prints the table on its own. It imports only what the
  tree had before the routing index, so it measures an older checkout too:
  `PYTHONPATH=<tree>/service:<tree>/projections python -m handoff.bench.team_size`.

- The drain (`drain`): with the benchmark's embedded servers, a service in this process
  (`handoff.bench.drain.in_process`) first folds the setup of a few workspaces of each team
  size (round robin, as above); then, size by size, a batch of openings is produced to it
  in one go and timed from the first send until the log holds every one and the outbox is
  empty (`handoff.bench.servers.wait_drained`). The views are loaded by then: what differs
  between the sizes is the routing, and the agents' rows it changes (in a team of 5 a batch
  changes the same few again; in a team of 500, a different agent's for each opening).
"""

import argparse
import gc
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from handoff.adapters.cloudevents import Accepted, dump_event, parse
from handoff.app.settings import Settings
from handoff.bench.drain import in_process
from handoff.bench.servers import (
    Servers,
    bench_settings,
    create_database,
    create_topics,
    produce,
    wait_drained,
    wall_now,
)
from handoff.bench.stream import encode
from handoff.core.envelope import Envelope
from handoff.core.view import WorkspaceView
from handoff.demo.traffic import CloudEvent
from handoff_projections.apply import apply

__all__ = [
    "LOGICS",
    "SIZES",
    "DrainResult",
    "PureResult",
    "drain",
    "measure",
    "measure_all",
    "opening_events",
    "ratios",
    "setup_events",
    "table",
]

SIZES: tuple[int, ...] = (5, 50, 500, 5_000)
LOGICS: tuple[str, ...] = ("round_robin", "least_open_contacts", "longest_idle")
TEAM = "support"
_START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
_TICK = timedelta(milliseconds=1)
"""Inputs of a workspace follow one another a millisecond apart."""


def _event(
    ws: str, n: int, type_: str, data: dict[str, Any], start: datetime, subject: str | None = None
) -> CloudEvent:
    event: CloudEvent = {
        "specversion": "1.0",
        "id": f"{ws}-{type_}-{n:07d}",
        "source": "/bench/team-size",
        "type": type_,
        "time": (start + n * _TICK).isoformat(timespec="microseconds"),
        "workspaceid": ws,
    }
    if subject is not None:
        event["subject"] = subject
    event["datacontenttype"] = "application/json"
    event["data"] = data
    return event


def workflow(ws: str, logic: str) -> dict[str, Any]:
    """One step: assign to the team by `logic`, online members only."""
    return {
        "id": f"bench-{logic.replace('_', '-')}",
        "workspace_id": ws,
        "name": f"bench: {logic}",
        "trigger": {"type": "conversation_opened", "source": ["contact"]},
        "steps": [
            {
                "id": "assign",
                "type": "assign_to",
                "team_id": TEAM,
                "logic": logic,
                "only_online": True,
            }
        ],
    }


def setup_events(ws: str, size: int, logic: str, start: datetime = _START) -> list[CloudEvent]:
    """`size` users, each then online, one team of them all, the workflow published: the
    first `2 * size + 2` milliseconds from `start`."""
    users = [f"u{i:05d}" for i in range(size)]
    events = [
        _event(ws, n, "user.upserted", {"user_id": u, "name": f"Agent {u}"}, start)
        for n, u in enumerate(users)
    ]
    events += [
        _event(ws, size + n, "user.presence_changed", {"user_id": u, "status": "online"}, start)
        for n, u in enumerate(users)
    ]
    team = {"team_id": TEAM, "name": "Support", "members": users}
    events.append(_event(ws, 2 * size, "team.upserted", team, start))
    published = {"definition": workflow(ws, logic)}
    events.append(_event(ws, 2 * size + 1, "workflow.published", published, start))
    return events


def opening_events(
    ws: str, first: int, count: int, size: int, start: datetime = _START
) -> list[CloudEvent]:
    """Openings `first` to `first + count - 1` of conversations, each by a contact of its
    own, after the setup of a team of `size` (`setup_events`)."""
    out = []
    for i in range(first, first + count):
        contact = f"ct-{i:07d}"
        data = {
            "contact_id": contact,
            "conversation_id": f"cv-{i:07d}",
            "source": "contact",
            "channel": "whatsapp",
        }
        out.append(_event(ws, 2 * size + 2 + i, "conversation.opened", data, start, contact))
    return out


def _parsed(events: Sequence[CloudEvent]) -> list[Envelope]:
    out = []
    for raw in events:
        parsed = parse(orjson.dumps(raw), 1 << 20)
        if not isinstance(parsed, Accepted):
            raise ValueError(f"the service refuses a bench input: {parsed}")
        out.append(parsed.event)
    return out


# --- the pure path --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PureResult:
    """One (logic, team size): the pure path over `conversations` measured openings."""

    logic: str
    size: int
    conversations: int
    routed: int
    """Measured openings that ended in a `contact.assigned`."""
    cpu_seconds: float
    """`time.process_time` over the measured openings."""
    wall_seconds: float
    """`time.perf_counter` over the same."""
    decision_bytes: int
    """The measured openings' decisions, serialised, all together."""
    max_bytes: int
    """The largest decision (any type, the log's own included)."""
    max_type: str
    decided: Counter[str] = field(default_factory=Counter)

    @property
    def us_per_routed(self) -> float:
        return 1e6 * self.cpu_seconds / max(self.routed, 1)

    @property
    def wall_us_per_routed(self) -> float:
        return 1e6 * self.wall_seconds / max(self.routed, 1)

    @property
    def bytes_per_conversation(self) -> float:
        return self.decision_bytes / max(self.conversations, 1)


def measure(logic: str, size: int, conversations: int, warmup: int) -> PureResult:
    """The pure path for one logic and team size (the module's doc says how)."""
    ws = f"bench-{size}"
    view = WorkspaceView(workspace_id=ws)
    for event in _parsed(setup_events(ws, size, logic)):
        apply(view, event, event.time)
    for event in _parsed(opening_events(ws, 0, warmup, size)):
        for decision in apply(view, event, event.time):
            dump_event(decision)
    measured = _parsed(opening_events(ws, warmup, conversations, size))
    sizes: list[tuple[str, int]] = []
    # The collector keeps out of what came before (the setup's heap grows with the team);
    # what a caller froze before stays frozen.
    thawed = gc.get_freeze_count() == 0
    gc.collect()
    gc.freeze()
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        for event in measured:
            for decision in apply(view, event, event.time):
                sizes.append((decision.type, len(dump_event(decision))))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        if thawed:
            gc.unfreeze()
    decided = Counter(kind for kind, _ in sizes)
    largest = max(sizes, key=lambda s: s[1], default=("none", 0))
    return PureResult(
        logic=logic,
        size=size,
        conversations=conversations,
        routed=decided["contact.assigned"],
        cpu_seconds=cpu,
        wall_seconds=wall,
        decision_bytes=sum(n for _, n in sizes),
        max_bytes=largest[1],
        max_type=largest[0],
        decided=decided,
    )


def measure_all(
    logics: Sequence[str],
    sizes: Sequence[int],
    conversations: int,
    warmup: int,
    rounds: int = 1,
    say: Callable[[str], None] | None = None,
) -> list[PureResult]:
    """Every (logic, size), `rounds` times over (each round all of them, so a busy spell of
    the machine falls on several); each keeps its round with the least CPU time."""
    best: dict[tuple[str, int], PureResult] = {}
    for round_ in range(rounds):
        for logic in logics:
            for size in sizes:
                r = measure(logic, size, conversations, warmup)
                if say is not None:
                    say(f"round {round_ + 1}: {logic}, team {size:,}: {r.us_per_routed:,.0f} µs")
                kept = best.get((logic, size))
                if kept is None or r.cpu_seconds < kept.cpu_seconds:
                    best[logic, size] = r
    return [best[logic, size] for logic in logics for size in sizes]


def ratios(results: Sequence[PureResult]) -> dict[str, float]:
    """Logic -> CPU per routed conversation of its largest team over its smallest's."""
    out = {}
    for logic in dict.fromkeys(r.logic for r in results):
        mine = sorted((r for r in results if r.logic == logic), key=lambda r: r.size)
        if len(mine) > 1:
            out[logic] = mine[-1].us_per_routed / mine[0].us_per_routed
    return out


def table(results: Sequence[PureResult]) -> str:
    """The pure path's figures, a line per (logic, team size), then each logic's ratio."""
    head = (
        f"{'logic':<20} {'team':>6} {'µs CPU/routed':>14} {'µs wall':>9} {'routed':>7}"
        f" {'B/conv':>8} {'max B':>8}  largest"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.logic:<20} {r.size:>6,} {r.us_per_routed:>14,.1f} {r.wall_us_per_routed:>9,.1f}"
            f" {r.routed:>7,} {r.bytes_per_conversation:>8,.0f} {r.max_bytes:>8,}  {r.max_type}"
        )
    lines += [f"{logic}: largest / smallest team {x:.2f}x" for logic, x in ratios(results).items()]
    return "\n".join(lines)


# --- the drain through the service -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DrainResult:
    """One batch of openings through the running service, teams of `size`."""

    size: int
    workspaces: int
    openings: int
    routed: int
    """`contact.assigned` the batch added to the log."""
    seconds: float
    """From the first send until the log held every opening and the outbox was empty."""
    produce_seconds: float
    """Of which the sends took this long."""

    @property
    def rate(self) -> float:
        """Routed conversations per second."""
        return self.routed / self.seconds


async def assigned_count(dsn: str) -> int:
    """`contact.assigned` decisions the log holds."""
    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM event_log WHERE type = 'contact.assigned'"
        )
    finally:
        await conn.close()
    return count


async def drain(
    servers: Servers,
    base: Settings,
    name: str,
    sizes: Sequence[int],
    workspaces: int,
    openings: int,
    rounds: int = 1,
    say: Callable[[str], None] | None = None,
) -> list[DrainResult]:
    """Round robin in `workspaces` workspaces of each team size, in a database and topics
    of their own (`name`); per round and size, `openings` openings spread over that size's
    workspaces, drained by one service that runs throughout."""
    dsn = await create_database(servers.server_dsn, name.replace("-", "_"))
    settings = bench_settings(base, servers.bootstrap, dsn, name)
    await create_topics(settings)
    start = wall_now() - timedelta(hours=1)
    plan = {size: [f"team{size}-{i}" for i in range(workspaces)] for size in sizes}
    setup = [
        e
        for size, ids in plan.items()
        for ws in ids
        for e in setup_events(ws, size, "round_robin", start)
    ]
    await produce(settings, encode(setup))
    total = len(setup)
    opened = dict.fromkeys(sizes, 0)
    each = max(1, openings // workspaces)
    results = []
    async with in_process(settings) as service:
        await wait_drained(dsn, settings.group_id, total, service.ready_at, service.alive)
        for _ in range(rounds):
            for size in sizes:
                batch = [
                    e
                    for per_ws in zip(
                        *(opening_events(ws, opened[size], each, size, start) for ws in plan[size]),
                        strict=True,
                    )
                    for e in per_ws
                ]
                records = encode(batch)
                opened[size] += each
                total += len(records)
                before = await assigned_count(dsn)
                started = time.perf_counter()
                await produce(settings, records)
                produced = time.perf_counter() - started
                drained = await wait_drained(dsn, settings.group_id, total, started, service.alive)
                routed = await assigned_count(dsn) - before
                results.append(
                    DrainResult(size, workspaces, len(records), routed, drained.seconds, produced)
                )
                if say is not None:
                    say(f"teams of {size:,}: {results[-1].rate:,.0f} routed conversations/s")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m handoff.bench.team_size`: the pure path's table."""
    parser = argparse.ArgumentParser(
        prog="python -m handoff.bench.team_size", description="the pure path by team size"
    )
    parser.add_argument(
        "--sizes", default=",".join(map(str, SIZES)), help="team sizes [%(default)s]"
    )
    parser.add_argument("--logics", default=",".join(LOGICS), help="logics [%(default)s]")
    parser.add_argument("--conversations", type=int, default=2000, help="measured [%(default)s]")
    parser.add_argument("--warmup", type=int, default=200, help="openings before [%(default)s]")
    parser.add_argument("--rounds", type=int, default=3, help="each keeps its best [%(default)s]")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    results = measure_all(
        args.logics.split(","),
        [int(s) for s in args.sizes.split(",")],
        args.conversations,
        args.warmup,
        args.rounds,
        say,
    )
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
