"""`/healthz`, `/readyz` and `/metrics` on one port: what orchestrators and Prometheus ask;
and, when `HANDOFF_AUDIT_TOKEN` is set, the audit answers under `/audit/` (`audit_http`).

A few lines of asyncio serve these; a web framework would be the larger dependency.
"""

import asyncio
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlsplit

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from handoff.app.audit_http import AuditHttp, Request
from handoff.app.metrics import Metrics

__all__ = ["serve_http"]

log = structlog.get_logger("handoff.http")

Readiness = Callable[[], Awaitable[dict[str, str]]]
"""Each check: "ok", or what is wrong."""


MAX_BODY = 1024 * 1024
"""Bytes a request body may hold (a workflow document to simulate)."""
MAX_HEADERS = 100
"""Header lines a request may send: a client sending more holds memory for nothing."""
REQUEST_DEADLINE = 10.0
"""Seconds a client has to send its whole request (a slow one holds a connection)."""


async def serve_http(
    port: int, metrics: Metrics, readiness: Readiness, audit: AuditHttp | None = None
) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                request = await asyncio.wait_for(_read_request(reader), REQUEST_DEADLINE)
            except ValueError:  # a line over the stream's limit (64 KiB)
                request = None
            if request is None:
                status, content_type, body = "400 Bad Request", "text/plain", b"bad request\n"
            elif request.path.startswith("/audit/"):
                status, content_type, body = (
                    await audit.answer(request)
                    if audit is not None
                    else ("404 Not Found", "text/plain", b"not found\n")
                )
            else:
                status, content_type, body = await _route(request.path, metrics, readiness)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "0.0.0.0", port)
    log.info("http listening", port=port, paths=["/healthz", "/readyz", "/metrics"])
    return server


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    """The request line, the headers this server reads, and a body of `Content-Length` bytes
    (at most `MAX_BODY`); None when it is not one."""
    line = await reader.readline()
    parts = line.decode(errors="replace").split()
    if len(parts) < 2:
        return None
    headers: dict[str, str] = {}
    lines = 0
    while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
        lines += 1
        if lines > MAX_HEADERS:
            return None
        name, _, value = header.decode(errors="replace").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length", "0")
    if not length.isdigit() or int(length) > MAX_BODY:
        return None
    body = await reader.readexactly(int(length)) if int(length) else b""
    url = urlsplit(parts[1])
    return Request(parts[0], url.path, dict(parse_qsl(url.query)), headers, body)


async def _route(path: str, metrics: Metrics, readiness: Readiness) -> tuple[str, str, bytes]:
    match path:
        case "/healthz":
            return "200 OK", "text/plain", b"ok\n"
        case "/readyz":
            checks = await readiness()
            lines = "".join(f"{name}: {state}\n" for name, state in checks.items())
            ready = all(state == "ok" for state in checks.values())
            status = "200 OK" if ready else "503 Service Unavailable"
            return status, "text/plain", lines.encode()
        case "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest(metrics.registry)
        case _:
            return "404 Not Found", "text/plain", b"not found\n"
