"""The service as operators see it: /healthz, /readyz and /metrics on HANDOFF_HTTP_PORT."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from handoff.app.replay import replay
from handoff_projections import FORMAT
from tests.builders import assign_team, opened, presence, team, user, workflow
from tests.integration.harness import Stack, process_env, routed, settings_for, start_process

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    await writer.drain()
    response = (await reader.read()).decode()
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition("\r\n\r\n")
    return int(head.split()[1]), body


def _sample(metrics: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` that carry `labels`, in Prometheus text format."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith((f"{name}{{", f"{name} "))
        and all(f'{k}="{v}"' in line for k, v in labels.items())
    )


async def _ready(port: int, process: subprocess.Popen[bytes]) -> tuple[int, str]:
    """/readyz once it answers 200 (the process is joining its group until then)."""
    for _ in range(120):
        assert process.poll() is None, "handoff run exited"
        try:
            status, body = await _get(port, "/readyz")
        except OSError:  # not listening yet
            status, body = 0, ""
        if status == 200:
            return status, body
        await asyncio.sleep(0.5)
    return status, body


async def test_health_readiness_and_metrics_on_the_http_port(
    kafka_bootstrap: str, fresh_database: str, topic_prefix: str, tmp_path: Path
) -> None:
    port = _free_port()
    settings = settings_for(kafka_bootstrap, fresh_database, topic_prefix, http_port=port)
    ws = "ops"
    process = start_process(process_env(settings), tmp_path / "handoff.log")
    stack = Stack(settings)
    try:
        status, body = await _ready(port, process)
        assert status == 200, body
        assert await _get(port, "/healthz") == (200, "ok\n")
        assert body.splitlines() == [
            "database: ok",
            "migrations: ok",
            "projections: ok",
            "kafka_partitions_assigned: ok",
            "outbox: ok",
            "partitions: ok",
        ]
        await stack.send(
            user("ann", ws=ws),
            presence("ann", ws=ws),
            team("t", "ann", ws=ws),
            workflow(assign_team("t", only_online=True), ws=ws),
            opened("c1", ws=ws),
            presence("ann", "offline", ws=ws),
            opened("c2", ws=ws),
        )
        await stack.send_raw("topic_conversations", b"{broken", key=ws.encode())
        await stack.outputs(lambda o: len(routed(o, ws)) >= 2)
        await asyncio.sleep(1.5)  # the gauges are refreshed with the timer poll, once a second
        status, metrics = await _get(port, "/metrics")
        assert await _get(port, "/nowhere") == (404, "not found\n")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        await stack.close()
    assert status == 200
    assert _sample(metrics, "handoff_events_consumed_total") >= 8
    assert _sample(metrics, "handoff_events_applied_total", type="conversation.opened") == 2
    assert _sample(metrics, "handoff_events_dead_lettered_total", reason="not_json") == 1
    assert (
        _sample(metrics, "handoff_decisions_total", type="contact.assigned", strategy="round_robin")
        == 1
    )
    assert _sample(metrics, "handoff_decisions_total", type="assignment.queued") == 1
    assert _sample(metrics, "handoff_end_to_end_seconds_count") == 7  # the accepted inputs
    assert _sample(metrics, "handoff_batch_seconds_count") >= 1
    assert _sample(metrics, "handoff_partitions_assigned") == 4
    assert "handoff_consumer_lag{" in metrics
    assert "handoff_outbox_backlog " in metrics
    assert "handoff_timers_due " in metrics


async def test_projections_folded_by_an_older_version_wait_for_a_rebuild(
    kafka_bootstrap: str, fresh_database: str, topic_prefix: str, tmp_path: Path
) -> None:
    """Given a log routed by a version whose projections lack v1.1's rows (format 1), when
    this version starts, then it says so on /readyz and routes nothing until `handoff replay
    --rebuild` has folded the log again; then it goes on where it stood."""
    port = _free_port()
    settings = settings_for(kafka_bootstrap, fresh_database, topic_prefix, http_port=port)
    ws = "upgrade"
    stack = Stack(settings)
    process = start_process(process_env(settings), tmp_path / "first.log")
    try:
        assert (await _ready(port, process))[0] == 200
        await stack.send(
            user("ann", ws=ws),
            presence("ann", ws=ws),
            team("t", "ann", ws=ws),
            workflow(assign_team("t", only_online=True), ws=ws),
            opened("c1", ws=ws),
        )
        await stack.outputs(lambda o: len(routed(o, ws)) >= 1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    conn = await asyncpg.connect(fresh_database)
    await conn.execute("UPDATE projection_format SET version = 1")  # as an older version left it
    process = start_process(process_env(settings), tmp_path / "second.log")
    try:
        for _ in range(120):
            try:
                status, body = await _get(port, "/readyz")
            except OSError:
                status, body = 0, ""
            if "format 1" in body:
                break
            await asyncio.sleep(0.5)
        assert status == 503, body
        assert "projections: stored projections are format 1" in body
        assert "handoff replay --rebuild" in body
        await stack.send(opened("c2", ws=ws))
        await asyncio.sleep(3)
        assert routed(await stack.outputs(lambda o: True), ws) == [
            ("contact.assigned", "c1", "ann")
        ]
        await replay(fresh_database, rebuild=True, audit=False)
        assert await conn.fetchval("SELECT version FROM projection_format") == FORMAT
        assert (await _ready(port, process))[0] == 200
        outs = await stack.outputs(lambda o: len(routed(o, ws)) >= 2)
        assert routed(outs, ws) == [
            ("contact.assigned", "c1", "ann"),
            ("contact.assigned", "c2", "ann"),
        ]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        await conn.close()
        await stack.close()
    assert "waiting for a rebuild" in (tmp_path / "second.log").read_text()


async def test_a_bad_setting_names_its_variable_and_stops_the_start() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "handoff.cli",
        "run",
        env={**os.environ, "HANDOFF_PARTITIONS": "many"},
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"HANDOFF_PARTITIONS: Input should be a valid integer" in err
