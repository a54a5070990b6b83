"""The merge of one partition's three input topics into the order things happened."""

from datetime import timedelta

from handoff.adapters.cloudevents import Accepted, Rejected
from handoff.app.merge import Inbound, Merger
from tests.builders import T0, opened, presence

TOPICS = ("presence", "workflows", "conversations")


def _record(topic: str, offset: int, seconds: int | None) -> Inbound:
    if seconds is None:
        return Inbound(topic, 0, offset, None, b"?", Rejected("not JSON"))
    at = T0 + timedelta(seconds=seconds)
    event = presence("ann", at=at) if topic == "presence" else opened("c", at=at)
    return Inbound(topic, 0, offset, None, b"{}", Accepted(event))


def _offsets(records: list[Inbound]) -> list[tuple[str, int]]:
    return [(r.topic, r.offset) for r in records]


def test_a_backlog_is_released_in_time_order_across_topics() -> None:
    merger = Merger(TOPICS)
    for r in [
        _record("conversations", 0, 10),
        _record("conversations", 1, 30),
        _record("presence", 0, 5),
        _record("presence", 1, 20),
        _record("workflows", 0, 7),
    ]:
        merger.add(r)
    ready = merger.take_ready(caught_up=lambda topic: True)
    assert _offsets(ready) == [
        ("presence", 0),
        ("workflows", 0),
        ("conversations", 0),
        ("presence", 1),
        ("conversations", 1),
    ]


def test_a_topic_with_unread_records_holds_the_others_back() -> None:
    merger = Merger(TOPICS)
    merger.add(_record("conversations", 0, 10))
    assert merger.take_ready(caught_up=lambda topic: topic != "presence") == []
    merger.add(_record("presence", 0, 5))
    ready = merger.take_ready(caught_up=lambda topic: True)
    assert _offsets(ready) == [("presence", 0), ("conversations", 0)]


def test_caught_up_topics_hold_nothing_back() -> None:
    merger = Merger(TOPICS)
    merger.add(_record("conversations", 0, 10))
    assert _offsets(merger.take_ready(caught_up=lambda topic: True)) == [("conversations", 0)]


def test_ties_go_presence_then_workflows_then_conversations() -> None:
    merger = Merger(TOPICS)
    for topic in reversed(TOPICS):
        merger.add(_record(topic, 0, 10))
    assert [r.topic for r in merger.take_ready(lambda t: True)] == list(TOPICS)


def test_a_rejected_record_waits_for_nothing() -> None:
    merger = Merger(TOPICS)
    merger.add(_record("conversations", 0, None))
    merger.add(_record("conversations", 1, 10))
    ready = merger.take_ready(caught_up=lambda topic: topic == "conversations")
    assert _offsets(ready) == [("conversations", 0)]


def test_a_topic_that_runs_dry_with_records_unread_holds_the_rest_back() -> None:
    merger = Merger(TOPICS)
    merger.add(_record("presence", 0, 5))
    merger.add(_record("conversations", 0, 10))
    ready = merger.take_ready(caught_up=lambda topic: topic != "presence")
    assert _offsets(ready) == [("presence", 0)]
    merger.add(_record("presence", 1, 8))
    ready = merger.take_ready(caught_up=lambda topic: True)
    assert _offsets(ready) == [("presence", 1), ("conversations", 0)]
