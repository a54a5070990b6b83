"""The audit commands run as a user runs them: through `handoff.cli.main`, on a database named
by `HANDOFF_DATABASE_URL`, reading the exit code and what was printed."""

import asyncio

import pytest

from handoff.cli import main

__all__ = ["Command"]


class Command:
    """`handoff ARGV...`, the start of a command line each call completes."""

    def __init__(self, *argv: str) -> None:
        self.argv = argv

    async def __call__(
        self,
        dsn: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        *args: str,
    ) -> tuple[int, str]:
        """`handoff ARGV... ARGS` on the database at `dsn`: (exit code, what it printed on
        standard output, then on standard error). In a thread: the command runs its own
        event loop."""
        monkeypatch.setenv("HANDOFF_DATABASE_URL", dsn)
        code = await asyncio.to_thread(main, [*self.argv, *args])
        out = capsys.readouterr()
        return code, out.out + out.err
