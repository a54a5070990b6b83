"""The service's lifespan: servers, database, topics, then the pipeline until told to stop.

With no `HANDOFF_KAFKA_BOOTSTRAP` / `HANDOFF_DATABASE_URL` it starts the embedded broker and
PostgreSQL itself (data under `HANDOFF_DATA_DIR`) and stops them on the way out.
"""

import asyncio
from contextlib import AsyncExitStack

import asyncpg
import structlog

from handoff.adapters.kafka_topics import ensure_topics
from handoff.adapters.pg_store import forget_positions, migrate, stale_projections
from handoff.app.audit_http import AuditHttp
from handoff.app.collector import fewer_collections
from handoff.app.http import serve_http
from handoff.app.metrics import Metrics
from handoff.app.pipeline import Pipeline
from handoff.app.settings import Settings

__all__ = ["serve"]

log = structlog.get_logger("handoff.service")


async def serve(
    settings: Settings, stop: asyncio.Event, ready: asyncio.Event | None = None
) -> None:
    """Run until `stop` is set; `ready` is set once partitions are assigned."""
    metrics = Metrics()
    started = _Started()
    async with AsyncExitStack() as stack:
        stack.enter_context(fewer_collections())
        bootstrap, dsn = settings.kafka_bootstrap, settings.database_url
        if settings.http_port:
            audit = None
            if settings.audit_token is not None:
                audit = AuditHttp(
                    settings.audit_token.get_secret_value(),
                    lambda: started.dsn if started.migrated else None,
                    settings.database_sslmode,
                )
                stack.callback(audit.close)
            server = await serve_http(settings.http_port, metrics, started.readiness, audit)
            stack.push_async_callback(_close, server)
        if bootstrap is None or dsn is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            from handoff.adapters.embedded import EmbeddedBroker, EmbeddedPostgres

            if dsn is None:
                pg = EmbeddedPostgres(settings.data_dir / "postgres")
                dsn = await asyncio.to_thread(pg.start)
                stack.callback(pg.stop)
                log.info("embedded postgresql started", data_dir=str(settings.data_dir))
            if bootstrap is None:
                broker = EmbeddedBroker(log_path=settings.data_dir / "broker.log")
                # Not in a worker thread: the broker dies with the thread that started it.
                bootstrap = broker.start()
                stack.callback(broker.stop)
                marker = settings.data_dir / "bootstrap"
                marker.write_text(bootstrap)
                stack.callback(marker.unlink, missing_ok=True)
                log.info("embedded broker started", bootstrap=bootstrap)
        started.dsn = dsn
        started.pool = pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=settings.partitions + 4, ssl=settings.database_sslmode
        )
        stack.push_async_callback(pool.close)
        applied = await migrate(pool)
        started.migrated = True
        log.info("database ready", migrations_applied=applied)
        if not await _projections_current(pool, started, stop):
            return
        if settings.kafka_bootstrap is None:
            # A new in-memory broker: positions from an earlier run name offsets it never had.
            async with pool.acquire() as conn:
                await forget_positions(conn, settings.group_id)
        partitions = await ensure_topics(
            bootstrap,
            settings.input_topics,
            settings.output_topics.values(),
            settings.partitions,
            settings.kafka_options(),
        )
        log.info(
            "listening",
            bootstrap=bootstrap,
            inputs=settings.input_topics,
            outputs=list(settings.output_topics.values()),
            partitions=partitions,
        )
        started.pipeline = Pipeline(settings, pool, bootstrap, ready=ready, metrics=metrics)
        await started.pipeline.run(stop)


STALE_PROJECTIONS_RECHECK = 5.0
"""Seconds between looks at stored projections an older version folded."""


async def _projections_current(
    pool: asyncpg.Pool, started: "_Started", stop: asyncio.Event
) -> bool:
    """Wait, saying why in an error line and /readyz, while the stored projections are in an
    older shape than this version folds (an upgrade not yet rebuilt): deciding on them would
    read rows that are missing. False when told to stop first."""
    while True:
        async with pool.acquire() as conn:
            problem = await stale_projections(conn)
        if problem is None:
            break
        if started.projections != problem:
            log.error("waiting for a rebuild", problem=problem)
        started.projections = problem
        try:
            await asyncio.wait_for(stop.wait(), STALE_PROJECTIONS_RECHECK)
            return False
        except TimeoutError:
            continue
    started.projections = "ok"
    return True


class _Started:
    """How far start-up got, for `/readyz`."""

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None
        self.dsn: str | None = None
        self.migrated = False
        self.projections = "not ready"
        self.pipeline: Pipeline | None = None

    async def readiness(self) -> dict[str, str]:
        """Each check: "ok", or what is wrong (a partition's outbox that cannot be relayed,
        a partition whose records cannot be read, named)."""
        database = False
        if self.pool is not None:
            try:
                database = await asyncio.wait_for(self.pool.fetchval("SELECT 1"), 2) == 1
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                database = False
        problems = self.pipeline.problems() if self.pipeline else {}
        return {
            "database": "ok" if database else "not ready",
            "migrations": "ok" if self.migrated else "not ready",
            "projections": self.projections,
            "kafka_partitions_assigned": "ok"
            if self.pipeline and self.pipeline.assignment_received
            else "not ready",
            "outbox": problems.get("outbox", "ok"),
            "partitions": problems.get("partitions", "ok"),
        }


async def _close(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()
