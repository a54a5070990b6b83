"""The step engine: take partitions, decide what a poll made ready, commit it, settle it.

A step's commit (one transaction: log, outbox, projection rows, positions) and its relay run
while the next step is polled, parsed, merged and decided, so the views may hold the changes
of two uncommitted steps; `step` says why that is safe.

Each guarantee has its place here:
- applied once: a step's positions are compare-and-set, under the generation its take drew
  (`take_positions`), so an instance that lost a partition, or a step built on a failed
  commit, is fenced, whether or not it moves a position; a redelivered input is a duplicate.
- nothing skipped: a partition is only ever (re)started from its stored positions (`take`),
  and whatever went wrong, what it held is forgotten and re-read from them (`retake`).
- a poison input costs only itself: the core failing on an input abandons the partition's
  step, remembers the input, and takes the partition again: re-read, the input is
  dead-lettered with the error and the inputs around it are applied.

The engine touches no consumer: it is handed ready records and returns the offsets its
commits reached, so tests drive it through these functions against a real database.
"""

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg
import structlog

from handoff.adapters.cloudevents import Accepted
from handoff.adapters.pg_store import (
    FROM_START,
    BatchWrite,
    Fenced,
    InputKey,
    Taken,
    commit_batches,
    input_key,
    take_positions,
)
from handoff.app.handle import (
    BatchStats,
    PartitionState,
    PoisonRecord,
    handle_batch,
    hold_at_most,
    prepare,
)
from handoff.app.merge import Inbound, Merger
from handoff.app.metrics import Metrics
from handoff.app.relay import OutboxRelay
from handoff.app.settings import Settings

__all__ = ["Owned", "Reached", "StepEngine"]

log = structlog.get_logger("handoff.steps")

TopicPartition = tuple[str, int]
Reached = dict[TopicPartition, int]
"""(topic, partition) -> the next offset a committed step stored."""


@dataclass
class Owned:
    """A partition this instance holds: its views, its merge, where each topic reads next."""

    state: PartitionState
    merger: Merger
    next_offset: dict[TopicPartition, int]
    """The offset each topic delivers next; a record below it was fetched before a seek."""
    epoch: int
    """Which take this is (counted per instance): records polled before it began may predate
    its seek, and are never handled (`Pipeline._admit`)."""
    taken_at_ms: int
    """When: a log end a fetch reported before it says nothing of this take."""
    markers: dict[TopicPartition, str | None] = field(default_factory=dict)
    """What the record before each stored position must be (`record_marker`), until it has
    been seen again: the check that the broker and topic are the ones that issued it."""
    gap_checked: dict[TopicPartition, int] = field(default_factory=dict)
    """Topic-partition -> the offset it was last sought back to over a gap: a gap found
    again from there is the broker's."""
    progressed_at: datetime | None = None
    """When the consumer loop last admitted a record of it (None: not since the take)."""
    stalled: bool = False
    """It has records unread and none has come for `STALLED_PARTITION` (`Pipeline`)."""
    vouched: dict[TopicPartition, set[int]] = field(default_factory=dict)
    """Topic-partition -> an offset the consumer loop admitted past the expected one: where
    the log starts (read from the start), or past a gap the broker left. A step may start
    there rather than at the stored position (`_breaks_off`)."""


_Handled = list[tuple[int, list[Inbound], BatchWrite, BatchStats]]
"""A step's partitions, each with its records and what handling them wrote and counted."""


@dataclass
class _Committed:
    """A step's commit as it settled: `failed` names the partitions to take again;
    `fenced`, whether another take fenced them (another instance's, most likely)."""

    started: datetime
    handled: _Handled
    failed: set[int]
    done: datetime
    fenced: bool = False


class StepEngine:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        relay: OutboxRelay,
        clock: Callable[[], datetime],
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._relay = relay
        self._clock = clock
        self._metrics = metrics
        self.owned: dict[int, Owned] = {}
        self.to_take: set[int] = set()
        """Partitions assigned to this instance that it must (re)start from their stored
        positions before anything of theirs is handled."""
        self.backoff = False
        """Something failed: the loop gives the database or broker a second."""
        self._takes = 0
        self._not_before: dict[int, datetime] = {}
        self._poisoned: dict[InputKey, str] = {}
        self._steps = 0
        self._in_flight: asyncio.Task[_Committed] | None = None
        """The last step's commit and relay, running while the next step is handled."""
        self._in_flight_inputs: set[InputKey] = set()
        """The inputs of that step: the next step's duplicates, though not yet logged."""

    @property
    def takes(self) -> int:
        """How many takes this instance has made: a poll notes it before it begins."""
        return self._takes

    async def take(self, partition: int) -> Owned | None:
        """Own a partition from its stored positions, under a new generation (which fences
        every commit decided under an earlier take), and relay what its outbox holds. None
        when the database cannot be read: the partition stays to be taken. The caller seeks
        the consumer to `next_offset`."""
        now = self._clock()
        if now < self._not_before.get(partition, now):
            return None  # fenced a moment ago: give the group time to revoke it from us
        self._not_before.pop(partition, None)
        tps = [(topic, partition) for topic in self._settings.input_topics]
        try:
            async with self._pool.acquire() as conn:
                taken: Taken = await take_positions(conn, self._settings.group_id, tps)
        except Exception:
            log.exception("cannot load positions; will retry", partition=partition)
            self.to_take.add(partition)
            self.backoff = True
            return None
        self.to_take.discard(partition)
        self._takes += 1
        owned = Owned(
            PartitionState(partition, dict(taken.positions), taken.generation),
            Merger(self._settings.input_topics),
            dict(taken.positions),
            self._takes,
            int(self._clock().timestamp() * 1000),
            dict(taken.markers),
        )
        self.owned[partition] = owned
        self._relay.behind.add(partition)
        if not await self._relay.relay(partition):
            self.backoff = True
        return owned

    def release(self, partition: int) -> None:
        """The partition was revoked: forget it (its step in flight has settled)."""
        self.owned.pop(partition, None)
        self.to_take.discard(partition)
        self._not_before.pop(partition, None)
        self._relay.forget(partition)

    def retake(self, partition: int, later: bool = False) -> None:
        """Forget what is held for the partition (views, buffered records) and take it anew
        from the database at the next step, or (`later`) a session timeout from now."""
        if self.owned.pop(partition, None) is not None:
            self.to_take.add(partition)
            if later:
                wait = timedelta(milliseconds=self._settings.session_timeout_ms)
                self._not_before[partition] = self._clock() + wait

    def settled(self) -> bool:
        """Nothing in flight, or only a step that has finished (settling it waits for none)."""
        return self._in_flight is None or self._in_flight.done()

    async def step(self, ready: dict[int, list[Inbound]]) -> Reached:
        """Handle every partition's ready records while the last step commits; once that
        has settled, set this step's commit (one transaction) and relay going. Returns the
        offsets the settled step reached.

        The views run ahead of the database by up to two steps, which is safe because
        whatever reads the database for them waits: a view or row is read back only when not
        held, and nothing this step touched is dropped before it commits (`settle`'s
        `ahead`); an input of the step in flight is a duplicate here, though not yet logged;
        and this step's positions expect the ones the step in flight stores, so if that one
        fails, this one is fenced too, and its partitions are taken again.
        """
        started = self._clock()
        handled: _Handled = []
        retaken: list[int] = []  # poisoned, or refused
        for partition, records in list(ready.items()):
            broken = _breaks_off(self.owned[partition], records)
            if broken is not None:  # never committed: read again from the stored positions
                log.error(
                    "step refused: it does not start where its partition stands",
                    partition=partition,
                    detail=broken,
                )
                self._metrics.refused.labels("position").inc(len(records))
                retaken.append(partition)
                del ready[partition]
        try:
            async with self._pool.acquire() as conn:
                self._steps += 1
                seen = await prepare(
                    conn,
                    [(self.owned[p].state, records) for p, records in ready.items()],
                    self._steps,
                )
        except Exception:
            log.exception(
                "batch failed; re-reading from the stored positions", partitions=sorted(ready)
            )
            reached = await self.settle()
            for partition in [*ready, *retaken]:
                self.retake(partition)
            self.backoff = True
            return reached
        seen |= self._in_flight_inputs
        for partition, records in ready.items():
            state = self.owned[partition].state
            try:
                batch, stats = await handle_batch(
                    state, records, started, self._settings, seen, self._poisoned
                )
            except PoisonRecord as poison:
                self._remember_poison(poison)
                retaken.append(partition)
                continue
            except Exception:  # not an input's fault that is known: read it all again
                log.exception(
                    "batch failed; re-reading from the stored positions", partitions=[partition]
                )
                retaken.append(partition)
                self.backoff = True
                continue
            for tp, (_, moved) in batch.positions.items():
                state.positions[tp] = moved  # what the next step's batch expects
            handled.append((partition, records, batch, stats))
        reached = await self.settle({ws for _, _, b, _ in handled for ws in b.versions})
        for partition in retaken:
            self.retake(partition)
        # A partition the settled step failed on was taken again: what this step handled of
        # it was built on views that ran ahead of that failed commit.
        handled = [h for h in handled if h[0] in self.owned]
        self._in_flight = asyncio.create_task(self._commit(started, handled))
        self._in_flight_inputs = {
            input_key(r.parsed.event)
            for _, records, _, _ in handled
            for r in records
            if isinstance(r.parsed, Accepted)
        }
        return reached

    async def _commit(self, started: datetime, handled: _Handled) -> _Committed:
        """Commit a step's batches in one transaction, then produce their outputs. When the
        commit fails, every partition in it is to be taken again: their views ran ahead of
        the database. Touches no view: it runs while the next step is handled."""
        partitions = {partition for partition, _, _, _ in handled}
        try:
            async with self._pool.acquire() as conn:
                outputs = await commit_batches(
                    conn, self._settings.group_id, [batch for _, _, batch, _ in handled]
                )
        except Fenced as lost:
            log.warning(
                "fenced: the partition was taken since this step was decided",
                partitions=sorted(lost.partitions),
                detail=str(lost),
            )
            self._metrics.fenced.inc()
            return _Committed(started, handled, partitions, self._clock(), fenced=True)
        except Exception:
            log.exception(
                "batch failed; re-reading from the stored positions", partitions=sorted(partitions)
            )
            self.backoff = True
        else:
            written = {p: batch.outbox for p, _, batch, _ in handled}
            if not await self._relay.relay_written(written, outputs):
                self.backoff = True
            partitions = set()
        return _Committed(started, handled, partitions, self._clock())

    async def settle(self, ahead: Collection[str] = ()) -> Reached:
        """Wait for the step in flight; fold its outcome into what is held (evictions, views
        to drop or take again); return the offsets it reached. `ahead`: the workspaces the
        next step has changed already, whose views and rows stay until it commits (a
        workspace in every step has its rows evicted when a timer poll settles alone)."""
        task, self._in_flight = self._in_flight, None
        if task is None:
            return {}
        step = await task
        self._in_flight_inputs = set()
        generations = {p: batch.generation for p, _, batch, _ in step.handled}
        for partition in step.failed:
            owned = self.owned.get(partition)
            if owned is not None and owned.state.generation != generations.get(partition):
                continue  # taken again since (its own take fenced this step): nothing to do
            # Fenced: another instance most likely owns it now, and a take at once would
            # fence that one in turn; a rebalance revokes it from this one meanwhile.
            self.retake(partition, later=step.fenced)
        if step.failed:
            return {}
        reached: Reached = {}
        for partition, _, batch, _ in step.handled:
            state = self.owned[partition].state  # a partition is let go only once settled
            for tp, (stored, moved) in batch.positions.items():
                if moved != stored:
                    reached[tp] = moved
            state.make_room(ws for ws in batch.versions if ws not in ahead)
        hold_at_most(
            [o.state for o in self.owned.values()], self._settings.max_held_workspaces, ahead
        )
        started, done = step.started, step.done
        self._metrics.batch.observe((done - started).total_seconds())
        for partition, records, _, stats in step.handled:
            self._metrics.count(records, stats, done)
            log.info(
                "batch",
                partition=partition,
                records=len(records),
                applied=stats.applied,
                duplicates=stats.duplicates,
                skipped=stats.skipped,
                dead_lettered=stats.dead_lettered,
                decided={"/".join(filter(None, k)): n for k, n in stats.decided.items()},
                ms=round((done - started).total_seconds() * 1000, 1),
            )
        return reached

    async def relay_behind(self) -> None:
        """Try again the partitions whose outbox could not be relayed."""
        for partition in sorted(self._relay.behind & self.owned.keys()):
            if not await self._relay.relay(partition):
                self.backoff = True

    def _remember_poison(self, poison: PoisonRecord) -> None:
        r = poison.record
        event = r.parsed.event if isinstance(r.parsed, Accepted) else None
        log.error(
            "input could not be applied; it will be dead-lettered",
            event_id=event.id if event else None,
            workspace=event.workspaceid if event else None,
            contact=event.subject if event else None,
            topic=r.topic,
            partition=r.partition,
            offset=r.offset,
            error=poison.reason,
        )
        if event is not None:
            self._poisoned[input_key(event)] = poison.reason


def _breaks_off(owned: Owned, records: list[Inbound]) -> str | None:
    """Why these records do not continue where the partition stands (None: they do). Each
    topic's first record must be at its position, or where the consumer loop vouched for
    (`Owned.vouched`); the loop admits nothing else, so this holds unless it has a bug, and
    then a step is refused rather than committed over a gap."""
    first: dict[TopicPartition, int] = {}
    for r in records:
        if r.from_kafka:
            first.setdefault((r.topic, r.partition), r.offset)
    for tp, offset in first.items():
        position = owned.state.positions[tp]
        vouched = owned.vouched.get(tp, set())
        if position == FROM_START or offset == position or offset in vouched:
            owned.vouched[tp] = {o for o in vouched if o > offset}
            continue
        return f"{tp[0]}[{tp[1]}] starts at offset {offset}; its position is {position}"
    return None
