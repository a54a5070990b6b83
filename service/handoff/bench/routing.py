"""Routing throughput (issue 15): a backlog of nothing but conversation openings, handoff
against the no-op pipe over the same records.

`workspaces` workspaces, each with a team of `size` agents all online and a workflow whose
one step assigns to that team by round robin, online members only
(`handoff.bench.team_size.setup_events`). In a database and topics of their own:

1. the setup (users, presence, the team, the workflow) is produced and applied by a service
   in this process, which then stops: it is not timed;
2. the backlog, openings spread evenly over the workspaces, each by a contact of its own and
   none closed (`team_size.opening_events`), is produced once; they all go to the
   conversations topic, which holds nothing else;
3. the no-op pipe (`handoff.bench.pipe.run_pipe`) drains them: it reads the conversations
   topic, and in place of the presence and workflow topics (where the setup is, read by the
   service before) two empty topics, so it reads every opening and nothing else;
4. a service in this process drains them, as the mixed stream's is timed
   (`handoff.bench.drain.in_process`): from ready until the log holds every opening and the
   outbox is empty. It is a new service on the database of (1): each workspace's view is
   read from the database at its first opening.

Each side's rate is in routed conversations per second (for the pipe: openings piped, one
output each; for handoff: `contact.assigned` logged), and each side's CPU (`time.process_time`
of this process over its drain) per opening: for the service that includes this process's
polling of the database for the end of the drain (a query every 0.1 s); for the pipe, its
clients' start and stop are left out (`handoff.bench.cpu.timed_pipe`).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from handoff.app.settings import Settings
from handoff.bench.cpu import timed_pipe
from handoff.bench.drain import in_process
from handoff.bench.pipe import PipeResult
from handoff.bench.servers import (
    Servers,
    bench_settings,
    create_database,
    create_topics,
    produce,
    wait_drained,
    wall_now,
)
from handoff.bench.stream import encode
from handoff.bench.team_size import assigned_count, opening_events, setup_events
from handoff.demo.traffic import CloudEvent

__all__ = ["LOGIC", "RoutingResult", "measure_routing", "routing_events"]

LOGIC = "round_robin"


@dataclass(frozen=True, slots=True)
class RoutingResult:
    workspaces: int
    size: int
    """Agents per team."""
    setup: int
    """Setup inputs applied before the backlog."""
    openings: int
    routed: int
    """`contact.assigned` handoff logged over the backlog."""
    seconds: float
    """handoff's drain of the backlog."""
    cpu_seconds: float
    """This process's CPU over handoff's drain."""
    pipe: PipeResult
    pipe_cpu_seconds: float

    @property
    def rate(self) -> float:
        """handoff's routed conversations per second."""
        return self.routed / self.seconds

    @property
    def pipe_rate(self) -> float:
        """The pipe's: openings piped per second, each answered with one output."""
        return self.pipe.rate

    @property
    def ratio(self) -> float:
        return self.rate / self.pipe_rate

    @property
    def us_per_opening(self) -> float:
        return 1e6 * self.cpu_seconds / max(self.openings, 1)

    @property
    def pipe_us_per_opening(self) -> float:
        return 1e6 * self.pipe_cpu_seconds / max(self.pipe.records, 1)


def routing_events(
    workspaces: int, size: int, openings: int, start: datetime
) -> tuple[list[CloudEvent], list[CloudEvent]]:
    """(setup, backlog): the backlog's `openings` (rounded down to a multiple of
    `workspaces`, at least one each) interleaved across the workspaces."""
    ids = [f"rr{size}-{i:04d}" for i in range(workspaces)]
    setup = [e for ws in ids for e in setup_events(ws, size, LOGIC, start)]
    each = max(1, openings // workspaces)
    per_workspace = [opening_events(ws, 0, each, size, start) for ws in ids]
    backlog = [e for batch in zip(*per_workspace, strict=True) for e in batch]
    return setup, backlog


async def measure_routing(
    servers: Servers,
    base: Settings,
    name: str,
    workspaces: int,
    size: int,
    openings: int,
    say: Callable[[str], None] | None = None,
) -> RoutingResult:
    """The module's doc says how; `name` names the database, the topics and the group."""
    dsn = await create_database(servers.server_dsn, name.replace("-", "_"))
    settings = bench_settings(base, servers.bootstrap, dsn, name)
    out = settings.topic("pipe.out")
    await create_topics(settings, [out])
    # The pipe's settings: the same conversations topic, empty ones for the other two.
    pipe_settings = settings.model_copy(
        update={"topic_presence": "pipe-empty.presence", "topic_workflows": "pipe-empty.workflows"}
    )
    await create_topics(pipe_settings)
    setup, backlog = routing_events(workspaces, size, openings, wall_now() - timedelta(hours=1))
    conversations = settings.topic(settings.topic_conversations)
    records = encode(backlog)
    if any(r.topic(settings) != conversations for r in records):
        raise ValueError("the routing backlog must be openings alone")

    await produce(settings, encode(setup))
    async with in_process(settings) as service:
        await wait_drained(dsn, settings.group_id, len(setup), service.ready_at, service.alive)
    if say is not None:
        say(f"setup of {workspaces:,} workspaces applied; producing {len(records):,} openings")
    await produce(settings, records)

    pipe, pipe_cpu = await timed_pipe(pipe_settings, out, len(records))
    if say is not None:
        say(f"no-op pipe: {pipe.rate:,.0f} openings/s")

    async with in_process(settings) as service:
        cpu = time.process_time()
        drained = await wait_drained(
            dsn, settings.group_id, len(setup) + len(records), service.ready_at, service.alive
        )
        cpu = time.process_time() - cpu
    result = RoutingResult(
        workspaces=workspaces,
        size=size,
        setup=len(setup),
        openings=len(records),
        routed=await assigned_count(dsn),
        seconds=drained.seconds,
        cpu_seconds=cpu,
        pipe=pipe,
        pipe_cpu_seconds=pipe_cpu,
    )
    if say is not None:
        say(f"handoff: {result.rate:,.0f} routed conversations/s; ratio {result.ratio:.2f}")
    return result
