"""`handoff demo`'s arguments: the defaults are the demo's, and bad values stop at once."""

import argparse
from pathlib import Path

import pytest

from handoff.demo.options import DemoOptions, add_arguments, options_from


def _parse(*argv: str) -> DemoOptions:
    """As the `handoff` command will: the arguments on a `demo` subcommand."""
    parser = argparse.ArgumentParser(prog="handoff")
    demo = parser.add_subparsers(required=True).add_parser("demo")
    add_arguments(demo)
    return options_from(parser.parse_args(["demo", *argv]))


def test_no_arguments_give_the_default_options() -> None:
    assert _parse() == DemoOptions()


def test_every_option_can_be_set() -> None:
    options = _parse(
        "--workspaces=5",
        "--conversations=40",
        "--agents=2",
        "--seed=9",
        "--day-seconds=30",
        "--out-dir=out",
        "--no-chart",
    )
    assert options == DemoOptions(5, 40, (2, 2), 9, 30.0, Path("out"), chart=False)
    assert _parse("--agents", "2-6").agents == (2, 6)


@pytest.mark.parametrize(
    "argv",
    [["--agents=6-2"], ["--agents=0"], ["--agents=many"], ["--workspaces=0"], ["--day-seconds=-1"]],
)
def test_bad_values_stop_with_a_message(argv: list[str]) -> None:
    with pytest.raises(SystemExit, match="handoff demo: --"):
        _parse(*argv)
