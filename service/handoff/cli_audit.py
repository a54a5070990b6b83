"""The audit commands of the command line (contract v1.1, Audit commands): `replay --verify`,
`explain`, `state --at`, `simulate` and `log export`, and the database they read.

`handoff.cli` keeps their parsers and hands each its arguments here. They are not part of
`handoff.audit`, which may not import the application layer these need (the settings, the
embedded database): each handler reads the log through the audit's functions, on the DSN
and TLS setting the service uses, and says misuse, an empty log or an unreadable database in
a line with an exit code (0 answered, 1 nothing to answer or a difference, 2 misuse).
"""

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import orjson

from handoff.app.settings import Settings

if TYPE_CHECKING:
    from handoff.core.workflow import Workflow

__all__ = ["explain", "export", "simulate", "state", "verify", "with_database"]


def verify(settings: Settings, args: argparse.Namespace) -> int:
    """`replay --verify`: 0 when nothing differs, 1 on a difference, 2 on misuse."""
    for misused, why in (
        (not args.verify, "--workspace needs --verify"),
        (args.rebuild, "--verify writes nothing: not with --rebuild"),
        (not args.audit, "--verify re-decides every input: not with --no-audit"),
    ):
        if misused:
            print(f"handoff replay: {why}", file=sys.stderr)
            return 2
    from handoff.audit.verify import report, verify_database

    async def main(dsn: str) -> int:
        result = await verify_database(dsn, args.workspace, ssl=settings.database_sslmode)
        for line in report(result):
            print(line)
        if args.workspace is not None and not result.events and not result.differences:
            print(f"handoff replay: workspace {args.workspace!r} has no log", file=sys.stderr)
            return 2
        return 1 if result.differences else 0

    return with_database(settings, main)


def with_database(settings: Settings, main: Callable[[str], Coroutine[Any, Any, int]]) -> int:
    """Run `main` on the database's DSN: `HANDOFF_DATABASE_URL`, or the embedded one under
    `HANDOFF_DATA_DIR`, started for the command (or joined, when the service runs there).
    A database without handoff's log, or none to reach, is said in a line, exit 1."""
    import asyncpg

    def run(dsn: str) -> int:
        try:
            return asyncio.run(main(dsn))
        except asyncpg.UndefinedTableError as err:
            print(
                f"handoff: no event log in that database ({err}): is HANDOFF_DATABASE_URL or"
                " HANDOFF_DATA_DIR the service's?",
                file=sys.stderr,
            )
        except BrokenPipeError:  # the reader went away (`| head`): nobody left to tell
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
            print(f"handoff: cannot read the database: {err!r}", file=sys.stderr)
        return 1

    if settings.database_url:
        return run(settings.database_url)
    from handoff.adapters.embedded import EmbeddedPostgres

    postgres = EmbeddedPostgres(settings.data_dir / "postgres", borrow=True)
    try:
        return run(postgres.start())
    finally:
        postgres.stop()


def _backwards(command: str, args: argparse.Namespace) -> bool:
    """Whether the window ends before it starts (said in a line: misuse)."""
    if args.since is not None and args.until is not None and args.since > args.until:
        print(f"handoff {command}: --since is after --until", file=sys.stderr)
        return True
    return False


def simulate(settings: Settings, args: argparse.Namespace, workflow: "Workflow") -> int:
    """`simulate` of `workflow` (the document `--workflow` names, valid): 0 with a report, 1
    when the workspace has no log, 2 on misuse."""
    if workflow.workspace_id != args.workspace:
        print(
            f"handoff simulate: {args.workflow} is a workflow of workspace "
            f"{workflow.workspace_id!r}, not {args.workspace!r}",
            file=sys.stderr,
        )
        return 2
    if _backwards("simulate", args):
        return 2
    from handoff.audit.folded import EmptyLog
    from handoff.audit.simulate import as_json
    from handoff.audit.simulate import simulate as simulated
    from handoff.audit.simulate_chart import ChartUnavailable, can_draw, write_chart
    from handoff.audit.simulate_text import report

    if args.chart is not None:
        try:
            can_draw()
        except ChartUnavailable as err:
            print(f"handoff simulate: {err}", file=sys.stderr)
            return 2

    async def main(dsn: str) -> int:
        try:
            outcome = await simulated(
                dsn, args.workspace, workflow, args.since, args.until, ssl=settings.database_sslmode
            )
        except EmptyLog as err:
            print(f"handoff simulate: {err}", file=sys.stderr)
            return 1
        if args.json:
            print(orjson.dumps(as_json(outcome), option=orjson.OPT_INDENT_2).decode())
        else:
            print(report(outcome))
        if args.chart is not None:
            write_chart(outcome, args.chart)
        return 0

    return with_database(settings, main)


def export(settings: Settings, args: argparse.Namespace) -> int:
    """`log export`: 0 with the lines (none: nothing decided in the window), 1 when the
    workspace has no log, 2 on misuse."""
    if _backwards("log export", args):
        return 2
    from handoff.audit.export import export as exported
    from handoff.audit.folded import EmptyLog

    async def main(dsn: str) -> int:
        try:
            await exported(
                dsn,
                args.workspace,
                sys.stdout,
                args.since,
                args.until,
                ssl=settings.database_sslmode,
            )
        except EmptyLog as err:
            print(f"handoff log export: {err}", file=sys.stderr)
            return 1
        return 0

    return with_database(settings, main)


def explain(settings: Settings, args: argparse.Namespace) -> int:
    """`explain`: 0 with the trail, 1 when the log never mentions the contact."""
    from handoff.audit.explain import trail, trail_json
    from handoff.audit.explain_text import render

    async def main(dsn: str) -> int:
        entries = await trail(dsn, args.workspace, args.contact, ssl=settings.database_sslmode)
        if not entries:
            print(
                f"handoff explain: workspace {args.workspace!r} has no events of contact"
                f" {args.contact!r}",
                file=sys.stderr,
            )
            return 1
        if args.json:
            print(trail_json(args.workspace, args.contact, entries).decode())
        else:
            print(render(args.workspace, args.contact, entries))
        return 0

    return with_database(settings, main)


def state(settings: Settings, args: argparse.Namespace) -> int:
    """`state --at`: 0 with the projections, 1 when nothing of the workspace was decided by
    then."""
    from handoff.audit.state import render, state_at, state_json

    async def main(dsn: str) -> int:
        state = await state_at(dsn, args.workspace, args.at, ssl=settings.database_sslmode)
        if state is None:
            print(
                f"handoff state: workspace {args.workspace!r} has no events decided by"
                f" {args.at.isoformat()}",
                file=sys.stderr,
            )
            return 1
        print(state_json(state).decode() if args.json else render(state))
        return 0

    return with_database(settings, main)
