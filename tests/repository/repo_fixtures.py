"""Model repositories as test fixtures: folders of small models built from one template
(a module of its own: ``from conftest import`` may find another folder's conftest)."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

MODEL_YML = """\
name: {name}
version: "{version}"
contact: {{name: Tester, email: tester@example.com}}
schema:
  input:
    type: object
    required: [x]
    properties:
      x: {{type: number}}
  output:
    type: object
    properties:
      y: {{type: number}}
"""


def add_model(root: Path, folder: str, name: str, version: str, **settings: Any) -> Path:
    """Write a model folder ``root/folder`` (y = x * factor; settings: factor, sleep, raise,
    fail_load, requirements)."""
    path = root / folder
    path.mkdir(parents=True)
    (path / "model.yml").write_text(MODEL_YML.format(name=name, version=version))
    shutil.copy(HERE / "scale_model.py", path / "model.py")
    requirements = settings.pop("requirements", None)
    if requirements is not None:
        (path / "requirements.txt").write_text(requirements)
    settings.setdefault("factor", 1)
    (path / "settings.json").write_text(json.dumps(settings))
    return path


def build_shop(root: Path) -> Path:
    """The repository most tests use: ``scale`` in two versions (1.9: y = x; 1.10: y = 2x,
    the default by PEP 440) and ``price`` (y = 10x)."""
    add_model(root, "scale-old", "scale", "1.9", factor=1)
    add_model(root, "scale-new", "scale", "1.10", factor=2)
    add_model(root, "price", "price", "0.1", factor=10)
    return root


# Built once per test process (servers started by the tests read it too), removed at exit.
_SHOP_DIR = tempfile.mkdtemp(prefix="catwalk-shop-")
atexit.register(shutil.rmtree, _SHOP_DIR, True)
SHOP = build_shop(Path(_SHOP_DIR) / "shop")
