"""`handoff demo`: the embedded stack, the service, and a simulated day played through them.

What a newcomer sees: who works where and when, what the demo shortened, a line per simulated
hour (the clock, events sent, assignments, the queue, who is online), the first decision of
each kind with its explanation, then the summary table and the chart's path.

Choices:
- The demo always starts its own embedded broker and PostgreSQL (under `<data dir>/demo`),
  whatever `HANDOFF_KAFKA_BOOTSTRAP` / `HANDOFF_DATABASE_URL` say: simulated traffic must never
  land in a real deployment. Each run gets a new database on that server (dropped at the end)
  and its own topic prefix, so runs never see each other's events; the PostgreSQL cluster is
  kept between runs (made once, about a second), and one left running by a killed run is
  re-attached to.
- The service runs in this process (`serve`), its logs at WARNING so they do not drown the
  demo's lines.
- Events are sent when their `time` comes (their times are real: see `handoff.demo.traffic`),
  and an agent's reply is sent as the contact's real assignee when the demo has seen the
  assignment (the generator, open loop, can only guess).
- The servers are stopped on the way out whatever happens, Ctrl-C included.
"""

import argparse
import asyncio
import contextlib
import logging
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from handoff.adapters.kafka_send import input_topic_for
from handoff.app.logs import configure
from handoff.app.service import serve
from handoff.app.settings import Settings
from handoff.demo.options import DemoOptions, add_arguments, options_from
from handoff.demo.summary import Routing, Summary, queue_reason, summarize
from handoff.demo.traffic import (
    DAY,
    CloudEvent,
    Day,
    TrafficParams,
    clock,
    simulate_day,
)

__all__ = ["DemoOptions", "demo", "main", "run"]

_LEAD = 1.5
"""Wall seconds between making the day and its 00:00, so the setup is not sent late."""
_QUIET = 3.0
"""The day is over when no output has come for this long (wall seconds) ..."""
_QUIET_MAX = 30.0
"""... or after this long at most."""


async def demo(
    settings: Settings | None = None,
    options: DemoOptions | None = None,
    out: TextIO | None = None,
) -> Summary:
    """Play the day; return what it came to (also printed to `out`, stdout by default)."""
    base = settings or Settings()
    options = options or DemoOptions()
    stream = out or sys.stdout

    def say(line: str = "") -> None:
        print(line, file=stream, flush=True)

    token = secrets.token_hex(3)
    data_dir = base.data_dir / "demo"
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    compression = DAY / options.day_seconds
    say(
        f"handoff demo: a simulated day (00:00-24:00) for {options.workspaces} workspace(s), "
        f"played in {options.day_seconds:.0f} s of wall time "
        f"(x{compression:.0f}: a simulated minute is {60_000 / compression:.0f} ms)"
    )
    say(f"starting an embedded Kafka broker and PostgreSQL under {data_dir} ...")
    async with AsyncExitStack() as stack:
        from handoff.adapters.embedded import EmbeddedBroker, EmbeddedPostgres

        broker = EmbeddedBroker(log_path=data_dir / "broker.log")
        bootstrap = broker.start()  # in this (the loop's) thread: it dies with the thread
        stack.callback(broker.stop)
        postgres = EmbeddedPostgres(data_dir / "postgres")
        server_dsn = await asyncio.to_thread(postgres.start)
        stack.callback(postgres.stop)
        dsn = await _cleared(server_dsn)
        settings = base.on_tool_servers(
            partitions=4,
            kafka_bootstrap=bootstrap,
            database_url=dsn,
            data_dir=data_dir,
            topic_prefix=f"demo.{token}.",
            group_id=f"handoff-demo-{token}",
        )
        say("starting the service (in this process) ...")
        stop, ready = asyncio.Event(), asyncio.Event()
        service = asyncio.create_task(serve(settings, stop, ready))
        stack.push_async_callback(_stop_service, stop, service)
        await _until_ready(service, ready)
        say(f"service ready after {time.monotonic() - started:.1f} s")

        day = simulate_day(
            TrafficParams(
                start=datetime.now(UTC) + timedelta(seconds=_LEAD),
                workspaces=options.workspaces,
                agents_per_team=options.agents,
                conversations_per_workspace=options.conversations,
                seed=options.seed,
                compression=compression,
            )
        )
        _introduce(day, say)
        consumer = AIOKafkaConsumer(
            *settings.output_topics.values(),
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        stack.push_async_callback(consumer.stop)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
        await producer.start()
        stack.push_async_callback(producer.stop)

        live = _Live(day)
        watcher = asyncio.create_task(_watch(consumer, live, say))
        try:
            await asyncio.gather(_play(producer, settings, day, live), _report(day, live, say))
            say(
                f"24:00  the day is over: {live.sent} events sent; "
                "waiting for the last decisions and timers ..."
            )
            await _quiesce(live, service)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        say(f"stopping the service and the servers ({len(live.outputs)} outputs read)")
    summary = summarize(live.inputs, live.outputs, day.params.start, compression)
    roles = {
        (w.workspace_id, a.user_id): (a.shift.label if a.role == "agent" else a.role)
        for w in day.workspaces
        for a in w.agents
    }
    say()
    say(summary.render(roles))
    if options.chart:
        say()
        say(_chart(summary, roles, options, compression))
    say(
        f"\nthe day's event log stays under {data_dir}/postgres until the next demo; audit it with"
        f" HANDOFF_DATA_DIR={data_dir} set: `handoff replay --verify`, `handoff explain"
        " --workspace W --contact C`, `handoff simulate --workspace W --workflow FILE`"
    )
    say(f"done in {time.monotonic() - started:.0f} s")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m handoff.demo.run [options]`, the same as `handoff demo [options]`."""
    parser = argparse.ArgumentParser(prog="handoff demo", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(Settings(), options_from(parser.parse_args(argv)))


def run(settings: Settings, options: DemoOptions) -> int:
    """Run the demo to the end; Ctrl-C or SIGTERM stops it cleanly (exit status 130)."""
    configure("WARNING")
    logging.getLogger("aiokafka").setLevel(logging.ERROR)

    async def guarded() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await demo(settings, options)

    try:
        asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted: the service and the servers are stopped", file=sys.stderr)
        return 130
    return 0


# --- the live side -------------------------------------------------------------------------


@dataclass
class _Live:
    """What the demo knows while the day plays: what was sent and what came back."""

    day: Day
    sent: int = 0
    inputs: list[CloudEvent] = field(default_factory=list)
    input_times: dict[str, datetime] = field(default_factory=dict)
    outputs: list[CloudEvent] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    reassigned: int = 0
    routing: Routing = field(default_factory=Routing)
    waiting: set[tuple[str, str]] = field(default_factory=set)
    assignee: dict[tuple[str, str], str] = field(default_factory=dict)
    presence: dict[str, dict[str, str]] = field(default_factory=dict)
    told: set[str] = field(default_factory=set)
    """Kinds of decision already shown with their explanation."""
    last_output: float = field(default_factory=time.monotonic)

    def take(self, event: CloudEvent) -> str | None:
        """Count an output; for a reassignment, return the agent the conversation left."""
        moved_from: str | None = None
        self.outputs.append(event)
        self.last_output = time.monotonic()
        kind, data, ws = event["type"], event["data"], event["workspaceid"]
        self.counts[kind] += 1
        contact = (ws, str(data.get("contact_id")))
        if kind == "contact.assigned":
            self.assignee[contact] = data["assignee_id"]
            self.waiting.discard(contact)
            moved_from = self.routing.see(event)[0]
            self.reassigned += moved_from is not None
        elif kind == "contact.unassigned":
            self.assignee.pop(contact, None)
        elif kind == "assignment.queued":
            self.waiting.add(contact)
            self.routing.see(event)
        elif kind == "assignment.failed":
            self.waiting.discard(contact)
            self.routing.see(event)
        return moved_from

    def online(self, workspace_id: str) -> int:
        return sum(s == "online" for s in self.presence.get(workspace_id, {}).values())

    def sim_of_cause(self, output: CloudEvent) -> float:
        """The simulated time of the input that caused `output` (else of the output)."""
        cause = self.input_times.get(str(output.get("causationid")))
        return self.day.sim(cause or datetime.fromisoformat(output["time"]))

    def as_sent(self, event: CloudEvent) -> CloudEvent:
        """The event with the contact's real assignee as the replying or closing agent."""
        data = event["data"]
        user = self.assignee.get((event["workspaceid"], str(data.get("contact_id"))))
        if user is None:
            return event
        if event["type"] == "message.sent" and data["sender"].get("type") == "user":
            return {**event, "data": {**data, "sender": {"type": "user", "user_id": user}}}
        if event["type"] == "conversation.closed" and data.get("closed_by"):
            return {**event, "data": {**data, "closed_by": user}}
        return event


async def _play(producer: AIOKafkaProducer, settings: Settings, day: Day, live: _Live) -> None:
    """Send each event when its time comes, keyed by workspace as the contract says."""
    for event in day.events:
        delay = (datetime.fromisoformat(event["time"]) - _now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        sent = live.as_sent(event)
        topic = input_topic_for(settings, sent["type"])
        await producer.send(topic, orjson.dumps(sent), key=sent["workspaceid"].encode())
        live.inputs.append(sent)
        live.input_times[sent["id"]] = datetime.fromisoformat(sent["time"])
        live.sent += 1
        if sent["type"] == "conversation.opened":
            live.routing.opened(sent)
        elif sent["type"] == "user.presence_changed":
            people = live.presence.setdefault(sent["workspaceid"], {})
            people[sent["data"]["user_id"]] = sent["data"]["status"]
    await producer.flush()


async def _report(day: Day, live: _Live, say: Callable[[str], None]) -> None:
    """A line at each full simulated hour while the day plays."""
    for hour in range(1, 24):
        delay = (day.wall(hour * 3600.0) - _now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        online = "  ".join(
            f"{w.workspace_id} {live.online(w.workspace_id)}" for w in day.workspaces
        )
        say(
            f"{clock(hour * 3600.0)}  sent {live.sent:>5}/{len(day.events)}  "
            f"assigned {live.counts['contact.assigned']:>4}  "
            f"reassigned {live.reassigned:>3}  waiting {len(live.waiting):>3}  "
            f"queued {live.counts['assignment.queued']:>3}  "
            f"failed {live.counts['assignment.failed']:>3}  | online: {online}"
        )


async def _watch(consumer: AIOKafkaConsumer, live: _Live, say: Callable[[str], None]) -> None:
    """Read the outputs as they come; show the first decision of each kind, explained."""
    while True:
        polled = await consumer.getmany(timeout_ms=200)
        for messages in polled.values():
            for message in messages:
                event: CloudEvent = orjson.loads(message.value)
                moved_from = live.take(event)
                headline = _first_of_its_kind(event, live, moved_from)
                if headline is not None:
                    say(f"{clock(max(0.0, live.sim_of_cause(event)))}    {headline}")


def _first_of_its_kind(event: CloudEvent, live: _Live, moved_from: str | None) -> str | None:
    """A line with the explanation of the first assignment of each workspace, the first
    reassignment, the first queued contact and the first failure; None for the rest."""
    kind, data, ws = event["type"], event["data"], event["workspaceid"]
    contact = data.get("contact_id")
    if kind == "contact.assigned":
        if moved_from is not None:
            key, what = "reassigned", f"first reassignment, from {moved_from}"
        else:
            key, what = f"assigned/{ws}", "first assignment"
        if key in live.told:
            return None
        live.told.add(key)
        team = f" in {data['team_id']}" if data.get("team_id") else ""
        return (
            f"[{ws}] {what}: {contact} -> {data['assignee_id']} ({data['strategy']}{team}); "
            f"{_candidates(data['explanation'])}"
        )
    if kind == "assignment.queued" and "queued" not in live.told:
        live.told.add("queued")
        queue = data.get("team_id") or "the workspace"
        return (
            f"[{ws}] first queued: {contact} waits for {queue}: "
            f"{queue_reason(data['explanation'])} ({_candidates(data['explanation'])})"
        )
    if kind == "assignment.failed" and "failed" not in live.told:
        live.told.add("failed")
        why = {"conversation_closed": "the contact gave up while queued"}.get(data["reason"], "")
        return f"[{ws}] first failure: {contact} {data['reason']}" + (f" ({why})" if why else "")
    return None


def _candidates(explanation: dict[str, Any]) -> str:
    """The candidates grouped by why: `eligible: ann (0 open); not online (offline): bob, cid`."""
    groups: dict[str, list[str]] = {}
    for c in explanation.get("candidates", []):
        if c["eligible"]:
            groups.setdefault("eligible", []).append(f"{c['user_id']} ({c['open_contacts']} open)")
        else:
            groups.setdefault(str(c["reason"]), []).append(c["user_id"])
    return "; ".join(f"{why}: {', '.join(who)}" for why, who in groups.items()) or "no candidates"


async def _quiesce(live: _Live, service: asyncio.Task[None]) -> None:
    """Until nothing has come out for `_QUIET` s (a wait's timer included), at most
    `_QUIET_MAX` s."""
    deadline = time.monotonic() + _QUIET_MAX
    ended = time.monotonic()
    while time.monotonic() < deadline:
        if service.done():
            service.result()
            raise RuntimeError("the service stopped during the demo")
        now = time.monotonic()
        if now - max(live.last_output, ended) >= _QUIET:
            return
        await asyncio.sleep(0.2)


# --- set-up and clean-up ---------------------------------------------------------------------


def _introduce(day: Day, say: Callable[[str], None]) -> None:
    """Who works where and when, how each workspace routes, and what the demo shortened."""
    params = day.params
    say(
        f"simulated traffic: seed {params.seed}, {params.conversations_per_workspace} "
        f"conversations per workspace, {len(day.events)} input events"
    )
    for plan in day.workspaces:
        say(f"  {plan.workspace_id}: {plan.business}; workflow {plan.template}")
        for team, members in plan.teams:
            people = ", ".join(
                f"{a.user_id} ({a.shift.label}"
                + (f", max {a.max_open_contacts}" if a.max_open_contacts else "")
                + ")"
                for a in plan.agents
                if a.user_id in members
            )
            say(f"      team {team}: {people}")
        for agent in plan.agents:
            if not agent.teams:
                say(f"      {agent.role}: {agent.user_id} ({agent.shift.label})")
    shortened = [line for plan in day.workspaces for line in plan.shortened]
    if shortened:
        say("shortened for the demo (the templates keep their real durations):")
        for line in dict.fromkeys(shortened):
            say(f"  {line}")
        say("  (timers are polled every second, so a wait ends up to a second late)")
    say(
        "agents answer after a delay, some never; contacts nobody answers give up after a "
        "while; some chats are still open at midnight"
    )
    say("")


async def _until_ready(service: asyncio.Task[None], ready: asyncio.Event) -> None:
    waiter = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait({service, waiter}, timeout=60, return_when="FIRST_COMPLETED")
    if service in done:
        waiter.cancel()
        service.result()  # raises what stopped it
        raise RuntimeError("the service stopped before it was ready")
    if waiter not in done:
        waiter.cancel()
        raise RuntimeError("the service got no partitions within 60 s")


async def _stop_service(stop: asyncio.Event, service: asyncio.Task[None]) -> None:
    stop.set()
    try:
        await asyncio.wait_for(service, 60)
    except Exception as err:
        print(f"the service stopped with an error: {err!r}", file=sys.stderr)


async def _cleared(dsn: str) -> str:
    """The demo's own server's database, emptied of an earlier day: the day's log stays in it
    after the demo, for the audit commands (`HANDOFF_DATA_DIR=.handoff/demo handoff explain`)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()
    return dsn


def _chart(
    summary: Summary, roles: dict[tuple[str, str], str], options: DemoOptions, compression: float
) -> str:
    from handoff.demo.chart import write_chart

    path = options.out_dir / "handoff-demo.png"
    subtitle = (
        f"seed {options.seed}, {options.conversations} conversations per workspace, "
        f"day played at x{compression:.0f}; shaded: nobody online, red: contacts waiting"
    )
    try:
        written = write_chart(summary, path, roles, subtitle)
    except ImportError:
        return "chart skipped: matplotlib is not installed (pip install 'handoff[demo]')"
    return f"chart: {written.resolve()}"


def _now() -> datetime:
    return datetime.now(UTC)  # the demo plays in real time


if __name__ == "__main__":
    sys.exit(main())
