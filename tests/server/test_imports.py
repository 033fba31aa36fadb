"""Imports run one way: the contracts of pyproject.toml's [tool.importlinter], checked.

The supervisor names the gunicorn side and the app by string; the app, ops and logs never
import the worker, the supervisor or the development server; the library (model, scoring,
protocol, score) never imports the server. import-linter reads the real import graph
(grimp), indirect imports included.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"


def test_every_import_contract_is_kept(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    contracts = PYPROJECT.read_text().count("[[tool.importlinter.contracts]]")
    assert contracts == 7
    monkeypatch.chdir(ROOT)
    code = lint_imports(config_filename=str(PYPROJECT), no_cache=True)
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(rf"Contracts: {contracts} kept, 0 broken\.", out), out
