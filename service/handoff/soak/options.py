"""The soak's options and their command-line arguments, apart from the soak itself.

Kept light (no Kafka, database or service imports) so the `handoff` command can add the
`soak` subcommand's arguments without loading what only the soak needs.
"""

import argparse
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FAULT_KINDS", "SoakOptions", "add_arguments", "options_from"]

FAULT_KINDS: tuple[str, ...] = ("kill", "freeze", "postgres")
"""`kill`: kill -9 of an instance, a new one started at once; `freeze`: SIGSTOP of an instance
for longer than its session timeout, then SIGCONT (a zombie); `postgres`: `pg_ctl stop -m
fast`, started again a few seconds later."""


@dataclass(frozen=True, slots=True)
class SoakOptions:
    """What one soak does (`handoff soak --help`)."""

    minutes: float = 10.0
    """How long inputs are sent (the drain and the account come after)."""
    instances: int = 2
    seed: int = 1
    workspaces: int = 14
    """Workspaces of each simulated day (the families of `handoff.demo.traffic` in turn)."""
    rate: float = 200.0
    """Inputs per second on average (a simulated day has its busy and quiet hours)."""
    faults: tuple[str, ...] = FAULT_KINDS
    fault_gap: float = 30.0
    """Mean seconds between one fault's end and the next one's start."""
    max_faults: int | None = None
    drain_timeout: float = 180.0
    """Seconds the event log is given, once sending stops, to hold every input sent."""
    data_dir: Path | None = None
    """The run's directory (logs, the servers' data); None: a new one under the temp dir."""
    keep_data: bool = False
    """Keep PostgreSQL's data directory after a run that passed (a failed run keeps it)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `handoff soak` arguments, defaults as in `SoakOptions`."""
    d = SoakOptions()
    parser.add_argument(
        "--minutes", type=float, default=d.minutes, help=f"minutes of traffic [{d.minutes:g}]"
    )
    parser.add_argument(
        "--instances",
        type=int,
        choices=(2, 3),
        default=d.instances,
        help=f"`handoff run` processes in the consumer group [{d.instances}]",
    )
    parser.add_argument(
        "--seed", type=int, default=d.seed, help=f"seed of the traffic and the faults [{d.seed}]"
    )
    parser.add_argument(
        "--workspaces",
        type=int,
        default=d.workspaces,
        help=f"workspaces per simulated day [{d.workspaces}]",
    )
    parser.add_argument(
        "--rate", type=float, default=d.rate, help=f"inputs per second on average [{d.rate:g}]"
    )
    parser.add_argument(
        "--faults",
        default=",".join(d.faults),
        help="fault kinds, comma separated, each once per round in a seeded order; "
        f"'none' for no faults [{','.join(d.faults)}]",
    )
    parser.add_argument(
        "--fault-gap",
        type=float,
        default=d.fault_gap,
        help=f"mean seconds between faults [{d.fault_gap:g}]",
    )
    parser.add_argument(
        "--max-faults", type=int, default=None, help="stop injecting after N faults [no limit]"
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=d.drain_timeout,
        help=f"seconds to wait for the log to hold every input sent [{d.drain_timeout:g}]",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="the run's directory: instance logs, broker log, PostgreSQL data [a new temp dir]",
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep PostgreSQL's data even when the run passes (a failed run always keeps it)",
    )


def options_from(args: argparse.Namespace) -> SoakOptions:
    """The options from parsed arguments; a bad value is an argparse-style error (status 2)."""
    for name in ("minutes", "workspaces", "rate", "fault_gap", "drain_timeout"):
        if getattr(args, name) <= 0:
            raise SystemExit(f"handoff soak: --{name.replace('_', '-')} must be positive")
    if args.max_faults is not None and args.max_faults < 0:
        raise SystemExit("handoff soak: --max-faults must not be negative")
    kinds = tuple(k.strip() for k in str(args.faults).split(",") if k.strip())
    if kinds == ("none",):
        kinds = ()
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        raise SystemExit(
            f"handoff soak: --faults: unknown {unknown}; known: {', '.join(FAULT_KINDS)}, none"
        )
    return SoakOptions(
        minutes=args.minutes,
        instances=args.instances,
        seed=args.seed,
        workspaces=args.workspaces,
        rate=args.rate,
        faults=tuple(dict.fromkeys(kinds)),
        fault_gap=args.fault_gap,
        max_faults=args.max_faults,
        drain_timeout=args.drain_timeout,
        data_dir=args.data_dir,
        keep_data=args.keep_data,
    )
