"""Lose nothing (issue 13): whatever fails, every input is applied once or dead-lettered.

Each scenario injects a real fault into the real broker, PostgreSQL or `handoff run`
processes while conversations flow, then checks exactly-once on both sides: on Kafka, each
conversation has one `contact.assigned` (by distinct output id; a re-sent output keeps its
id), and in the event log, each input record (topic, partition, offset) has one input row.
Refused records have one `record.deadlettered` each, within the contract's bounds.

Waits poll with deadlines; a service that has stored positions past every input and gone
quiet is taken at its word, so a lossy run fails fast with the evidence in the message.
"""

import asyncio
import base64
import hashlib
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from handoff.core.envelope import Envelope
from tests.builders import assign_team, opened, presence, team, user, workflow
from tests.integration.faults import (
    Feed,
    Fleet,
    MiB,
    Outputs,
    Sent,
    Stream,
    by_partition,
    consumed_all,
    fetch,
    fleet,
    logged_inputs,
    logged_per_contact,
    once_each,
    outbox_rows,
    poll_until,
    private_broker,
    private_postgres,
    settle,
    stored_positions,
    streaming,
)
from tests.integration.harness import settings_for

pytestmark = pytest.mark.integration
# The scenarios marked slow take 20-60 s each, the others about 10 s; all run in `make test`.

AGENTS = ("ann", "bob", "cid")
KiB = 1024
LETTER_MAX = 64 * KiB
"""Contract: no output handoff writes may exceed 64 KiB."""
ORIGINAL_MAX = 16 * KiB
"""Contract v1.1: a dead letter carries the original bytes up to 16 KiB; past that, their
first 16 KiB, their size and their SHA-256."""


# --- building blocks ------------------------------------------------------------------------


def staffed(
    workspaces: list[str], *steps: dict[str, Any], at: datetime | None = None
) -> list[Envelope]:
    """Each workspace: three online agents in team `t`, and a workflow of `steps`. Presence
    records first, then the workflows (two topics, each acknowledged before the next)."""
    kw: dict[str, Any] = {"at": at} if at else {}
    people = [
        e
        for ws in workspaces
        for e in (
            *(user(a, ws=ws, **kw) for a in AGENTS),
            *(presence(a, ws=ws, **kw) for a in AGENTS),
            team("t", *AGENTS, ws=ws, **kw),
        )
    ]
    return [*people, *(workflow(*steps, ws=ws, **kw) for ws in workspaces)]


def contacts_of(sent: list[Sent]) -> set[tuple[str, str]]:
    return {(s.workspace, s.contact) for s in sent if s.contact is not None}  # type: ignore[misc]


def once_per_contact(
    outputs: Outputs, type_: str, contacts: set[tuple[str, str]]
) -> tuple[set[tuple[str, str]], dict[tuple[str, str], set[str]]]:
    """(the contacts with no output of `type_`, those with more than one distinct one)."""
    ids = outputs.per_contact(type_)
    return contacts - ids.keys(), {c: i for c, i in ids.items() if len(i) > 1}


def each_has(outputs: Outputs, type_: str, contacts: set[tuple[str, str]]) -> bool:
    """Every contact has at least one output of `type_` (what a wait waits for)."""
    ids = outputs.per_contact(type_)
    return all(len(ids.get(c, ())) >= 1 for c in contacts)


def sample(items: Any, n: int = 8) -> list[Any]:
    return sorted(items)[:n]


async def assert_inputs_once(dsn: str, sent: list[Sent], what: str, context: str = "") -> None:
    """Every record of `sent` is in the event log exactly once as an input."""
    logged = await logged_inputs(dsn)
    missing, repeated = once_each(sent, logged)
    evidence = (
        f"{what}: {len(missing)} of {len(sent)} never logged "
        f"({by_partition(s.where for s in missing)}); "
        f"{len(repeated)} logged more than once ({by_partition(s.where for s in repeated)})"
        + context
    )
    assert not missing, evidence
    assert not repeated, evidence


def assert_each_once(
    outputs: Outputs, type_: str, contacts: set[tuple[str, str]], context: str = ""
) -> None:
    """Each contact has exactly one output of `type_` (by distinct id) on Kafka."""
    never, twice = once_per_contact(outputs, type_, contacts)
    evidence = (
        f"{type_}: {len(contacts) - len(never)} of {len(contacts)} contacts have one;"
        f" {len(never)} none, e.g. {sample(never)}; {len(twice)} more than one, e.g."
        f" {sample(twice.items(), 3)}" + context
    )
    assert not never, evidence
    assert not twice, evidence


def assert_letter_within_contract(letter: dict[str, Any], size: int, raw: bytes) -> None:
    """Contract v1.1: under 64 KiB whole; the original bytes up to 16 KiB (a prefix of the
    record, as base64 and/or text), and past that also the record's size and SHA-256."""
    assert size <= LETTER_MAX, (
        f"the dead letter of a {len(raw)}-byte record is {size} bytes, over 64 KiB"
    )
    data = letter["data"]
    if data.get("original_base64") is not None:
        carried = base64.b64decode(data["original_base64"])
        assert len(carried) <= ORIGINAL_MAX, f"original_base64 of {len(carried)} bytes"
        assert raw.startswith(carried), "original_base64 is not the record's first bytes"
    if data.get("original") is not None:
        text = data["original"].encode()
        assert len(text) <= ORIGINAL_MAX, f"original of {len(text)} bytes"
        assert raw.startswith(text), "original is not the record's first bytes"
    if len(raw) > ORIGINAL_MAX:
        described = json.dumps(data)
        assert hashlib.sha256(raw).hexdigest() in described, "no SHA-256 of the original"
        assert str(len(raw)) in described, "no size of the original"


# --- 1. the database goes away --------------------------------------------------------------

OUTAGE_WORKSPACES = [f"outage-{i}" for i in range(20)]
OUTAGE_ROUNDS = 60  # conversations per workspace: 1,200 in all
OUTAGE_SECONDS = 5.0


@pytest.mark.slow
async def test_a_database_outage_mid_stream_loses_no_conversation(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """Given one `handoff run` on a PostgreSQL of its own, routing 20 workspaces round robin
    among three online agents, with conversations streaming in (20 every 0.1 s),
    when PostgreSQL is stopped (`pg_ctl stop -m fast`) for 5 s mid-stream and started again
    on the same datadir,
    then /readyz answers 503 while it is down and 200 once it is back, and every
    conversation, whether sent before, during or after the outage, is in the event log once
    and assigned once (20 each per agent: exactly-once shows in the fairness too)."""
    loop = asyncio.get_running_loop()
    async with private_postgres() as pg:
        settings = settings_for(kafka_bootstrap, pg.dsn, topic_prefix, data_dir=tmp_path / "data")
        async with (
            fleet(settings, tmp_path) as instances,
            Feed(settings, kafka_bootstrap) as feed,
            Outputs(settings, kafka_bootstrap) as outputs,
        ):
            service = instances.start("handoff")
            await service.wait_ready()
            await feed.send(*staffed(OUTAGE_WORKSPACES, assign_team("t", only_online=True)))

            def conversations(r: int) -> list[Envelope]:
                return [opened(f"c{r}", ws=ws) for ws in OUTAGE_WORKSPACES]

            stream = Stream(feed, conversations, pace=0.1)
            down, back = asyncio.Event(), asyncio.Event()
            # Traffic flows when the database stops (a third of the rounds sent, at least);
            # rounds from half on wait for it to be down, from two thirds on for it to be
            # back: some traffic surely comes before, during and after the outage.
            gates = {OUTAGE_ROUNDS // 2: down, OUTAGE_ROUNDS * 2 // 3: back}
            async with streaming(stream, OUTAGE_ROUNDS, gates) as sending:
                await stream.at(OUTAGE_ROUNDS // 3)

                async def flowing() -> bool:
                    await outputs.poll()
                    return len(outputs.distinct("contact.assigned")) >= 100

                assert await poll_until(flowing, 60), "nothing routed before the outage"
                # When: the database goes away mid-stream
                sent_before_stop = len(stream.sent)
                await pg.stop()
                stopped_at = loop.time()
                down.set()

                async def unready() -> bool:
                    return (await service.readyz())[0] == 503

                unready_seen = await poll_until(unready, 15, 0.2)
                readyz_down = await service.readyz()
                await asyncio.sleep(max(0.0, stopped_at + OUTAGE_SECONDS - loop.time()))
                sent_while_down = len(stream.sent)
                await pg.start()
                back.set()

                async def ready() -> bool:
                    return (await service.readyz())[0] == 200

                ready_again = await poll_until(ready, 30, 0.2)
                await asyncio.wait_for(sending, 60)
            assert stream.rounds_sent == OUTAGE_ROUNDS
            sent = stream.sent
            contacts = contacts_of(sent)
            complete = await settle(
                outputs,
                lambda o: each_has(o, "contact.assigned", contacts),
                consumed_all(pg.dsn, settings.group_id, sent),
                timeout=90,
            )
            log_excerpt = instances.errors() + instances.lines("failed")

        # Then
        assert unready_seen, f"/readyz with the database down: {readyz_down}"
        assert ready_again, "/readyz did not answer 200 once the database was back"
        sent_down = {s.where for s in sent[sent_before_stop:sent_while_down]}
        logged = await logged_inputs(pg.dsn)
        missing, repeated = once_each(sent, logged)
        positions = await stored_positions(pg.dsn, settings.group_id)
        evidence = (
            f"\n{len(missing)} of {len(sent)} conversations never logged, "
            f"{sum(s.where in sent_down for s in missing)} of them sent while PostgreSQL was "
            f"down ({len(sent_down)} were): {by_partition(s.where for s in missing)}"
            f"\nstored positions: {sorted(positions.items())}"
            f"\nservice log: {log_excerpt[:6]}"
        )
        assert not missing, evidence
        assert not repeated, evidence
        assert_each_once(outputs, "contact.assigned", contacts, evidence)
        assert complete
        per_contact = await logged_per_contact(pg.dsn, "contact.assigned")
        assert {c: n for c, n in per_contact.items() if n != 1} == {}
        assert set(per_contact) == contacts
        for ws in OUTAGE_WORKSPACES:
            shares = Counter(
                o["data"]["assignee_id"]
                for o in outputs.distinct("contact.assigned").values()
                if o["workspaceid"] == ws
            )
            assert sorted(shares.values()) == [20, 20, 20], (ws, shares)
        assert await outbox_rows(pg.dsn) == 0


# --- 2. records the core fails on -----------------------------------------------------------


async def _assert_poison_dead_lettered_and_neighbours_routed(
    instances: Fleet,
    outputs: Outputs,
    dsn: str,
    group_id: str,
    valid: list[Sent],
    bad: Sent,
    bad_raw: bytes,
    comments: bool,
) -> None:
    contacts = contacts_of(valid)

    def done(o: Outputs) -> bool:
        return (
            each_has(o, "contact.assigned", contacts)
            and (not comments or each_has(o, "comment.created", contacts))
            and bad.where in o.letters_by_source()
        )

    complete = await settle(outputs, done, consumed_all(dsn, group_id, [*valid, bad]), 60)
    context = (
        f"\noutbox rows left: {await outbox_rows(dsn)}"
        f"\nservice log: {instances.lines('could not be applied')[:3]}"
        f" {instances.errors()[:3]}"
    )
    await assert_inputs_once(dsn, valid, "valid conversations", context)
    assert_each_once(outputs, "contact.assigned", contacts, context)
    if comments:
        assert_each_once(outputs, "comment.created", contacts, context)
    letters = outputs.letters_by_source()
    assert len(letters.get(bad.where, ())) == 1, (
        f"dead letters of the bad record at {bad.where}: {letters.get(bad.where)}" + context
    )
    assert set(letters) == {bad.where}, f"other records dead-lettered: {set(letters)}"
    (letter_id,) = letters[bad.where]
    (letter,) = [
        o for o in outputs.distinct("record.deadlettered").values() if o["id"] == letter_id
    ]
    assert_letter_within_contract(letter, outputs.sizes[letter_id], bad_raw)
    assert complete
    assert (await logged_inputs(dsn))[bad.where] == 0, "the bad record was applied"


async def test_a_conversation_the_core_fails_on_is_dead_lettered_and_its_neighbours_routed(
    kafka_bootstrap: str, fresh_database: str, topic_prefix: str, tmp_path: Path
) -> None:
    """Given a workspace whose workflow assigns round robin, waits 3 s and leaves a comment,
    when a conversation.opened whose time is 9999-12-31T23:59:59Z (its wait would end past
    the year 9999: the core raises OverflowError) comes between ten valid conversations
    before and ten after, all on one partition,
    then the bad record is dead-lettered exactly once, and each of the twenty others is
    assigned once and commented once (its timer fired once)."""
    ws = "poison-time"
    settings = settings_for(
        kafka_bootstrap, fresh_database, topic_prefix, data_dir=tmp_path / "data"
    )
    async with (
        fleet(settings, tmp_path) as instances,
        Feed(settings, kafka_bootstrap) as feed,
        Outputs(settings, kafka_bootstrap) as outputs,
    ):
        await instances.start("handoff").wait_ready()
        steps = (
            assign_team("t", only_online=True),
            {"type": "wait", "duration": "3s"},
            {"type": "add_comment", "text": "still with you?", "mention": "assignee"},
        )
        # Times near the wall clock: a wait ends by it (or by a later input's time), and the
        # builders' default times run ahead of it once a long suite has made many events.
        now = datetime.now(UTC)
        await feed.send(*staffed([ws], *steps, at=now - timedelta(seconds=30)))
        poison = opened("poison", ws=ws, at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
        sent = await feed.send(
            *(opened(f"before-{i}", ws=ws, at=now + timedelta(milliseconds=i)) for i in range(10)),
            poison,
            *(
                opened(f"after-{i}", ws=ws, at=now + timedelta(milliseconds=20 + i))
                for i in range(10)
            ),
        )
        (bad,) = [s for s in sent if s.contact == "poison"]
        valid = [s for s in sent if s is not bad]
        assert {s.partition for s in sent} == {bad.partition}  # one partition, one key
        bad_raw = orjson.dumps(poison.model_dump(mode="json"))  # as the feed sent it
        await _assert_poison_dead_lettered_and_neighbours_routed(
            instances, outputs, fresh_database, settings.group_id, valid, bad, bad_raw, True
        )


def _nested_branches(depth: int) -> str:
    """The compact JSON of a step list: a branch in a branch ... `depth` deep, an assignment
    inside (120 deep: about 15 KB, under the 16 KiB a dead letter carries whole)."""
    steps = json.dumps([{"id": "leaf", **assign_team("t")}], separators=(",", ":"))
    when = '{"conversation":"status","op":"eq","value":"open"}'
    for level in range(depth, 0, -1):
        steps = (
            f'[{{"id":"b{level}","type":"branch",'
            f'"branches":[{{"name":"n{level}","when":{when},"steps":{steps}}}]}}]'
        )
    return steps


async def test_a_workflow_of_120_nested_branches_is_dead_lettered_and_later_traffic_routed(
    kafka_bootstrap: str, fresh_database: str, topic_prefix: str, tmp_path: Path
) -> None:
    """Given a workspace routing round robin, with ten conversations routed,
    when a workflow of 120 branches nested one in the other is published (its trigger,
    conversations from the API, matches none of the traffic here), then ten more
    conversations come, all on one partition,
    then the workflow record is dead-lettered exactly once (its dead letter within the
    contract's bounds), and each of the twenty conversations is assigned once."""
    ws = "deep-workflow"
    settings = settings_for(
        kafka_bootstrap, fresh_database, topic_prefix, data_dir=tmp_path / "data"
    )
    async with (
        fleet(settings, tmp_path) as instances,
        Feed(settings, kafka_bootstrap) as feed,
        Outputs(settings, kafka_bootstrap) as outputs,
    ):
        await instances.start("handoff").wait_ready()
        await feed.send(*staffed([ws], assign_team("t", only_online=True)))
        before = await feed.send(*(opened(f"before-{i}", ws=ws) for i in range(10)))
        template = workflow({"type": "add_comment", "text": "-"}, id="deep", source=["api"], ws=ws)
        envelope = template.model_dump(mode="json")
        envelope["data"]["definition"]["steps"] = "__STEPS__"
        deep = orjson.dumps(envelope).replace(b'"__STEPS__"', _nested_branches(120).encode())
        assert deep.count(b'"type":"branch"') == 120
        assert len(deep) < ORIGINAL_MAX  # its dead letter carries it whole
        bad = await feed.send_raw("topic_workflows", deep, key=ws)
        after = await feed.send(*(opened(f"after-{i}", ws=ws) for i in range(10)))
        valid = [*before, *after]
        assert {s.partition for s in [*valid, bad]} == {bad.partition}
        await _assert_poison_dead_lettered_and_neighbours_routed(
            instances, outputs, fresh_database, settings.group_id, valid, bad, deep, False
        )


# --- 3. records too big, or big and bad -----------------------------------------------------


def _padded_event(ws: str, id_: str, size: int, contact_id: Any) -> bytes:
    """A conversation.opened of exactly `size` bytes, padded in an extension attribute."""
    event = opened(id_, ws=ws, id=id_).model_dump(mode="json")
    event["data"]["contact_id"] = contact_id
    event["padding"] = ""
    bare = len(orjson.dumps(event))
    event["padding"] = "x" * (size - bare)
    raw = orjson.dumps(event)
    assert len(raw) == size
    return raw


async def test_oversized_and_big_bad_records_are_dead_lettered_small_and_the_partition_flows(
    kafka_bootstrap: str, fresh_database: str, topic_prefix: str, tmp_path: Path
) -> None:
    """Given a service whose input limit is 1 MiB, routing one workspace round robin,
    when, on the partition of that workspace and between its valid conversations, come
    records of 1.1 MiB and 3 MiB (over the limit), one of exactly 1,000,000 bytes (under it:
    JSON whose contact_id is a number) and one of 400 KB of control characters,
    then each of the four yields exactly one dead letter under 64 KiB (the original cut at
    16 KiB, with its size and SHA-256), and every valid conversation, before and after them,
    is logged once and assigned once."""
    ws = "big-records"
    settings = settings_for(
        kafka_bootstrap,
        fresh_database,
        topic_prefix,
        data_dir=tmp_path / "data",
        max_record_bytes=MiB,
    )
    bad_records = {
        "over-1.1MiB": _padded_event(ws, "over-1", int(1.1 * MiB), "c-over-1"),
        "over-3MiB": _padded_event(ws, "over-3", 3 * MiB, "c-over-3"),
        "under-1000000": _padded_event(ws, "under", 1_000_000, 12345),
        "control-400KB": bytes(i % 32 for i in range(400_000)),
    }
    async with (
        fleet(settings, tmp_path) as instances,
        Feed(settings, kafka_bootstrap, max_request_size=8 * MiB) as feed,
        Outputs(settings, kafka_bootstrap) as outputs,
    ):
        await instances.start("handoff").wait_ready()
        await feed.send(*staffed([ws], assign_team("t", only_online=True)))
        valid = await feed.send(opened("v-0", ws=ws), opened("v-1", ws=ws))
        bad: dict[str, Sent] = {}
        for n, (name, raw) in enumerate(bad_records.items()):
            bad[name] = await feed.send_raw("topic_conversations", raw, key=ws)
            valid += await feed.send(opened(f"v-{n}-a", ws=ws), opened(f"v-{n}-b", ws=ws))
        assert {s.partition for s in [*valid, *bad.values()]} == {valid[0].partition}
        contacts = contacts_of(valid)

        def done(o: Outputs) -> bool:
            letters = o.letters_by_source()
            return each_has(o, "contact.assigned", contacts) and all(
                s.where in letters for s in bad.values()
            )

        everything = [*valid, *bad.values()]
        consumed = consumed_all(fresh_database, settings.group_id, everything)
        complete = await settle(outputs, done, consumed, timeout=60)
        context = (
            f"\nstored positions past every record: {await consumed()}"
            f"; outbox rows left: {await outbox_rows(fresh_database)}"
            f"\nservice log: {instances.lines('relay failed')[:2]}"
        )

    letters = outputs.letters_by_source()
    unassigned, _ = once_per_contact(outputs, "contact.assigned", contacts)
    per_record = {name: len(letters.get(r.where, ())) for name, r in bad.items()}
    context = (
        f"\ndead letters per bad record: {per_record}"
        f"; valid conversations assigned: {len(contacts) - len(unassigned)} of {len(contacts)}"
        f" (never: {sorted(c for _, c in unassigned)})" + context
    )
    for name, record in bad.items():
        ids = letters.get(record.where, set())
        assert len(ids) == 1, f"{name} at {record.where}: dead letters {ids}" + context
        (letter_id,) = ids
        assert_letter_within_contract(
            outputs.distinct("record.deadlettered")[letter_id],
            outputs.sizes[letter_id],
            bad_records[name],
        )
    await assert_inputs_once(fresh_database, valid, "valid conversations", context)
    assert_each_once(outputs, "contact.assigned", contacts, context)
    assert complete
    logged = await logged_inputs(fresh_database)
    assert [name for name, s in bad.items() if logged[s.where]] == [], "a bad record applied"


# --- 4. the broker freezes ------------------------------------------------------------------

FROZEN_WORKSPACES = [f"frozen-{i}" for i in range(8)]
FROZEN_ROUNDS = 40
FREEZE_SECONDS = 15.0


@pytest.mark.slow
async def test_a_broker_frozen_for_15_s_mid_stream_loses_and_repeats_nothing(
    fresh_database: str, topic_prefix: str, tmp_path: Path
) -> None:
    """Given one `handoff run` on a Tansu broker of this test, routing 8 workspaces round
    robin while conversations stream in (8 every 0.1 s),
    when the broker is frozen (SIGSTOP) for 15 s, longer than the session timeout, and
    thawed (SIGCONT),
    then every conversation is logged once and assigned once."""
    with private_broker(tmp_path / "tansu.log") as broker:
        settings = settings_for(
            broker.bootstrap, fresh_database, topic_prefix, data_dir=tmp_path / "data"
        )
        async with (
            fleet(settings, tmp_path) as instances,
            Feed(settings, broker.bootstrap) as feed,
            Outputs(settings, broker.bootstrap) as outputs,
        ):
            service = instances.start("handoff")
            await service.wait_ready()
            await feed.send(*staffed(FROZEN_WORKSPACES, assign_team("t", only_online=True)))

            def conversations(r: int) -> list[Envelope]:
                return [opened(f"c{r}", ws=ws) for ws in FROZEN_WORKSPACES]

            stream = Stream(feed, conversations, pace=0.1)
            async with streaming(stream, FROZEN_ROUNDS) as sending:
                await stream.at(FROZEN_ROUNDS // 4)

                async def flowing() -> bool:
                    await outputs.poll()
                    return len(outputs.distinct("contact.assigned")) >= 16

                assert await poll_until(flowing, 60), "nothing routed before the freeze"
                broker.freeze()
                try:
                    await asyncio.sleep(FREEZE_SECONDS)
                finally:
                    broker.thaw()
                await asyncio.wait_for(sending, 90)
            sent = stream.sent
            contacts = contacts_of(sent)
            complete = await settle(
                outputs,
                lambda o: each_has(o, "contact.assigned", contacts),
                consumed_all(fresh_database, settings.group_id, sent),
                timeout=90,
            )
            alive = service.alive
            context = f"\nservice log: {instances.errors()[:4]}\n{service.tail(1500)}"

    assert alive, "the service exited" + context
    await assert_inputs_once(fresh_database, sent, "conversations", context)
    assert_each_once(outputs, "contact.assigned", contacts, context)
    assert complete
    per_contact = await logged_per_contact(fresh_database, "contact.assigned")
    assert {c: n for c, n in per_contact.items() if n != 1} == {}


# --- 5. several instances: joins, a kill, a leave, a zombie ---------------------------------

GROUP_WORKSPACES = [f"group-{i}" for i in range(8)]
PHASE_ROUNDS = 4
"""Rounds of conversations (8 each, one per 0.25 s) sent in each phase, at least."""


@pytest.mark.slow
async def test_instances_joining_killed_leaving_and_a_zombie_decide_everything_once(
    kafka_bootstrap: str, fresh_database: str, topic_prefix: str, tmp_path: Path
) -> None:
    """Given two `handoff run` instances in one group (session timeout 6 s) routing 8
    workspaces with a workflow that assigns round robin, waits 2 s and comments, while
    conversations stream in (8 every 0.25 s, each timed now, so the waits fall due live),
    when a third instance joins, one instance is frozen (SIGSTOP) well past its session
    timeout while its timers fall due and then thawed (a zombie), another is killed
    (SIGKILL) and the third leaves on SIGTERM,
    then no conversation is lost and none decided twice: each contact is assigned once and
    commented once, by distinct output id on Kafka and by rows in the event log, and every
    input record is logged once."""
    settings = settings_for(
        kafka_bootstrap, fresh_database, topic_prefix, data_dir=tmp_path / "data"
    )
    loop = asyncio.get_running_loop()
    steps = (
        assign_team("t", only_online=True),
        {"type": "wait", "duration": "2s"},
        {"type": "add_comment", "text": "how is it going?", "mention": "assignee"},
    )
    async with (
        fleet(settings, tmp_path) as instances,
        Feed(settings, kafka_bootstrap) as feed,
        Outputs(settings, kafka_bootstrap) as outputs,
    ):
        a, b = instances.start("a"), instances.start("b")
        await a.wait_ready()
        await b.wait_ready()
        setup_at = datetime.now(UTC) - timedelta(seconds=30)  # real times: they order the merge
        await feed.send(*staffed(GROUP_WORKSPACES, *steps, at=setup_at))

        def conversations(r: int) -> list[Envelope]:
            now = datetime.now(UTC)
            return [opened(f"c{r}", ws=ws, at=now) for ws in GROUP_WORKSPACES]

        stream = Stream(feed, conversations, pace=0.25)

        async def decided(type_: str, sent: list[Sent], timeout: float) -> bool:
            """Every contact of `sent` has an output of `type_`, within `timeout` s."""
            contacts = contacts_of(sent)

            async def check() -> bool:
                await outputs.poll(100)
                return each_has(outputs, type_, contacts)

            return await poll_until(check, timeout, 0.05)

        async def routed_so_far(timeout: float) -> None:
            sent = list(stream.sent)
            for type_ in ("contact.assigned", "comment.created"):
                assert await decided(type_, sent, timeout), (
                    f"{type_} stalled after {steps_taken}; errors: {instances.errors()[:4]}"
                )

        steps_taken: list[str] = []

        def mark(what: str) -> None:
            steps_taken.append(f"{loop.time() - started:5.1f}s {what}")

        started = loop.time()
        async with streaming(stream, None):
            await stream.at(PHASE_ROUNDS)
            await routed_so_far(30)
            mark("a and b routing")
            c = instances.start("c")  # joins: a rebalance mid-stream
            await c.wait_ready()
            await stream.at(stream.rounds_sent + PHASE_ROUNDS)
            await routed_so_far(30)
            mark("c joined")

            b.freeze()  # past its session timeout, while the waits it set fall due
            frozen_at = loop.time()
            await asyncio.sleep(0.5)
            await routed_so_far(40)  # a and c took b's partitions, and fired its timers
            await asyncio.sleep(max(0.0, frozen_at + 9 - loop.time()))
            b.thaw()  # a zombie: it wakes with a step and timers of partitions it lost
            mark("b frozen and thawed")
            await stream.at(stream.rounds_sent + PHASE_ROUNDS)
            await routed_so_far(40)
            mark("b back")

            a.kill()  # its partitions move once its session expires
            await stream.at(stream.rounds_sent + PHASE_ROUNDS)
            await routed_so_far(40)
            mark("a killed")

            assert await c.terminate(30) == 0, c.tail()  # a graceful leave
            mark("c left")
            await stream.at(stream.rounds_sent + PHASE_ROUNDS)
        sent = stream.sent
        contacts = contacts_of(sent)
        assert await decided("contact.assigned", sent, 60), "not every conversation assigned"
        assert await decided("comment.created", sent, 60), "not every conversation commented"
        mark("all routed")
        await asyncio.sleep(2.5)  # a timer firing twice would show within its poll
        await outputs.poll()
        assert await b.terminate(30) == 0, b.tail()
        context = f"\n{steps_taken}\nfenced: {instances.lines('fenced')[:4]}"

    await assert_inputs_once(fresh_database, [*feed.sent], "input records", context)
    for type_ in ("contact.assigned", "comment.created"):
        assert_each_once(outputs, type_, contacts, context)
        per_contact = await logged_per_contact(fresh_database, type_)
        assert set(per_contact) == contacts, type_
        assert {c: n for c, n in per_contact.items() if n != 1} == {}, (type_, context)
    fired = await fetch(
        fresh_database,
        "SELECT workspace_id, body->'data'->>'run_id' AS run, count(*) AS n FROM event_log"
        " WHERE type = 'timer.elapsed' GROUP BY 1, 2",
    )
    assert len(fired) == len(contacts), "a wait that never fired"
    assert [r for r in fired if r["n"] != 1] == []
    assert await outbox_rows(fresh_database) == 0
