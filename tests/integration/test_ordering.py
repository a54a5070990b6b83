"""A backlog is applied as it happened, not topic by topic (contract: Ordering)."""

from datetime import timedelta

import pytest

from tests.builders import T0, assign_team, opened, presence, team, user, workflow
from tests.integration.faults import free_port, http_get, poll_until
from tests.integration.harness import Stack, ann_routes_c1, routed, running, settings_for

pytestmark = pytest.mark.integration


async def test_a_backlog_is_applied_in_the_order_it_happened(
    kafka_bootstrap: str, fresh_database: str, topic_prefix: str
) -> None:
    settings = settings_for(kafka_bootstrap, fresh_database, topic_prefix)
    ws = "backlog"

    def at(s: int) -> dict[str, object]:
        return {"ws": ws, "at": T0 + timedelta(seconds=s)}

    # The service is down. Conversations reach Kafka first, though they happened last...
    early = Stack(settings)
    await early.send(opened("c1", **at(10)), opened("c2", **at(11)))  # type: ignore[arg-type]
    # ...then the team is set up, with times before them.
    await early.send(
        user("ann", **at(1)),
        user("bob", **at(2)),
        presence("ann", **at(3)),  # type: ignore[arg-type]
        presence("bob", **at(4)),
        team("t", "ann", "bob", **at(5)),  # type: ignore[arg-type]
        workflow(assign_team("t", only_online=True), **at(6)),  # type: ignore[arg-type]
        presence("bob", "offline", **at(12)),  # type: ignore[arg-type]
    )
    async with running(settings) as stack:
        outs = await stack.outputs(lambda o: len(routed(o, ws)) >= 2)
    # Topic by topic, c1 and c2 would have found no workflow; in time order both are routed,
    # and bob, who went offline only after both, was still online for c2.
    assert routed(outs, ws) == [
        ("contact.assigned", "c1", "ann"),
        ("contact.assigned", "c2", "bob"),
    ]


async def test_positions_past_the_log_end_are_read_again_from_the_start(
    kafka_bootstrap: str, fresh_database: str, topic_prefix: str
) -> None:
    """As after a restart of an in-memory broker: the stored positions name offsets it lost."""
    import asyncpg

    from handoff.adapters.pg_store import migrate

    settings = settings_for(kafka_bootstrap, fresh_database, topic_prefix)
    async with asyncpg.create_pool(fresh_database, min_size=1, max_size=1) as pool:
        await migrate(pool)
        await pool.executemany(
            "INSERT INTO consumer_positions VALUES ($1, $2, $3, 1000)",
            [(settings.group_id, t, p) for t in settings.input_topics for p in range(4)],
        )
    ws = "lost-log"
    await Stack(settings).send(
        user("ann", ws=ws),
        team("t", "ann", ws=ws),
        workflow(assign_team("t"), ws=ws),
        opened("c1", ws=ws),
    )
    async with running(settings) as stack:
        outs = await stack.outputs(lambda o: bool(routed(o, ws)))
    assert routed(outs, ws) == [("contact.assigned", "c1", "ann")]


async def _metric(port: int, name: str) -> float:
    """The sum of a metric's series on the service's /metrics (0 when it has none)."""
    _, text = await http_get(port, "/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


@pytest.mark.parametrize("issued_elsewhere", [False, True])
async def test_a_position_is_trusted_only_where_the_record_before_it_is_the_one_stored(
    kafka_bootstrap: str, fresh_database: str, topic_prefix: str, issued_elsewhere: bool
) -> None:
    """Given a service that routed c1 and stopped, when it starts again, then it goes on from
    its stored positions, checking the record before each; and when that record is not the
    one stored (a topic recreated, another cluster: here its marker is changed), then the
    partition is read again from its start, and nothing is applied twice."""
    import asyncpg

    port = free_port()
    settings = settings_for(kafka_bootstrap, fresh_database, topic_prefix, http_port=port)
    ws = "marked"
    async with running(settings) as stack:
        await ann_routes_c1(stack, ws)
    if issued_elsewhere:
        conn = await asyncpg.connect(fresh_database)
        try:
            changed = await conn.execute(
                "UPDATE consumer_positions SET marker = '0:0' WHERE marker IS NOT NULL"
            )
        finally:
            await conn.close()
        assert changed != "UPDATE 0"
    async with running(settings) as stack:
        await stack.send(opened("c2", ws=ws))
        outs = await stack.outputs(lambda o: len(routed(o, ws)) == 2)

        async def read_again() -> bool:  # counted when its step settles, maybe after c2 is out
            skipped = await _metric(port, 'handoff_events_skipped_total{reason="duplicate"}')
            return skipped >= 5  # the first run's inputs, read again and found in the log

        assert await poll_until(read_again, timeout=10) == issued_elsewhere
        resets = await _metric(port, "handoff_positions_reset_total")
        duplicates = await _metric(port, 'handoff_events_skipped_total{reason="duplicate"}')
    assert routed(outs, ws) == [
        ("contact.assigned", "c1", "ann"),
        ("contact.assigned", "c2", "ann"),
    ]
    if issued_elsewhere:
        assert resets >= 1
    else:
        assert resets == 0
        assert duplicates == 0
