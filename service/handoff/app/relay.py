"""The outbox relay: committed outputs to Kafka, in order per partition, at least once.

A step's outputs are written to the outbox in the step's transaction and produced after it
commits, by whoever owns the partition. A crash in between re-sends the same ids (they are
derived), never loses one. Rows are deleted only once Kafka has acknowledged them.

A relay that fails (the broker is down, or refuses a record) keeps the partition's outputs in
the outbox, in order, and is tried again at every step. It does not fail silently: the
partition is named in an error line, in `handoff_outbox_stuck` and in `/readyz` until a relay
of it succeeds; the README says how an operator clears a record the broker will never take.
"""

import asyncio

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer

from handoff.adapters.kafka_send import CLOUDEVENTS_HEADERS
from handoff.adapters.pg_store import OutboxEntry, clear_outbox, delete_outbox, load_outbox
from handoff.app.metrics import Metrics

__all__ = ["OutboxRelay"]

log = structlog.get_logger("handoff.relay")


class OutboxRelay:
    def __init__(self, producer: AIOKafkaProducer, pool: asyncpg.Pool, metrics: Metrics) -> None:
        self._producer = producer
        self._pool = pool
        self._metrics = metrics
        self.behind: set[int] = set()
        """Partitions whose outbox holds rows older than the step in hand: relayed from the
        database, in order, before anything newer is produced from memory."""
        self.stuck: dict[int, str] = {}
        """Partition -> why its last relay failed; gone once one succeeds."""
        self._locks: dict[int, asyncio.Lock] = {}

    @property
    def failing(self) -> bool:
        return bool(self.stuck)

    async def relay(self, partition: int) -> bool:
        """Produce the partition's outbox in order; on failure, leave it for the next try.
        One relay of a partition at a time: two would send its rows twice, interleaved."""
        lock = self._locks.setdefault(partition, asyncio.Lock())
        async with lock:
            return await self._relay(partition)

    async def _relay(self, partition: int) -> bool:
        try:
            async with self._pool.acquire() as conn:
                while rows := await load_outbox(conn, partition):
                    await self._send([(r.seq, r.topic, r.key, r.value) for r in rows])
                    await delete_outbox(conn, partition, rows[-1].seq)
        except Exception as error:
            self._failed({partition}, error)
            return False
        self._recovered(partition)
        return True

    async def relay_written(
        self, written: dict[int, list[OutboxEntry]], seqs: tuple[int, int] | None
    ) -> bool:
        """Produce what a step just committed, from memory, and delete those rows (`seqs`,
        the first and last the step wrote), so nothing is read back. False if any partition
        is left behind.

        A partition with an older backlog is relayed from the database, in order. Rows of
        another writer (a new owner this instance has not yet noticed) are not this step's
        and stay for their relay.
        """
        fresh = {p: rows for p, rows in written.items() if rows and p not in self.behind}
        ok = True
        try:
            await self._send(
                [
                    (None, topic, key, value)
                    for rows in fresh.values()
                    for _, topic, key, value in rows
                ]
            )
            if fresh and seqs is not None:
                async with self._pool.acquire() as conn:
                    await clear_outbox(conn, list(fresh), seqs)
            for partition in fresh:
                self._recovered(partition)
        except Exception as error:
            self._failed(set(fresh), error)
            ok = False
        for partition in sorted(written.keys() & self.behind):
            ok = await self.relay(partition) and ok
        return ok

    async def _send(self, rows: list[tuple[int | None, str, bytes | None, bytes]]) -> None:
        """Produce rows (outbox seq where known, topic, key, value) and wait for every
        acknowledgement; the first refused row raises, naming its seq."""
        sent: list[tuple[int | None, asyncio.Future[object]]] = []
        for seq, topic, key, value in rows:
            try:
                future = await self._producer.send(
                    topic, value, key=key, headers=CLOUDEVENTS_HEADERS
                )
            except Exception as error:  # refused before sending: too large, say
                raise RelayRefused(seq, error) from error
            sent.append((seq, future))
        results = await asyncio.gather(*(f for _, f in sent), return_exceptions=True)
        for (seq, _), result in zip(sent, results, strict=True):
            if isinstance(result, BaseException):
                raise RelayRefused(seq, result) from result

    def forget(self, partition: int) -> None:
        """The partition is no longer ours: its outbox is its new owner's to relay."""
        self.behind.discard(partition)
        if self.stuck.pop(partition, None) is not None:
            self._metrics.outbox_stuck.labels(str(partition)).set(0)

    def _failed(self, partitions: set[int], error: Exception) -> None:
        reason = f"{type(error).__name__}: {error}"
        for partition in sorted(partitions):
            log.error(
                "outbox relay failed; its outputs wait in the outbox, in order, and are tried"
                " again at every step",
                partition=partition,
                error=reason,
            )
            self.behind.add(partition)
            self.stuck[partition] = reason
            self._metrics.outbox_stuck.labels(str(partition)).set(1)

    def _recovered(self, partition: int) -> None:
        self.behind.discard(partition)
        if self.stuck.pop(partition, None) is not None:
            log.info("outbox relay recovered", partition=partition)
            self._metrics.outbox_stuck.labels(str(partition)).set(0)


class RelayRefused(Exception):
    """Kafka did not take an outbox row; `seq` names it, for an operator who must clear it."""

    def __init__(self, seq: int | None, error: BaseException) -> None:
        self.seq = seq
        where = f"outbox row {seq}: " if seq is not None else ""
        super().__init__(f"{where}{type(error).__name__}: {error}")
