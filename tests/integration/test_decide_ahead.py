"""A step is decided while the last one commits: what that one holds counts as done.

These drive the pipeline's steps one by one against a real database (holding a commit open
with a row lock where a test needs it in flight), which no run through Kafka can arrange. No
broker is needed: the steps produce no outputs, and the partition is owned as `_take` would
own it.
"""

from collections.abc import AsyncIterator, Collection

import asyncpg
import pytest
from aiokafka import TopicPartition

from handoff.adapters.cloudevents import dump_event, parse
from handoff.adapters.pg_store import load_positions, migrate
from handoff.app.handle import EVICT_SLACK, PartitionState
from handoff.app.merge import Inbound, Merger
from handoff.app.pipeline import Pipeline, _Owned
from handoff.app.settings import Settings
from handoff.core.envelope import Envelope
from handoff.core.ids import ContactId
from tests.builders import event, presence
from tests.integration.harness import settings_for

pytestmark = pytest.mark.integration

Reached = dict[TopicPartition, int]


def _records(topic: str, events: list[Envelope]) -> list[Inbound]:
    """The events as partition 0 of `topic` delivers them, from offset 0."""
    return [
        Inbound(topic, 0, offset, b"ws", raw, parse(raw, 1 << 20))
        for offset, raw in enumerate(map(dump_event, events))
    ]


def _contact_updated(contact_id: str, fields: dict[str, int | bool], ws: str) -> Envelope:
    return event("contact.updated", {"contact_id": contact_id, "fields": fields}, ws=ws)


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
    first, again = _records(topic, [presence("ann", ws="ws", id="p-1")] * 2)

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


async def test_rows_the_next_step_changed_stay_in_memory_until_it_has_committed(
    pool: asyncpg.Pool, fresh_database: str
) -> None:
    """Settling a step evicts its workspaces' idle rows, which are read back when named
    again; read back before the next step commits, a row would miss that step's change."""
    settings = settings_for("127.0.0.1:9", fresh_database, "ahead.")
    pipeline = await _owning_partition_0(settings, pool)
    topic = settings.input_topics[2]
    updates = [_contact_updated(f"c{n}", {"n": n}, ws="ws") for n in range(EVICT_SLACK + 44)]
    records = _records(topic, [*updates, _contact_updated("c7", {"vip": True}, ws="ws")])
    first, second = records[:-1], records[-1:]
    try:
        await pipeline._process({0: first})
        await pipeline._process({0: second})  # settles the first step, which evicts
        view = pipeline._owned[0].state.views["ws"]
        assert len(view.contacts) == len(first)
        assert view.contacts[ContactId("c7")].fields == {"n": 7, "vip": True}

        await pipeline._settle()  # now nothing is ahead of the database: the rows go
        assert view.contacts == {}
    finally:
        await pipeline._consumer.stop()
        await pipeline._producer.stop()
