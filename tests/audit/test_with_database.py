"""The database the audit commands read: said in a line when it is not the service's, and
reached as the service reaches it (`HANDOFF_DATABASE_SSLMODE`)."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.audit.commands import Command
from tests.builders import WS

SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
"""What a PostgreSQL client sends first to ask for TLS (its startup message otherwise)."""


async def test_a_database_without_the_event_log_is_said_not_a_traceback(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    explain = Command("explain", "--workspace", "w", "--contact", "c")

    code, err = await explain(fresh_database, monkeypatch, capsys)

    assert code == 1
    assert "no event log in that database" in err
    assert "Traceback" not in err


@pytest.fixture
async def first_messages() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A TCP server that keeps the first 8 bytes of each connection and hangs up: (its DSN,
    what each connection sent first)."""
    received: list[bytes] = []

    async def first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(8))
        writer.close()

    server = await asyncio.start_server(first, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"postgresql://handoff@127.0.0.1:{port}/handoff", received


@pytest.mark.parametrize(
    "argv",
    [
        ("replay", "--verify"),
        ("explain", "--workspace", WS, "--contact", "c"),
        ("state", "--workspace", WS, "--at", "2026-12-07T09:00:00Z"),
        ("simulate", "--workspace", WS, "--workflow", "{document}"),
        ("log", "export", "--workspace", WS),
    ],
)
async def test_each_command_connects_with_the_services_tls_setting(
    first_messages: tuple[str, list[bytes]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: tuple[str, ...],
) -> None:
    """Given `HANDOFF_DATABASE_SSLMODE=disable` (a client's default on TCP asks for TLS
    first), when each audit command reads a server over TCP, then it does not ask for TLS:
    the setting the service connects with reaches every command."""
    dsn, received = first_messages
    document = tmp_path / "wf.yaml"
    document.write_text(
        f"id: wf\nworkspace_id: {WS}\ntrigger: {{type: conversation_opened}}\n"
        "steps: [{id: s1, type: assign_to, user_id: ann}]\n"
    )
    monkeypatch.setenv("HANDOFF_DATABASE_SSLMODE", "disable")
    command = Command(*(str(document) if a == "{document}" else a for a in argv))

    code, out = await command(dsn, monkeypatch, capsys)

    assert code == 1, out  # the server hangs up
    assert "cannot read the database" in out
    assert received
    assert SSL_REQUEST not in received
