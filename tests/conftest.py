"""Session-wide servers for the tests: the configured ones, or embedded ones started here.

A server that cannot start fails the tests that need it (a skip would hide a broken setup).
Names made here carry a per-run token, so runs sharing a broker or a database server do not meet.
"""

import itertools
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import asyncpg
import pytest

from handoff.adapters.embedded import EmbeddedBroker, EmbeddedPostgres

_RUN = secrets.token_hex(3)
_numbers = itertools.count()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("HANDOFF_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    broker = EmbeddedBroker(log_path=tmp_path_factory.mktemp("kafka") / "tansu.log")
    yield broker.start()
    broker.stop()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("HANDOFF_DATABASE_URL")
    if configured:
        yield configured
        return
    postgres = EmbeddedPostgres(tmp_path_factory.mktemp("postgres") / "data")
    yield postgres.start()
    postgres.stop()


@pytest.fixture
async def fresh_database(database_url: str) -> AsyncIterator[str]:
    """A DSN for a new, empty database on the session's server, dropped afterwards."""
    name = f"handoff_test_{_RUN}_{next(_numbers)}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield urlsplit(database_url)._replace(path=f"/{name}").geturl()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def topic_prefix() -> str:
    return f"t{_RUN}.{next(_numbers)}."
