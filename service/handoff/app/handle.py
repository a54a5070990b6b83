"""The seam: a merged batch of one partition in, the writes it makes out.

For each record: dead-letter it, skip it, drop it as a duplicate, or fold it into its
workspace's view, `decide`, and fold the decisions in too. Everything lands in one
`BatchWrite` (log rows, outbox rows, changed projection rows, positions) that the caller
commits atomically. The views live in memory per owned partition and are written through;
if the commit fails the caller drops them, so what memory holds beyond the database is never
more than the steps not yet committed (`Pipeline._process`).

What a batch needs from the database (views not held, inputs already logged) is read by
`prepare` for all the partitions of a step at once: two queries, not two per partition.
"""

import asyncio
import logging
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from handoff.adapters.cloudevents import Accepted, Rejected, dead_letter, dump_event
from handoff.adapters.pg_store import (
    BatchWrite,
    Connection,
    InputKey,
    input_key,
    load_rows,
    load_views,
    seen_inputs,
)
from handoff.app.merge import Inbound
from handoff.app.settings import Settings
from handoff.core.decide import decide
from handoff.core.envelope import Envelope
from handoff.core.events import (
    OUTPUT_TOPIC_OF,
    AssignmentFailed,
    AssignmentQueued,
    ContactAssigned,
)
from handoff.core.ids import ContactId, ConversationId
from handoff.core.view import WorkspaceView
from handoff_projections import Changed, evolve
from handoff_projections.resident import contact_rows, evict, named, pinned, wanted
from handoff_projections.rows import dump_row, row_value

__all__ = [
    "BatchStats",
    "PartitionState",
    "PoisonRecord",
    "handle_batch",
    "hold_at_most",
    "prepare",
]

log = structlog.get_logger("handoff.handle")


class PoisonRecord(Exception):
    """The core failed on this record: a bug, or an input it cannot cope with. The batch
    is abandoned (the views it touched are no longer trusted) and the record dead-lettered."""

    def __init__(self, record: Inbound, error: Exception) -> None:
        self.record = record
        self.reason = f"could not be applied: {type(error).__name__}: {error}"
        super().__init__(self.reason)


YIELD_EVERY = 32
"""Records decided between two turns of the event loop (2-3 ms of deciding)."""

EVICT_SLACK = 256
"""Rows of contacts and conversations a view may gain over twice what it kept at its last
eviction before it is evicted again: each eviction reads every row, so it is paid for by
as many new rows as it leaves."""


@dataclass
class PartitionState:
    """What this instance holds for one partition it owns.

    The views hold what a decision may read (`handoff_projections.resident`): rows of idle
    contacts and closed conversations leave after a commit and are read back by `prepare`
    when an input names them again.
    """

    partition: int
    positions: dict[tuple[str, int], int]
    views: dict[str, WorkspaceView] = field(default_factory=dict)
    whole: dict[str, set[ContactId]] = field(default_factory=dict)
    """Workspace -> the contacts whose rows are all in memory."""
    kept_rows: dict[str, int] = field(default_factory=dict)
    """Workspace -> its contact and conversation rows right after its last eviction."""
    used: dict[str, int] = field(default_factory=dict)
    """Workspace -> the step that last brought it an input (`prepare`): the views used least
    recently are the first to go when too many are held."""

    def drop(self, workspace_id: str) -> None:
        """Forget a workspace's view (its changes committed); `prepare` loads it again."""
        for held in (self.views, self.whole, self.kept_rows, self.used):
            held.pop(workspace_id, None)

    def make_room(self, workspace_ids: Iterable[str]) -> None:
        """Evict the idle rows of these workspaces' views once enough have piled up (their
        changes committed: what leaves is stored)."""
        for ws in workspace_ids:
            view = self.views[ws]
            if contact_rows(view) > 2 * self.kept_rows.get(ws, 0) + EVICT_SLACK:
                self.whole[ws] &= evict(view)
                self.kept_rows[ws] = contact_rows(view)


def hold_at_most(states: Iterable[PartitionState], limit: int, keep: Collection[str] = ()) -> None:
    """Past `limit` views held, drop the least recently used down to nine tenths of it (so
    the sort is paid for by many loads): memory follows the active workspaces. The views in
    `keep` hold changes not yet committed, which a view read back would lack: they stay."""
    states = list(states)
    if sum(len(state.used) for state in states) <= limit:
        return
    held = sorted(
        ((used, state, ws) for state in states for ws, used in state.used.items()),
        key=lambda h: h[0],
    )
    for _, state, ws in held[: len(held) - limit * 9 // 10]:
        if ws not in keep:
            state.drop(ws)


@dataclass
class BatchStats:
    """What a batch did, for the log line and the metrics."""

    applied: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    skipped: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)
    decided: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(type, strategy or '') -> count."""
    failed: Counter[str] = field(default_factory=Counter)


async def prepare(
    conn: Connection, work: Sequence[tuple[PartitionState, Sequence[Inbound]]], step: int
) -> set[InputKey]:
    """Load the views these batches need that are not held, and the rows of the contacts and
    conversations their inputs name that are not in memory, noting the views as used at
    `step`; return the inputs among them that the log already holds."""
    accepted = [
        (state, r.parsed.event)
        for state, records in work
        for r in records
        if isinstance(r.parsed, Accepted)
    ]
    state_of = {e.workspaceid: state for state, e in accepted}
    missing = {ws for ws, state in state_of.items() if ws not in state.views}
    for ws, view in (await load_views(conn, missing)).items() if missing else ():
        state = state_of[ws]
        state.views[ws], state.whole[ws] = view, set()
    # workspace -> the contacts and conversations whose rows to read back: those its inputs
    # name, and for a view just loaded those that are pinned
    reread: dict[str, tuple[set[ContactId], set[ConversationId]]] = {
        ws: pinned(state_of[ws].views[ws]) if ws in missing else (set(), set()) for ws in state_of
    }
    for _, e in accepted:
        contact, conversation = named(e)
        contacts, conversations = reread[e.workspaceid]
        if contact is not None:
            contacts.add(contact)
        if conversation is not None:
            conversations.add(conversation)
    keys: list[tuple[str, str, str]] = []
    for ws, (contacts, conversations) in reread.items():
        state = state_of[ws]
        state.used[ws] = step
        view, whole = state.views[ws], state.whole[ws]
        contacts -= whole
        conversations -= view.conversations.keys()
        keys += [(ws, table, key) for table, key in wanted(view, contacts, conversations)]
        whole |= contacts
    await load_rows(conn, {ws: state.views[ws] for ws, state in state_of.items()}, keys)
    for ws in missing:
        state_of[ws].kept_rows[ws] = contact_rows(state_of[ws].views[ws])
    return await seen_inputs(conn, [input_key(e) for _, e in accepted])


async def handle_batch(
    state: PartitionState,
    records: Sequence[Inbound],
    now: datetime,
    settings: Settings,
    seen: set[InputKey],
) -> tuple[BatchWrite, BatchStats]:
    """`seen`: inputs already logged (`prepare`); the batch's own inputs are added to it.

    Deciding holds the event loop, so every `YIELD_EVERY` records it lets the loop run:
    the step in flight is committing meanwhile, and each statement and each buffer of its
    `COPY` goes on only when the loop is free."""
    batch = BatchWrite()
    stats = BatchStats()
    changed: dict[str, set[Changed]] = {}
    outputs = settings.output_topics
    debug = log.is_enabled_for(logging.DEBUG)

    def append(view: WorkspaceView, event: Envelope, source: Inbound | None) -> None:
        """Fold an event into its view, and write it to the log (and the outbox)."""
        changed.setdefault(view.workspace_id, set()).update(evolve(view, event))
        body = dump_event(event)
        kafka = (source.topic, source.partition, source.offset) if source else None
        if source is not None and not source.from_kafka:
            kafka = None
        batch.log_row(view.version, event, body, now, source is not None, kafka)
        role = OUTPUT_TOPIC_OF.get(event.type)
        if role is not None:
            batch.outbox.append((state.partition, outputs[role], view.workspace_id.encode(), body))

    for n, record in enumerate(records, 1):
        if n % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        parsed = record.parsed
        if isinstance(parsed, Rejected):
            stats.dead_lettered[parsed.kind] += 1
            letter_key, letter = dead_letter(
                record.value,
                record.key,
                parsed.reason,
                (record.topic, record.partition, record.offset),
                now,
            )
            batch.outbox.append((state.partition, outputs["deadletter"], letter_key, letter))
            log.warning(
                "dead-lettered",
                workspace=letter_key.decode(errors="replace"),
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                reason=parsed.reason,
            )
        elif not isinstance(parsed, Accepted):
            stats.skipped += 1
        elif input_key(parsed.event) in seen:
            stats.duplicates += 1
        else:
            event = parsed.event
            seen.add(input_key(event))
            view = state.views[event.workspaceid]
            try:
                append(view, event, record)
                decisions = decide(view, event, now)
                for decision in decisions:
                    append(view, decision, None)
                    if isinstance(decision, ContactAssigned | AssignmentQueued):
                        stats.decided[decision.type, decision.data.strategy] += 1
                    else:
                        stats.decided[decision.type, ""] += 1
                    if isinstance(decision, AssignmentFailed):
                        stats.failed[decision.data.reason] += 1
            except Exception as error:
                raise PoisonRecord(record, error) from error
            stats.applied[event.type] += 1
            if debug:  # its arguments cost more than the rest of a presence change
                log.debug(
                    "applied",
                    event_id=event.id,
                    workspace=event.workspaceid,
                    contact=named(event)[0],
                    type=event.type,
                    decided=[d.type for d in decisions],
                )

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
