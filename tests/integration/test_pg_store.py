"""The PostgreSQL store on a real server: positions fence a zombie, inputs dedupe by id."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from handoff.adapters.pg_store import (
    FROM_START,
    BatchWrite,
    Fenced,
    commit_batch,
    load_positions,
    migrate,
    seen_inputs,
)
from tests.builders import user

pytestmark = pytest.mark.integration

TPS = [("presence", 0), ("workflows", 0), ("conversations", 0)]
NOW = datetime(2026, 11, 23, tzinfo=UTC)


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(fresh_database, min_size=1, max_size=2) as p:
        assert await migrate(p) == ["0001_event_log.sql", "0002_timers.sql"]
        assert await migrate(p) == []  # applied once
        yield p


def _batch(stored: dict[tuple[str, int], int], event_id: str, seq: int) -> BatchWrite:
    batch = BatchWrite(group_id="g", partition=0)
    event = user("ann", ws="ws", id=event_id)
    batch.log_row(seq, event, b"{}", NOW, True, ("presence", 0, 0))
    for tp, position in stored.items():
        batch.positions[tp] = (position, 1 if tp[0] == "presence" else position)
    return batch


async def test_a_zombie_with_a_stale_position_is_fenced_and_writes_nothing(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        owner = await load_positions(conn, "g", TPS)
        assert owner == dict.fromkeys(TPS, FROM_START)
        zombie = dict(owner)  # read before the owner moved on
        await commit_batch(conn, _batch(owner, "e-1", 1))
        with pytest.raises(Fenced):
            await commit_batch(conn, _batch(zombie, "e-2", 2))
        asked = [("ws", "/inbox", "e-1"), ("ws", "/inbox", "e-2"), ("ws", "/other", "e-1")]
        assert await seen_inputs(conn, asked) == {("ws", "/inbox", "e-1")}
        assert await load_positions(conn, "g", TPS) == {**owner, ("presence", 0): 1}


async def test_a_stale_read_of_an_untouched_topic_also_fences(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        stored = await load_positions(conn, "g", TPS)
        await commit_batch(conn, _batch(stored, "e-1", 1))
        moved = {**stored, ("presence", 0): 1}
        # a batch that read only conversations, from a view where presence had not moved
        stale = {**stored, ("conversations", 0): stored[("conversations", 0)]}
        with pytest.raises(Fenced):
            await commit_batch(conn, _batch(stale, "e-3", 2))
        await commit_batch(conn, _batch(moved, "e-4", 2))
