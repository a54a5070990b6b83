"""A step is decided while the last one commits: what that one holds counts as done.

These drive the pipeline's steps one by one against a real database, holding the first
step's commit open with a row lock, which no run through Kafka can arrange. No broker is
needed: the steps produce no outputs, and the partition is owned as `_take` would own it.
"""

from collections.abc import AsyncIterator, Collection

import asyncpg
import pytest
from aiokafka import TopicPartition

from handoff.adapters.cloudevents import dump_event, parse
from handoff.adapters.pg_store import load_positions, migrate
from handoff.app.handle import PartitionState
from handoff.app.merge import Inbound, Merger
from handoff.app.pipeline import Pipeline, _Owned
from handoff.app.settings import Settings
from tests.builders import presence
from tests.integration.harness import settings_for

pytestmark = pytest.mark.integration

Reached = dict[TopicPartition, int]


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(fresh_database, min_size=1, max_size=3) as p:
        await migrate(p)
        yield p


async def _owning_partition_0(settings: Settings, pool: asyncpg.Pool) -> Pipeline:
    pipeline = Pipeline(settings, pool, bootstrap="127.0.0.1:9")  # never started
    tps = [(topic, 0) for topic in settings.input_topics]
    async with pool.acquire() as conn:
        stored = await load_positions(conn, settings.group_id, tps)
    pipeline._owned[0] = _Owned(PartitionState(0, stored), Merger(settings.input_topics), {}, 0)
    return pipeline


async def test_an_input_redelivered_while_its_step_commits_is_a_duplicate_not_a_failure(
    pool: asyncpg.Pool, fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for("127.0.0.1:9", fresh_database, "ahead.")
    pipeline = await _owning_partition_0(settings, pool)
    topic = settings.input_topics[0]
    raw = dump_event(presence("ann", ws="ws", id="p-1"))
    first, again = (Inbound(topic, 0, n, b"ws", raw, parse(raw, 1 << 20)) for n in (0, 1))

    locker = await asyncpg.connect(fresh_database)
    try:
        held = locker.transaction()
        await held.start()
        await locker.execute(  # the first step's compare-and-set waits on this row
            "SELECT * FROM consumer_positions WHERE topic = $1 FOR UPDATE", topic
        )
        await pipeline._process({0: [first]})
        settle = pipeline._settle

        async def once_handled_let_the_first_commit_go(ahead: Collection[str] = ()) -> Reached:
            await held.rollback()
            return await settle(ahead)

        monkeypatch.setattr(pipeline, "_settle", once_handled_let_the_first_commit_go)
        await pipeline._process({0: [again]})
        await settle()

        assert 0 in pipeline._owned, "the partition was taken again: a commit failed"
        assert not pipeline._backoff
        logged = await locker.fetchval("SELECT count(*) FROM event_log WHERE event_id = 'p-1'")
        assert logged == 1
        assert await load_positions(locker, settings.group_id, [(topic, 0)]) == {(topic, 0): 2}
    finally:
        await locker.close()
        await pipeline._consumer.stop()
        await pipeline._producer.stop()
