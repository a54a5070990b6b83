"""Prometheus metrics: one registry per service, so several services in one process (tests,
the demo) each count their own."""

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from handoff.adapters.cloudevents import Accepted
from handoff.app.handle import BatchStats
from handoff.app.merge import Inbound

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
        self.fenced = Counter(
            "handoff_steps_fenced",
            "Steps rolled back because their partition was taken since they were decided",
            registry=r,
        )
        self.outbox_stuck = Gauge(
            "handoff_outbox_stuck",
            "1 while a partition's outbox cannot be relayed (its outputs wait, in order)",
            ["partition"],
            registry=r,
        )
        self.refused = Counter(
            "handoff_records_refused",
            "Polled records not handled, by reason: before_seek (fetched before the"
            " partition was taken again), gap (past the expected offset), position (a step"
            " that did not start where its partition stands): each read again",
            ["reason"],
            registry=r,
        )
        self.offset_gaps = Counter(
            "handoff_offset_gaps",
            "Offsets the broker skipped in a fetch made after our seek (transaction markers,"
            " compaction): nothing of ours to read there",
            ["topic"],
            registry=r,
        )
        self.positions_reset = Counter(
            "handoff_positions_reset",
            "Stored positions not issued by this broker and topic (another cluster, a topic"
            " recreated, an in-memory broker restarted): the partition was re-read from its"
            " start",
            ["topic"],
            registry=r,
        )
        self.partitions_stalled = Gauge(
            "handoff_partitions_stalled",
            "1 while a partition has records unread and none has arrived for 30 s (sought"
            " again; nothing of it is skipped)",
            ["partition"],
            registry=r,
        )
        self.partitions_held = Gauge(
            "handoff_partitions_held",
            "1 while a partition's records cannot be read (e.g. a batch that cannot be"
            " decoded): nothing of it is skipped, it waits",
            ["partition"],
            registry=r,
        )

    def count(self, records: list[Inbound], stats: BatchStats, done: datetime) -> None:
        """What a committed batch did."""
        done_ms = done.timestamp() * 1000
        for r in records:
            if r.timestamp_ms is not None and isinstance(r.parsed, Accepted):
                self.end_to_end.observe(max(0.0, done_ms - r.timestamp_ms) / 1000)
        for type_, n in stats.applied.items():
            self.applied.labels(type_).inc(n)
        self.skipped.labels("duplicate").inc(stats.duplicates)
        self.skipped.labels("unknown_type").inc(stats.skipped)
        for kind, n in stats.dead_lettered.items():
            self.dead_lettered.labels(kind).inc(n)
        for (type_, strategy), n in stats.decided.items():
            self.decisions.labels(type_, strategy).inc(n)
        for reason, n in stats.failed.items():
            self.assignment_failures.labels(reason).inc(n)
