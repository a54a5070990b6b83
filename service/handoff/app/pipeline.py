"""The consumer loop: poll, merge per partition, handle, commit, relay the outbox.

Positions live in PostgreSQL with what each batch produced; on assignment the consumer seeks
to them (or to the earliest offset when there are none: never "latest"). Kafka offsets are
committed afterwards only so lag shows in the usual tools. The outbox of a partition is
relayed by whoever owns the partition, after each commit and on assignment, so a crash
between commit and produce re-sends the same ids and never loses one.

A step's commit and relay run while the next step is polled, parsed, merged and decided (on
a busy machine the commit is a third of a step's time), so the views may hold the changes of
two uncommitted steps; `_process` says why that is safe.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord

from handoff.adapters.cloudevents import Accepted, Parsed, Rejected, parse
from handoff.adapters.pg_store import (
    FROM_START,
    BatchWrite,
    Fenced,
    InputKey,
    OutboxEntry,
    clear_outbox,
    commit_batches,
    count_outbox,
    delete_outbox,
    input_key,
    load_due_timers,
    load_outbox,
    load_positions,
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
from handoff.app.settings import Settings
from handoff.core.ids import RunId
from handoff.core.timers import TIMER_SOURCE, elapsed

__all__ = ["Pipeline"]

log = structlog.get_logger("handoff.pipeline")


TIMER_POLL = timedelta(seconds=1)
"""How often due timers are looked for: a wait ends at most this late, or twice this while
steps keep committing (`_step`)."""

KAFKA_COMMIT_EVERY = timedelta(seconds=1)
"""Kafka offsets only feed lag tools (positions live in PostgreSQL), so they are committed
once a second rather than after every step: a broker round trip less per step."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Owned:
    state: PartitionState
    merger: Merger
    next_offset: dict[TopicPartition, int]
    """The offset each topic delivers next; a record below it was fetched before our seek."""
    taken_at_ms: int


_Handled = list[tuple[int, list[Inbound], BatchWrite, BatchStats]]
"""A step's partitions, each with its records and what handling them wrote and counted."""


@dataclass
class _Committed:
    """A step's commit as it settled: `failed` names the partitions to take again."""

    started: datetime
    handled: _Handled
    failed: set[int]
    done: datetime


class Pipeline(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        bootstrap: str,
        clock: Callable[[], datetime] = _utc_now,
        ready: asyncio.Event | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._clock = clock
        self._topics = settings.input_topics
        self._owned: dict[int, _Owned] = {}
        self._to_take: set[int] = set()
        self._to_relay: set[int] = set()
        self._poison: dict[tuple[str, int, int], str] = {}
        self._backoff = False
        self._next_timer_poll = clock()
        self._uncommitted: dict[TopicPartition, int] = {}
        self._steps = 0
        self._in_flight: asyncio.Task[_Committed] | None = None
        """The last step's commit and relay, running while the next step is handled."""
        self._in_flight_inputs: set[InputKey] = set()
        """The inputs of that step: the next step's duplicates, though not yet logged."""
        self._next_kafka_commit = clock()
        self._lock = asyncio.Lock()
        self._ready = ready or asyncio.Event()
        self._metrics = metrics or Metrics()
        self.assignment_received = False
        self._consumer = AIOKafkaConsumer(
            **settings.kafka_options(),
            bootstrap_servers=bootstrap,
            group_id=settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.heartbeat_interval_ms,
            max_partition_fetch_bytes=max(1024 * 1024, settings.max_record_bytes * 2),
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
        )
        self._producer = AIOKafkaProducer(
            **settings.kafka_options(),
            bootstrap_servers=bootstrap,
            acks="all",
            linger_ms=0,  # a step's outputs are all sent before the sender runs: one batch
            max_request_size=max(1024 * 1024, settings.max_record_bytes * 2),
        )

    async def run(self, stop: asyncio.Event) -> None:
        await self._producer.start()
        self._consumer.subscribe(list(self._topics), listener=self)
        await self._consumer.start()
        log.info("consuming", topics=self._topics, group=self._settings.group_id)
        try:
            while not stop.is_set():
                polled = await self._consumer.getmany(
                    timeout_ms=200, max_records=self._settings.batch_max_records
                )
                async with self._lock:
                    reached = await self._step(polled)
                # Outside the lock: a commit may wait on a rebalance whose revoke takes it.
                await self._commit_kafka(reached)
                if self._backoff:  # after a failure, give the database or broker a second
                    self._backoff = False
                    await asyncio.sleep(1)
        finally:
            # aiokafka does not call on_partitions_revoked before stop(): drain here.
            async with self._lock:
                self._uncommitted.update(await self._settle())
                for partition in list(self._owned):
                    await self._relay(partition)
                self._owned.clear()
            await self._consumer.stop()
            await self._producer.stop()
            log.info("stopped")

    async def _step(
        self, polled: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> dict[TopicPartition, int]:
        reached: dict[TopicPartition, int] = {}
        if self._to_take or self._to_relay:  # they read what the step in flight writes
            reached = await self._settle()
        for partition in sorted(self._to_take):
            await self._take(partition)
        for partition in sorted(self._to_relay):
            await self._relay(partition)
        for tp, messages in polled.items():
            owned = self._owned.get(tp.partition)
            if owned is None:
                continue
            for m in messages:
                expected = owned.next_offset[tp]
                if expected != FROM_START and m.offset < expected:
                    continue  # fetched from an older position before our seek
                parsed = self._parse(m)
                owned.merger.add(
                    Inbound(tp.topic, tp.partition, m.offset, m.key, m.value, parsed, m.timestamp)
                )
                owned.next_offset[tp] = m.offset + 1
            self._metrics.consumed.labels(tp.topic).inc(len(messages))
        positions = await self._positions()
        self._measure_lag(positions)
        await self._restart_beyond_end(positions)
        # Timers are what the step in flight writes: they are read once it has committed,
        # waited for only when they are a poll late (a busy loop seldom finds it done). The
        # settle comes first, since a partition its step failed on is owned no more.
        settle = self._settled() or self._clock() >= self._next_timer_poll + TIMER_POLL
        if settle:
            reached.update(await self._settle())
        ready = {
            p: o.merger.take_ready(self._caught_up(p, positions)) for p, o in self._owned.items()
        }
        if settle:
            for partition, timers in (await self._due_timers()).items():
                ready[partition] = [*timers, *ready[partition]]
        work = {p: records for p, records in ready.items() if records}
        if work:
            reached.update(await self._process(work))
        return reached

    def _settled(self) -> bool:
        """Nothing in flight, or only a step that has finished (settling it waits for none)."""
        return self._in_flight is None or self._in_flight.done()

    async def _due_timers(self) -> dict[int, list[Inbound]]:
        """Timers of owned partitions that fell due (polled a second apart, two under load),
        as inputs.

        Only the owner of a partition asks for its timers, and a timer's input id is
        derived from the timer, so it is applied once however many times it is polled.
        """
        now = self._clock()
        if now < self._next_timer_poll or not self._owned:
            return {}
        self._next_timer_poll = now + TIMER_POLL
        try:
            async with self._pool.acquire() as conn:
                due = await load_due_timers(conn, list(self._owned), now)
                backlog = await count_outbox(conn, list(self._owned))
        except Exception:
            log.exception("cannot read due timers; will retry")
            return {}
        self._metrics.timers_due.set(len(due))
        self._metrics.outbox_backlog.set(backlog)
        fired: dict[int, list[Inbound]] = {}
        for t in due:
            event = elapsed(t.workspace_id, RunId(t.run_id), t.step_id, t.kind, t.due_at)
            fired.setdefault(t.partition, []).append(
                Inbound(TIMER_SOURCE, t.partition, -1, None, None, Accepted(event))
            )
        return fired

    def _measure_lag(self, positions: dict[TopicPartition, int | None]) -> None:
        for tp, position in positions.items():
            highwater = self._consumer.highwater(tp)
            if highwater is not None and position is not None:
                self._metrics.lag.labels(tp.topic, str(tp.partition)).set(highwater - position)

    def _parse(self, m: ConsumerRecord[bytes, bytes]) -> Parsed:
        poisoned = self._poison.get((m.topic, m.partition, m.offset))
        if poisoned is not None:
            return Rejected(poisoned, "poison")
        return parse(m.value, self._settings.max_record_bytes)

    async def _positions(self) -> dict[TopicPartition, int | None]:
        """Where the consumer reads next per owned topic-partition (None: not known yet)."""
        positions: dict[TopicPartition, int | None] = {}
        for partition in self._owned:
            for topic in self._topics:
                tp = TopicPartition(topic, partition)
                try:
                    positions[tp] = await self._consumer.position(tp)
                except IllegalStateError:  # being revoked
                    positions[tp] = None
        return positions

    def _caught_up(
        self, partition: int, positions: dict[TopicPartition, int | None]
    ) -> Callable[[str], bool]:
        """Nothing unread: the read position has reached the partition's end."""

        def caught_up(topic: str) -> bool:
            tp = TopicPartition(topic, partition)
            highwater, position = self._consumer.highwater(tp), positions.get(tp)
            return highwater is not None and position is not None and position >= highwater

        return caught_up

    async def _restart_beyond_end(self, positions: dict[TopicPartition, int | None]) -> None:
        """A stored position past the log's end means the broker lost its log (an in-memory
        broker restarted): re-read from the start, which dedupe by input id makes safe. Such
        a broker never answers OFFSET_OUT_OF_RANGE, so nothing else would notice. Only an end
        reported by a fetch made after we took the partition counts."""
        for partition, owned in self._owned.items():
            for topic in self._topics:
                tp = TopicPartition(topic, partition)
                highwater, position = self._consumer.highwater(tp), positions.get(tp)
                polled_at = self._consumer.last_poll_timestamp(tp)
                if (
                    highwater is not None
                    and position is not None
                    and position > highwater
                    and polled_at is not None
                    and polled_at > owned.taken_at_ms
                ):
                    log.warning(
                        "position beyond the log's end; re-reading from the start",
                        topic=topic,
                        partition=partition,
                        position=position,
                        end=highwater,
                    )
                    await self._consumer.seek_to_beginning(tp)
                    owned.next_offset[tp] = FROM_START

    async def _process(self, ready: dict[int, list[Inbound]]) -> dict[TopicPartition, int]:
        """Handle every partition's ready records while the last step commits; once that
        has settled, set this step's commit (one transaction) and relay going. Returns the
        offsets the settled step reached.

        The views run ahead of the database by up to two steps, which is safe because
        whatever reads the database for them waits: a view or row is read back only when not
        held, and nothing this step touched is dropped before it commits (`_settle`'s
        `ahead`); an input of the step in flight is a duplicate here, though not yet logged;
        and this step's positions expect the ones the step in flight stores, so if that one
        fails, this one is fenced too, and its partitions are taken again.

        A record on which the core itself fails is remembered and, when it comes round
        again, dead-lettered with the error instead of stalling its partition; that partition
        is taken again from its stored positions while the others go on.
        """
        started = self._clock()
        handled: _Handled = []
        poisoned: list[int] = []
        try:
            async with self._pool.acquire() as conn:
                self._steps += 1
                seen = await prepare(
                    conn,
                    [(self._owned[p].state, records) for p, records in ready.items()],
                    self._steps,
                )
        except Exception:
            log.exception(
                "batch failed; re-reading from the stored positions", partitions=sorted(ready)
            )
            reached = await self._settle()
            for partition in ready:
                self._retake(partition)
            self._backoff = True
            return reached
        seen |= self._in_flight_inputs
        for partition, records in ready.items():
            state = self._owned[partition].state
            try:
                batch, stats = await handle_batch(state, records, started, self._settings, seen)
            except PoisonRecord as poison:
                self._remember_poison(poison)
                poisoned.append(partition)
                continue
            for (topic, p), (_, moved) in batch.positions.items():
                state.positions[topic, p] = moved  # what the next step's batch expects
            handled.append((partition, records, batch, stats))
        reached = await self._settle({ws for _, _, b, _ in handled for ws in b.versions})
        for partition in poisoned:
            self._retake(partition)
        # A partition the settled step failed on was taken again: what this step handled of
        # it was built on views that ran ahead of that failed commit.
        handled = [h for h in handled if h[0] in self._owned]
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
                "fenced: another instance owns the partition",
                partitions=sorted(lost.partitions),
                detail=str(lost),
            )
        except Exception:
            log.exception(
                "batch failed; re-reading from the stored positions", partitions=sorted(partitions)
            )
            self._backoff = True
        else:
            await self._relay_written({p: batch.outbox for p, _, batch, _ in handled}, outputs)
            partitions = set()
        return _Committed(started, handled, partitions, self._clock())

    async def _settle(self, ahead: Collection[str] = ()) -> dict[TopicPartition, int]:
        """Wait for the step in flight; fold its outcome into what is held (evictions, views
        to drop or take again); return the offsets it reached. `ahead`: the workspaces the
        next step has changed already, whose views and rows stay until it commits (a
        workspace in every step has its rows evicted when a timer poll settles alone)."""
        task, self._in_flight = self._in_flight, None
        if task is None:
            return {}
        step = await task
        self._in_flight_inputs = set()
        for partition in step.failed:
            self._retake(partition)
        if step.failed:
            return {}
        reached: dict[TopicPartition, int] = {}
        for partition, _, batch, _ in step.handled:
            state = self._owned[partition].state  # a partition is let go only once settled
            for (topic, p), (stored, moved) in batch.positions.items():
                if moved != stored:
                    reached[TopicPartition(topic, p)] = moved
            state.make_room(ws for ws in batch.versions if ws not in ahead)
        hold_at_most(
            [o.state for o in self._owned.values()], self._settings.max_held_workspaces, ahead
        )
        started, done = step.started, step.done
        self._metrics.batch.observe((done - started).total_seconds())
        for partition, records, _, stats in step.handled:
            self._measure(records, stats, done)
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

    def _remember_poison(self, poison: PoisonRecord) -> None:
        r = poison.record
        event = r.parsed.event if isinstance(r.parsed, Accepted) else None
        log.error(
            "record could not be applied; it will be dead-lettered",
            event_id=event.id if event else None,
            workspace=event.workspaceid if event else None,
            contact=event.subject if event else None,
            topic=r.topic,
            partition=r.partition,
            offset=r.offset,
            error=poison.reason,
        )
        self._poison[(r.topic, r.partition, r.offset)] = poison.reason

    def _measure(self, records: list[Inbound], stats: BatchStats, done: datetime) -> None:
        m = self._metrics
        done_ms = done.timestamp() * 1000
        for r in records:
            if r.timestamp_ms is not None and isinstance(r.parsed, Accepted):
                m.end_to_end.observe(max(0.0, done_ms - r.timestamp_ms) / 1000)
        for type_, n in stats.applied.items():
            m.applied.labels(type_).inc(n)
        m.skipped.labels("duplicate").inc(stats.duplicates)
        m.skipped.labels("unknown_type").inc(stats.skipped)
        for kind, n in stats.dead_lettered.items():
            m.dead_lettered.labels(kind).inc(n)
        for (type_, strategy), n in stats.decided.items():
            m.decisions.labels(type_, strategy).inc(n)
        for reason, n in stats.failed.items():
            m.assignment_failures.labels(reason).inc(n)

    def _retake(self, partition: int) -> None:
        """Forget what is held for the partition (views, buffered records) and take it anew
        from the database at the next step."""
        if self._owned.pop(partition, None) is not None:
            self._to_take.add(partition)

    async def _relay(self, partition: int) -> None:
        """Produce the partition's outbox in order; on failure, try again at the next step."""
        try:
            async with self._pool.acquire() as conn:
                while rows := await load_outbox(conn, partition):
                    sent = [await self._producer.send(r.topic, r.value, key=r.key) for r in rows]
                    await asyncio.gather(*sent)
                    await delete_outbox(conn, partition, rows[-1].seq)
            self._to_relay.discard(partition)
        except Exception:
            log.exception("outbox relay failed; will retry", partition=partition)
            self._to_relay.add(partition)
            self._backoff = True

    async def _relay_written(
        self, written: dict[int, list[OutboxEntry]], seqs: tuple[int, int] | None
    ) -> None:
        """Produce what a step just committed, from memory, and delete those rows (`seqs`,
        the first and last the step wrote), so nothing is read back.

        A partition with an older backlog is relayed from the database, in order. Rows of
        another writer (a new owner this instance has not yet noticed) are not this step's
        and stay for their relay.
        """
        fresh = {p: rows for p, rows in written.items() if rows and p not in self._to_relay}
        try:
            sent = [
                await self._producer.send(topic, value, key=key)
                for rows in fresh.values()
                for _, topic, key, value in rows
            ]
            await asyncio.gather(*sent)
            if fresh and seqs is not None:
                async with self._pool.acquire() as conn:
                    await clear_outbox(conn, list(fresh), seqs)
        except Exception:
            log.exception("outbox relay failed; will retry", partitions=sorted(fresh))
            self._to_relay.update(fresh)
            self._backoff = True
        for partition in written.keys() & self._to_relay:
            await self._relay(partition)

    async def _commit_kafka(self, reached: dict[TopicPartition, int]) -> None:
        self._uncommitted.update(reached)
        now = self._clock()
        if not self._uncommitted or now < self._next_kafka_commit:
            return
        self._next_kafka_commit = now + KAFKA_COMMIT_EVERY
        offsets, self._uncommitted = self._uncommitted, {}
        try:
            await self._consumer.commit(offsets)
        except KafkaError as err:  # only lag tools depend on it
            log.debug("kafka commit failed", error=str(err))

    async def _take(self, partition: int) -> None:
        """Own a partition: positions from the database, seek, relay what a crash left."""
        tps = [TopicPartition(t, partition) for t in self._topics]
        try:
            async with self._pool.acquire() as conn:
                stored = await load_positions(
                    conn, self._settings.group_id, [(tp.topic, tp.partition) for tp in tps]
                )
        except Exception:
            log.exception("cannot load positions; will retry", partition=partition)
            self._to_take.add(partition)
            self._backoff = True
            return
        self._to_take.discard(partition)
        for tp in tps:
            position = stored[(tp.topic, tp.partition)]
            if position == FROM_START:
                await self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, position)
        self._owned[partition] = _Owned(
            PartitionState(partition, stored),
            Merger(self._topics),
            {tp: stored[(tp.topic, tp.partition)] for tp in tps},
            int(time.time() * 1000),
        )
        await self._relay(partition)

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._lock:
            self._uncommitted.update(await self._settle())
            for tp in revoked:
                self._uncommitted.pop(tp, None)
            for partition in {tp.partition for tp in revoked}:
                self._owned.pop(partition, None)
                self._to_take.discard(partition)
                self._to_relay.discard(partition)
                for topic in self._topics:  # a partition we do not own has no lag of ours
                    with contextlib.suppress(KeyError):
                        self._metrics.lag.remove(topic, str(partition))
            self._metrics.partitions.set(len(self._owned))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self._lock:
            # The revoke before it settled already, unless it failed: a step in flight must
            # not settle into the fresh state of a partition taken anew.
            self._uncommitted.update(await self._settle())
            for partition in sorted({tp.partition for tp in assigned}):
                await self._take(partition)
            log.info("assigned", partitions=sorted({tp.partition for tp in assigned}))
            self._metrics.partitions.set(len(self._owned))
        self.assignment_received = True
        self._ready.set()
