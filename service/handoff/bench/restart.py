"""Restart (issue 15): how long a `handoff run` stopped with SIGTERM and started again on the
same consumer group takes to decide again, and where that time goes.

One workspace (a team of 5, round robin) in a database and topics of its own. A first
instance starts, routes an opening, and is stopped with SIGTERM; then, `restarts` times, a
new instance starts on the same group as soon as the old one has exited, an opening is sent
as it starts, and each stage is timed from the process start, on the wall clock the
service's log lines and the event log's `decided_at` use:

- `listening`: the service's log line once the database is migrated and the topics exist;
- `assigned`: when the consumer group gave it its partitions (the group join), from the
  `assigned` line, said once they are taken, less the `took_ms` it says taking them took;
- `consuming`: the line once the consumer has started (it waits for the assignment);
- decided: the `decided_at` of the first decision the opening caused.

The instances run with the service's own group settings (`HANDOFF_SESSION_TIMEOUT_MS`,
`HANDOFF_HEARTBEAT_INTERVAL_MS`), not the quick-forming ones of the other measurements: how
long a join waits is what is measured. On Tansu a join waits `session_timeout_ms / 2` for
other joiners.
"""

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import orjson

from handoff.app.settings import Settings
from handoff.bench.drain import process_env
from handoff.bench.servers import (
    Servers,
    bench_settings,
    create_database,
    create_topics,
    produce,
    wall_now,
)
from handoff.bench.stream import encode
from handoff.bench.table import Section, render
from handoff.bench.team_size import opening_events, setup_events

__all__ = [
    "STAGES",
    "RestartResult",
    "Timeline",
    "main",
    "measure_restart",
    "parse_timeline",
    "restart_section",
]

STAGES: tuple[str, ...] = ("listening", "assigned", "consuming")
"""The service's log lines timed, in the order they come."""

TARGET = 2.0
"""Issue 15: a restarted instance decides within this many seconds of getting its partitions."""

_TEAM = 5
_WORKSPACE = "restart-1"
_DECIDED_TIMEOUT = 90.0
_STOP_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Timeline:
    """One instance's start: each stage in seconds from the process start (None: not seen)."""

    stages: dict[str, float | None]
    decided: float
    """The opening's first decision (`decided_at`)."""
    stopped: float | None = None
    """SIGTERM to exit of the instance before it (restarts only)."""

    @property
    def join(self) -> float | None:
        """Process start to the assignment."""
        return self.stages.get("assigned")

    @property
    def after_assignment(self) -> float | None:
        """The assignment to the decision."""
        return None if self.join is None else self.decided - self.join


@dataclass
class RestartResult:
    session_timeout_ms: int
    heartbeat_interval_ms: int
    first: Timeline
    restarts: list[Timeline] = field(default_factory=list)


def parse_timeline(log: str, started: float) -> dict[str, float | None]:
    """Seconds from `started` (epoch seconds) to the first JSON log line of each stage (for
    `assigned`, to the assignment it reports)."""
    found: dict[str, float | None] = dict.fromkeys(STAGES)
    for line in log.splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        event = entry.get("event")
        if event in found and found[event] is None and "timestamp" in entry:
            at = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))
            took = float(entry.get("took_ms", 0)) / 1000  # `assigned`: once they are taken
            found[event] = at.timestamp() - took - started
    return found


def _start(settings: Settings, log: Path) -> "subprocess.Popen[bytes]":
    """`handoff run` on `settings`, on plain connections (the environment's `HANDOFF_*`
    settings left out, as `handoff.bench.drain` does), its output to `log`."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "handoff.cli", "run"],
            env={**inherited, **process_env(settings, 0)},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )


async def _stop(process: "subprocess.Popen[bytes]") -> float:
    """SIGTERM, and the seconds until the process exited."""
    sent = time.perf_counter()
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.to_thread(process.wait, _STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        await asyncio.to_thread(process.wait)
    return time.perf_counter() - sent


def _tail(path: Path, chars: int | None = 3000) -> str:
    """The log's last `chars` characters (None: all of it)."""
    try:
        return path.read_text(errors="replace")[-chars if chars else 0 :]
    except OSError as err:
        return f"(cannot read {path}: {err})"


async def _decided_at(
    dsn: str, opening_id: str, process: "subprocess.Popen[bytes]", log: Path
) -> float:
    """Epoch seconds of the first decision `opening_id` caused, once logged."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.perf_counter() + _DECIDED_TIMEOUT
        while True:
            at = await conn.fetchval(
                "SELECT extract(epoch FROM min(decided_at))::float8 FROM event_log"
                " WHERE causation_id = $1 AND NOT is_input",
                opening_id,
            )
            if at is not None:
                return float(at)
            if process.poll() is not None:
                raise RuntimeError(f"handoff run exited with {process.returncode}:\n{_tail(log)}")
            if time.perf_counter() > deadline:
                raise TimeoutError(f"no decision in {_DECIDED_TIMEOUT:.0f} s:\n{_tail(log)}")
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def _instance(
    settings: Settings, log: Path, opening: int, start: datetime, stopped: float | None
) -> tuple["subprocess.Popen[bytes]", Timeline]:
    """Start an instance, send opening number `opening` as it starts, wait for its decision."""
    started = time.time()
    process = _start(settings, log)
    try:
        event = opening_events(_WORKSPACE, opening, 1, _TEAM, start)[0]
        await produce(settings, encode([event]))
        decided = await _decided_at(settings.database_url or "", str(event["id"]), process, log)
    except BaseException:
        await _stop(process)
        raise
    stages = parse_timeline(_tail(log, None), started)
    return process, Timeline(stages, decided - started, stopped)


async def measure_restart(
    servers: Servers,
    base: Settings,
    name: str,
    restarts: int,
    log_dir: Path,
    say: Callable[[str], None] | None = None,
) -> RestartResult:
    """A first start, then `restarts` restarts after a SIGTERM, on one group (`name`: the
    database, topics and group of this measurement)."""
    dsn = await create_database(servers.server_dsn, name.replace("-", "_"))
    settings = bench_settings(base, servers.bootstrap, dsn, name).model_copy(
        update={
            "session_timeout_ms": base.session_timeout_ms,
            "heartbeat_interval_ms": base.heartbeat_interval_ms,
            "log_level": "INFO",
        }
    )
    await create_topics(settings)
    start = wall_now() - timedelta(hours=1)
    await produce(settings, encode(setup_events(_WORKSPACE, _TEAM, "round_robin", start)))
    process, first = await _instance(settings, log_dir / f"{name}-0.log", 0, start, None)
    if say is not None:
        say(_line("first start", first))
    result = RestartResult(settings.session_timeout_ms, settings.heartbeat_interval_ms, first)
    try:
        for n in range(1, restarts + 1):
            stopped = await _stop(process)
            process, timeline = await _instance(
                settings, log_dir / f"{name}-{n}.log", n, start, stopped
            )
            result.restarts.append(timeline)
            if say is not None:
                say(_line(f"restart {n}", timeline))
    finally:
        await _stop(process)
    return result


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _line(what: str, t: Timeline) -> str:
    stages = ", ".join(f"{stage} {_s(t.stages[stage])}" for stage in STAGES)
    stopped = "" if t.stopped is None else f"; the one before exited {_s(t.stopped)} after SIGTERM"
    return f"{what}: {stages}, decided {_s(t.decided)}{stopped}"


def _split(t: Timeline) -> str:
    stopped = "" if t.stopped is None else f"; the old one exited {_s(t.stopped)} after SIGTERM"
    return (
        f"decided {_s(t.decided)} from the process start = the group join (start -> "
        f"assignment)\n{_s(t.join)} + after the assignment {_s(t.after_assignment)}; "
        f"`listening` at {_s(t.stages['listening'])}{stopped}"
    )


def restart_section(r: RestartResult) -> Section:
    """The report's section."""
    s = Section("restart (issue 15): `handoff run` stopped with SIGTERM, started again")
    s.add(
        "how",
        "one workspace; a new instance on the same consumer group once the old one exited,"
        "\nan opening sent as it starts; the stages from its process start (log lines,"
        f"\n`decided_at`); session timeout {r.session_timeout_ms:,} ms, heartbeat "
        f"{r.heartbeat_interval_ms:,} ms\n(HANDOFF_SESSION_TIMEOUT_MS; the broker holds a "
        f"join {r.session_timeout_ms / 2000:g} s for other joiners)",
    )
    s.add("first start", _split(r.first))
    for n, t in enumerate(r.restarts, 1):
        s.add(f"restart {n}", _split(t))
    afters = [t.after_assignment for t in r.restarts if t.after_assignment is not None]
    if afters:
        s.add(
            "restart: after the assignment",
            f"median {_s(statistics.median(afters))}, max {_s(max(afters))} "
            f"(target: within {TARGET:g} s)",
        )
    return s


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m handoff.bench.restart [--restarts N]`: this measurement alone, on embedded
    servers of its own."""
    parser = argparse.ArgumentParser(prog="python -m handoff.bench.restart")
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="keep the logs in DIR")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="handoff-restart-") as tmp:
        data_dir = Path(tmp)
        log_dir = args.keep or data_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        servers = Servers.start(data_dir)
        try:
            result = asyncio.run(
                measure_restart(servers, Settings(), "restart", args.restarts, log_dir, say)
            )
        finally:
            servers.stop()
    table = render("handoff bench: restart", [restart_section(result)], 0.0)
    print(table.rsplit("\n\n", 1)[0])  # without the throughput ratio line
    return 0


if __name__ == "__main__":
    sys.exit(main())
