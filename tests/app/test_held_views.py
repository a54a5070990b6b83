"""How many workspaces' views an instance holds: past the limit, the least recently used
go first, across partitions, and a dropped one leaves nothing behind."""

from handoff.app.handle import PartitionState, hold_at_most
from handoff.core.ids import ContactId
from handoff.core.view import WorkspaceView


def _state(partition: int, used: dict[str, int]) -> PartitionState:
    state = PartitionState(partition, {})
    for ws, step in used.items():
        state.views[ws] = WorkspaceView(workspace_id=ws)
        state.whole[ws] = {ContactId("c")}
        state.kept_rows[ws] = 1
        state.used[ws] = step
    return state


def test_under_the_limit_every_view_stays() -> None:
    states = [_state(0, {"a": 1, "b": 2}), _state(1, {"c": 3})]
    hold_at_most(states, 3)
    assert [sorted(s.views) for s in states] == [["a", "b"], ["c"]]


def test_past_the_limit_the_least_recently_used_go_down_to_nine_tenths() -> None:
    # 12 views over two partitions, used at steps 1..12; limit 10 -> keep the newest 9
    states = [
        _state(0, {f"w{n}": n for n in range(1, 13, 2)}),
        _state(1, {f"w{n}": n for n in range(2, 13, 2)}),
    ]
    hold_at_most(states, 10)
    kept = sorted(s.used[ws] for s in states for ws in s.views)
    assert kept == list(range(4, 13))
    for s in states:  # nothing of a dropped workspace is left behind
        assert s.views.keys() == s.whole.keys() == s.kept_rows.keys() == s.used.keys()


def test_views_with_changes_not_yet_committed_stay_past_the_limit() -> None:
    """A view the next step changed while the last one committed is not dropped, though
    it is among the least recently used: read back, it would lack those changes."""
    states = [_state(0, {f"w{n}": n for n in range(1, 13)})]
    hold_at_most(states, 10, keep={"w1", "w3"})
    assert sorted(states[0].views) == sorted(["w1", "w3", *(f"w{n}" for n in range(4, 13))])
