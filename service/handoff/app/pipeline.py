"""The consumer loop: poll, admit what may be handled, merge per partition, hand ready records
to the step engine, and follow the group's rebalances.

Positions live in PostgreSQL with what each step produced; a partition is (re)started only
from them (`StepEngine.take`), never from "latest". Kafka offsets are committed afterwards
only so lag shows in the usual tools.

What is handled of a poll is decided here (`_admit`), and it never skips an offset:
- records polled before the partition's latest take may predate its seek: none is handled;
  the partition is sought again to where it stands, and they are read again;
- a record beyond the next expected offset (a gap) is read again from that offset once; a
  gap still there when read again is the broker's (transaction markers, compaction);
- a record below it was read already: it is dropped;
- the record before a stored position must be the one that stood there when it was stored
  (`record_marker`), or the positions are another broker's or topic's: re-read from the
  start, which dedupe by input id makes safe;
- a fetch that cannot be decoded holds its partition (paused, in `/readyz`, a metric and the
  log), the other partitions going on; it is tried again every `HOLD_RETRY`.
"""

import asyncio
import contextlib
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.protocol.group import LeaveGroupRequest
from aiokafka.structs import ConsumerRecord

from handoff.adapters.cloudevents import parse
from handoff.adapters.pg_store import FROM_START, record_marker
from handoff.app.merge import Inbound
from handoff.app.metrics import Metrics
from handoff.app.relay import OutboxRelay
from handoff.app.settings import Settings
from handoff.app.steps import Owned, Reached, StepEngine
from handoff.app.timer_poller import TimerPoller

__all__ = ["Pipeline"]

log = structlog.get_logger("handoff.pipeline")

KAFKA_COMMIT_EVERY = timedelta(seconds=1)
"""Kafka offsets only feed lag tools (positions live in PostgreSQL), so they are committed
once a second rather than after every step: a broker round trip less per step."""

STALLED = timedelta(seconds=10)
"""How long the loop may go without turning before it says where it waits."""

STALLED_PARTITION = timedelta(seconds=30)
"""How long a partition with records unread may go without one arriving before it is
reported (and sought again): seen with the embedded broker saturated, which stopped
answering one partition's fetches while it served the others."""

LEAVE_TIMEOUT = timedelta(seconds=5)
"""How long a stop waits for the broker to answer the group leave it sends itself."""

HOLD_RETRY = timedelta(seconds=30)
"""How long a partition whose records cannot be read waits before it is tried again."""

ISOLATING_POLLS = 5
"""Polls made partition by partition after a poll failed, to find the partition at fault:
aiokafka's error names none, and raises again only when it fetches the batch again."""

Polled = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


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
        self._clock = clock
        self._topics = settings.input_topics
        self._metrics = metrics or Metrics()
        self._producer = AIOKafkaProducer(
            **settings.kafka_options(),
            bootstrap_servers=bootstrap,
            acks="all",
            linger_ms=0,  # a step's outputs are all sent before the sender runs
            # ...in batches of up to 512 KiB per partition, not aiokafka's 16 KiB: a step of
            # 2,000 outputs went in ~220 produce requests, now ~8 (issue 15: about 10 µs of
            # CPU per output here and in the broker).
            max_batch_size=512 * 1024,
            max_request_size=max(2 * 512 * 1024, settings.max_record_bytes * 2),
        )
        self.relay = OutboxRelay(self._producer, pool, self._metrics)
        self.engine = StepEngine(settings, pool, self.relay, clock, self._metrics)
        self._timers = TimerPoller(pool, clock, self._metrics)
        self._uncommitted: Reached = {}
        self._next_kafka_commit = clock()
        self._kafka_commit: asyncio.Task[None] | None = None
        self._turned = clock()
        self._stage = "starting"
        self._isolating = 0
        self.held: dict[TopicPartition, tuple[str, datetime]] = {}
        """Topic-partitions whose records cannot be read: why, and when to try again."""
        self._lock = asyncio.Lock()
        self._ready = ready or asyncio.Event()
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

    def problems(self) -> dict[str, str]:
        """What keeps records or outputs of some partition from flowing, for `/readyz`."""
        found = {}
        if self.relay.stuck:
            found["outbox"] = "; ".join(f"partition {p}: {w}" for p, w in self.relay.stuck.items())
        stalled = [
            f"partition {p} stalled: records unread, none arriving"
            for p, owned in self.engine.owned.items()
            if owned.stalled
        ]
        held = [f"{tp.topic}[{tp.partition}] held: {why}" for tp, (why, _) in self.held.items()]
        if held or stalled:
            found["partitions"] = "; ".join([*held, *stalled])
        return found

    async def run(self, stop: asyncio.Event) -> None:
        await self._producer.start()
        self._consumer.subscribe(list(self._topics), listener=self)
        await self._consumer.start()
        log.info("consuming", topics=self._topics, group=self._settings.group_id)
        watchdog = asyncio.create_task(self._watch())
        try:
            while not stop.is_set():
                self._turned = self._clock()
                takes = self.engine.takes  # a take after this may be newer than what is polled
                self._stage = "polling"
                polled = await self._poll()
                self._stage = "waiting for a rebalance to finish"
                async with self._lock:
                    self._stage = "stepping"
                    try:
                        reached = await self._step(polled, takes)
                    except Exception:  # a bug or a client's surprise must not end the service
                        log.exception("step failed; taking every partition again")
                        reached = {}
                        for partition in list(self.engine.owned):
                            self.engine.retake(partition)
                        self.engine.backoff = True
                self._commit_kafka(reached)
                if self.engine.backoff:  # after a failure, give the database or broker a second
                    self.engine.backoff = False
                    await asyncio.sleep(1)
        finally:
            watchdog.cancel()
            # aiokafka does not call on_partitions_revoked before stop(): drain here.
            async with self._lock:
                self._uncommitted.update(await self.engine.settle())
                await self.engine.relay_behind()
                for partition in list(self.engine.owned):
                    self.engine.release(partition)
            if self._kafka_commit is not None:
                self._kafka_commit.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._kafka_commit
            await self._stop_consumer()
            await self._producer.stop()
            log.info("stopped")

    async def _stop_consumer(self) -> None:
        """Stop the consumer, and leave the group even from a generation numbered 0.

        aiokafka sends LeaveGroup on stop only from a generation above 0 (Kafka numbers them
        from 1); Tansu numbers a group's first generation 0. So the first member of a group
        stopped without leaving, and the next instance's join waited until that member's
        session expired: 18 s from start to assignment rather than 5 with the default
        timeouts (issue 15). Such a member leaves here, on the producer's connection, once
        the consumer has stopped: no heartbeat of its own can follow the leave."""
        coordinator = getattr(self._consumer, "_coordinator", None)
        generation = getattr(coordinator, "generation", -1)
        member_id = getattr(coordinator, "member_id", "")
        node_id = getattr(coordinator, "coordinator_id", None)
        await self._consumer.stop()  # resets them
        if generation != 0 or not member_id or node_id is None:
            return  # aiokafka has left (a generation above 0), or it never joined
        try:
            response = await asyncio.wait_for(
                self._producer.client.send(
                    node_id, LeaveGroupRequest(self._settings.group_id, member_id)
                ),
                LEAVE_TIMEOUT.total_seconds(),
            )
        except (KafkaError, TimeoutError) as error:
            log.warning("could not leave the consumer group", error=_why(error))
            return
        if response.error_code:
            log.warning("could not leave the consumer group", error_code=response.error_code)

    async def _watch(self) -> None:
        """Say so when the loop has not turned for `STALLED` (an await that does not come
        back: the database, the broker, a rebalance), and where it waits."""
        while True:
            await asyncio.sleep(STALLED.total_seconds() / 2)
            waited = self._clock() - self._turned
            if waited >= STALLED:
                log.warning(
                    "the consumer loop has not turned",
                    seconds=round(waited.total_seconds()),
                    waiting_on=self._stage,
                )

    async def _poll(self) -> Polled:
        """One poll, never raising: a poll that fails is made partition by partition for a
        while, and a partition whose records cannot be read is held."""
        self._retry_held()
        limit = self._settings.batch_max_records
        if not self._isolating:
            try:
                polled: Polled = await self._consumer.getmany(timeout_ms=200, max_records=limit)
                return polled
            except Exception as error:
                log.error("poll failed; polling partition by partition", error=_why(error))
                self._isolating = ISOLATING_POLLS
                self.engine.backoff = True
                await self._resume_all()  # what the failed poll drained is read again
                return {}
        self._isolating -= 1
        gathered: Polled = {}
        for tp in sorted(self._consumer.assignment() - self.held.keys()):
            try:
                records = await self._consumer.getmany(tp, timeout_ms=0, max_records=limit)
            except Exception as error:
                await self._hold(tp, _why(error))
                continue
            gathered.update(records)
        if not gathered:
            await asyncio.sleep(0.2)
        return gathered

    async def _hold(self, tp: TopicPartition, why: str) -> None:
        log.error(
            "partition held: its records cannot be read; nothing of it is skipped, it waits",
            topic=tp.topic,
            partition=tp.partition,
            error=why,
            retry_in_s=HOLD_RETRY.total_seconds(),
        )
        self._consumer.pause(tp)
        self.held[tp] = (why, self._clock() + HOLD_RETRY)
        self._count_held(tp.partition)
        owned = self.engine.owned.get(tp.partition)
        if owned is not None:  # read again from where it stands, when it is resumed
            await self._resume(owned, tp)

    def _count_held(self, partition: int) -> None:
        held = any(tp.partition == partition for tp in self.held)
        self._metrics.partitions_held.labels(str(partition)).set(1 if held else 0)

    def _retry_held(self) -> None:
        now = self._clock()
        for tp, (_, retry_at) in list(self.held.items()):
            if now >= retry_at:
                log.info("trying a held partition again", topic=tp.topic, partition=tp.partition)
                del self.held[tp]
                self._count_held(tp.partition)
                with contextlib.suppress(IllegalStateError):
                    self._consumer.resume(tp)
                self._isolating = ISOLATING_POLLS

    async def _step(self, polled: Polled, takes: int) -> Reached:
        engine = self.engine
        reached: Reached = {}
        if engine.to_take:  # they read what the step in flight writes
            self._stage = "settling the step in flight (its commit and relay)"
            reached = await engine.settle()
        self._stage = "taking partitions from their stored positions"
        await self._take(set(engine.to_take))
        self._stage = "relaying outboxes left behind"
        await engine.relay_behind()
        for tp, messages in polled.items():
            owned = engine.owned.get(tp.partition)
            if owned is not None:
                await self._admit(owned, tp, messages, takes)
            self._metrics.consumed.labels(tp.topic).inc(len(messages))
        self._stage = "reading the consumer's positions"
        positions = await self._positions()
        self._measure_lag(positions)
        await self._watch_partitions(positions)
        await self._restart_beyond_end(positions)
        # Timers are what the step in flight writes: they are read once it has committed,
        # waited for only when they are a poll late (a busy loop seldom finds it done). The
        # settle comes first, since a partition its step failed on is owned no more.
        settle = engine.settled() or self._timers.late()
        if settle:
            self._stage = "settling the step in flight (its commit and relay)"
            reached.update(await engine.settle())
        ready = {
            p: o.merger.take_ready(self._caught_up(p, positions)) for p, o in engine.owned.items()
        }
        if settle:
            self._stage = "reading due timers"
            # A partition with records still to read fires its timers in event time, before
            # the inputs that happened after them (`handle_batch`); the clock's turn comes
            # once it has read everything.
            caught_up = [p for p in engine.owned if self._all_read(p, positions)]
            for partition, timers in (await self._timers.poll(caught_up)).items():
                ready[partition] = [*ready[partition], *timers]
        work = {p: records for p, records in ready.items() if records}
        if work:
            self._stage = "deciding a step"
            reached.update(await engine.step(work))
        return reached

    async def _admit(
        self,
        owned: Owned,
        tp: TopicPartition,
        messages: list[ConsumerRecord[bytes, bytes]],
        takes: int,
    ) -> None:
        """Merge the records of one topic-partition that continue where it stands."""
        key = (tp.topic, tp.partition)
        if messages:
            self._progressed(owned, tp.partition)
        if owned.epoch > takes:  # taken since this poll began: these may predate its seek
            self._metrics.refused.labels("before_seek").inc(len(messages))
            await self._resume(owned, tp)
            return
        for m in messages:
            expected = owned.next_offset[key]
            marker = owned.markers.get(key)
            if marker is not None and expected > 0:  # the record before the stored position
                found = record_marker(m.timestamp, m.value)
                if m.offset == expected - 1 and found == marker:
                    owned.markers[key] = None  # the same broker and topic: go on
                    continue
                why = f"offset {expected - 1} held {marker}; read offset {m.offset}, {found}"
                await self._reset(owned, tp, why)
                return
            if expected != FROM_START and m.offset < expected:
                continue  # read already
            if expected != FROM_START and m.offset > expected:
                if owned.gap_checked.get(key) != expected:
                    owned.gap_checked[key] = expected  # read it again from there, once
                    self._metrics.refused.labels("gap").inc()
                    await self._seek(tp, expected)
                    return
                log.warning(
                    "offsets skipped by the broker",
                    topic=tp.topic,
                    partition=tp.partition,
                    start=expected,
                    end=m.offset,
                )
                self._metrics.offset_gaps.labels(tp.topic).inc()
                owned.vouched.setdefault(key, set()).add(m.offset)
            elif expected == FROM_START:
                owned.vouched.setdefault(key, set()).add(m.offset)  # wherever the log starts
            owned.merger.add(
                Inbound(
                    tp.topic,
                    tp.partition,
                    m.offset,
                    m.key,
                    m.value,
                    parse(m.value, self._settings.max_record_bytes),
                    m.timestamp,
                )
            )
            owned.next_offset[key] = m.offset + 1

    async def _resume_all(self) -> None:
        for partition, owned in list(self.engine.owned.items()):
            for topic in self._topics:
                await self._resume(owned, TopicPartition(topic, partition))

    async def _resume(self, owned: Owned, tp: TopicPartition) -> None:
        """Seek to where `tp` stands (`_stands_at`)."""
        await self._seek(tp, self._stands_at(owned, tp))

    @staticmethod
    def _stands_at(owned: Owned, tp: TopicPartition) -> int:
        """Where `tp` is to be read from: its next offset, or the record before it while that
        record's marker is still to be checked."""
        key = (tp.topic, tp.partition)
        position = owned.next_offset[key]
        check = owned.markers.get(key) is not None and position > 0
        return position - 1 if check else position

    async def _seek(self, tp: TopicPartition, offset: int) -> None:
        with contextlib.suppress(IllegalStateError):  # being revoked
            if offset == FROM_START:
                await self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, offset)

    async def _reset(self, owned: Owned, tp: TopicPartition, why: str) -> None:
        """The stored position of `tp` was not issued by this broker and topic: re-read it
        from the start (dedupe by input id makes that safe; skipping would not be)."""
        key = (tp.topic, tp.partition)
        log.warning(
            "stored position not issued by this broker and topic; re-reading from the start",
            topic=tp.topic,
            partition=tp.partition,
            position=owned.next_offset[key],
            why=why,
        )
        self._metrics.positions_reset.labels(tp.topic).inc()
        owned.markers[key] = None
        owned.next_offset[key] = FROM_START
        await self._seek(tp, FROM_START)

    async def _take(self, partitions: Collection[int]) -> None:
        """Own partitions from their stored positions and seek there (to the record before,
        where its marker is to be checked). The topic-partitions with no stored position are
        sought to the log's start in one request: each such seek waits for the fetch in
        flight to the broker (held up to `fetch_max_wait_ms`), so one at a time, the 24 of a
        first restart took 2 s before anything was read (issue 15)."""
        from_start = []
        for partition in sorted(partitions):
            owned = await self.engine.take(partition)
            if owned is None:
                continue
            self._metrics.partitions_stalled.labels(str(partition)).set(0)
            for topic, p in owned.next_offset:
                tp = TopicPartition(topic, p)
                offset = self._stands_at(owned, tp)
                if offset == FROM_START:
                    from_start.append(tp)
                else:
                    await self._seek(tp, offset)
        assigned = self._consumer.assignment()
        from_start = [tp for tp in from_start if tp in assigned]  # not one being revoked
        if from_start:
            with contextlib.suppress(IllegalStateError):
                await self._consumer.seek_to_beginning(*from_start)

    def _progressed(self, owned: Owned, partition: int) -> None:
        owned.progressed_at = self._clock()
        if owned.stalled:
            owned.stalled = False
            self._metrics.partitions_stalled.labels(str(partition)).set(0)
            log.info("partition flows again", partition=partition)

    async def _watch_partitions(self, positions: dict[TopicPartition, int | None]) -> None:
        """Report a partition whose records wait unread while none arrives (`/readyz`, a
        metric, an error line), and seek it again: nothing of it is skipped, and whether the
        broker or the consumer is at fault, a new fetch from where it stands is the remedy
        in reach."""
        now = self._clock()
        for partition, owned in self.engine.owned.items():
            since = owned.progressed_at or self._taken_at(owned)
            if owned.stalled or now - since < STALLED_PARTITION:
                continue
            unread = await self._unread(partition, positions)
            if not unread:  # caught up: asked again a period from now, not every step
                owned.progressed_at = now
                continue
            owned.stalled = True
            self._metrics.partitions_stalled.labels(str(partition)).set(1)
            log.error(
                "partition makes no progress: records wait unread and none has arrived;"
                " seeking it again from where it stands",
                partition=partition,
                unread=unread,
                seconds=round((now - since).total_seconds()),
            )
            for topic in self._topics:
                await self._resume(owned, TopicPartition(topic, partition))

    async def _unread(
        self, partition: int, positions: dict[TopicPartition, int | None]
    ) -> dict[str, int]:
        """Records of the partition not read yet, per topic, by the broker's word (asked
        only of a partition that has had none for a while: a fetch that delivers nothing
        may not even report the log's end)."""
        tps = [
            tp
            for tp, position in positions.items()
            if tp.partition == partition and tp not in self.held and position is not None
        ]
        try:
            ends = await self._consumer.end_offsets(tps)
        except KafkaError as err:
            log.warning("cannot ask the broker for the log's end", error=_why(err))
            ends = {}
        unread: dict[str, int] = {}
        for tp in tps:
            position = positions[tp]
            end = max(ends.get(tp, 0), self._consumer.highwater(tp) or 0)
            if position is not None and end > position:
                unread[tp.topic] = end - position
        return unread

    @staticmethod
    def _taken_at(owned: Owned) -> datetime:
        return datetime.fromtimestamp(owned.taken_at_ms / 1000, UTC)

    def _measure_lag(self, positions: dict[TopicPartition, int | None]) -> None:
        for tp, position in positions.items():
            if position is None:
                continue
            highwater = self._consumer.highwater(tp)
            if highwater is not None and position is not None:
                self._metrics.lag.labels(tp.topic, str(tp.partition)).set(highwater - position)

    async def _positions(self) -> dict[TopicPartition, int | None]:
        """Where the consumer reads next per owned topic-partition (None: not known yet)."""
        positions: dict[TopicPartition, int | None] = {}
        assigned = self._consumer.assignment()
        for partition in self.engine.owned:
            for topic in self._topics:
                tp = TopicPartition(topic, partition)
                positions[tp] = None  # None: not ours to ask about (being revoked)
                if tp in assigned:
                    with contextlib.suppress(IllegalStateError, KafkaError):
                        positions[tp] = await asyncio.wait_for(self._consumer.position(tp), 5)
        return positions

    def _all_read(self, partition: int, positions: dict[TopicPartition, int | None]) -> bool:
        """Every topic of the partition read to its end, and nothing held back by the merge."""
        caught_up = self._caught_up(partition, positions)
        merger = self.engine.owned[partition].merger
        return all(caught_up(t) and not merger.buffered(t) for t in self._topics)

    def _caught_up(
        self, partition: int, positions: dict[TopicPartition, int | None]
    ) -> Callable[[str], bool]:
        """Nothing unread: the read position has reached the partition's end."""

        def caught_up(topic: str) -> bool:
            tp = TopicPartition(topic, partition)
            position = positions.get(tp)
            if position is None:  # unknown, or not assigned: highwater() would assert
                return False
            highwater = self._consumer.highwater(tp)
            return highwater is not None and position >= highwater

        return caught_up

    async def _restart_beyond_end(self, positions: dict[TopicPartition, int | None]) -> None:
        """A position past the log's end means the broker lost its log (an in-memory broker
        restarted): such a broker never answers OFFSET_OUT_OF_RANGE, so nothing else would
        notice. Only an end reported by a fetch made after we took the partition counts."""
        for partition, owned in self.engine.owned.items():
            for topic in self._topics:
                tp = TopicPartition(topic, partition)
                position = positions.get(tp)
                if position is None:  # not assigned: the calls below would assert
                    continue
                highwater = self._consumer.highwater(tp)
                polled_at = self._consumer.last_poll_timestamp(tp)
                if (
                    highwater is not None
                    and position is not None
                    and position > highwater
                    and polled_at is not None
                    and polled_at > owned.taken_at_ms
                ):
                    await self._reset(
                        owned, tp, f"position {position} is past the log's end {highwater}"
                    )

    def _commit_kafka(self, reached: Reached) -> None:
        """Commit the offsets reached to Kafka, at most once a second, in the background:
        only lag tools read them (positions live in PostgreSQL), so the loop never waits for
        the broker's answer, which a rebalance or a slow coordinator can hold for seconds."""
        self._uncommitted.update(reached)
        now = self._clock()
        busy = self._kafka_commit is not None and not self._kafka_commit.done()
        if not self._uncommitted or now < self._next_kafka_commit or busy:
            return
        self._next_kafka_commit = now + KAFKA_COMMIT_EVERY
        offsets, self._uncommitted = self._uncommitted, {}
        self._kafka_commit = asyncio.create_task(
            self._commit_offsets({TopicPartition(*tp): o for tp, o in offsets.items()})
        )

    async def _commit_offsets(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self._consumer.commit(offsets)
        except KafkaError as err:  # only lag tools depend on it
            log.debug("kafka commit failed", error=str(err))

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._lock:
            self._uncommitted.update(await self.engine.settle())
            for tp in revoked:
                self._uncommitted.pop((tp.topic, tp.partition), None)
                if self.held.pop(tp, None) is not None:
                    self._count_held(tp.partition)
            for partition in {tp.partition for tp in revoked}:
                self.engine.release(partition)
                self._metrics.partitions_stalled.labels(str(partition)).set(0)
                for topic in self._topics:  # a partition we do not own has no lag of ours
                    with contextlib.suppress(KeyError):
                        self._metrics.lag.remove(topic, str(partition))
            self._metrics.partitions.set(len(self.engine.owned))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        began = self._clock()
        async with self._lock:
            # The revoke before it settled already, unless it failed: a step in flight must
            # not settle into the fresh state of a partition taken anew.
            self._uncommitted.update(await self.engine.settle())
            await self._take({tp.partition for tp in assigned})
            log.info(
                "assigned",
                partitions=sorted({tp.partition for tp in assigned}),
                took_ms=round((self._clock() - began).total_seconds() * 1000, 1),
            )
            self._metrics.partitions.set(len(self.engine.owned))
        self.assignment_received = True
        self._ready.set()


def _why(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
