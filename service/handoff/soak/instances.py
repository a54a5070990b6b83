"""The soak's `handoff run` processes: one consumer group, each with its HTTP port and its log
file in the run's directory (kept after the run).

Each process gets the soak's servers through its environment (`handoff.bench.drain.
process_env`), none of this process's `HANDOFF_*` settings, a session of its own, and
SIGTERM from Linux if the soak dies without stopping it (PR_SET_PDEATHSIG). `close` stops
every one still running: a frozen one is thawed first, one that does not stop on SIGTERM is
killed.
"""

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from handoff.app.settings import Settings
from handoff.bench.drain import process_env
from handoff.soak.clock import Say

__all__ = ["Fleet", "Instance", "log_summary"]

_PR_SET_PDEATHSIG = 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> Callable[[], None]:
    """A preexec_fn asking Linux to SIGTERM the child when the thread that started it ends."""
    libc = ctypes.CDLL(None)  # loaded before fork: the child should do little
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


async def _http_status(port: int, path: str) -> int:
    """The status of `GET path` on the local port; 0 if nothing answers in time."""
    try:
        async with asyncio.timeout(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
                await writer.drain()
                head = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return 0
    parts = head.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


@dataclass
class Instance:
    """One `handoff run` process; `fate` says how it ended (or `running`)."""

    name: str
    process: "subprocess.Popen[bytes]"
    port: int
    log: Path
    started_at: float
    """Seconds into the soak."""
    ready_at: float | None = None
    frozen: bool = False
    fate: str = "running"
    events: list[str] = field(default_factory=list)
    """What happened to it, stamped with seconds into the soak."""

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def label(self) -> str:
        return f"{self.name} (pid {self.pid})"

    async def ready(self) -> bool:
        return await _http_status(self.port, "/readyz") == 200


class Fleet:
    """The soak's instances, in the order they were started (`#0`, `#1`, ...)."""

    def __init__(self, settings: Settings, run_dir: Path, say: Say) -> None:
        self._settings = settings
        self._run_dir = run_dir
        self._say = say
        self.instances: list[Instance] = []

    def start(self) -> Instance:
        name = f"#{len(self.instances)}"
        port = _free_port()
        log = self._run_dir / f"instance-{len(self.instances)}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")}
        env.update(process_env(self._settings, port))
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "handoff.cli", "run"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                preexec_fn=_die_with_parent() if sys.platform == "linux" else None,
                # Its own session: a terminal's Ctrl-C or hang-up goes to the soak, which
                # stops it; and a frozen instance gets no SIGHUP if the soak's process group
                # is orphaned meanwhile.
                start_new_session=True,
            )
        instance = Instance(name, process, port, log, self._say.elapsed())
        self.instances.append(instance)
        return instance

    def running(self) -> list[Instance]:
        """Instances alive and not frozen."""
        return [i for i in self.instances if i.alive and not i.frozen]

    async def wait_ready(self, instances: list[Instance], timeout: float) -> bool:
        """Until every one of `instances` answers /readyz with 200 (False: one exited, or
        `timeout` s passed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            waiting = [i for i in instances if i.ready_at is None]
            for i in waiting:
                if not i.alive:
                    return False
                if await i.ready():
                    i.ready_at = self._say.elapsed()
            if all(i.ready_at is not None for i in instances):
                return True
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.2)

    async def kill(self, instance: Instance) -> None:
        """kill -9, and reap it."""
        instance.fate = f"killed -9 at {self._say.elapsed():.1f} s"
        instance.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(instance.process.wait)
        instance.frozen = False

    def freeze(self, instance: Instance) -> None:
        instance.process.send_signal(signal.SIGSTOP)
        instance.frozen = True
        instance.events.append(f"SIGSTOP at {self._say.elapsed():.1f} s")

    def thaw(self, instance: Instance) -> None:
        if instance.alive:
            instance.process.send_signal(signal.SIGCONT)
        instance.frozen = False
        instance.events.append(f"SIGCONT at {self._say.elapsed():.1f} s")

    async def terminate(self, instance: Instance, timeout: float = 30.0) -> None:
        """SIGTERM (thawed first) and wait; killed if it has not exited in `timeout` s."""
        if instance.frozen:
            self.thaw(instance)
        if not instance.alive:
            return
        instance.process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(instance.process.wait, timeout)
            instance.fate = f"SIGTERM at {self._say.elapsed():.1f} s, exit {code}"
        except subprocess.TimeoutExpired:
            instance.process.kill()
            await asyncio.to_thread(instance.process.wait)
            instance.fate = f"did not stop on SIGTERM within {timeout:.0f} s: killed"

    async def close(self) -> None:
        """Stop every instance still running, all at once."""
        await asyncio.gather(*(self.terminate(i) for i in self.instances if i.alive))

    def kill_all_now(self) -> None:
        """The last resort of a `finally`: SIGCONT and SIGKILL to any still running."""
        for i in self.instances:
            if i.alive:
                with contextlib.suppress(ProcessLookupError):
                    i.process.send_signal(signal.SIGCONT)
                    i.process.kill()
                i.process.wait()


def _parse(line: str) -> dict[str, object] | None:
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return entry if isinstance(entry, dict) else None


def _short(entry: dict[str, object], chars: int = 260) -> str:
    """A log entry in one line: its time, event and fields, an exception's last line."""
    rest = dict(entry)
    stamp = str(rest.pop("timestamp", ""))[11:23]
    rest.pop("level", None)
    exception = str(rest.pop("exception", "")).strip().splitlines()
    text = " ".join(f"{k}={v}" for k, v in rest.items())
    line = f"{stamp} {text}" + (f" | {exception[-1]}" if exception else "")
    return line[:chars]


def log_summary(instance: Instance, lines: int = 6) -> list[str]:
    """Warnings and errors of an instance's log: how many of each event, then the first few
    errors, shortened. Lines that are not JSON (a library's own logging, the first and last
    line of a traceback) count as `stderr`."""
    try:
        text = instance.log.read_text(errors="replace")
    except OSError as err:
        return [f"(no log: {err})"]
    counts: Counter[tuple[str, str]] = Counter()
    errors: list[str] = []
    for raw in text.splitlines():
        entry = _parse(raw)
        if entry is None:  # a library's own logging, or a traceback's first and last line
            if raw.strip() and not raw[0].isspace() and not raw.startswith("Traceback"):
                counts["stderr", raw[:120]] += 1
            continue
        level = str(entry.get("level", ""))
        if level in ("warning", "error", "critical"):
            counts[level, str(entry.get("event", ""))] += 1
            if level != "warning" and len(errors) < lines:
                errors.append(_short(entry))
    out = [f"{n} x {level}: {event}" for (level, event), n in counts.most_common(10)]
    return out + [f"  {e}" for e in errors]
