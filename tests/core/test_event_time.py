"""Timers in event time: a backlog decides as live did, because an input is applied only after
its workspace's timers that fell due before it happened."""

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from handoff.adapters.cloudevents import dump_event, parse
from handoff.app.handle import PartitionState, handle_batch
from handoff.app.merge import Inbound
from handoff.app.settings import Settings
from handoff.core.envelope import Envelope
from handoff.core.event_time import DueTimers
from handoff.core.ids import RunId
from handoff.core.view import Timer, WorkspaceView
from tests.builders import T0, WS, event, opened, workflow
from tests.scenario import history


def _records(events: list[Envelope]) -> list[Inbound]:
    """The events as partition 0 of the conversations topic delivers them."""
    return [
        Inbound("conversations", 0, offset, b"ws", raw, parse(raw, 1 << 20))
        for offset, raw in enumerate(map(dump_event, events))
    ]


async def test_a_backlog_fires_a_wait_before_a_later_message_as_live_did() -> None:
    """Given a workflow that waits 15 minutes and then asks whether an agent replied, when a
    backlog holds the conversation's opening and a message 20 minutes later, then the wait
    ends before the message is applied, as it did live: the log has the timer first."""
    view = history(
        [
            workflow(
                {"type": "wait", "duration": "15m"},
                {"type": "send_message", "text": "still there?"},
            )
        ]
    )
    state = PartitionState(0, {("conversations", 0): 0})
    state.views[WS] = view
    message = event(
        "message.received",
        {"contact_id": "c1", "conversation_id": "conv-c1", "message_id": "m1", "text": "hi"},
        at=T0 + timedelta(minutes=20),
    )
    batch, stats = await handle_batch(
        state, _records([opened("c1", at=T0), message]), T0 + timedelta(hours=1), Settings(), set()
    )
    logged = [row[4] for row in batch.log]
    assert logged.index("timer.elapsed") < logged.index("message.received")
    assert "message.requested" in logged[: logged.index("message.received")]
    assert stats.applied["timer.elapsed"] == 1
    assert batch.timers_set == []  # set and fired in the same batch: nothing left to poll


async def test_an_input_before_the_due_time_leaves_the_timer_to_the_poller() -> None:
    view = history([workflow({"type": "wait", "duration": "15m"})])
    state = PartitionState(0, {("conversations", 0): 0})
    state.views[WS] = view
    message = event(
        "message.received",
        {"contact_id": "c1", "conversation_id": "conv-c1", "message_id": "m1", "text": "hi"},
        at=T0 + timedelta(minutes=10),
    )
    batch, stats = await handle_batch(
        state, _records([opened("c1", at=T0), message]), T0, Settings(), set()
    )
    assert stats.applied["timer.elapsed"] == 0
    assert [t[1] for t in batch.timers_set] != []


_RUNS = [RunId(f"r{n}") for n in range(6)]
_ops = st.lists(
    st.tuples(
        st.sampled_from(["set", "drop", "pop"]),
        st.sampled_from(_RUNS),
        st.integers(0, 50),
    ),
    max_size=60,
)


@given(_ops)
def test_due_timers_agree_with_a_search_of_every_timer(ops: list[tuple[str, RunId, int]]) -> None:
    """Model-based: after any sequence of timers set, moved and dropped, the heap pops what a
    brute-force search of the view's timers finds: the earliest due by then, or none."""
    view = WorkspaceView(workspace_id=WS)
    due = DueTimers(view)
    for op, run_id, minutes in ops:
        at = T0 + timedelta(minutes=minutes)
        if op == "set":
            view.timers[run_id] = Timer(due_at=at, step_id="s", kind="wait")
            due.set(run_id)
        elif op == "drop":
            view.timers.pop(run_id, None)
        else:
            expected = min(
                ((t.due_at, r) for r, t in view.timers.items() if t.due_at <= at), default=None
            )
            popped = due.pop_due(at)
            if expected is None:
                assert popped is None
            else:
                assert popped is not None
                assert (popped.time, popped.data.run_id) == expected
                del view.timers[popped.data.run_id]  # fired: the fold drops it
