"""Prometheus metrics: one registry per service, so several services in one process (tests,
the demo) each count their own."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "handoff_events_consumed", "Input records read from Kafka", ["topic"], registry=r
        )
        self.applied = Counter(
            "handoff_events_applied",
            "Inputs applied (logged and decided), by type",
            ["type"],
            registry=r,
        )
        self.skipped = Counter(
            "handoff_events_skipped",
            "Inputs not applied: duplicate (id already accepted) or unknown_type",
            ["reason"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "handoff_events_dead_lettered",
            "Records sent to the dead-letter topic, by reason",
            ["reason"],
            registry=r,
        )
        self.decisions = Counter(
            "handoff_decisions",
            "Decisions logged, by type and assignment strategy",
            ["type", "strategy"],
            registry=r,
        )
        self.assignment_failures = Counter(
            "handoff_assignment_failures",
            "assignment.failed outputs, by reason",
            ["reason"],
            registry=r,
        )
        self.end_to_end = Histogram(
            "handoff_end_to_end_seconds",
            "From an input's Kafka timestamp to its outputs acknowledged by Kafka",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch = Histogram(
            "handoff_batch_seconds",
            "One step's batches (every partition with ready records): decide, commit, relay",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = Gauge(
            "handoff_consumer_lag",
            "Records not yet read, per input topic and partition",
            ["topic", "partition"],
            registry=r,
        )
        self.outbox_backlog = Gauge(
            "handoff_outbox_backlog", "Outputs committed but not yet relayed to Kafka", registry=r
        )
        self.timers_due = Gauge(
            "handoff_timers_due", "Timers due and not yet fired (at the last poll)", registry=r
        )
        self.partitions = Gauge(
            "handoff_partitions_assigned", "Input partitions this instance owns", registry=r
        )
