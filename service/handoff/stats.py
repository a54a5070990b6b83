"""The nearest-rank quantile: the one rule the benchmark, the demo's summary and the audit's
simulation report figures by, so a median or a p90 means the same in each (a value that
occurred, never one interpolated between two). Top level, because the audit may import
neither the benchmark nor the demo, and it is no part of the decision core."""

import math
from collections.abc import Sequence

__all__ = ["quantile"]


def quantile(ordered: Sequence[float], q: float) -> float | None:
    """The `q` quantile (0 to 1) of ascending values by nearest rank (None for none): the
    median of 1..100 is 50, its 0.99 quantile 99, its 1.0 quantile the maximum."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
