"""`/healthz`, `/readyz` and `/metrics` on one port: what orchestrators and Prometheus ask.

A few lines of asyncio serve three GETs; a web framework would be the larger dependency.
"""

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from handoff.app.metrics import Metrics

__all__ = ["serve_http"]

log = structlog.get_logger("handoff.http")

Readiness = Callable[[], Awaitable[dict[str, str]]]
"""Each check: "ok", or what is wrong."""


async def serve_http(port: int, metrics: Metrics, readiness: Readiness) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass  # headers: nothing here needs them
            parts = request.decode(errors="replace").split()
            path = parts[1].split("?")[0] if len(parts) > 1 else ""
            status, content_type, body = await _route(path, metrics, readiness)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "0.0.0.0", port)
    log.info("http listening", port=port, paths=["/healthz", "/readyz", "/metrics"])
    return server


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
