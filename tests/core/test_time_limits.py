"""The time limits parse enforces are enough: an input at the latest time accepted can start
the longest timer a workflow may set, and the run decides on when it falls due, conditions
on the local time of any timezone included; and likewise at the earliest time accepted."""

from datetime import timedelta

import orjson

from handoff.adapters.cloudevents import Accepted, Rejected, parse
from handoff.core.durations import MAX_DURATION
from handoff.core.envelope import EARLIEST_TIME, LATEST_TIME
from handoff.core.events import RunWaiting
from handoff.core.timers import elapsed
from tests.builders import WS, opened, presence, team, user, workflow
from tests.scenario import apply, history

ANYTIME = {
    "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    "from": "00:00",
    "to": "00:00",
}


def schedule_branch(zone: str) -> dict[str, object]:
    return {
        "type": "branch",
        "branches": [
            {
                "name": "open",
                "when": {"schedule": {"timezone": zone, **ANYTIME}},
                "steps": [{"id": "hello", "type": "send_message", "text": "open"}],
            }
        ],
        "else": [{"id": "closed", "type": "send_message", "text": "closed"}],
    }


def test_given_the_latest_time_when_the_longest_wait_ends_then_the_run_decides_on() -> None:
    """Given a workflow that waits 90 days then branches on the time in UTC+14, when a
    conversation opens at the latest time accepted, then the timer falls due 90 days later,
    within the calendar, and the branch is decided then (9999-12-31T23:59:59Z, accepted
    before v1.1, raised OverflowError computing the due time of a 3 s wait)."""
    raw = orjson.dumps({**opened("c1").model_dump(mode="json"), "time": LATEST_TIME.isoformat()})
    parsed = parse(raw, 1 << 20)
    assert isinstance(parsed, Accepted)
    view = history(
        [
            user("ann", at=LATEST_TIME),
            presence("ann", at=LATEST_TIME),
            team("t", "ann", at=LATEST_TIME),
            workflow(
                {"type": "wait", "duration": f"{MAX_DURATION.days}d"},
                schedule_branch("Pacific/Kiritimati"),
                at=LATEST_TIME,
            ),
        ]
    )
    (waiting,) = [d for d in apply(view, parsed.event) if isinstance(d, RunWaiting)]
    assert waiting.data.until == LATEST_TIME + MAX_DURATION
    (run_id, timer), *_ = view.timers.items()
    fired = apply(view, elapsed(WS, run_id, timer.step_id, timer.kind, timer.due_at))
    assert [d.data.text for d in fired if d.type == "message.requested"] == ["open"]  # type: ignore[attr-defined]


def test_given_the_earliest_time_when_a_branch_reads_the_time_west_of_utc_then_decided() -> None:
    raw = orjson.dumps({**opened("c1").model_dump(mode="json"), "time": EARLIEST_TIME.isoformat()})
    parsed = parse(raw, 1 << 20)
    assert isinstance(parsed, Accepted)
    view = history([workflow(schedule_branch("Etc/GMT+12"), at=EARLIEST_TIME)])
    said = [d.data.text for d in apply(view, parsed.event) if d.type == "message.requested"]  # type: ignore[attr-defined]
    assert said == ["open"]


def test_given_times_a_moment_past_the_limits_then_refused() -> None:
    for time in (
        LATEST_TIME + timedelta(microseconds=1),
        EARLIEST_TIME - timedelta(microseconds=1),
    ):
        raw = orjson.dumps({**opened("c1").model_dump(mode="json"), "time": time.isoformat()})
        parsed = parse(raw, 1 << 20)
        assert isinstance(parsed, Rejected)
        assert parsed.reason.startswith(f"time: {time.isoformat()} is ")
