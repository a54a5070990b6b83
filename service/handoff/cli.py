"""The `handoff` command line (contract: Command line).

handoff run                       the service (embedded broker and database unless configured)
handoff events send FILE          publish CloudEvents JSON lines to the right input topics
handoff events tail               print what comes out on the output topics, a line an event
handoff workflow validate FILE    check a workflow document (YAML or JSON)
handoff workflow publish FILE     publish it as `workflow.published`
"""

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from handoff import cli_audit
from handoff.app.settings import Settings

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as err:
        for e in err.errors(include_url=False):
            name = "HANDOFF_" + "_".join(str(p) for p in e["loc"]).upper()
            print(f"handoff: {name}: {e['msg']} (got {e['input']!r})", file=sys.stderr)
        return 2
    command: int = args.handler(settings, args)
    return command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="handoff", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run the service")
    run.set_defaults(handler=_run)

    events = sub.add_parser("events", help="send or tail events").add_subparsers(required=True)
    send = events.add_parser("send", help="publish CloudEvents JSON lines from FILE ('-': stdin)")
    send.add_argument("file")
    send.set_defaults(handler=_send)
    tail = events.add_parser("tail", help="print the events on the output topics")
    tail.add_argument("--from-beginning", action="store_true")
    tail.add_argument("--json", action="store_true", help="print the raw CloudEvents")
    tail.add_argument("--timeout", type=float, default=None, help="stop after S idle seconds")
    tail.set_defaults(handler=_tail)

    from handoff.demo.options import add_arguments as demo_arguments

    demo = sub.add_parser(
        "demo", help="play a simulated day through the embedded stack and the service"
    )
    demo_arguments(demo)
    demo.set_defaults(handler=_demo)

    from handoff.bench.options import add_arguments as bench_arguments

    bench = sub.add_parser("bench", help="measure handoff against the bare Kafka pipe")
    bench_arguments(bench)
    bench.set_defaults(handler=_bench)

    from handoff.soak.options import add_arguments as soak_arguments

    soak = sub.add_parser(
        "soak", help="run instances under a mixed stream with faults; account for every event"
    )
    soak_arguments(soak)
    soak.set_defaults(handler=_soak)

    replay = sub.add_parser(
        "replay", help="re-decide the event log to audit it; --rebuild rewrites the projections"
    )
    replay.add_argument("--rebuild", action="store_true", help="stop the service first")
    replay.add_argument(
        "--no-audit",
        dest="audit",
        action="store_false",
        help="only fold the log (with --rebuild: a faster rebuild that re-decides nothing)",
    )
    replay.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="processes folding ranges of workspaces side by side [the CPU count]",
    )
    replay.add_argument(
        "--verify",
        action="store_true",
        help="re-decide the log and rebuild the projections aside, and compare both with the"
        " logged decisions and the live projections (beside a running service)",
    )
    replay.add_argument("--workspace", metavar="W", help="with --verify: this workspace alone")
    replay.set_defaults(handler=_replay)

    workflow = sub.add_parser("workflow", help="workflow documents").add_subparsers(required=True)
    validate = workflow.add_parser("validate", help="check a workflow document")
    validate.add_argument("file")
    validate.set_defaults(handler=_validate)
    publish = workflow.add_parser("publish", help="publish a workflow document")
    publish.add_argument("file")
    publish.set_defaults(handler=_publish)

    from handoff.audit.times import parse_time

    simulate = sub.add_parser(
        "simulate", help="re-decide a workspace's recorded inputs as if a workflow were published"
    )
    simulate.add_argument("--workspace", metavar="W", required=True)
    simulate.add_argument(
        "--workflow", metavar="FILE", required=True, help="a workflow document (YAML or JSON)"
    )
    simulate.add_argument(
        "--since",
        metavar="TIME",
        type=parse_time,
        help="ISO 8601 with offset [the workspace's first event]",
    )
    simulate.add_argument(
        "--until", metavar="TIME", type=parse_time, help="ISO 8601 with offset [its last event]"
    )
    simulate.add_argument("--json", action="store_true", help="print the figures as JSON")
    simulate.add_argument(
        "--chart", metavar="FILE.png", type=Path, help="draw assignments per agent (matplotlib)"
    )
    simulate.set_defaults(handler=_simulate)

    log = sub.add_parser("log", help="the event log").add_subparsers(required=True)
    export = log.add_parser("export", help="print a workspace's log as CloudEvents JSON lines")
    export.add_argument("--workspace", metavar="W", required=True)
    export.add_argument("--since", metavar="TIME", type=parse_time, help="ISO 8601 with offset")
    export.add_argument("--until", metavar="TIME", type=parse_time, help="ISO 8601 with offset")
    export.set_defaults(handler=cli_audit.export)

    explain = sub.add_parser("explain", help="a contact's decision trail, from the event log")
    explain.add_argument("--workspace", metavar="W", required=True)
    explain.add_argument("--contact", metavar="C", required=True)
    explain.add_argument("--json", action="store_true", help="print the trail as JSON")
    explain.set_defaults(handler=cli_audit.explain)

    state = sub.add_parser("state", help="a workspace's projections as they stood at a time")
    state.add_argument("--workspace", metavar="W", required=True)
    state.add_argument(
        "--at", metavar="TIME", required=True, type=parse_time, help="ISO 8601 with offset"
    )
    state.add_argument("--json", action="store_true", help="print every table as JSON")
    state.set_defaults(handler=cli_audit.state)
    return parser


def _run(settings: Settings, args: argparse.Namespace) -> int:
    from handoff.app.logs import configure
    from handoff.app.service import serve

    configure(settings.log_level)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    asyncio.run(main())
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from handoff.demo.options import options_from
    from handoff.demo.run import run

    return run(settings, options_from(args))


def _bench(settings: Settings, args: argparse.Namespace) -> int:
    from handoff.bench.options import options_from
    from handoff.bench.run import run

    return run(settings, options_from(args))


def _soak(settings: Settings, args: argparse.Namespace) -> int:
    from handoff.soak.options import options_from
    from handoff.soak.run import run

    return run(settings, options_from(args))


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    if args.verify or args.workspace is not None:
        return cli_audit.verify(settings, args)
    from handoff.app.replay import replay

    async def main(dsn: str) -> int:
        result = await replay(
            dsn,
            rebuild=args.rebuild,
            audit=args.audit,
            workers=args.workers,
            ssl=settings.database_sslmode,
        )
        print(
            f"replayed {result.events} events ({result.inputs} inputs) of "
            f"{result.workspaces} workspace(s): "
            + (f"{len(result.mismatches)} mismatch(es)" if args.audit else "not audited")
            + ("; projections rebuilt" if args.rebuild else "")
        )
        for line in result.mismatches:
            print(f"  {line}")
        return 1 if result.mismatches else 0

    return cli_audit.with_database(settings, main)


def _bootstrap(settings: Settings) -> str:
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    marker = settings.data_dir / "bootstrap"
    if marker.exists():
        return marker.read_text().strip()
    sys.exit(
        "no broker: set HANDOFF_KAFKA_BOOTSTRAP, or start `handoff run` (embedded) in this "
        "directory first"
    )


def _read_lines(path: str) -> list[dict[str, Any] | bytes]:
    """JSON lines; blank lines and `#` comments are skipped, other lines go as they are."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    events: list[dict[str, Any] | bytes] = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                events.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                print(f"{path}:{number}: not JSON, sent as it is", file=sys.stderr)
                events.append(line.encode())
    return events


def _produce(settings: Settings, events: list[dict[str, Any] | bytes]) -> int:
    from handoff.adapters.kafka_send import send_events

    return asyncio.run(send_events(settings, _bootstrap(settings), events))


def _send(settings: Settings, args: argparse.Namespace) -> int:
    sent = _produce(settings, _read_lines(args.file))
    print(f"sent {sent} event(s)")
    return 0


def _tail(settings: Settings, args: argparse.Namespace) -> int:
    from handoff.adapters.tail import tail

    topics = list(settings.output_topics.values())
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            tail(
                _bootstrap(settings),
                topics,
                args.from_beginning,
                args.json,
                args.timeout,
                settings.kafka_options(),
            )
        )
    return 0


def _load_document(path: str) -> Any:
    text = Path(path).read_text()
    return yaml.safe_load(text)


def _validate_document(path: str) -> Any:
    from handoff.core.workflow import Workflow

    try:
        document = _load_document(path)
    except yaml.YAMLError as err:
        sys.exit(f"{path}: not YAML or JSON: {err}")
    try:
        return Workflow.model_validate(document)
    except ValidationError as err:
        from handoff.core.problems import describe_workflow

        for problem in describe_workflow(err, document):
            print(f"{path}: {problem}", file=sys.stderr)
        sys.exit(1)


def _validate(settings: Settings, args: argparse.Namespace) -> int:
    workflow = _validate_document(args.file)
    print(f"{args.file}: valid workflow {workflow.id!r} with {len(workflow.steps)} step(s)")
    return 0


def _publish(settings: Settings, args: argparse.Namespace) -> int:
    from handoff.core.inputs import publication

    workflow = _validate_document(args.file)
    event = publication(workflow, datetime.now(UTC), "/handoff/cli")
    _produce(settings, [event.model_dump(mode="json", exclude_none=True)])
    print(f"published workflow {workflow.id!r} to workspace {workflow.workspace_id!r}")
    return 0


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    """The document read and checked as `workflow validate` does, then simulated."""
    return cli_audit.simulate(settings, args, _validate_document(args.workflow))


if __name__ == "__main__":
    sys.exit(main())
