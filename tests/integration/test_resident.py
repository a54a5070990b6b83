"""Contacts who come back after their rows left memory: an eviction (more idle rows than
`EVICT_SLACK`) and then a restart (which loads only pinned rows) in between, and still
routed by what was stored about them, and the stored projections are what a replay of the
log rebuilds."""

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from handoff.app.handle import EVICT_SLACK
from handoff.app.replay import replay
from tests.builders import closed, event, opened, presence, team, user, workflow
from tests.integration.harness import of_workspace, running, settings_for

pytestmark = pytest.mark.integration

WS = "comeback"
NEIGHBOUR = "next-door"  # its inputs share the steps, so that two views are held
CONTACTS = EVICT_SLACK // 2  # two rows or more each: enough to be evicted


def _vip_or_team() -> dict[str, object]:
    return {
        "type": "branch",
        "branches": [
            {
                "name": "vip",
                "when": {"all": [{"contact_field": "tier", "op": "eq", "value": "vip"}]},
                "steps": [{"id": "vip", "type": "assign_to", "user_id": "ann"}],
            }
        ],
        "else": [{"id": "team", "type": "assign_to", "team_id": "t", "logic": "round_robin"}],
    }


@pytest.mark.parametrize("held", [20_000, 1], ids=["views-kept", "views-dropped-each-step"])
async def test_contacts_coming_back_are_routed_by_what_was_stored_about_them(
    kafka_bootstrap: str, fresh_database: str, topic_prefix: str, held: int
) -> None:
    """With one view held, each step that touched both workspaces drops their views after
    its commit, and the next loads them again: decisions come from the stored rows alone."""
    settings = settings_for(kafka_bootstrap, fresh_database, topic_prefix, max_held_workspaces=held)
    contacts = [f"c{n}" for n in range(CONTACTS)]
    setup = [
        *(user(u, ws=WS) for u in ("ann", "bob", "cid")),
        *(presence(u, ws=WS) for u in ("ann", "bob", "cid")),
        team("t", "bob", "cid", ws=WS),
        workflow(_vip_or_team(), ws=WS),
        workflow(
            {"type": "send_message", "text": "Welcome, first-timer!"},
            id="hello",
            once_per_contact=True,
            ws=WS,
        ),
    ]
    first_visits = [
        e
        for c in contacts
        for e in (opened(c, f"{c}-1", fields={"lang": "es"}, ws=WS), closed(c, f"{c}-1", ws=WS))
    ]
    # told while idle: every other contact becomes a VIP
    updates = [
        event("contact.updated", {"contact_id": c, "fields": {"tier": "vip"}}, ws=WS)
        for c in contacts[::2]
    ]
    # a newcomer last: its assignment says everything before it in the workspace is done
    second_visits = [
        *(e for c in contacts for e in (opened(c, f"{c}-2", ws=WS), user(c, ws=NEIGHBOUR))),
        opened("new", ws=WS),
    ]

    async with running(settings) as stack:
        await stack.send(*setup, *first_visits, user("zed", ws=NEIGHBOUR), *updates)
        await stack.outputs(
            lambda o: len(of_workspace(o, WS, "contact.assigned")) >= CONTACTS, timeout=60
        )
    async with running(settings) as stack:  # a restart: views hold only pinned rows
        await stack.send(*second_visits)
        outs = await stack.outputs(
            lambda o: any(
                x["data"]["contact_id"] == "new" for x in of_workspace(o, WS, "contact.assigned")
            ),
            timeout=60,
        )

    assigned = of_workspace(outs, WS, "contact.assigned")
    first = {o["data"]["contact_id"]: o["data"]["assignee_id"] for o in assigned[:CONTACTS]}
    again = {o["data"]["contact_id"]: o["data"] for o in assigned[CONTACTS:]}
    # VIPs go to their agent, the others by round robin (a new assignment only when it picks
    # another agent); either way from the assignee stored while they were away
    assert {c for c, d in again.items() if d["assignee_id"] == "ann"} == set(contacts[::2])
    assert all(d["previous_assignee_id"] == first.get(c) for c, d in again.items())
    assert again.keys() - {"new"} - set(contacts[::2])  # some others were reassigned too
    welcomes = [
        o for o in of_workspace(outs, WS, "message.requested") if "first-timer" in str(o["data"])
    ]
    assert len(welcomes) == CONTACTS + 1  # once per contact: not again on the second visits

    conn = await asyncpg.connect(fresh_database)
    try:
        stored = await conn.fetch(
            "SELECT tbl, key, value::text FROM projection_rows WHERE workspace_id = $1", WS
        )
        fields = await conn.fetchval(
            "SELECT value->'fields' FROM projection_rows"
            " WHERE workspace_id = $1 AND tbl = 'contacts' AND key = 'c0'",
            WS,
        )
        audit = await replay(fresh_database, rebuild=True)
        rebuilt = await conn.fetch(
            "SELECT tbl, key, value::text FROM projection_rows WHERE workspace_id = $1", WS
        )
    finally:
        await conn.close()
    assert audit.mismatches == []
    assert sorted(map(tuple, stored)) == sorted(map(tuple, rebuilt))
    assert fields == '{"lang": "es", "tier": "vip"}'


async def test_a_run_waiting_through_a_restart_reads_its_contact_when_it_wakes(
    kafka_bootstrap: str, fresh_database: str, topic_prefix: str
) -> None:
    """After a restart the view loads with its pinned rows: the contact of an open
    conversation whose run waits, though the timer that wakes the run names no contact."""
    settings = settings_for(kafka_bootstrap, fresh_database, topic_prefix)
    ws, now = "waits", datetime.now(UTC)  # the wait runs from the input's time: now, here
    greet = workflow(
        {"type": "send_message", "text": "One moment."},
        {"type": "wait", "duration": "6s"},
        {
            "type": "branch",
            "branches": [
                {
                    "name": "vip",
                    "when": {"all": [{"contact_field": "tier", "op": "eq", "value": "vip"}]},
                    "steps": [{"id": "vip", "type": "send_message", "text": "Hello, VIP."}],
                }
            ],
            "else": [{"id": "plain", "type": "send_message", "text": "Hello."}],
        },
        ws=ws,
        at=now - timedelta(seconds=1),
    )
    async with running(settings) as stack:
        await stack.send(greet, opened("c1", fields={"tier": "vip"}, ws=ws, at=now))
        await stack.outputs(lambda o: len(of_workspace(o, ws, "message.requested")) >= 1)
    async with running(settings) as stack:  # the timer falls due after the restart
        outs = await stack.outputs(
            lambda o: len(of_workspace(o, ws, "message.requested")) >= 2, timeout=60
        )
    texts = [str(o["data"]["text"]) for o in of_workspace(outs, ws, "message.requested")]
    assert texts == ["One moment.", "Hello, VIP."]
