"""How a replay cuts the log into ranges of workspaces for its workers: every workspace in
exactly one range, about as many events in each, and no range left without a bound where a
workspace the list missed could fall outside."""

import itertools

from hypothesis import given
from hypothesis import strategies as st

from handoff.app.replay import cut


def test_equal_workspaces_are_shared_out_evenly() -> None:
    sizes = [("a", 10), ("b", 10), ("c", 10), ("d", 10)]
    assert cut(sizes, 2) == [(None, "c"), ("c", None)]
    assert cut(sizes, 4) == [(None, "b"), ("b", "c"), ("c", "d"), ("d", None)]


def test_one_large_workspace_takes_a_range_of_its_own() -> None:
    assert cut([("a", 100), ("b", 1), ("c", 1)], 2) == [(None, "b"), ("b", None)]


def test_no_more_ranges_than_workspaces_and_one_for_an_empty_log() -> None:
    assert cut([("a", 5), ("b", 5)], 8) == [(None, "b"), ("b", None)]
    assert cut([], 4) == [(None, None)]


@given(
    st.lists(st.integers(min_value=1, max_value=1000), min_size=1, max_size=60),
    st.integers(min_value=1, max_value=16),
)
def test_ranges_cover_every_workspace_once_and_none_holds_much_more_than_its_share(
    counts: list[int], ranges: int
) -> None:
    sizes = [(f"w{i:03d}", n) for i, n in enumerate(counts)]
    spans = cut(sizes, ranges)
    assert 1 <= len(spans) <= min(ranges, len(sizes))
    assert spans[0][0] is None
    assert spans[-1][1] is None
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))

    def inside(ws: str, span: tuple[str | None, str | None]) -> bool:
        return (span[0] is None or ws >= span[0]) and (span[1] is None or ws < span[1])

    held = [[n for ws, n in sizes if inside(ws, span)] for span in spans]
    assert sorted(n for h in held for n in h) == sorted(counts)  # each exactly once
    share, largest = sum(counts) / ranges, max(counts)
    assert all(sum(h) <= share + largest for h in held)
