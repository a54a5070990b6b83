"""The embedded broker and PostgreSQL: they work, and a killed owner leaves nothing running."""

import asyncio
import os
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from handoff.adapters.embedded import EmbeddedPostgres

pytestmark = pytest.mark.integration

_SERVICE = Path(__file__).resolve().parents[2] / "service"


async def _run_and_sigkill(script: str, *args: str) -> str:
    """Run `script` in a new Python that ends by SIGKILLing itself; return what it printed."""
    env = {**os.environ, "PYTHONPATH": str(_SERVICE)}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        f"{script}\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, _ = await child.communicate()
    assert child.returncode == -signal.SIGKILL, out
    return out.decode().strip()


def _postgres_running_on(datadir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and str(datadir) in cmdline:
            found.append(proc)
    return found


async def test_broker_round_trips_a_record(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}round-trip"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello", key=b"k")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        async with asyncio.timeout(20):
            record = await consumer.getone()
    finally:
        await consumer.stop()
    assert (record.topic, record.key, record.value) == (topic, b"k", b"hello")


async def test_fresh_database_works(fresh_database: str) -> None:
    conn = await asyncpg.connect(fresh_database)
    try:
        name = urlsplit(fresh_database).path.lstrip("/")
        assert await conn.fetchval("SELECT current_database()") == name
        await conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")
        await conn.execute("INSERT INTO notes VALUES (1, 'hello')")
        assert await conn.fetchval("SELECT body FROM notes WHERE id = 1") == "hello"
    finally:
        await conn.close()


async def test_postgres_left_by_a_killed_owner_is_taken_over_and_stopped(tmp_path: Path) -> None:
    datadir = tmp_path / "data"
    await _run_and_sigkill(
        "import sys\nfrom pathlib import Path\n"
        "from handoff.adapters.embedded import EmbeddedPostgres\n"
        "EmbeddedPostgres(Path(sys.argv[1])).start()",
        str(datadir),
    )
    assert _postgres_running_on(datadir), "the killed owner's server should still run"

    postgres = EmbeddedPostgres(datadir)
    dsn = await asyncio.to_thread(postgres.start)
    try:
        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(postgres.stop)
    postgres.stop()  # idempotent

    async with asyncio.timeout(5):
        while _postgres_running_on(datadir):  # noqa: ASYNC110 - polling another process
            await asyncio.sleep(0.1)


async def test_a_command_beside_the_service_borrows_its_postgres_and_leaves_it_running(
    tmp_path: Path,
) -> None:
    datadir = tmp_path / "data"
    owner = EmbeddedPostgres(datadir)
    await asyncio.to_thread(owner.start)
    try:
        audit = EmbeddedPostgres(datadir, borrow=True)
        dsn = await asyncio.to_thread(audit.start)
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
        await asyncio.to_thread(audit.stop)

        assert _postgres_running_on(datadir), "the borrower stopped the owner's server"
    finally:
        await asyncio.to_thread(owner.stop)
    assert not _postgres_running_on(datadir)


async def test_a_command_that_started_postgres_leaves_it_to_a_service_that_joined_meanwhile(
    tmp_path: Path,
) -> None:
    datadir = tmp_path / "data"
    audit = EmbeddedPostgres(datadir, borrow=True)
    dsn = await asyncio.to_thread(audit.start)  # nothing ran there: the command starts it
    service = EmbeddedPostgres(datadir)
    await asyncio.to_thread(service.start)  # the service starts meanwhile, and joins it
    conn = await asyncpg.connect(dsn)
    try:
        await asyncio.to_thread(audit.stop)

        assert _postgres_running_on(datadir), "the command stopped a server in use"
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()
        await asyncio.to_thread(service.stop)
    assert not _postgres_running_on(datadir)


async def test_broker_dies_with_a_killed_owner(tmp_path: Path) -> None:
    bootstrap = await _run_and_sigkill(
        "import sys\nfrom pathlib import Path\n"
        "from handoff.adapters.embedded import EmbeddedBroker\n"
        "print(EmbeddedBroker(log_path=Path(sys.argv[1])).start(), flush=True)",
        str(tmp_path / "tansu.log"),
    )
    host, port = bootstrap.rsplit(":", 1)

    async def accepts() -> bool:
        try:
            _, writer = await asyncio.open_connection(host, int(port))
        except OSError:
            return False
        writer.close()
        await writer.wait_closed()
        return True

    async with asyncio.timeout(5):
        while await accepts():  # noqa: ASYNC110 - polling another process
            await asyncio.sleep(0.1)
