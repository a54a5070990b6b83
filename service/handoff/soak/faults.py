"""The soak's faults, at seeded random moments, one at a time, each printed as it happens.

- `kill`: kill -9 of a running instance, and a new one started in its place at once;
- `freeze`: SIGSTOP of a running instance for longer than its session timeout, then SIGCONT:
  its partitions have moved meanwhile, and it wakes up a zombie that must find out before it
  writes anything;
- `postgres`: `pg_ctl stop -m fast` on the data directory, started again a few seconds later
  (same socket, same DSN): every instance loses its connections and must survive it.

The kinds come round in a seeded order (each once per round), with gaps drawn around the mean
gap; no fault starts after the sending has stopped, and the one in progress then is played
out (a frozen instance is always thawed).
"""

import asyncio
import random  # seeded faults: an edge, not the decision core
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from handoff.adapters.embedded import EmbeddedPostgres
from handoff.bench.servers import Servers
from handoff.soak.clock import Say
from handoff.soak.instances import Fleet, Instance
from handoff.soak.options import SoakOptions

__all__ = ["Fault", "Faults", "restart_postgres"]


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    at: float
    """Seconds into the soak when it began."""
    seconds: float
    """How long it lasted (a freeze, PostgreSQL down)."""
    detail: str


async def restart_postgres(servers: Servers, down: float, say: Say) -> None:
    """`pg_ctl stop -m fast` on the run's PostgreSQL, `down` s without it, then start it again
    on the same data directory (in this thread: the server outlives it either way)."""
    old = servers.postgres
    await asyncio.to_thread(old.stop)
    say(f"fault: PostgreSQL stopped; starting it again in {down:.1f} s")
    await asyncio.sleep(down)
    fresh = EmbeddedPostgres(old.datadir)
    fresh.start()
    servers.postgres = fresh


class Faults:
    """Injects faults into `fleet` and `servers` until told when to stop (`run`)."""

    def __init__(
        self,
        options: SoakOptions,
        fleet: Fleet,
        servers: Servers,
        say: Say,
        session_timeout: float,
    ) -> None:
        self._options = options
        self._fleet = fleet
        self._servers = servers
        self._say = say
        self._session_timeout = session_timeout
        self._rng = random.Random(f"handoff-soak/{options.seed}")
        self._watchers: set[asyncio.Task[None]] = set()
        self.done: list[Fault] = []

    def counts(self) -> Counter[str]:
        return Counter(f.kind for f in self.done)

    def _kinds(self) -> Iterator[str]:
        kinds = list(self._options.faults)
        while kinds:
            yield from self._rng.sample(kinds, len(kinds))

    async def run(self, until: float) -> None:
        """Faults until `until` (seconds into the soak); the last one is played out."""
        for kind in self._kinds():
            if self._options.max_faults is not None and len(self.done) >= self._options.max_faults:
                return
            gap = self._rng.uniform(0.5, 1.5) * self._options.fault_gap
            if self._say.elapsed() + gap >= until:
                return
            await asyncio.sleep(gap)
            started = self._say.elapsed()
            detail = await getattr(self, f"_{kind}")()
            if detail is not None:
                self.done.append(Fault(kind, started, self._say.elapsed() - started, detail))

    def _victim(self, kind: str) -> Instance | None:
        candidates = self._fleet.running()
        if not candidates:
            self._say(f"fault {kind} skipped: no instance is running")
            return None
        return self._rng.choice(candidates)

    async def _kill(self) -> str | None:
        victim = self._victim("kill")
        if victim is None:
            return None
        self._say(f"fault: kill -9 {victim.label}")
        await self._fleet.kill(victim)
        fresh = self._fleet.start()
        self._say(f"fault: started {fresh.label} in its place")
        self._watch_ready(fresh)
        return f"kill -9 {victim.label}; {fresh.label} started"

    async def _freeze(self) -> str | None:
        victim = self._victim("freeze")
        if victim is None:
            return None
        hold = self._session_timeout + self._rng.uniform(2.0, 6.0)
        self._say(
            f"fault: SIGSTOP {victim.label} for {hold:.1f} s "
            f"(session timeout {self._session_timeout:g} s)"
        )
        self._fleet.freeze(victim)
        try:
            await asyncio.sleep(hold)
        finally:
            self._fleet.thaw(victim)
        self._say(f"fault: SIGCONT {victim.label}: awake, its partitions long gone")
        return f"SIGSTOP {victim.label} for {hold:.1f} s"

    async def _postgres(self) -> str | None:
        down = self._rng.uniform(2.0, 6.0)
        self._say("fault: PostgreSQL stop (pg_ctl stop -m fast)")
        await restart_postgres(self._servers, down, self._say)
        self._say("fault: PostgreSQL started again")
        return f"PostgreSQL down {down:.1f} s"

    def _watch_ready(self, instance: Instance) -> None:
        """Say when a replacement is ready (or that it is not, within a minute)."""

        async def watch() -> None:
            if await self._fleet.wait_ready([instance], 60.0):
                took = (instance.ready_at or 0.0) - instance.started_at
                self._say(f"{instance.label} ready after {took:.1f} s")
            else:
                self._say(f"{instance.label} not ready within 60 s (alive: {instance.alive})")

        task = asyncio.create_task(watch())
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def close(self) -> None:
        for task in list(self._watchers):
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
