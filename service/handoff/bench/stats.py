"""Small numeric helpers of the benchmark: percentiles and a latency summary."""

from collections.abc import Sequence
from dataclasses import dataclass

from handoff.stats import quantile

__all__ = ["LatencySummary", "percentile", "summarize_latencies"]


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0-100) by the nearest-rank method: a value that occurred.

    p50 of 1..100 is 50, p99 is 99, p100 the maximum; an empty sequence has none.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0-100, not {q}")
    value = quantile(sorted(values), q / 100)
    assert value is not None  # values are not empty
    return value


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Seconds from produce of an input to arrival of each output it caused."""

    samples: int
    p50: float
    p99: float
    max: float


def summarize_latencies(seconds: Sequence[float]) -> LatencySummary | None:
    if not seconds:
        return None
    ordered = sorted(seconds)
    return LatencySummary(
        len(ordered), percentile(ordered, 50), percentile(ordered, 99), ordered[-1]
    )
