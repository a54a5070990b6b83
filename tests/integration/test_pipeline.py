"""Scenarios through the real pipeline: Kafka in, PostgreSQL event log, Kafka out.

One service runs for the module; each scenario lives in its own workspace, which is also how
the service keeps tenants apart.
"""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.builders import (
    assign_team,
    assignee_changed,
    closed,
    opened,
    presence,
    team,
    user,
    workflow,
)
from tests.integration.harness import Stack, of_workspace, routed, running, settings_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def stack(kafka_bootstrap: str, database_url: str) -> AsyncIterator[Stack]:
    import secrets

    prefix = f"pipe{secrets.token_hex(3)}."
    settings = settings_for(kafka_bootstrap, database_url, prefix, max_record_bytes=4096)
    async with running(settings) as s:
        yield s


def _has(ws: str, n: int, *types: str):  # type: ignore[no-untyped-def]
    return lambda outs: len(of_workspace(outs, ws, *types)) >= n


async def test_round_robin_skips_an_offline_member(stack: Stack) -> None:
    ws = "rr-offline"
    await stack.send(
        user("ann", ws=ws),
        user("bob", ws=ws),
        user("cid", ws=ws),
        presence("ann", ws=ws),
        presence("bob", "away", ws=ws),
        presence("cid", ws=ws),
        team("billing", "ann", "bob", "cid", ws=ws),
        workflow(
            {"type": "send_message", "text": "Hi!"},
            assign_team("billing", only_online=True),
            {"type": "add_comment", "text": "yours", "mention": "assignee"},
            ws=ws,
        ),
    )
    await stack.send(opened("c1", ws=ws), opened("c2", ws=ws), opened("c3", ws=ws))
    outs = await stack.outputs(_has(ws, 3, "contact.assigned"))
    assert routed(outs, ws) == [
        ("contact.assigned", "c1", "ann"),
        ("contact.assigned", "c2", "cid"),
        ("contact.assigned", "c3", "ann"),
    ]
    first, second = of_workspace(outs, ws, "contact.assigned")[:2]
    # c2 went past bob (away): the explanation lists him, passed over, with the reason
    assert [
        (c["user_id"], c.get("reason")) for c in second["data"]["explanation"]["candidates"]
    ] == [
        ("cid", None),
        ("bob", "away"),
    ]
    assert second["data"]["explanation"]["passed_over"] == 1
    assert first["causationid"] == of_workspace(outs, ws, "message.requested")[0]["causationid"]
    comments = of_workspace(outs, ws, "comment.created")
    assert [c["data"]["mentions"] for c in comments] == [["ann"], ["cid"], ["ann"]]


async def test_least_open_contacts_ties_rotate_and_closing_lowers_a_count(stack: Stack) -> None:
    ws = "least-open"
    await stack.send(
        user("ann", ws=ws),
        user("bob", ws=ws),
        presence("ann", ws=ws),
        presence("bob", ws=ws),
        team("t", "ann", "bob", ws=ws),
        workflow(assign_team("t", "least_open_contacts"), ws=ws),
        opened("c1", ws=ws),
        opened("c2", ws=ws),
        opened("c3", ws=ws),
        closed("c1", ws=ws),
        opened("c4", ws=ws),
    )
    outs = await stack.outputs(_has(ws, 4, "contact.assigned"))
    # ties rotate: ann, bob, ann; c1 (ann's) closes -> 1:1 tie -> rotates to bob
    assert [r[2] for r in routed(outs, ws)] == ["ann", "bob", "ann", "bob"]
    last = of_workspace(outs, ws, "contact.assigned")[-1]["data"]["explanation"]
    assert [c["open_contacts"] for c in last["candidates"]] == [1, 1]


async def test_specific_user_and_an_inbox_assignment_counted(stack: Stack) -> None:
    ws = "specific"
    await stack.send(
        user("vip-agent", ws=ws),
        user("ann", max_open=1, ws=ws),
        presence("ann", ws=ws),
        team("t", "ann", ws=ws),
        workflow({"type": "assign_to", "user_id": "vip-agent"}, id="vip", source=["api"], ws=ws),
        workflow(assign_team("t"), id="general", source=["contact"], ws=ws),
        opened("v1", source="api", ws=ws),
        opened("c1", ws=ws),
        assignee_changed("c1", "vip-agent", ws=ws),
        opened("c2", ws=ws),
        assignee_changed("c2", "ann", ws=ws),
        opened("c3", ws=ws),
    )
    outs = await stack.outputs(_has(ws, 4, "contact.assigned", "assignment.queued"))
    assert routed(outs, ws) == [
        ("contact.assigned", "v1", "vip-agent"),
        ("contact.assigned", "c1", "ann"),
        ("contact.assigned", "c2", "ann"),  # ann is free again: c1 went to vip-agent
        ("assignment.queued", "c3", "queued"),  # ann took c2 in the inbox: at her limit
    ]
    assert of_workspace(outs, ws, "contact.assigned")[0]["data"]["strategy"] == "specific_user"


async def test_capacity_reached_then_queued_then_assigned_when_a_conversation_closes(
    stack: Stack,
) -> None:
    ws = "capacity"
    await stack.send(
        user("ann", max_open=2, ws=ws),
        presence("ann", ws=ws),
        team("t", "ann", ws=ws),
        workflow(assign_team("t", only_online=True), ws=ws),
        opened("c1", ws=ws),
        opened("c2", ws=ws),
        opened("c3", ws=ws),
    )
    await stack.outputs(_has(ws, 1, "assignment.queued"))
    await stack.send(closed("c1", ws=ws))
    outs = await stack.outputs(_has(ws, 3, "contact.assigned"))
    assert routed(outs, ws) == [
        ("contact.assigned", "c1", "ann"),
        ("contact.assigned", "c2", "ann"),
        ("assignment.queued", "c3", "queued"),
        ("contact.assigned", "c3", "ann"),
    ]


async def test_nobody_online_three_queued_then_served_oldest_first(stack: Stack) -> None:
    ws = "nobody-online"
    await stack.send(
        user("ann", ws=ws),
        user("bob", ws=ws),
        team("t", "ann", "bob", ws=ws),
        workflow(assign_team("t", only_online=True), ws=ws),
        opened("c1", ws=ws),
        opened("c2", ws=ws),
        opened("c3", ws=ws),
    )
    await stack.outputs(_has(ws, 3, "assignment.queued"))
    await stack.send(presence("bob", ws=ws))
    outs = await stack.outputs(_has(ws, 3, "contact.assigned"))
    assert [r for r in routed(outs, ws) if r[0] == "contact.assigned"] == [
        ("contact.assigned", "c1", "bob"),
        ("contact.assigned", "c2", "bob"),
        ("contact.assigned", "c3", "bob"),
    ]


async def test_a_resent_input_id_makes_no_new_output(stack: Stack) -> None:
    ws = "resent"
    setup = [user("ann", ws=ws), team("t", "ann", ws=ws), workflow(assign_team("t"), ws=ws)]
    first = opened("c1", ws=ws, id="same-id")
    await stack.send(*setup, first)
    await stack.outputs(_has(ws, 1, "contact.assigned"))
    await stack.send(first, opened("c2", ws=ws))  # the same id again, then a new one
    outs = await stack.outputs(_has(ws, 2, "contact.assigned"))
    assert [r[1] for r in routed(outs, ws)] == ["c1", "c2"]


async def test_a_fenced_commit_takes_its_partitions_again_and_applies_nothing_twice(
    stack: Stack,
) -> None:
    """Another writer moves a stored position (here: back by one) while the service holds
    the partition: its next commit is fenced, the step's partitions are taken again from the
    database, and the record read again is found in the log."""
    import asyncpg

    from handoff.adapters.kafka_send import input_topic_for

    ws = "fenced"
    setup = [user("ann", ws=ws), team("t", "ann", ws=ws), workflow(assign_team("t"), ws=ws)]
    await stack.send(*setup, opened("c1", ws=ws))
    await stack.outputs(_has(ws, 1, "contact.assigned"))
    topic = input_topic_for(stack.settings, "conversation.opened")
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        partition = await conn.fetchval(
            "SELECT source_partition FROM event_log WHERE workspace_id = $1 AND is_input"
            " AND source_topic = $2 LIMIT 1",
            ws,
            topic,
        )
        moved = await conn.execute(
            "UPDATE consumer_positions SET next_offset = next_offset - 1"
            " WHERE group_id = $1 AND topic = $2 AND partition = $3",
            stack.settings.group_id,
            topic,
            partition,
        )
        assert moved == "UPDATE 1"
        await stack.send(opened("c2", ws=ws))
        outs = await stack.outputs(_has(ws, 2, "contact.assigned"))
        assert [r[1] for r in routed(outs, ws)] == ["c1", "c2"]
        logged = await conn.fetchval(
            "SELECT count(*) FROM event_log WHERE workspace_id = $1 AND type = $2",
            ws,
            "contact.assigned",
        )
        assert logged == 2
    finally:
        await conn.close()


async def test_two_workspaces_with_the_same_user_ids_do_not_meet(stack: Stack) -> None:
    for ws, online in (("tenant-a", True), ("tenant-b", False)):
        await stack.send(
            user("ann", ws=ws),
            *([presence("ann", ws=ws)] if online else []),
            team("t", "ann", ws=ws),
            workflow(assign_team("t", only_online=True), ws=ws),
            opened("c1", ws=ws),
        )
    outs = await stack.outputs(lambda o: bool(routed(o, "tenant-a") and routed(o, "tenant-b")))
    assert routed(outs, "tenant-a") == [("contact.assigned", "c1", "ann")]
    assert routed(outs, "tenant-b") == [("assignment.queued", "c1", "queued")]


async def test_output_ids_are_deterministic(stack: Stack) -> None:
    from handoff.core.ids import derive_id

    ws = "ids"
    await stack.send(
        user("ann", ws=ws),
        team("t", "ann", ws=ws),
        workflow(assign_team("t"), ws=ws),
        opened("c1", ws=ws, id="open-c1"),
    )
    outs = await stack.outputs(_has(ws, 1, "contact.assigned"))
    (assigned,) = of_workspace(outs, ws, "contact.assigned")
    # run.started (0) and run.step_entered (1) stay in the log; the assignment is output 2
    assert assigned["id"] == derive_id(ws, "/inbox", "open-c1", 2)
    assert assigned["causationid"] == "open-c1"


async def test_malformed_records_go_to_the_dead_letter_topic_and_later_ones_flow(
    stack: Stack,
) -> None:
    import orjson

    ws = "after-bad"
    bad_workflow = workflow(assign_team("t"), ws=ws).model_dump(mode="json")
    bad_workflow["data"]["definition"]["steps"][0]["logic"] = "fastest"
    missing_field = opened("c0", ws=ws).model_dump(mode="json")
    del missing_field["data"]["contact_id"]
    await stack.send_raw(
        "topic_conversations",
        b"{not json",
        b'["an", "array"]',
        orjson.dumps(missing_field),
        b'{"specversion": "1.0", "type": "conversation.opened", "data": "' + b"x" * 5000 + b'"}',
        key=ws.encode(),
    )
    await stack.send_raw("topic_workflows", orjson.dumps(bad_workflow), key=ws.encode())
    await stack.send(
        user("ann", ws=ws),
        team("t", "ann", ws=ws),
        workflow(assign_team("t"), ws=ws),
        opened("c1", ws=ws),
    )
    outs = await stack.outputs(lambda o: bool(routed(o, ws)) and len(_letters(o, stack)) >= 5)
    reasons = [letter["data"]["reason"] for letter in _letters(outs, stack)]
    assert reasons[0].startswith("not JSON")
    assert reasons[1] == "not a JSON object but list"
    assert "data.contact_id: Field required" in reasons[2]
    assert "over the 4096-byte limit" in reasons[3]
    assert "data.definition.steps[0].logic: unknown value 'fastest'" in reasons[4]
    assert _letters(outs, stack)[0]["data"]["original"] == "{not json"
    assert routed(outs, ws) == [("contact.assigned", "c1", "ann")]


def _letters(outputs: list[dict[str, object]], stack: Stack) -> list[dict[str, Any]]:
    prefix = stack.settings.topic_prefix
    return sorted(
        (
            o
            for o in outputs
            if o["type"] == "record.deadlettered" and str(o["data"]["topic"]).startswith(prefix)
        ),  # type: ignore[index]
        key=lambda o: (
            o["data"]["topic"] != stack.settings.topic("inbox.conversations"),  # type: ignore[index]
            o["data"]["offset"],
        ),  # type: ignore[index]
    )


async def test_replaying_the_log_re_decides_every_decision_and_rebuilds_the_projections(
    stack: Stack, database_url: str
) -> None:
    """Runs last in this module: it audits everything the scenarios above logged."""
    import asyncpg

    from handoff.app.replay import replay

    async def projection_rows(conn: asyncpg.Connection) -> set[tuple[str, str, str, str]]:
        rows = await conn.fetch("SELECT workspace_id, tbl, key, value::text FROM projection_rows")
        return {tuple(r) for r in rows}  # type: ignore[misc]

    conn = await asyncpg.connect(database_url)
    try:
        live = await projection_rows(conn)
        versions = set(await conn.fetch("SELECT workspace_id, version FROM workspaces"))
        audit = await replay(database_url)
        assert audit.mismatches == []
        assert audit.events > audit.inputs > 0
        workspaces = await conn.fetchval("SELECT count(DISTINCT workspace_id) FROM event_log")
        assert audit.workspaces == workspaces > 1
        # the audit notices a decision the core would not make
        seq, original = await conn.fetchrow(
            "SELECT seq, body FROM event_log WHERE workspace_id = 'capacity'"
            " AND type = 'contact.assigned' ORDER BY seq LIMIT 1"
        )
        await conn.execute(
            "UPDATE event_log"
            " SET body = jsonb_set(body::jsonb, '{data,assignee_id}', '\"zed\"')::json"
            " WHERE workspace_id = 'capacity' AND seq = $1",
            seq,
        )
        noticed = await replay(database_url)
        assert noticed.mismatches[0].startswith("capacity input ")
        assert "logged contact.assigned" in noticed.mismatches[0]
        in_two = await replay(database_url, workers=2)  # two ranges, the same findings
        assert in_two.mismatches == noticed.mismatches
        assert (in_two.events, in_two.workspaces) == (audit.events, audit.workspaces)
        await conn.execute(
            "UPDATE event_log SET body = $2 WHERE workspace_id = 'capacity' AND seq = $1",
            seq,
            original,
        )
        await conn.execute("DELETE FROM projection_rows")  # lose them all...
        rebuilt = await replay(database_url, rebuild=True)  # ...and rebuild them from the log
        assert rebuilt.mismatches == []
        assert await projection_rows(conn) == live
        for workers in (1, 2):  # again, folding only, in one process and in two
            await conn.execute("DELETE FROM projection_rows")
            folded = await replay(database_url, rebuild=True, audit=False, workers=workers)
            assert (folded.events, folded.inputs) == (rebuilt.events, rebuilt.inputs)
            assert await projection_rows(conn) == live, workers
            assert set(await conn.fetch("SELECT workspace_id, version FROM workspaces")) == versions
    finally:
        await conn.close()
