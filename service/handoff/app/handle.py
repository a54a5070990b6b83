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

from handoff.adapters.cloudevents import (
    MAX_OUTPUT_BYTES,
    Accepted,
    Rejected,
    dead_letter,
    dump_event,
)
from handoff.adapters.pg_store import (
    BatchWrite,
    Connection,
    InputKey,
    input_key,
    load_rows,
    load_views,
    record_marker,
    seen_inputs,
)
from handoff.app.merge import Inbound
from handoff.app.settings import Settings
from handoff.core.envelope import Envelope
from handoff.core.event_time import DueTimers
from handoff.core.events import (
    OUTPUT_TOPIC_OF,
    AssignmentFailed,
    AssignmentQueued,
    ContactAssigned,
)
from handoff.core.ids import ContactId, ConversationId, RunId
from handoff.core.timers import TIMER_SOURCE, TimerElapsed
from handoff.core.view import WorkspaceView
from handoff_projections import Changed
from handoff_projections.apply import apply as fold_and_decide
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


class OutputTooLarge(Exception):
    """A decision made an output over the contract's limit: the input that made it is poison."""


class PoisonRecord(Exception):
    """The core failed on this record: a bug, or an input it cannot cope with. The batch
    is abandoned (the views it touched are no longer trusted) and the record dead-lettered."""

    def __init__(self, record: Inbound, error: Exception) -> None:
        self.record = record
        self.reason = f"could not be applied: {type(error).__name__}: {error}"
        super().__init__(self.reason)


YIELD_EVERY = 8
"""Records decided between two turns of the event loop (under 1 ms of deciding): the step in
flight's COPY and relay go on only when the loop turns, and at 32 the next step waited for
them (issue 15: a backlog's wall time per routed conversation fell about 8%)."""

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
    generation: int | None = None
    """The take this instance holds the partition under (`take_positions`): its commits are
    fenced once another take, by another instance or a re-take of its own, has drawn a newer."""
    views: dict[str, WorkspaceView] = field(default_factory=dict)
    whole: dict[str, set[ContactId]] = field(default_factory=dict)
    """Workspace -> the contacts whose rows are all in memory."""
    kept_rows: dict[str, int] = field(default_factory=dict)
    """Workspace -> its contact and conversation rows right after its last eviction."""
    used: dict[str, int] = field(default_factory=dict)
    """Workspace -> the step that last brought it an input (`prepare`): the views used least
    recently are the first to go when too many are held."""
    due: dict[str, DueTimers] = field(default_factory=dict)
    """Workspace -> its view's timers by due time, made when first needed."""

    def drop(self, workspace_id: str) -> None:
        """Forget a workspace's view (its changes committed); `prepare` loads it again."""
        for held in (self.views, self.whole, self.kept_rows, self.used, self.due):
            held.pop(workspace_id, None)

    def due_timers(self, workspace_id: str) -> DueTimers:
        due = self.due.get(workspace_id)
        if due is None:
            due = self.due[workspace_id] = DueTimers(self.views[workspace_id])
        return due

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
    poisoned: dict[InputKey, str] | None = None,
) -> tuple[BatchWrite, BatchStats]:
    """`seen`: inputs already logged (`prepare`); the batch's own inputs are added to it.
    `poisoned`: inputs the core failed on before, with the error: each is dead-lettered,
    not applied, and taken out of the map.

    Deciding holds the event loop, so every `YIELD_EVERY` records it lets the loop run:
    the step in flight is committing meanwhile, and each statement and each buffer of its
    `COPY` goes on only when the loop is free."""
    batch = BatchWrite(generation=state.generation)
    stats = BatchStats()
    changed: dict[str, set[Changed]] = {}
    outputs = settings.output_topics
    debug = log.is_enabled_for(logging.DEBUG)

    def write(
        view: WorkspaceView, event: Envelope, is_input: bool, kafka: tuple[str, int, int] | None
    ) -> None:
        """Write a folded event to the log, and an output to the outbox too. `kafka`: where
        an input came from (None for a timer's, and for decisions)."""
        body = dump_event(event)
        batch.log_row(view.version, event, body, now, is_input, kafka)
        role = OUTPUT_TOPIC_OF.get(event.type)
        if role is not None:
            if len(body) > MAX_OUTPUT_BYTES:
                raise OutputTooLarge(
                    f"its output {event.type} is {len(body)} bytes, over the"
                    f" {MAX_OUTPUT_BYTES}-byte limit of every output"
                )
            batch.outbox.append((state.partition, outputs[role], view.workspace_id.encode(), body))

    def dead_letter_record(record: Inbound, reason: str, kind: str) -> None:
        stats.dead_lettered[kind] += 1
        value = record.value
        if value is None and isinstance(record.parsed, Accepted):  # a timer: its event
            value = dump_event(record.parsed.event)
        letter_key, letter = dead_letter(
            value, record.key, reason, (record.topic, record.partition, record.offset), now
        )
        batch.outbox.append((state.partition, outputs["deadletter"], letter_key, letter))
        log.warning(
            "dead-lettered",
            workspace=letter_key.decode(errors="replace"),
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
        )

    def take_in(record: Inbound) -> None:
        """Dead-letter, skip, drop as a duplicate, or apply one record."""
        parsed = record.parsed
        if isinstance(parsed, Rejected):
            dead_letter_record(record, parsed.reason, parsed.kind)
        elif not isinstance(parsed, Accepted):
            stats.skipped += 1
        elif input_key(parsed.event) in seen:
            stats.duplicates += 1
        elif poisoned and (reason := poisoned.pop(input_key(parsed.event), None)):
            dead_letter_record(record, reason, "poison")
            if isinstance(parsed.event, TimerElapsed):  # it would fire, and fail, again
                ws, run_id = parsed.event.workspaceid, parsed.event.data.run_id
                view = state.views.get(ws)
                if view is not None and view.timers.pop(run_id, None) is not None:
                    changed.setdefault(ws, set()).add(("timers", run_id))  # row deleted
                else:
                    batch.timers_gone.append((ws, run_id))
        else:
            event = parsed.event
            if not isinstance(event, TimerElapsed):
                due = state.due_timers(event.workspaceid)
                while (timer := due.pop_due(event.time)) is not None:
                    take_in(Inbound(TIMER_SOURCE, state.partition, -1, None, None, Accepted(timer)))
            apply(record, event)

    def apply(record: Inbound, event: Envelope) -> None:
        seen.add(input_key(event))
        view = state.views[event.workspaceid]
        rows_changed = changed.setdefault(view.workspace_id, set())
        due = state.due.get(view.workspace_id)
        kafka = (record.topic, record.partition, record.offset) if record.from_kafka else None

        def folded(e: Envelope, rows: set[Changed]) -> None:
            rows_changed.update(rows)
            if due is not None:  # every timer row set or moved (a gone one it ignores)
                for table, key in rows:
                    if table == "timers":
                        due.set(RunId(key))
            write(view, e, e is event, kafka if e is event else None)

        try:
            decisions = fold_and_decide(view, event, now, folded)
        except Exception as error:
            raise PoisonRecord(record, error) from error
        for decision in decisions:
            if isinstance(decision, ContactAssigned | AssignmentQueued):
                stats.decided[decision.type, decision.data.strategy] += 1
            else:
                stats.decided[decision.type, ""] += 1
            if isinstance(decision, AssignmentFailed):
                stats.failed[decision.data.reason] += 1
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

    for n, record in enumerate(records, 1):
        if n % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        take_in(record)

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
    last = {(r.topic, r.partition): r for r in records if r.from_kafka}
    for tp, stored in state.positions.items():
        final = last.get(tp)
        if final is None:
            batch.positions[tp] = (stored, stored)
        else:
            batch.positions[tp] = (stored, final.offset + 1)
            batch.markers[tp] = record_marker(final.timestamp_ms, final.value)
    return batch, stats
