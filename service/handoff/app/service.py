"""The service's lifespan: servers, database, topics, then the pipeline until told to stop.

With no `HANDOFF_KAFKA_BOOTSTRAP` / `HANDOFF_DATABASE_URL` it starts the embedded broker and
PostgreSQL itself (data under `HANDOFF_DATA_DIR`) and stops them on the way out.
"""

import asyncio
from contextlib import AsyncExitStack

import asyncpg
import structlog

from handoff.adapters.kafka_topics import ensure_topics
from handoff.adapters.pg_store import forget_positions, migrate
from handoff.app.pipeline import Pipeline
from handoff.app.settings import Settings

__all__ = ["serve"]

log = structlog.get_logger("handoff.service")


async def serve(
    settings: Settings, stop: asyncio.Event, ready: asyncio.Event | None = None
) -> None:
    """Run until `stop` is set; `ready` is set once partitions are assigned."""
    async with AsyncExitStack() as stack:
        bootstrap, dsn = settings.kafka_bootstrap, settings.database_url
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if bootstrap is None or dsn is None:
            from handoff.adapters.embedded import EmbeddedBroker, EmbeddedPostgres

            if dsn is None:
                pg = EmbeddedPostgres(settings.data_dir / "postgres")
                dsn = await asyncio.to_thread(pg.start)
                stack.callback(pg.stop)
                log.info("embedded postgresql started", dsn=dsn)
            if bootstrap is None:
                broker = EmbeddedBroker(log_path=settings.data_dir / "broker.log")
                # Not in a worker thread: the broker dies with the thread that started it.
                bootstrap = broker.start()
                stack.callback(broker.stop)
                marker = settings.data_dir / "bootstrap"
                marker.write_text(bootstrap)
                stack.callback(marker.unlink, missing_ok=True)
                log.info("embedded broker started", bootstrap=bootstrap)
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=settings.partitions + 4)
        stack.push_async_callback(pool.close)
        applied = await migrate(pool)
        log.info("database ready", migrations_applied=applied)
        if settings.kafka_bootstrap is None:
            # A new in-memory broker: positions from an earlier run name offsets it never had.
            async with pool.acquire() as conn:
                await forget_positions(conn, settings.group_id)
        partitions = await ensure_topics(
            bootstrap, settings.input_topics, settings.output_topics.values(), settings.partitions
        )
        log.info(
            "listening",
            bootstrap=bootstrap,
            inputs=settings.input_topics,
            outputs=list(settings.output_topics.values()),
            partitions=partitions,
        )
        await Pipeline(settings, pool, bootstrap, ready=ready).run(stop)
