"""The audit answers on the HTTP port: off unless a token is set, then only for a request
sending it, each the JSON of the matching command.

The service's own HTTP handler (`serve_http`) on a real log in PostgreSQL (`write_log`).
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import psutil
import pytest

from handoff.app.audit_http import AuditHttp
from handoff.app.http import serve_http
from handoff.app.metrics import Metrics
from handoff.app.settings import Settings
from tests.audit.logbook import write_log
from tests.builders import T0, WS, assign_team, opened, presence, team, user, workflow

TOKEN = "s3cret-token"


async def _ready() -> dict[str, str]:
    return {"database": "ok"}


async def _ask(
    port: int, method: str, path: str, token: str | None = None, body: bytes = b""
) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        auth = f"Authorization: Bearer {token}\r\n" if token is not None else ""
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 60)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, content = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), content


@pytest.fixture
async def logged(fresh_database: str) -> str:
    """Round robin over ann and bob; c1 goes to ann, c2 to bob."""
    await write_log(
        fresh_database,
        [
            *(user(a, at=T0) for a in ("ann", "bob")),
            *(presence(a, at=T0) for a in ("ann", "bob")),
            team("t", "ann", "bob", at=T0),
            workflow(assign_team("t"), id="wf", at=T0),
            opened("c1", at=T0 + timedelta(minutes=1)),
            opened("c2", at=T0 + timedelta(minutes=2)),
        ],
    )
    return fresh_database


@pytest.fixture
async def audit_port(logged: str) -> AsyncIterator[int]:
    audit = AuditHttp(TOKEN, lambda: logged)
    server = await serve_http(0, Metrics(), _ready, audit)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
        audit.close()


async def test_without_a_token_set_every_audit_path_is_not_found(logged: str) -> None:
    server = await serve_http(0, Metrics(), _ready)
    port = server.sockets[0].getsockname()[1]
    try:
        status, _ = await _ask(port, "GET", f"/audit/state?workspace={WS}&at=2030-01-01T00:00Z")
        assert status == 404
        assert (await _ask(port, "GET", "/healthz"))[0] == 200
    finally:
        server.close()
        await server.wait_closed()


async def test_a_request_without_the_token_or_with_another_is_refused(audit_port: int) -> None:
    path = f"/audit/state?workspace={WS}&at=2030-01-01T00:00Z"
    assert (await _ask(audit_port, "GET", path))[0] == 401
    assert (await _ask(audit_port, "GET", path, token="guess"))[0] == 401
    assert (await _ask(audit_port, "GET", path, token=TOKEN))[0] == 200


async def test_state_and_explain_answer_with_the_commands_json(audit_port: int) -> None:
    at = (T0 + timedelta(minutes=1, seconds=30)).isoformat().replace("+00:00", "Z")
    status, body = await _ask(audit_port, "GET", f"/audit/state?workspace={WS}&at={at}", TOKEN)
    assert status == 200, body
    state: dict[str, Any] = orjson.loads(body)
    assert state["open_contacts"] == {"ann": 1}  # c1 only: c2 came later

    status, body = await _ask(audit_port, "GET", f"/audit/explain?workspace={WS}&contact=c2", TOKEN)
    assert status == 200, body
    trail: dict[str, Any] = orjson.loads(body)
    assert trail["contact_id"] == "c2"
    assigned = [e for e in trail["entries"] if e["type"] == "contact.assigned"]
    assert [e["data"]["assignee_id"] for e in assigned] == ["bob"]
    standings = assigned[0]["assignment"]["candidates"]
    assert [(c["user_id"], c["eligible"]) for c in standings] == [("ann", True), ("bob", True)]

    status, _ = await _ask(
        audit_port, "GET", f"/audit/explain?workspace={WS}&contact=nobody", TOKEN
    )
    assert status == 404


async def test_simulate_takes_the_workflow_as_the_body(audit_port: int) -> None:
    document = orjson.dumps(
        {
            "id": "wf",
            "workspace_id": WS,
            "trigger": {"type": "conversation_opened"},
            "steps": [{"id": "s1", "type": "assign_to", "user_id": "ann"}],
        }
    )
    status, body = await _ask(
        audit_port, "POST", f"/audit/simulate?workspace={WS}", TOKEN, document
    )
    assert status == 200, body
    outcome: dict[str, Any] = orjson.loads(body)
    assert outcome["changed"] == [{"contact_id": "c2", "recorded": "bob", "simulated": "ann"}]

    status, body = await _ask(audit_port, "GET", f"/audit/simulate?workspace={WS}", TOKEN)
    assert status == 405
    status, body = await _ask(
        audit_port, "POST", f"/audit/simulate?workspace={WS}", TOKEN, b"steps: [1"
    )
    assert status == 400
    assert b"YAML" in body
    status, body = await _ask(audit_port, "GET", "/audit/state?at=2030-01-01T00:00Z", TOKEN)
    assert status == 400
    assert b"workspace" in body


def _audit_workers() -> list[psutil.Process]:
    """The spawned worker processes answering audits (children of this test process)."""
    workers: list[psutil.Process] = []
    for p in psutil.Process().children(recursive=True):
        try:
            if any("spawn_main" in part for part in p.cmdline()):
                workers.append(p)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue  # gone already, or a dead child not yet reaped: no worker
    return workers


async def test_a_dead_worker_costs_one_answer_and_close_stops_the_worker(logged: str) -> None:
    audit = AuditHttp(TOKEN, lambda: logged)
    server = await serve_http(0, Metrics(), _ready, audit)
    port = server.sockets[0].getsockname()[1]
    path = f"/audit/state?workspace={WS}&at=2030-01-01T00:00Z"
    try:
        assert (await _ask(port, "GET", path, TOKEN))[0] == 200
        (worker,) = _audit_workers()
        worker.kill()
        worker.wait(10)

        assert (await _ask(port, "GET", path, TOKEN))[0] == 500  # the one it was killed under
        assert (await _ask(port, "GET", path, TOKEN))[0] == 200  # a new worker answers
    finally:
        server.close()
        await server.wait_closed()
        audit.close()
    _gone, alive = psutil.wait_procs(_audit_workers(), timeout=10)
    assert not alive


async def test_no_answer_before_the_database_is_migrated(logged: str) -> None:
    audit = AuditHttp(TOKEN, lambda: None)
    server = await serve_http(0, Metrics(), _ready, audit)
    port = server.sockets[0].getsockname()[1]
    try:
        path = f"/audit/state?workspace={WS}&at=2030-01-01T00:00Z"
        assert (await _ask(port, "GET", path, TOKEN))[0] == 503
    finally:
        server.close()
        await server.wait_closed()
        audit.close()


async def test_requests_too_large_or_malformed_are_refused(audit_port: int) -> None:
    since_after_until = (
        f"/audit/simulate?workspace={WS}&since=2030-01-02T00:00Z&until=2030-01-01T00:00Z"
    )
    status, body = await _ask(audit_port, "POST", since_after_until, TOKEN, b"{}")
    assert status == 400
    assert b"since is after until" in body

    reader, writer = await asyncio.open_connection("127.0.0.1", audit_port)
    writer.write(b"GET /healthz HTTP/1.1\r\n" + b"X-Filler: 1\r\n" * 200 + b"\r\n")
    await writer.drain()
    assert (await asyncio.wait_for(reader.readline(), 10)).split()[1] == b"400"
    writer.close()

    reader, writer = await asyncio.open_connection("127.0.0.1", audit_port)
    writer.write(b"POST /audit/simulate HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n")
    await writer.drain()
    assert (await asyncio.wait_for(reader.readline(), 10)).split()[1] == b"400"
    writer.close()


def test_an_empty_token_leaves_the_audit_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOFF_AUDIT_TOKEN", "")
    assert Settings().audit_token is None
    monkeypatch.setenv("HANDOFF_AUDIT_TOKEN", "t0ken")
    token = Settings().audit_token
    assert token is not None
    assert token.get_secret_value() == "t0ken"
