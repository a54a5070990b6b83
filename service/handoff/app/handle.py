"""The seam: a merged batch of one partition in, one transaction's worth of writes out.

For each record: dead-letter it, skip it, drop it as a duplicate, or fold it into its
workspace's view, `decide`, and fold the decisions in too. Everything lands in one
`BatchWrite` (log rows, outbox rows, changed projection rows, positions) that the caller
commits atomically. The views live in memory per owned partition and are written through;
if the commit fails the caller drops them, so memory never runs ahead of the database.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from handoff.adapters.cloudevents import Accepted, Rejected, dead_letter, dump_event
from handoff.adapters.pg_store import BatchWrite, Connection, input_key, load_views, seen_inputs
from handoff.app.merge import Inbound
from handoff.app.settings import Settings
from handoff.core.decide import decide
from handoff.core.envelope import Envelope
from handoff.core.events import OUTPUT_TOPIC_OF
from handoff.core.view import WorkspaceView
from handoff_projections import Changed, evolve
from handoff_projections.rows import dump_row, row_value

__all__ = ["BatchStats", "PartitionState", "PoisonRecord", "handle_batch"]


class PoisonRecord(Exception):
    """The core failed on this record: a bug, or an input it cannot cope with. The batch
    is abandoned (the views it touched are no longer trusted) and the record dead-lettered."""

    def __init__(self, record: Inbound, error: Exception) -> None:
        self.record = record
        self.reason = f"could not be applied: {type(error).__name__}: {error}"
        super().__init__(self.reason)


@dataclass
class PartitionState:
    """What this instance holds for one partition it owns."""

    partition: int
    positions: dict[tuple[str, int], int]
    views: dict[str, WorkspaceView] = field(default_factory=dict)


@dataclass
class BatchStats:
    applied: int = 0
    duplicates: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    decided: dict[str, int] = field(default_factory=dict)


async def handle_batch(
    conn: Connection,
    state: PartitionState,
    records: Sequence[Inbound],
    now: datetime,
    settings: Settings,
) -> tuple[BatchWrite, BatchStats]:
    batch = BatchWrite(group_id=settings.group_id, partition=state.partition)
    stats = BatchStats()
    accepted = [r.parsed.event for r in records if isinstance(r.parsed, Accepted)]
    missing = {e.workspaceid for e in accepted} - state.views.keys()
    if missing:
        state.views.update(await load_views(conn, missing))
    seen = await seen_inputs(conn, [input_key(e) for e in accepted])
    changed: dict[str, set[Changed]] = {}
    outputs = settings.output_topics

    def log(view: WorkspaceView, event: Envelope, source: Inbound | None) -> None:
        changed.setdefault(view.workspace_id, set()).update(evolve(view, event))
        body = dump_event(event)
        kafka = (source.topic, source.partition, source.offset) if source else None
        if source is not None and not source.from_kafka:
            kafka = None
        batch.log_row(view.version, event, body, now, source is not None, kafka)
        role = OUTPUT_TOPIC_OF.get(event.type)
        if role is not None:
            batch.outbox.append((state.partition, outputs[role], view.workspace_id.encode(), body))

    for record in records:
        parsed = record.parsed
        if isinstance(parsed, Rejected):
            stats.dead_lettered += 1
            letter_key, letter = dead_letter(
                record.value,
                record.key,
                parsed.reason,
                (record.topic, record.partition, record.offset),
                now,
            )
            batch.outbox.append((state.partition, outputs["deadletter"], letter_key, letter))
        elif not isinstance(parsed, Accepted):
            stats.skipped += 1
        elif input_key(parsed.event) in seen:
            stats.duplicates += 1
        else:
            event = parsed.event
            seen.add(input_key(event))
            view = state.views[event.workspaceid]
            try:
                log(view, event, record)
                for decision in decide(view, event, now):
                    log(view, decision, None)
                    stats.decided[decision.type] = stats.decided.get(decision.type, 0) + 1
            except Exception as error:
                raise PoisonRecord(record, error) from error
            stats.applied += 1

    for workspace_id, rows in changed.items():
        view = state.views[workspace_id]
        batch.versions[workspace_id] = view.version
        for table, key in rows:
            value = row_value(view, table, key)
            if table == "timers" and value is None:
                batch.timers_gone.append((workspace_id, key))
            elif table == "timers":
                batch.timers_set.append(
                    (workspace_id, key, state.partition, value.due_at, value.step_id, value.kind)
                )
            if value is None:
                batch.rows_deleted.append((workspace_id, table, key))
            else:
                batch.rows_upserted.append(
                    (workspace_id, table, key, dump_row(table, value).decode())
                )
    reached = {(r.topic, r.partition): r.offset + 1 for r in records if r.from_kafka}
    for tp, stored in state.positions.items():
        batch.positions[tp] = (stored, reached.get(tp, stored))
    return batch, stats
