"""`handoff simulate` (contract v1.1, Audit commands): a workspace's recorded inputs re-decided
as if a workflow document had been published at the window's start.

Each scenario puts a real log and its projections in PostgreSQL (`write_log`), then runs the
command as a user would, through `handoff.cli.main` on `HANDOFF_DATABASE_URL`; the last one
drives the pure part (`Simulation`) with log rows made in memory.
"""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from handoff.adapters.cloudevents import dump_event
from handoff.adapters.pg_log import Logged
from handoff.audit.simulate import Outcome, Simulation
from handoff.core.envelope import Envelope
from handoff.core.inputs import WorkflowPublished
from tests.audit.commands import Command
from tests.audit.logbook import write_log
from tests.builders import T0, WS, assign_team, opened, presence, team, user, workflow

AGENTS = ("ann", "bob", "cid")


def round_robin_day() -> list[Envelope]:
    """Three online agents in team t, the live workflow `wf` (round robin in t), and six
    conversations a minute apart: round robin gives c1 and c4 to ann, c2 and c5 to bob, c3
    and c6 to cid."""
    return [
        *(user(a, at=T0) for a in AGENTS),
        *(presence(a, at=T0) for a in AGENTS),
        team("t", *AGENTS, at=T0),
        workflow(assign_team("t"), id="wf", at=T0),
        *(opened(f"c{n}", at=T0 + timedelta(minutes=n)) for n in range(1, 7)),
    ]


def document(tmp_path: Path, *steps: dict[str, Any], id: str, ws: str = WS) -> str:
    """A workflow document file of `steps`, triggered by conversations opened."""
    published = workflow(*steps, id=id, ws=ws)
    assert isinstance(published, WorkflowPublished)
    path = tmp_path / f"{ws}-{id}.json"
    path.write_bytes(orjson.dumps(published.data.definition.model_dump(mode="json")))
    return str(path)


simulate = Command("simulate", "--workspace", WS)


async def simulate_json(
    dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> dict[str, Any]:
    code, out = await simulate(dsn, monkeypatch, capsys, "--json", *args)
    assert code == 0, out
    result: dict[str, Any] = orjson.loads(out)
    return result


async def test_a_specific_user_workflow_moves_exactly_the_contacts_others_had(
    fresh_database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """Given round-robin traffic, when `wf` is simulated as "assign to ann", then the
    contacts round robin gave bob and cid are listed as going to ann, and ann's own are
    not; the recorded publish of `wf` in the window is skipped, so ann takes all six."""
    await write_log(fresh_database, round_robin_day())
    to_ann = document(tmp_path, {"type": "assign_to", "user_id": "ann"}, id="wf")

    result = await simulate_json(fresh_database, monkeypatch, capsys, "--workflow", to_ann)

    assert result["recorded"]["assignments"] == {"ann": 2, "bob": 2, "cid": 2}
    assert result["simulated"]["assignments"] == {"ann": 6}
    assert result["changed"] == [
        {"contact_id": "c2", "recorded": "bob", "simulated": "ann"},
        {"contact_id": "c3", "recorded": "cid", "simulated": "ann"},
        {"contact_id": "c5", "recorded": "bob", "simulated": "ann"},
        {"contact_id": "c6", "recorded": "cid", "simulated": "ann"},
    ]
    assert result["replaces"] is True
    assert result["skipped_publishes"] == 1
    assert result["inputs"] == len(round_robin_day()) - 1
    assert result["recorded"]["peak_open_contacts"] == {"ann": 2, "bob": 2, "cid": 2}
    assert result["simulated"]["peak_open_contacts"] == {"ann": 6}
    assert result["simulated"]["fairness"] == {"busiest": "ann", "least_busy": "bob", "spread": 6}
    assert result["recorded"]["fairness"]["spread"] == 0


async def test_the_live_log_and_projections_are_untouched(
    fresh_database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """Given a log and its projections, when a simulation that changes every assignment
    runs, then the log, the projections and the workspace's position are as they were."""
    await write_log(fresh_database, round_robin_day())
    to_ann = document(tmp_path, {"type": "assign_to", "user_id": "ann"}, id="wf")
    before = await snapshot(fresh_database)

    code, out = await simulate(fresh_database, monkeypatch, capsys, "--workflow", to_ann)

    assert code == 0, out
    assert await snapshot(fresh_database) == before
    assert before["cid"] == [("cid", "2")]  # a projection row the simulation changes


async def snapshot(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            "log": await conn.fetchval("SELECT count(*) FROM event_log"),
            "last": await conn.fetchval("SELECT max(seq) FROM event_log"),
            "rows": await conn.fetchval("SELECT count(*) FROM projection_rows"),
            "cid": [
                tuple(r)
                for r in await conn.fetch(
                    "SELECT key, value::text FROM projection_rows"
                    " WHERE tbl = 'open_contacts' AND key = 'cid'"
                )
            ],
            "workspaces": [tuple(r) for r in await conn.fetch("SELECT * FROM workspaces")],
        }
    finally:
        await conn.close()


async def test_a_new_workflow_runs_beside_the_live_one_within_the_window(
    fresh_database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """Given round-robin traffic, when a new workflow `zz` (assign to cid; after `wf` in id
    order) is simulated from c3 to c5, then round robin still assigns as recorded and `zz`
    then moves ann's and bob's contacts to cid: only c3 to c5 count."""
    await write_log(fresh_database, round_robin_day())
    to_cid = document(tmp_path, {"type": "assign_to", "user_id": "cid"}, id="zz")
    since, until = T0 + timedelta(minutes=3), T0 + timedelta(minutes=5)

    result = await simulate_json(
        fresh_database,
        monkeypatch,
        capsys,
        "--workflow",
        to_cid,
        "--since",
        since.isoformat(),
        "--until",
        until.isoformat(),
    )

    assert result["inputs"] == 3  # c3, c4, c5: both bounds inclusive
    assert result["recorded"]["assignments"] == {"ann": 1, "bob": 1, "cid": 1}
    assert result["simulated"]["assignments"] == {"ann": 1, "bob": 1, "cid": 3}
    assert result["simulated"]["reassignments"] == {"cid": 2}
    assert result["changed"] == [
        {"contact_id": "c4", "recorded": "ann", "simulated": "cid"},
        {"contact_id": "c5", "recorded": "bob", "simulated": "cid"},
    ]
    assert result["replaces"] is False
    assert result["skipped_publishes"] == 0
    assert datetime.fromisoformat(result["since"]) == since


async def test_a_queue_timeout_fires_in_event_time_in_the_simulation(
    fresh_database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """Given c1 queued for team t while ann was offline and served when she came online 30
    minutes later, when the same workflow is simulated with a 10-minute queue timeout, then
    c1 times out at 10 minutes (a timer that never fired live) and nobody gets it."""
    await write_log(
        fresh_database,
        [
            user("ann", at=T0),
            team("t", "ann", at=T0),
            workflow(assign_team("t", only_online=True), id="wf", at=T0),
            opened("c1", at=T0 + timedelta(minutes=1)),
            presence("ann", at=T0 + timedelta(minutes=31)),
        ],
    )
    impatient = document(tmp_path, assign_team("t", only_online=True, timeout="10m"), id="wf")

    result = await simulate_json(fresh_database, monkeypatch, capsys, "--workflow", impatient)

    assert result["changed"] == [{"contact_id": "c1", "recorded": "ann", "simulated": None}]
    assert result["timers"] == {"recorded": 0, "simulated": 1}
    recorded, simulated = result["recorded"]["queue"], result["simulated"]["queue"]
    assert (recorded["queued"], recorded["served"], recorded["timed_out"]) == (1, 1, 0)
    assert recorded["wait_median_s"] == 30 * 60
    assert result["recorded"]["queue_waits"]["ann"]["served"] == 1
    assert (simulated["queued"], simulated["served"], simulated["timed_out"]) == (1, 0, 1)
    assert simulated["waiting_at_end"] == 0


async def test_the_report_the_json_and_the_chart(
    fresh_database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """Given round-robin traffic, when simulated with a chart, then the text names each
    agent and the moved contacts and says what it cannot know, `--json` has the contract's
    keys, and the chart is a PNG."""
    await write_log(fresh_database, round_robin_day())
    to_ann = document(tmp_path, {"type": "assign_to", "user_id": "ann"}, id="wf")
    chart = tmp_path / "chart.png"

    code, text = await simulate(
        fresh_database, monkeypatch, capsys, "--workflow", to_ann, "--chart", str(chart)
    )
    result = await simulate_json(fresh_database, monkeypatch, capsys, "--workflow", to_ann)

    assert code == 0, text
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "4 contact(s) would have another assignee" in text
    assert "What it cannot know: Contacts and agents are replayed as they behaved" in text
    rows = {line.split()[0]: line.split()[1:3] for line in text.splitlines() if line.strip()}
    assert rows["ann"] == ["2", "6"]
    assert rows["bob"] == ["2", "0"]
    assert {"recorded", "simulated", "changed"} <= result.keys()
    assert set(result["changed"][0]) == {"contact_id", "recorded", "simulated"}
    assert isinstance(result["recorded"]["assignments"], dict)


async def test_misuse_is_refused_before_the_log_is_read(
    fresh_database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """A document of another workspace, or a window that ends before it starts: exit 2; a
    workspace with no log: exit 1."""
    await write_log(fresh_database, round_robin_day())
    elsewhere = document(tmp_path, {"type": "assign_to", "user_id": "ann"}, id="wf", ws="ws-2")
    to_ann = document(tmp_path, {"type": "assign_to", "user_id": "ann"}, id="wf")
    nobodys = document(tmp_path, {"type": "assign_to", "user_id": "ann"}, id="wf", ws="nobody")

    other, out_other = await simulate(fresh_database, monkeypatch, capsys, "--workflow", elsewhere)
    backwards, out_backwards = await simulate(
        fresh_database,
        monkeypatch,
        capsys,
        "--workflow",
        to_ann,
        "--since",
        "2026-01-02T00:00:00Z",
        "--until",
        "2026-01-01T00:00:00Z",
    )
    empty, out_empty = await Command("simulate", "--workspace", "nobody")(
        fresh_database, monkeypatch, capsys, "--workflow", nobodys
    )

    assert (other, backwards, empty) == (2, 2, 1)
    assert "workflow of workspace 'ws-2', not 'ws-1'" in out_other
    assert "--since is after --until" in out_backwards
    assert "workspace 'nobody' has no events in the log" in out_empty


def fed(inputs: list[Envelope], document: Envelope, until: datetime | None) -> Outcome:
    """The simulation of `document` over a log of `inputs` alone, made in memory."""
    assert isinstance(document, WorkflowPublished)
    simulation = Simulation(WS, document.data.definition, until=until)
    for seq, event in enumerate(inputs, 1):
        simulation.feed(Logged(WS, seq, True, event.time, 2, dump_event(event).decode(), event))
    return simulation.finish()


def test_timers_due_by_until_fire_at_the_end_of_the_window() -> None:
    """Given c1 queued while nobody is online and nothing after it (no database), a
    10-minute queue timeout fires when `until` is an hour later, and not when the window
    ends at the last event."""
    inputs = [user("ann", at=T0), team("t", "ann", at=T0), opened("c1", at=T0)]
    impatient = workflow(assign_team("t", only_online=True, timeout="10m"), id="wf")

    late = fed(inputs, impatient, T0 + timedelta(hours=1)).simulated
    at_last_event = fed(inputs, impatient, None).simulated

    assert (late.timed_out, late.waiting_at_end) == (1, 0)
    assert (at_last_event.timed_out, at_last_event.waiting_at_end) == (0, 1)


def test_rows_after_until_are_not_re_decided() -> None:
    """Given c1 queued at T0 and ann online at T0+5m, a window ending at T0+1m leaves c1
    waiting: ann's coming online is after it."""
    inputs = [
        user("ann", at=T0),
        team("t", "ann", at=T0),
        opened("c1", at=T0),
        presence("ann", at=T0 + timedelta(minutes=5)),
    ]
    routed = workflow(assign_team("t", only_online=True), id="wf")

    outcome = fed(inputs, routed, T0 + timedelta(minutes=1))

    assert outcome.inputs == 3
    assert outcome.simulated.assignments == {}
    assert outcome.simulated.waiting_at_end == 1
    assert fed(inputs, routed, None).simulated.assignments == {"ann": 1}
