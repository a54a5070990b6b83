"""The demo's options and their command-line arguments, apart from the demo itself.

Kept light (no Kafka, database or service imports) so the `handoff` command can add the
`demo` subcommand's arguments without loading what only the demo needs.
"""

import argparse
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DemoOptions", "add_arguments", "options_from"]


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What the command line can change (`handoff demo --help`)."""

    workspaces: int = 3
    conversations: int = 150
    """Conversations opened per workspace over the day."""
    agents: tuple[int, int] = (3, 5)
    """Agents per team, drawn from this inclusive range."""
    seed: int = 1
    day_seconds: float = 75.0
    """Wall seconds the simulated day lasts."""
    out_dir: Path = Path(".")
    chart: bool = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `handoff demo` arguments, defaults as in `DemoOptions`."""
    parser.add_argument("--workspaces", type=int, default=3, help="workspaces to simulate [3]")
    parser.add_argument(
        "--conversations", type=int, default=150, help="conversations per workspace [150]"
    )
    parser.add_argument(
        "--agents", default="3-5", help="agents per team: a range LOW-HIGH or one number [3-5]"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated traffic [1]")
    parser.add_argument(
        "--day-seconds", type=float, default=75.0, help="wall seconds the simulated day lasts [75]"
    )
    parser.add_argument(
        "--out-dir", type=Path, default=Path("."), help="where handoff-demo.png is written [.]"
    )
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG chart")


def options_from(args: argparse.Namespace) -> DemoOptions:
    """The options from parsed arguments; a bad `--agents` or a non-positive number is an
    argparse-style error (exit status 2)."""
    low, _, high = str(args.agents).partition("-")
    try:
        agents = (int(low), int(high or low))
    except ValueError:
        raise SystemExit(
            f"handoff demo: --agents: not a number or LOW-HIGH: {args.agents!r}"
        ) from None
    if not 1 <= agents[0] <= agents[1]:
        raise SystemExit(f"handoff demo: --agents: need 1 <= LOW <= HIGH, not {args.agents!r}")
    for name in ("workspaces", "conversations", "day_seconds"):
        if getattr(args, name) <= 0:
            raise SystemExit(f"handoff demo: --{name.replace('_', '-')} must be positive")
    return DemoOptions(
        workspaces=args.workspaces,
        conversations=args.conversations,
        agents=agents,
        seed=args.seed,
        day_seconds=args.day_seconds,
        out_dir=args.out_dir,
        chart=not args.no_chart,
    )
