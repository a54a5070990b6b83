"""handoff over a pre-produced backlog: in this process (`serve`), or as `handoff run` processes
in one consumer group.

The clock starts when the service is ready (it has its partitions: for processes, when the
first one answers `/readyz`) and stops when the event log holds every input record and the
outbox is empty (`servers.wait_drained`): every decision durable and every output relayed.
"""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from handoff.app.service import serve
from handoff.app.settings import Settings
from handoff.bench.cpu import process_cpu
from handoff.bench.servers import Drained, wait_drained

__all__ = [
    "InProcess",
    "Instances",
    "Processes",
    "drain_instances",
    "in_process",
    "pipe_process",
    "process_env",
    "processes",
]

_READY_TIMEOUT = 60.0


@dataclass
class InProcess:
    """The service running in this event loop; `ready_at` is a `time.perf_counter()`."""

    task: "asyncio.Task[None]"
    ready_at: float

    async def alive(self) -> None:
        if self.task.done():
            self.task.result()  # raises what stopped it
            raise RuntimeError("the service stopped")


@contextlib.asynccontextmanager
async def in_process(settings: Settings) -> AsyncIterator[InProcess]:
    """`serve(settings)` until the block ends; entered once it has its partitions."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(settings, stop, ready))
    try:
        waiter = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait(
            {task, waiter}, timeout=_READY_TIMEOUT, return_when="FIRST_COMPLETED"
        )
        if task in done:
            waiter.cancel()
            task.result()
            raise RuntimeError("the service stopped before it was ready")
        if waiter not in done:
            waiter.cancel()
            raise RuntimeError(f"the service got no partitions within {_READY_TIMEOUT:.0f} s")
        yield InProcess(task, time.perf_counter())
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 60)
        except Exception as err:
            print(f"handoff bench: the service stopped with an error: {err!r}", file=sys.stderr)


@dataclass(frozen=True, slots=True)
class Instances:
    """A backlog drained by `count` `handoff run` processes of one consumer group."""

    count: int
    drained: Drained
    partitions: tuple[int, ...]
    """Input partitions each process held at the end."""
    applied: tuple[int, ...]
    """Inputs each process applied (`handoff_events_applied_total`, timers included)."""
    ready_spread: float
    """Seconds between the first and the last process being ready."""
    cpu_seconds: tuple[float, ...] = ()
    """CPU each process used from its being ready to the end of the drain (`/proc`)."""

    @property
    def us_per_input(self) -> float:
        """CPU µs per Kafka input, the processes together (their timers counted in)."""
        return 1e6 * sum(self.cpu_seconds) / max(self.drained.inputs, 1)


def process_env(settings: Settings, http_port: int) -> dict[str, str]:
    """The environment that makes a `handoff run` process use `settings`."""
    return {
        "HANDOFF_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "HANDOFF_DATABASE_URL": settings.database_url or "",
        "HANDOFF_TOPIC_PREFIX": settings.topic_prefix,
        "HANDOFF_GROUP_ID": settings.group_id,
        "HANDOFF_PARTITIONS": str(settings.partitions),
        "HANDOFF_BATCH_MAX_RECORDS": str(settings.batch_max_records),
        "HANDOFF_FETCH_MAX_WAIT_MS": str(settings.fetch_max_wait_ms),
        "HANDOFF_MAX_RECORD_BYTES": str(settings.max_record_bytes),
        "HANDOFF_SESSION_TIMEOUT_MS": str(settings.session_timeout_ms),
        "HANDOFF_HEARTBEAT_INTERVAL_MS": str(settings.heartbeat_interval_ms),
        "HANDOFF_HTTP_PORT": str(http_port),
        "HANDOFF_LOG_LEVEL": settings.log_level,
        "HANDOFF_DATA_DIR": str(settings.data_dir),
    }


def _inherited() -> dict[str, str]:
    """This process's environment without its `HANDOFF_*` settings (TLS, SASL, ...): the
    instances run on the benchmark's servers with plain connections."""
    return {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")}


def _start(
    env: dict[str, str], log: Path, command: tuple[str, ...] = ("handoff.cli", "run")
) -> "subprocess.Popen[bytes]":
    """`python -m *command` (`handoff run`) as a process of its own, its output to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", *command],
            env={**_inherited(), **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )


async def _terminate(process: "subprocess.Popen[bytes]") -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.to_thread(process.wait, 60)
    except subprocess.TimeoutExpired:
        process.kill()
        await asyncio.to_thread(process.wait)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _get(port: int, path: str) -> tuple[int, str]:
    """(status, body) of `GET path` on the local port; (0, error) if nothing answers."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
    except (OSError, TimeoutError) as err:
        return 0, str(err)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 5)
    except (OSError, TimeoutError) as err:
        return 0, str(err)
    finally:
        writer.close()
    head, _, body = raw.decode(errors="replace").partition("\r\n\r\n")
    parts = head.split()
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), body


def _metric_sum(text: str, name: str) -> int:
    """The sum of a Prometheus metric's samples (all label sets)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


@dataclass
class Processes:
    """`handoff run` processes of one consumer group, each with its HTTP port."""

    processes: list["subprocess.Popen[bytes]"]
    ports: list[int]
    logs: list[Path]
    ready_at: dict[int, float]
    """Process index -> `time.perf_counter()` when its `/readyz` first answered 200."""
    cpu_at_ready: dict[int, float] = field(default_factory=dict)
    """Process index -> its CPU seconds then (`handoff.bench.cpu.process_cpu`)."""

    async def alive(self) -> None:
        for i, p in enumerate(self.processes):
            if p.poll() is not None:
                raise RuntimeError(
                    f"handoff run #{i} exited with {p.returncode}:\n{_tail(self.logs[i])}"
                )

    def cpu_since_ready(self) -> tuple[float, ...]:
        """CPU seconds each process has used since it was ready."""
        return tuple(
            process_cpu(p.pid) - self.cpu_at_ready[i] for i, p in enumerate(self.processes)
        )

    async def metric(self, name: str) -> tuple[int, ...]:
        """The metric's sum, process by process."""
        texts = [(await _get(port, "/metrics"))[1] for port in self.ports]
        return tuple(_metric_sum(text, name) for text in texts)


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError as err:
        return f"(cannot read {path}: {err})"


@contextlib.asynccontextmanager
async def processes(settings: Settings, count: int, log_dir: Path) -> AsyncIterator[Processes]:
    """`count` `handoff run` processes on `settings`, entered once every one is ready (it
    has its partitions); SIGTERM on the way out."""
    started = Processes([], [], [], {})
    try:
        for i in range(count):
            port = _free_port()
            log = log_dir / f"{settings.topic_prefix}{count}-{i}.log"
            started.processes.append(_start(process_env(settings, port), log))
            started.ports.append(port)
            started.logs.append(log)
        deadline = time.perf_counter() + _READY_TIMEOUT
        while len(started.ready_at) < count:
            await started.alive()
            for i, port in enumerate(started.ports):
                if i not in started.ready_at and (await _get(port, "/readyz"))[0] == 200:
                    started.ready_at[i] = time.perf_counter()
                    started.cpu_at_ready[i] = process_cpu(started.processes[i].pid)
            if time.perf_counter() > deadline:
                waiting = count - len(started.ready_at)
                raise RuntimeError(f"{waiting} `handoff run` process(es) not ready in time")
            await asyncio.sleep(0.05)
        yield started
    finally:
        for p in started.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in started.processes:
            await _terminate(p)


@contextlib.asynccontextmanager
async def pipe_process(settings: Settings, out_topic: str, log: Path) -> AsyncIterator[None]:
    """The no-op pipe (`python -m handoff.bench.pipe`) as a process of its own, as `handoff
    run` is measured, entered once it says it is ready; SIGTERM on the way out."""
    process = _start(process_env(settings, 0), log, ("handoff.bench.pipe", out_topic))
    try:
        deadline = time.perf_counter() + _READY_TIMEOUT
        while "ready" not in _tail(log):
            if process.poll() is not None or time.perf_counter() > deadline:
                raise RuntimeError(f"the pipe process did not start:\n{_tail(log)}")
            await asyncio.sleep(0.05)
        yield
    finally:
        await _terminate(process)


async def drain_instances(settings: Settings, count: int, records: int, log_dir: Path) -> Instances:
    """Start `count` `handoff run` processes on the pre-produced backlog and time the drain
    from the first one ready."""
    async with processes(settings, count, log_dir) as running:
        started = min(running.ready_at.values())
        drained = await wait_drained(
            settings.database_url or "", settings.group_id, records, started, running.alive
        )
        cpu = running.cpu_since_ready()
        return Instances(
            count,
            drained,
            await running.metric("handoff_partitions_assigned"),
            await running.metric("handoff_events_applied_total"),
            max(running.ready_at.values()) - started,
            cpu,
        )
