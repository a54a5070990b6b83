"""Create the topics handoff reads and writes, before anything else touches them.

Brokers may auto-create a topic on first look-up with their own partition count (the
embedded one makes 4), so topics are created first, and existing ones are never changed.
The input topics must have one partition count: partition p of each holds the same
workspaces, and the merge reads them together.
"""

from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

__all__ = ["TopicMismatch", "ensure_topics"]


class TopicMismatch(RuntimeError):
    """The input topics exist with different partition counts: they cannot be co-partitioned."""


async def ensure_topics(
    bootstrap: str,
    inputs: Iterable[str],
    outputs: Iterable[str],
    partitions: int,
    options: dict[str, Any],
) -> int:
    """Create what is missing; returns the input topics' partition count."""
    inputs, outputs = list(inputs), list(outputs)
    admin = AIOKafkaAdminClient(**options, bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in [*inputs, *outputs] if t not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing]
            )
        described = await admin.describe_topics(inputs)
    finally:
        await admin.close()
    counts = {d["topic"]: len(d["partitions"]) for d in described}
    if len(set(counts.values())) != 1:
        raise TopicMismatch(
            f"input topics must have the same partition count, found {counts}; "
            "recreate them or point handoff at co-partitioned topics"
        )
    return next(iter(counts.values()))
