"""Garbage collection for a process that holds many workspaces' views.

CPython runs its cycle collector every 700 allocations of container objects, and every view
row, event and pydantic model counts. The views' rows live long, so they are walked again and
again on their way to the oldest generation: on the pure path with 1,000 workspaces the
collector took 8.7 s of 43 s (`handoff bench` runs the service under this setting). What the
service allocates holds no reference cycles in the common case (frozen dataclass rows,
dicts, validated models), so reference counting frees it and the collector finds next to
nothing; collecting fifty times less often cost 0.13 s there, and leaves at most a few
more megabytes of cyclic garbage (an exception's traceback) waiting.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["THRESHOLDS", "fewer_collections"]

THRESHOLDS = (50_000, 20, 20)
"""Allocations before a young collection, and young (then middle) collections before the
next generation's (CPython's defaults: 700, 10, 10)."""


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect cycles at `THRESHOLDS` while the block runs; the process's own settings after."""
    before = gc.get_threshold()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
