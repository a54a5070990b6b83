"""Memory: the resident size of N workspaces' state, as the service holds it (`WorkspaceView`s).

Each measurement runs in a fresh process (`python -m handoff.bench.memory`), so its RSS is its
own. Without running N workspaces through Kafka: the process generates a few workspaces of
the benchmark's stream (two of each family), folds each one's log as the service does
(parse every input, fold it in with `handoff_projections.evolve`, `decide` with the event's
time as the clock, fold the decisions in; a timer that falls due before the next input fires
first, as the poller would; rows of idle contacts leave and come back as in the service),
and pickles the folded views. It then measures its RSS, unpickles
N views (each a copy of one of the templates, every object its own, as a load from the
database would give), renames each to a workspace of its own, and measures the RSS again. The
difference over N is the state per workspace.

`days` > 1 makes the log longer without adding workspaces: the same workspaces (agents, teams,
workflow) live the day again, with new conversations, contacts and messages each day.
"""

import argparse
import gc
import json
import pickle
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from handoff.adapters.cloudevents import Accepted, parse
from handoff.app.handle import PartitionState
from handoff.bench.machine import resident_bytes
from handoff.bench.stream import stream_params, wall_span
from handoff.core.envelope import Envelope
from handoff.core.ids import RunId
from handoff.core.timers import elapsed
from handoff.core.view import WorkspaceView
from handoff.demo.traffic import ALL_FAMILIES, CloudEvent, TrafficParams, day_events
from handoff_projections.apply import apply as fold_and_decide
from handoff_projections.resident import named, wanted

__all__ = ["MemoryResult", "measure_memory"]

TEMPLATES = 2 * len(ALL_FAMILIES)
"""Workspaces folded for real; the N measured are copies of these, family by family."""

_START = datetime(2026, 11, 21, tzinfo=UTC)
_SETUP = frozenset({"user.upserted", "team.upserted", "workflow.published"})
_RENAMED = ("conversation_id", "contact_id", "message_id")


@dataclass(frozen=True, slots=True)
class MemoryResult:
    workspaces: int
    days: int
    log_per_workspace: float
    """Logged events (inputs, timers and decisions) per workspace."""
    rss_before: int
    """Bytes, before the N views."""
    rss_after: int
    seconds: float

    @property
    def per_workspace(self) -> float:
        return (self.rss_after - self.rss_before) / self.workspaces


def _day(events: Sequence[CloudEvent], day: int, span: timedelta) -> Iterator[CloudEvent]:
    """The day again `day` days later: no set-up, new ids for conversations, contacts and
    messages."""
    tag = f"d{day}-"
    for e in events:
        if e["type"] in _SETUP:
            continue
        data = {k: (tag + v if k in _RENAMED else v) for k, v in e["data"].items()}
        when = datetime.fromisoformat(e["time"]) + span * day
        again = {
            **e,
            "id": tag + e["id"],
            "time": when.isoformat(timespec="microseconds"),
            "data": data,
        }
        if "subject" in e:
            again["subject"] = tag + e["subject"]
        yield again


def _history(params: TrafficParams, days: int) -> list[CloudEvent]:
    first = day_events(params)
    events = list(first)
    for day in range(1, days):
        events += _day(first, day, wall_span(params))
    return events


def fold(events: Sequence[CloudEvent]) -> tuple[dict[str, WorkspaceView], int]:
    """The views the service would hold after these inputs, and the events it would log.

    As in the service, rows of idle contacts leave a view when `PartitionState.make_room`
    says so, and are read back when an input names them: here from a twin of each view that
    keeps every row, standing for the database.
    """
    held = PartitionState(0, {})
    stored: dict[str, WorkspaceView] = {}
    logged = 0

    def apply(ws: str, event: Envelope) -> None:
        nonlocal logged
        for view in (stored[ws], held.views[ws]):
            decisions = fold_and_decide(view, event, event.time)
        logged += 1 + len(decisions)
        held.make_room([ws])

    for raw in events:
        parsed = parse(orjson.dumps(raw), 1 << 20)
        if not isinstance(parsed, Accepted):
            raise ValueError(f"the stream holds an input the service refuses: {parsed}")
        event, ws = parsed.event, parsed.event.workspaceid
        if ws not in held.views:
            held.views[ws], stored[ws], held.whole[ws] = (
                WorkspaceView(workspace_id=ws),
                WorkspaceView(workspace_id=ws),
                set(),
            )
        view, kept = held.views[ws], stored[ws]
        while due := sorted(
            (t.due_at, run_id) for run_id, t in kept.timers.items() if t.due_at <= event.time
        ):
            at, run_id = due[0]
            timer = kept.timers[run_id]
            apply(ws, elapsed(ws, RunId(run_id), timer.step_id, timer.kind, at))
        contact, conversation = named(event)
        contacts = {contact} - held.whole[ws] if contact is not None else set()
        conversations = {conversation} - view.conversations.keys() if conversation else set()
        for table, key in wanted(view, contacts, conversations):
            row = getattr(kept, table).get(key)
            if row is not None:
                getattr(view, table)[key] = row
        held.whole[ws] |= contacts
        apply(ws, event)
    return held.views, logged


def _rss() -> int:
    gc.collect()
    return resident_bytes()


def _measure(workspaces: int, days: int, conversations: int, agents: tuple[int, int]) -> str:
    spec = stream_params(TEMPLATES, conversations, _START, agents)
    views, logged = fold(_history(spec, days))
    templates = [pickle.dumps(v) for v in views.values()]
    del views
    before = _rss()
    started = time.perf_counter()
    held: list[WorkspaceView] = []
    for i in range(workspaces):
        view: WorkspaceView = pickle.loads(templates[i % len(templates)])
        view.workspace_id = f"ws-{i:06d}"
        held.append(view)
    after = _rss()
    seconds = time.perf_counter() - started
    return json.dumps(
        {
            "workspaces": len(held),
            "days": days,
            "log_per_workspace": logged / TEMPLATES,
            "rss_before": before,
            "rss_after": after,
            "seconds": seconds,
        }
    )


def measure_memory(
    workspaces: int, days: int, conversations: int, agents: tuple[int, int]
) -> MemoryResult:
    """Measure in a fresh process."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "handoff.bench.memory",
            f"--workspaces={workspaces}",
            f"--days={days}",
            f"--conversations={conversations}",
            f"--agents={agents[0]}-{agents[1]}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the memory measurement failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return MemoryResult(**figures)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handoff.bench.memory")
    parser.add_argument("--workspaces", type=int, required=True)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--conversations", type=int, required=True)
    parser.add_argument("--agents", default="3-50")
    args = parser.parse_args(argv)
    low, _, high = args.agents.partition("-")
    print(_measure(args.workspaces, args.days, args.conversations, (int(low), int(high or low))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
