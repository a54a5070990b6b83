"""The import contracts in pyproject.toml ([tool.importlinter]) catch what they are for.

`make lint` and `make test` run `lint-imports` on the tree. This checks the contracts are not
vacuous: on a copy of the tree with one forbidden import added per layer, each contract breaks
and names the import that broke it.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

# (file, the import added to it, the contract it breaks)
INJECTED = [
    ("service/handoff/core/ids.py", "import aiokafka", "The decision core does no I/O"),
    (
        "service/handoff/core/view.py",
        "import handoff.adapters.tail",
        "The decision core does no I/O",
    ),
    (
        "projections/handoff_projections/rows.py",
        "import handoff.app.settings",
        "Projections build on the core alone",
    ),
    (
        "service/handoff/adapters/tail.py",
        "import handoff.app.metrics",
        "Adapters never import the application layer",
    ),
    (
        "service/handoff/audit/folded.py",
        "import handoff.app.pipeline",
        "The audit commands read the log through the adapters",
    ),
]


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{tree / 'service'}{os.pathsep}{tree / 'projections'}"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_each_contract_breaks_on_a_forbidden_import(tmp_path: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__")
    for folder in ("service", "projections"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=ignore)
    for path, statement, _ in INJECTED:
        with (tmp_path / path).open("a") as f:
            f.write(f"\n{statement}  # injected by the test\n")

    result = _lint(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Contracts: 0 kept, 4 broken." in result.stdout, result.stdout
    for path, statement, contract in INJECTED:
        module = path.split("/", 1)[1].removesuffix(".py").replace("/", ".")
        imported = statement.removeprefix("import ")
        assert contract in result.stdout
        assert f"{module} -> {imported}" in result.stdout, (statement, result.stdout)
