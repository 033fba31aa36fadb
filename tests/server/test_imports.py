"""Imports run one way: the contracts of pyproject.toml's [tool.importlinter], checked.

The supervisor names the gunicorn side and the app by string; the app, ops and logs never
import the worker, the supervisor or the development server; the library (model, scoring,
protocol, score) never imports the server. import-linter reads the real import graph
(grimp), indirect imports included. It runs in a process of its own: it configures logging
(disabling the loggers that exist) and sys.path for the process it runs in.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def test_every_import_contract_is_kept() -> None:
    contracts = PYPROJECT.read_text().count("[[tool.importlinter.contracts]]")
    assert contracts == 7
    done = subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache", "--config", str(PYPROJECT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(rf"Contracts: {contracts} kept, 0 broken\.", done.stdout), done.stdout
