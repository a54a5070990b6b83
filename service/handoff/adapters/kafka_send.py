"""Publishing CloudEvents to handoff's input topics, keyed by workspace as the contract says."""

import asyncio
from collections.abc import Iterable
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaProducer

__all__ = ["CLOUDEVENTS_HEADERS", "SendSettings", "input_topic_for", "send_events"]

CLOUDEVENTS_HEADERS: list[tuple[str, bytes]] = [
    ("content-type", b"application/cloudevents+json; charset=UTF-8")
]
"""The Kafka headers of every record handoff writes (contract v1.1, Envelope).

Each record's value is one CloudEvent in structured JSON mode. The CloudEvents Kafka binding
tells the two modes apart by the `content-type` header: `application/cloudevents...` means
structured (the whole event in the value); anything else, or no header, means binary mode
(attributes in `ce_` headers, the value is `data` alone). A consumer following the binding
therefore reads a record without this header as a binary-mode event with no attributes.
Pass it as `headers=` to every `send` of an output, a dead letter or an input handoff produces.
"""


class SendSettings(Protocol):
    """What sending needs of the configuration (`handoff.app.settings.Settings` has it), so
    this adapter does not import the application layer."""

    @property
    def topic_conversations(self) -> str: ...
    @property
    def topic_presence(self) -> str: ...
    @property
    def topic_workflows(self) -> str: ...
    def topic(self, name: str) -> str: ...
    def kafka_options(self) -> dict[str, Any]: ...


_TOPIC_BY_PREFIX = {
    "conversation.": "topic_conversations",
    "message.": "topic_conversations",
    "contact.": "topic_conversations",
    "user.": "topic_presence",
    "team.": "topic_presence",
    "workflow.": "topic_workflows",
}


def input_topic_for(settings: SendSettings, event_type: str) -> str:
    """The input topic the contract puts `event_type` on (unknown types: conversations)."""
    for prefix, attribute in _TOPIC_BY_PREFIX.items():
        if event_type.startswith(prefix):
            return settings.topic(getattr(settings, attribute))
    return settings.topic(settings.topic_conversations)


async def send_events(
    settings: SendSettings, bootstrap: str, events: Iterable[dict[str, Any] | bytes]
) -> int:
    """Send each event to its topic, in order; raw bytes (e.g. a malformed record) go to
    conversations. Every record carries `CLOUDEVENTS_HEADERS`.

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
            pending.append(await producer.send(topic, value, key=key, headers=CLOUDEVENTS_HEADERS))
            sent += 1
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent
