"""The PostgreSQL store on a real server: positions fence a zombie, inputs dedupe by id, a
relayed step's outbox rows are cleared, not another writer's."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from handoff.adapters.pg_store import (
    FROM_START,
    BatchWrite,
    Fenced,
    clear_outbox,
    commit_batches,
    load_outbox,
    load_positions,
    migrate,
    record_marker,
    seen_inputs,
    take_positions,
)
from tests.builders import user

pytestmark = pytest.mark.integration

TPS = [("presence", 0), ("workflows", 0), ("conversations", 0)]
TPS_1 = [(topic, 1) for topic, _ in TPS]
NOW = datetime(2026, 11, 23, tzinfo=UTC)


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(fresh_database, min_size=1, max_size=2) as p:
        assert await migrate(p) == [
            "0001_event_log.sql",
            "0002_timers.sql",
            "0003_event_log_json.sql",
            "0004_position_fencing.sql",
            "0005_projection_format.sql",
            "0006_core_version.sql",
        ]
        assert await migrate(p) == []  # applied once
        yield p


def _batch(
    stored: dict[tuple[str, int], int], event_id: str, seq: int, partition: int = 0
) -> BatchWrite:
    batch = BatchWrite()
    event = user("ann", ws=f"ws{partition or ''}", id=event_id)
    batch.log_row(seq, event, b"{}", NOW, True, ("presence", partition, 0))
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
        await commit_batches(conn, "g", [_batch(owner, "e-1", 1)])
        with pytest.raises(Fenced):
            await commit_batches(conn, "g", [_batch(zombie, "e-2", 2)])
        asked = [("ws", "/inbox", "e-1"), ("ws", "/inbox", "e-2"), ("ws", "/other", "e-1")]
        assert await seen_inputs(conn, asked) == {("ws", "/inbox", "e-1")}
        assert await load_positions(conn, "g", TPS) == {**owner, ("presence", 0): 1}


async def test_one_lost_partition_fences_the_whole_step_and_names_the_partition(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        kept = await load_positions(conn, "g", TPS)
        lost = await load_positions(conn, "g", TPS_1)
        await commit_batches(conn, "g", [_batch(lost, "e-1", 1, partition=1)])  # another instance
        with pytest.raises(Fenced) as fenced:
            await commit_batches(
                conn, "g", [_batch(kept, "e-2", 1), _batch(lost, "e-3", 2, partition=1)]
            )
        assert fenced.value.partitions == {1}
        asked = [("ws", "/inbox", "e-2"), ("ws1", "/inbox", "e-1"), ("ws1", "/inbox", "e-3")]
        assert await seen_inputs(conn, asked) == {("ws1", "/inbox", "e-1")}
        assert await load_positions(conn, "g", TPS) == kept


async def test_a_stale_read_of_an_untouched_topic_also_fences(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        stored = await load_positions(conn, "g", TPS)
        await commit_batches(conn, "g", [_batch(stored, "e-1", 1)])
        moved = {**stored, ("presence", 0): 1}
        # a batch that read only conversations, from a view where presence had not moved
        stale = {**stored, ("conversations", 0): stored[("conversations", 0)]}
        with pytest.raises(Fenced):
            await commit_batches(conn, "g", [_batch(stale, "e-3", 2)])
        await commit_batches(conn, "g", [_batch(moved, "e-4", 2)])


async def test_clearing_a_relayed_step_leaves_what_other_writers_of_its_partition_wrote(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        stored = await load_positions(conn, "g", TPS)
        # A new owner's step that moved no position (timers only) passes this instance's
        # compare-and-set: its output is in the outbox before this step's.
        other = BatchWrite()
        other.positions = {tp: (position, position) for tp, position in stored.items()}
        other.outbox.append((0, "out", b"ws", b"b1"))
        await commit_batches(conn, "g", [other])
        step = _batch(stored, "e-1", 1)
        step.outbox += [(0, "out", b"ws", b"a1"), (0, "out", b"ws", b"a2")]
        written = await commit_batches(conn, "g", [step])
        later = _batch(await load_positions(conn, "g", TPS), "e-2", 2)
        later.outbox.append((0, "out", b"ws", b"b2"))
        await commit_batches(conn, "g", [later])
        assert [r.value for r in await load_outbox(conn, 0)] == [b"b1", b"a1", b"a2", b"b2"]

        assert written is not None
        await clear_outbox(conn, [0], written)  # this step's outputs, relayed from memory
        assert [r.value for r in await load_outbox(conn, 0)] == [b"b1", b"b2"]
        no_outputs = _batch(await load_positions(conn, "g", TPS), "e-3", 3)
        assert await commit_batches(conn, "g", [no_outputs]) is None


async def test_a_zombie_step_that_moves_no_position_is_fenced_once_another_take_drew_its_generation(
    pool: asyncpg.Pool,
) -> None:
    """Given an instance that took partition 0, and a new owner that took it since, when the
    first instance commits a step of timers only (its positions expected and reached the
    same), then the step is fenced: the positions alone would have let it through."""
    async with pool.acquire() as conn:
        zombie = await take_positions(conn, "g", TPS)
        owner = await take_positions(conn, "g", TPS)
        assert owner.generation > zombie.generation

        timers_only = BatchWrite(generation=zombie.generation)
        timers_only.positions = {tp: (p, p) for tp, p in zombie.positions.items()}
        timers_only.outbox.append((0, "out", b"ws", b"from a stale view"))
        with pytest.raises(Fenced):
            await commit_batches(conn, "g", [timers_only])
        assert await load_outbox(conn, 0) == []

        current = BatchWrite(generation=owner.generation)
        current.positions = {tp: (p, p) for tp, p in owner.positions.items()}
        assert await commit_batches(conn, "g", [current]) is None  # the owner's goes through


async def test_a_take_finds_the_marker_of_the_record_before_each_position(
    pool: asyncpg.Pool,
) -> None:
    """Given a step that read up to offset 0 of presence, when the partition is taken again,
    then the take names that record's marker (the check that the broker is the same one)."""
    async with pool.acquire() as conn:
        taken = await take_positions(conn, "g", TPS)
        assert taken.markers == dict.fromkeys(TPS)  # nothing read yet
        step = _batch(taken.positions, "e-1", 1)
        step.generation = taken.generation
        step.markers[("presence", 0)] = record_marker(1700000000000, b"{}")
        await commit_batches(conn, "g", [step])
        again = await take_positions(conn, "g", TPS)
        assert again.positions[("presence", 0)] == 1
        assert again.markers[("presence", 0)] == record_marker(1700000000000, b"{}")
        assert again.markers[("presence", 0)] != record_marker(1700000000001, b"{}")
