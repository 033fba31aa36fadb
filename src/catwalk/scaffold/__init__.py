"""``catwalk init``: a new model folder that passes test-model and test-server as it is.

The folder holds a small, real model (a logistic score of two numbers, its weights in
``weights.json``) for either io type, so a new user sees every file catwalk reads doing its
job before replacing them. :func:`render_folder` is pure (file name -> text); :func:`create`
checks the name and the target and writes the files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from catwalk.errors import BuildError, CatwalkError
from catwalk.image.naming import model_tag
from catwalk.spec import IO_TYPES, MODEL_FILE, REQUIREMENTS_FILE, SPEC_FILE, IoType
from catwalk.templates import environment

MAX_NAME = 128  # a Docker repository path component's limit
# Letters and digits, single separators between them: the name is also the folder's name and,
# lower-cased, the Docker image's (catwalk.image.naming.model_tag), unchanged in both.
_NAME = re.compile(r"^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$")

# file in the new folder -> template; the io type picks model.py and requirements.txt.
_FILES = {
    SPEC_FILE: "model.yml.j2",
    MODEL_FILE: "model_{io}.py.j2",
    REQUIREMENTS_FILE: "requirements_{io}.txt.j2",
    "weights.json": "weights.json",
    "test_data.json": "test_data.json",
    # Inputs to score in bulk (catwalk predict --input-file): the quickstart uses them.
    "inputs.jsonl": "inputs.jsonl",
    "README.md": "README.md.j2",
}


class InitError(CatwalkError):
    """``catwalk init`` cannot create the folder asked for."""


def check_name(name: str) -> str:
    """Return ``name`` if it makes a valid model name, folder name and image name as it is."""
    try:
        fits = _NAME.match(name) is not None and model_tag(name) == name.lower()
    except BuildError:
        fits = False
    if not fits or len(name) > MAX_NAME:
        raise InitError(
            f"model name {name!r}: use letters, digits and single '.', '_' or '-' between "
            f"them, at most {MAX_NAME} characters (e.g. my-model): it names the folder, "
            "model.yml's name and the Docker image"
        )
    return name


def render_folder(name: str, io_type: IoType, shown_path: str) -> dict[str, str]:
    """The new folder's files, name -> text. ``shown_path`` is how its README names it."""
    if io_type not in IO_TYPES:
        raise InitError(f"io type {io_type!r}: expected one of {', '.join(IO_TYPES)}")
    env = environment("catwalk.scaffold")
    values = {"name": name, "io_type": io_type, "folder": shown_path}
    io = io_type.lower()
    return {
        file: env.get_template(template.format(io=io)).render(values)
        for file, template in _FILES.items()
    }


def target_folder(name: str, parent: str | Path | None) -> Path:
    """``parent/name`` (``./name`` without a parent), refused when it exists and is not empty."""
    folder = Path(parent or ".") / check_name(name)
    if folder.exists():
        if not folder.is_dir():
            raise InitError(f"{folder}: exists and is not a folder")
        if any(folder.iterdir()):
            raise InitError(f"{folder}: exists and is not empty; choose another name or --path")
    return folder


def create(name: str, io_type: IoType = "PYTHON_DICT", parent: str | Path | None = None) -> Path:
    """Write the new model folder and return its path."""
    folder = target_folder(name, parent)
    shown = os.path.relpath(folder) if not folder.is_absolute() else str(folder)
    files = render_folder(name, io_type, shown)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for file, text in files.items():
            (folder / file).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InitError(f"{folder}: cannot be written ({exc.strerror or exc})") from None
    return folder
