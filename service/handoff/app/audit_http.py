"""The audit answers on the HTTP port, for the supervisor page: explain, state, simulate.

Off unless `HANDOFF_AUDIT_TOKEN` is set (every `/audit/` path is then 404), and then only for
a request that sends it as `Authorization: Bearer TOKEN`. Read-only: each answer folds the
log in a view of its own (`handoff.audit`), as the commands do, and returns their `--json`.

A fold is seconds of Python on a long log: run in the service's process it would hold the
event loop, and with it every partition's consumption. So each answer runs in a worker
process of its own, one at a time (a second request waits for the first).

    GET  /audit/explain?workspace=W&contact=C
    GET  /audit/state?workspace=W&at=TIME
    POST /audit/simulate?workspace=W[&since=TIME][&until=TIME]   body: the workflow (YAML/JSON)
"""

import argparse
import asyncio
import hmac
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime

import orjson
import structlog
import yaml
from pydantic import ValidationError

from handoff.adapters.pg_log import SSLMode
from handoff.audit.explain import trail, trail_json
from handoff.audit.simulate import EmptyLog, as_json, simulate
from handoff.audit.state import state_at, state_json
from handoff.audit.times import parse_time
from handoff.core.problems import describe_workflow
from handoff.core.workflow import Workflow

__all__ = ["AuditHttp", "Request"]

log = structlog.get_logger("handoff.http")

Answer = tuple[str, str, bytes]
"""(status line, content type, body)."""


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """By lower-case name."""
    body: bytes


class _BadRequest(Exception):
    """What the caller got wrong, said back to them as a 400."""


class AuditHttp:
    def __init__(
        self, token: str, dsn: Callable[[], str | None], ssl: SSLMode | None = None
    ) -> None:
        """`dsn`: the database's, once the service has one (None before: 503); `ssl` as the
        service connects (`HANDOFF_DATABASE_SSLMODE`)."""
        self._token = token.encode()
        self._dsn = dsn
        self._ssl = ssl
        self._workers: ProcessPoolExecutor | None = None
        self._one_at_a_time = asyncio.Lock()

    async def answer(self, request: Request) -> Answer:
        scheme, _, sent = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            sent.strip().encode(), self._token
        ):
            return "401 Unauthorized", "text/plain", b"send the audit token as a bearer token\n"
        routes = {
            "/audit/explain": "GET",
            "/audit/state": "GET",
            "/audit/simulate": "POST",
        }
        if request.path not in routes:
            return "404 Not Found", "text/plain", b"not found\n"
        if request.method != routes[request.path]:
            return "405 Method Not Allowed", "text/plain", f"use {routes[request.path]}\n".encode()
        dsn = self._dsn()
        if dsn is None:
            return "503 Service Unavailable", "text/plain", b"the database is not ready\n"
        async with self._one_at_a_time:
            loop = asyncio.get_running_loop()
            try:
                status, body = await loop.run_in_executor(
                    self._pool(),
                    answer_in_process,
                    dsn,
                    self._ssl,
                    request.path,
                    request.query,
                    request.body,
                )
            except Exception as err:
                if isinstance(err, BrokenProcessPool):
                    self._workers = None  # the worker died (killed, out of memory): a new one
                log.exception("audit answer failed", path=request.path)
                return "500 Internal Server Error", "text/plain", b"the audit failed; see the log\n"
        kind = "application/json" if status.startswith("200") else "text/plain"
        return status, kind, body

    def _pool(self) -> ProcessPoolExecutor:
        if self._workers is None:
            # Spawned, not forked: a fork would copy the service's loop and connections.
            self._workers = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return self._workers

    def close(self) -> None:
        """Stop the worker without waiting for an answer in progress: a long simulation must
        not hold the service's shutdown (nor its loop) past the orchestrator's grace."""
        workers, self._workers = self._workers, None
        if workers is None:
            return
        # `terminate_workers()` comes with Python 3.14; until then the pool's own processes.
        for process in list(getattr(workers, "_processes", {}).values()):
            process.terminate()
        workers.shutdown(wait=False, cancel_futures=True)


def answer_in_process(
    dsn: str, ssl: SSLMode | None, path: str, query: dict[str, str], body: bytes
) -> tuple[str, bytes]:
    """In the worker: (status line, body) of one audit question."""
    try:
        return asyncio.run(_answer(dsn, ssl, path, query, body))
    except _BadRequest as err:
        return "400 Bad Request", f"{err}\n".encode()


async def _answer(
    dsn: str, ssl: SSLMode | None, path: str, query: dict[str, str], body: bytes
) -> tuple[str, bytes]:
    workspace = _required(query, "workspace")
    match path:
        case "/audit/explain":
            contact = _required(query, "contact")
            entries = await trail(dsn, workspace, contact, ssl=ssl)
            if not entries:
                return "404 Not Found", b"the log never mentions that contact\n"
            return "200 OK", trail_json(workspace, contact, entries)
        case "/audit/state":
            state = await state_at(dsn, workspace, _time(_required(query, "at")), ssl=ssl)
            if state is None:
                return "404 Not Found", b"nothing of that workspace was decided by then\n"
            return "200 OK", state_json(state)
        case _:
            since, until = (_time(query[k]) if k in query else None for k in ("since", "until"))
            if since is not None and until is not None and since > until:
                raise _BadRequest("since is after until")
            try:
                outcome = await simulate(
                    dsn, workspace, _workflow(body, workspace), since, until, ssl=ssl
                )
            except EmptyLog as err:
                return "404 Not Found", f"{err}\n".encode()
            return "200 OK", orjson.dumps(as_json(outcome))


def _required(query: dict[str, str], name: str) -> str:
    value = query.get(name, "")
    if not value:
        raise _BadRequest(f"the query needs {name}=")
    return value


def _time(text: str) -> datetime:
    try:
        return parse_time(text)
    except argparse.ArgumentTypeError as err:
        raise _BadRequest(str(err)) from err


def _workflow(body: bytes, workspace: str) -> Workflow:
    try:
        document = yaml.safe_load(body)
    except yaml.YAMLError as err:
        raise _BadRequest(f"the body is not YAML or JSON: {err}") from err
    try:
        workflow = Workflow.model_validate(document)
    except ValidationError as err:
        raise _BadRequest("; ".join(describe_workflow(err, document))) from err
    if workflow.workspace_id != workspace:
        raise _BadRequest(f"the workflow is of workspace {workflow.workspace_id!r}")
    return workflow
