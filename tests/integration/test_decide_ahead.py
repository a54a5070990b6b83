"""A step is decided while the last one commits: what that one holds counts as done.

These drive the step engine through its functions against a real database (holding a commit
open with a row lock where a test needs it in flight), which no run through Kafka can arrange.
No broker is needed: the steps produce no outputs.
"""

from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from handoff.adapters.cloudevents import dump_event, parse
from handoff.adapters.pg_store import load_positions, migrate
from handoff.app.handle import EVICT_SLACK
from handoff.app.merge import Inbound
from handoff.app.metrics import Metrics
from handoff.app.relay import OutboxRelay
from handoff.app.settings import Settings
from handoff.app.steps import StepEngine
from handoff.core.envelope import Envelope
from handoff.core.ids import ContactId
from tests.builders import event, presence
from tests.integration.harness import settings_for

pytestmark = pytest.mark.integration

Reached = dict[tuple[str, int], int]


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


@pytest.fixture
async def producer() -> AsyncIterator[AIOKafkaProducer]:
    """Never started nor used: these steps produce nothing."""
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9")
    yield producer
    await producer.stop()


async def _owning_partition_0(
    settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> StepEngine:
    metrics = Metrics()
    relay = OutboxRelay(producer, pool, metrics)
    engine = StepEngine(settings, pool, relay, lambda: datetime.now(UTC), metrics)
    assert await engine.take(0) is not None
    return engine


async def test_an_input_redelivered_while_its_step_commits_is_a_duplicate_not_a_failure(
    pool: asyncpg.Pool,
    fresh_database: str,
    producer: AIOKafkaProducer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_for("127.0.0.1:9", fresh_database, "ahead.")
    engine = await _owning_partition_0(settings, pool, producer)
    topic = settings.input_topics[0]
    first, again = _records(topic, [presence("ann", ws="ws", id="p-1")] * 2)

    locker = await asyncpg.connect(fresh_database)
    try:
        held = locker.transaction()
        await held.start()
        await locker.execute(  # the first step's compare-and-set waits on this row
            "SELECT * FROM consumer_positions WHERE topic = $1 FOR UPDATE", topic
        )
        await engine.step({0: [first]})
        settle = engine.settle

        async def once_handled_let_the_first_commit_go(ahead: Collection[str] = ()) -> Reached:
            await held.rollback()
            return await settle(ahead)

        monkeypatch.setattr(engine, "settle", once_handled_let_the_first_commit_go)
        await engine.step({0: [again]})
        await settle()

        assert 0 in engine.owned, "the partition was taken again: a commit failed"
        assert not engine.backoff
        logged = await locker.fetchval("SELECT count(*) FROM event_log WHERE event_id = 'p-1'")
        assert logged == 1
        assert await load_positions(locker, settings.group_id, [(topic, 0)]) == {(topic, 0): 2}
    finally:
        await locker.close()


async def test_rows_the_next_step_changed_stay_in_memory_until_it_has_committed(
    pool: asyncpg.Pool, fresh_database: str, producer: AIOKafkaProducer
) -> None:
    """Settling a step evicts its workspaces' idle rows, which are read back when named
    again; read back before the next step commits, a row would miss that step's change."""
    settings = settings_for("127.0.0.1:9", fresh_database, "ahead.")
    engine = await _owning_partition_0(settings, pool, producer)
    topic = settings.input_topics[2]
    updates = [_contact_updated(f"c{n}", {"n": n}, ws="ws") for n in range(EVICT_SLACK + 44)]
    records = _records(topic, [*updates, _contact_updated("c7", {"vip": True}, ws="ws")])
    first, second = records[:-1], records[-1:]
    await engine.step({0: first})
    await engine.step({0: second})  # settles the first step, which evicts
    view = engine.owned[0].state.views["ws"]
    assert len(view.contacts) == len(first)
    assert view.contacts[ContactId("c7")].fields == {"n": 7, "vip": True}

    await engine.settle()  # now nothing is ahead of the database: the rows go
    assert view.contacts == {}


async def test_a_step_that_does_not_start_at_its_stored_position_is_refused_not_committed(
    pool: asyncpg.Pool, fresh_database: str, producer: AIOKafkaProducer
) -> None:
    """Given partition 0 whose presence topic stands at offset 2, when a step's records of it
    start at offset 5 (offsets 2-4 would be skipped), then the step is refused: nothing of
    it is logged, the position stays, and the partition is to be taken again."""
    settings = settings_for("127.0.0.1:9", fresh_database, "ahead.")
    engine = await _owning_partition_0(settings, pool, producer)
    topic = settings.input_topics[0]
    records = _records(topic, [presence("ann", ws="ws", id=f"p-{n}") for n in range(6)])
    await engine.step({0: records[:2]})
    await engine.settle()

    await engine.step({0: records[5:]})
    await engine.settle()

    assert 0 not in engine.owned
    assert 0 in engine.to_take
    async with pool.acquire() as conn:
        assert await load_positions(conn, settings.group_id, [(topic, 0)]) == {(topic, 0): 2}
        assert await conn.fetchval("SELECT count(*) FROM event_log WHERE event_id = 'p-5'") == 0
