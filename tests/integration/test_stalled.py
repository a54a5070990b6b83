"""A partition that cannot go on says so, and flows again once it can: records that stop
arriving, outputs the broker refuses."""

import secrets
from datetime import timedelta

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import MessageSizeTooLargeError

from handoff.app import pipeline
from tests.builders import opened
from tests.integration.faults import free_port, http_get, poll_until
from tests.integration.harness import ann_routes_c1, of_workspace, routed, running, settings_for

pytestmark = pytest.mark.integration


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[pipeline.Pipeline]:
    """The pipelines the services of a test make, to disturb their consumer or producer."""
    pipelines: list[pipeline.Pipeline] = []
    init = pipeline.Pipeline.__init__

    def remember(self: pipeline.Pipeline, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)  # type: ignore[arg-type]
        pipelines.append(self)

    monkeypatch.setattr(pipeline.Pipeline, "__init__", remember)
    return pipelines


async def test_a_partition_whose_records_stop_arriving_is_reported_and_flows_again(
    kafka_bootstrap: str,
    fresh_database: str,
    monkeypatch: pytest.MonkeyPatch,
    made: list[pipeline.Pipeline],
) -> None:
    """Given a running service, when the conversations it has not read stop arriving (its
    consumer gets none: here paused behind its back, as a saturated broker did to one
    partition in a soak), then within the stall period `/readyz` and
    `handoff_partitions_stalled` name the partition; and once records arrive again, the
    waiting conversation is routed and the service is ready again."""
    monkeypatch.setattr(pipeline, "STALLED_PARTITION", timedelta(seconds=2))
    port = free_port()
    settings = settings_for(
        kafka_bootstrap, fresh_database, f"stall{secrets.token_hex(3)}.", http_port=port
    )
    ws = "stalled"
    async with running(settings) as stack:
        await ann_routes_c1(stack, ws)
        (service,) = made
        conversations = [
            TopicPartition(settings.topic(settings.topic_conversations), p) for p in range(4)
        ]
        service._consumer.pause(*conversations)

        await stack.send(opened("c2", ws=ws))

        async def reported() -> bool:
            status, body = await http_get(port, "/readyz")
            return status == 503 and "stalled: records unread" in body

        assert await poll_until(reported, timeout=30)
        _, metrics = await http_get(port, "/metrics")
        assert any(
            line.startswith("handoff_partitions_stalled{") and line.endswith(" 1.0")
            for line in metrics.splitlines()
        )
        assert len(of_workspace(await stack.outputs(lambda o: True), ws, "contact.assigned")) == 1

        service._consumer.resume(*conversations)
        outs = await stack.outputs(lambda o: len(routed(o, ws)) == 2)
        assert routed(outs, ws)[1] == ("contact.assigned", "c2", "ann")

        async def ready() -> bool:
            return (await http_get(port, "/readyz"))[0] == 200

        assert await poll_until(ready, timeout=30)


async def test_outputs_the_broker_refuses_wait_in_order_and_the_partition_says_so(
    kafka_bootstrap: str,
    fresh_database: str,
    monkeypatch: pytest.MonkeyPatch,
    made: list[pipeline.Pipeline],
) -> None:
    """Given a running service, when the broker refuses every output (as it would one over
    its limit), then the outputs wait in the outbox and `/readyz` and `handoff_outbox_stuck`
    name the partition and the row; and once the broker takes them, they all come out, in
    the order they were decided, and the service is ready again."""
    port = free_port()
    settings = settings_for(
        kafka_bootstrap, fresh_database, f"refused{secrets.token_hex(3)}.", http_port=port
    )
    ws = "refused"
    async with running(settings) as stack:
        await ann_routes_c1(stack, ws)
        (service,) = made
        producer = service._producer
        send = producer.send

        async def refuse(*args: object, **kwargs: object) -> object:
            raise MessageSizeTooLargeError("the broker's limit, as a test sets it")

        monkeypatch.setattr(producer, "send", refuse)
        await stack.send(opened("c2", ws=ws))
        await stack.send(opened("c3", ws=ws))

        async def reported() -> bool:
            status, body = await http_get(port, "/readyz")
            return status == 503 and "RelayRefused: outbox row" in body

        assert await poll_until(reported, timeout=30)
        _, metrics = await http_get(port, "/metrics")
        assert any(
            line.startswith("handoff_outbox_stuck{") and line.endswith(" 1.0")
            for line in metrics.splitlines()
        )
        assert len(of_workspace(await stack.outputs(lambda o: True), ws, "contact.assigned")) == 1

        monkeypatch.setattr(producer, "send", send)
        outs = await stack.outputs(lambda o: len(routed(o, ws)) == 3)
        assert [c for _, c, _ in routed(outs, ws)] == ["c1", "c2", "c3"]

        async def ready() -> bool:
            return (await http_get(port, "/readyz"))[0] == 200

        assert await poll_until(ready, timeout=30)
