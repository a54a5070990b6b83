"""Publishing CloudEvents to handoff's input topics, keyed by workspace as the contract says."""

import asyncio
from collections.abc import Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from handoff.app.settings import Settings

__all__ = ["input_topic_for", "send_events"]

_TOPIC_BY_PREFIX = {
    "conversation.": "topic_conversations",
    "message.": "topic_conversations",
    "contact.": "topic_conversations",
    "user.": "topic_presence",
    "team.": "topic_presence",
    "workflow.": "topic_workflows",
}


def input_topic_for(settings: Settings, event_type: str) -> str:
    """The input topic the contract puts `event_type` on (unknown types: conversations)."""
    for prefix, attribute in _TOPIC_BY_PREFIX.items():
        if event_type.startswith(prefix):
            return settings.topic(getattr(settings, attribute))
    return settings.topic(settings.topic_conversations)


async def send_events(
    settings: Settings, bootstrap: str, events: Iterable[dict[str, Any] | bytes]
) -> int:
    """Send each event to its topic, in order; raw bytes (e.g. a malformed record) go to
    conversations.

    Kafka orders nothing across topics, and the service takes a topic it has read to the end
    as having nothing older to come. So a record goes to another topic than the one before
    only once the records before it are acknowledged: the broker then holds every earlier
    record (a team before the conversation routed to it) when the later one can be read.
    """
    producer = AIOKafkaProducer(
        **settings.kafka_options(), bootstrap_servers=bootstrap, acks="all", linger_ms=2
    )
    await producer.start()
    sent, last_topic = 0, None
    pending: list[asyncio.Future[Any]] = []
    try:
        for event in events:
            if isinstance(event, bytes):
                topic, key, value = settings.topic(settings.topic_conversations), None, event
            else:
                topic = input_topic_for(settings, str(event.get("type", "")))
                key, value = str(event.get("workspaceid", "")).encode(), orjson.dumps(event)
            if topic != last_topic:
                await asyncio.gather(*pending)
                pending.clear()
                last_topic = topic
            pending.append(await producer.send(topic, value, key=key))
            sent += 1
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent
