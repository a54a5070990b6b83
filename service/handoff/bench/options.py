"""The benchmark's options and their command-line arguments, apart from the benchmark itself.

Kept light (no Kafka, database or service imports) so the `handoff` command can add the
`bench` subcommand's arguments without loading what only the benchmark needs.
"""

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = ["FULL", "QUICK", "BenchOptions", "add_arguments", "options_from"]


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """What one run measures, and how much of it."""

    quick: bool = False
    workspaces: int = 1000
    """Workspaces in the backlog (measurements 2, 4, 6)."""
    conversations: int = 20
    """Conversations opened per workspace over the simulated day."""
    agents: tuple[int, int] = (3, 50)
    """Agents per team, drawn from this inclusive range."""
    seed: int = 1
    latency_seconds: float = 20.0
    """How long the paced producer sends at each latency level."""
    latency_shares: tuple[float, ...] = (0.25, 0.5, 0.8)
    """Latency levels, as shares of the sustained rate."""
    latency_rates: tuple[float, ...] = (100.0, 1_000.0)
    """Latency levels at fixed rates (inputs/s), measured before the shares."""
    memory_workspaces: tuple[int, ...] = (1_000, 10_000, 100_000)
    long_log_workspaces: tuple[int, ...] = (1_000,)
    """Counts measured again with a log `long_log_days` times as long."""
    long_log_days: int = 10
    team_sizes: tuple[int, ...] = (5, 50, 500, 5_000)
    """Team sizes of the pure path by team size (7, `handoff.bench.team_size`)."""
    team_conversations: int = 2000
    """Openings measured per (logic, team size), after `team_warmup` more."""
    team_warmup: int = 200
    team_rounds: int = 3
    """Each (logic, team size) keeps its fastest of this many rounds."""
    drain_sizes: tuple[int, ...] = (5, 500)
    """Team sizes of the drain through the service by team size (7)."""
    drain_workspaces: int = 8
    """Workspaces of each size in that drain."""
    drain_openings: int = 4000
    """Openings per size and round, over its workspaces."""
    drain_rounds: int = 2
    routing_workspaces: int = 200
    """Workspaces of the routing backlog (8, `handoff.bench.routing`)."""
    routing_team: int = 5
    """Agents in each one's team (round robin)."""
    routing_openings: int = 40_000
    """Openings in the routing backlog, spread evenly over its workspaces."""
    cpu_workspaces: int = 56
    """Workspaces of the stream the pure path times by input type (9, `handoff.bench.cpu`)."""
    cpu_rounds: int = 3
    """Each input type keeps its fastest of this many rounds."""
    audit_workspaces: int = 20
    """Workspaces of the log of (2) the per-workspace audit commands run on (10,
    `handoff.bench.audit`)."""
    out: Path | None = None


FULL = BenchOptions()
QUICK = BenchOptions(
    quick=True,
    workspaces=100,
    latency_seconds=4.0,
    memory_workspaces=(1_000, 5_000),
    long_log_workspaces=(1_000,),
    team_conversations=400,
    team_warmup=100,
    team_rounds=2,
    drain_workspaces=4,
    drain_openings=2000,
    drain_rounds=2,
    routing_openings=5_000,
    cpu_workspaces=28,
    cpu_rounds=2,
    audit_workspaces=3,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the same table with smaller numbers, in under three minutes",
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the table to FILE")
    parser.add_argument(
        "--workspaces", type=int, default=None, help="workspaces in the backlog [1000; quick 100]"
    )
    parser.add_argument(
        "--conversations", type=int, default=None, help="conversations per workspace [20]"
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        default=None,
        help="seconds of paced traffic per latency level [20; quick 4]",
    )


def options_from(args: argparse.Namespace) -> BenchOptions:
    options = QUICK if args.quick else FULL
    for name in ("workspaces", "conversations", "latency_seconds"):
        value = getattr(args, name)
        if value is not None:
            if value <= 0:
                raise SystemExit(f"handoff bench: --{name.replace('_', '-')} must be positive")
            options = replace(options, **{name: value})
    return replace(options, out=args.out)
