"""The service collects cycles less often while it runs, and leaves the process as it was."""

import gc

import pytest

from handoff.app.collector import THRESHOLDS, fewer_collections


def test_thresholds_hold_inside_the_block_and_are_restored_after_it() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold() == THRESHOLDS
    assert gc.get_threshold() == before


def test_thresholds_are_restored_when_the_block_fails() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("stop")
    assert gc.get_threshold() == before
