"""image/pushed.py: the inputs digest, and reading it back from a real registry (defect 2).

A pipeline can run again because an image carries a digest of what it is built from, and the
registry's copy is compared with it before a push. These tests pin what changes the digest
(the model's files, the Dockerfile's instructions, the base image, catwalk's version) and
what does not (comments, files .dockerignore keeps out, anything outside the model folder),
and read the label back from the local registry through its HTTP API.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ci_pipelines import PYTHON_IMAGE, REGISTRY

from catwalk.errors import BuildError
from catwalk.image import docker as dk
from catwalk.image import pushed

pytestmark = pytest.mark.docker

DOCKERFILE = f"""\
# generated: a comment
FROM {PYTHON_IMAGE} AS system
FROM system
COPY . /model
"""


def test_base_images_are_the_from_lines_less_the_stages() -> None:
    text = (
        "FROM registry.example.com/platform/catwalk:0.1.0 AS system\n"
        "FROM system AS requirements\n"
        "  from --platform=linux/amd64 python:3.11-slim as tools\n"
        "FROM scratch\n"
        "FROM system\n"
    )
    assert pushed.base_images(text) == [
        "registry.example.com/platform/catwalk:0.1.0",
        "python:3.11-slim",
    ]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    model = tmp_path / "project" / "model"
    model.mkdir(parents=True)
    (model / "Dockerfile").write_text(DOCKERFILE)
    (model / ".dockerignore").write_text("**/__pycache__\n**/.venv\nDockerfile\n.dockerignore\n")
    (model / "model.py").write_text("class Model: ...\n")
    (model / "model.yml").write_text("name: m\nversion: 1.0.0\n")
    (model / "data").mkdir()
    (model / "data" / "w.bin").write_bytes(b"\0" * 1000)
    return model


def test_the_digest_follows_the_model_inputs_only(engine: Any, folder: Path) -> None:
    def digest() -> str:
        return pushed.inputs_digest(engine, folder, print)

    first = digest()
    assert first.startswith("sha256:") and digest() == first  # stable
    # Not inputs: a file outside the folder, ignored files, comments, timestamps.
    (folder.parent / "README.md").write_text("docs only\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"junk")
    (folder / ".venv").mkdir()
    (folder / "Dockerfile").write_text(DOCKERFILE.replace("a comment", "another comment"))
    (folder / "model.py").touch()
    assert digest() == first
    # Inputs: a model file, a file's mode, a new file, an instruction.
    changes = [
        lambda: (folder / "model.py").write_text("class Model: pass\n"),
        lambda: (folder / "data" / "w.bin").chmod(0o755),
        lambda: (folder / "extra.txt").write_text("x"),
        lambda: (folder / "Dockerfile").write_text(DOCKERFILE + "ENV A=1\n"),
    ]
    seen = {first}
    for change in changes:
        change()
        now = digest()
        assert now not in seen
        seen.add(now)


def test_the_digest_follows_the_base_image(engine: Any, folder: Path) -> None:
    before = pushed.inputs_digest(engine, folder, print)
    other = f"catwalk-pushed-test-{uuid.uuid4().hex[:8]}:base"
    dk.build_image(
        engine, _context(folder.parent, f"FROM {PYTHON_IMAGE}\nLABEL x=1\n"), other,
        echo=lambda _line: None, network="host",
    )  # fmt: skip
    try:
        (folder / "Dockerfile").write_text(DOCKERFILE.replace(PYTHON_IMAGE, other))
        assert pushed.inputs_digest(engine, folder, print) != before
    finally:
        dk.remove_image(engine, other)


def test_a_missing_base_image_is_named(engine: Any, folder: Path) -> None:
    missing = f"{REGISTRY}/catwalk-pushed-none-{uuid.uuid4().hex[:8]}/catwalk:0.0.0"
    (folder / "Dockerfile").write_text(f"FROM {missing}\n")
    with pytest.raises(BuildError, match="base image is missing") as caught:
        pushed.inputs_digest(engine, folder, print)
    assert missing in str(caught.value)


def _context(where: Path, dockerfile: str) -> Path:
    context = where / f"ctx-{uuid.uuid4().hex[:6]}"
    context.mkdir()
    (context / "Dockerfile").write_text(dockerfile)
    return context


@pytest.fixture
def pushed_image(engine: Any, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """An image labelled with an inputs digest, pushed to a namespace of its own."""
    ref = f"{REGISTRY}/catwalk-pushed-{uuid.uuid4().hex[:8]}/m:1.0.0"
    digest = "sha256:" + "ab" * 32
    dockerfile = f"FROM {PYTHON_IMAGE}\nLABEL {pushed.INPUTS_LABEL}={digest}\n"
    dk.build_image(
        engine, _context(tmp_path, dockerfile), ref, echo=lambda _line: None, network="host"
    )
    dk.push_image(engine, ref, echo=lambda _line: None)
    yield ref, digest
    dk.remove_image(engine, ref)


def test_the_registry_label_decides_the_push(engine: Any, pushed_image: tuple[str, str]) -> None:
    ref, digest = pushed_image
    found = pushed.registry_image(engine, ref)
    assert found is not None and found.digest.startswith("sha256:")
    assert found.labels[pushed.INPUTS_LABEL] == digest
    # No such tag: push. The same inputs: nothing to push. Other inputs: the bump message.
    assert pushed.registry_image(engine, ref.replace(":1.0.0", ":9.9.9")) is None
    assert pushed.check_before_push(engine, ref.replace(":1.0.0", ":9.9.9"), digest, False)
    assert pushed.check_before_push(engine, ref, digest, overwrite=False) is False
    other = "sha256:" + "cd" * 32
    with pytest.raises(BuildError, match=r"bump version in model\.yml") as caught:
        pushed.check_before_push(engine, ref, other, overwrite=False)
    assert "inputs differ" in str(caught.value) and "--overwrite" in str(caught.value)
    assert pushed.check_before_push(engine, ref, other, overwrite=True) is True


def test_an_image_without_the_label_is_not_taken_for_the_same(engine: Any, tmp_path: Path) -> None:
    ref = f"{REGISTRY}/catwalk-pushed-{uuid.uuid4().hex[:8]}/old:1.0.0"
    dk.build_image(engine, _context(tmp_path, f"FROM {PYTHON_IMAGE}\nLABEL a=b\n"), ref,
                   echo=lambda _line: None, network="host")  # fmt: skip
    try:
        dk.push_image(engine, ref, echo=lambda _line: None)
        with pytest.raises(BuildError, match=r"no io\.catwalk\.inputs\.digest label"):
            pushed.check_before_push(engine, ref, "sha256:" + "ef" * 32, overwrite=False)
    finally:
        dk.remove_image(engine, ref)
