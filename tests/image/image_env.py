"""Shared by the Docker end-to-end tests: the engine, a registry namespace of the run's own,
the images it made (removed at the end), the catwalk base image, the CLI as a child process.

Imported by the test modules (``from image_env import ...``): a session fixture imported into
two modules runs once per module, which for the base image is a cached rebuild (seconds).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from catwalk import __version__
from catwalk.image import docker as dk
from engine_leftovers import Leftovers
from requires import docker_engine

REGISTRY_HOST = os.environ.get("CATWALK_TEST_REGISTRY", "localhost:5000")
# The Debian base scripts/ci-setup.sh makes (python:3.12-slim cannot be pulled on CI's machines).
PYTHON_IMAGE = os.environ.get("CATWALK_TEST_PYTHON_IMAGE") or os.environ.get(
    "CATWALK_BASE_IMAGE", "catwalk-debian:bookworm"
)
HOW = "run `bash scripts/ci-setup.sh` (as root) to start a Docker engine and a registry"
TIMINGS: dict[str, str] = {}
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "example_models"
GENERATED = ("Dockerfile", ".dockerignore", "docker-compose.yml", "__pycache__")


def catwalk(
    *args: str, timeout: float = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI (a child process, as a pipeline would), echoing its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "catwalk", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    print(f"$ catwalk {' '.join(args)}\n{proc.stdout}{proc.stderr}")
    return proc


def change_code(folder: Path) -> None:
    """A one-line change to ``folder``'s model.py that no build has seen: the engine's build
    cache outlives a run, and a change an earlier run also made would find that run's layer."""
    with (folder / "model.py").open("a") as f:
        f.write(f"\n# a code change {uuid.uuid4().hex}\n")


def image_size_mb(client: Any, ref: str) -> float:
    return float(client.api.inspect_image(ref)["Size"]) / 1e6


@pytest.fixture(scope="session")
def client() -> Iterator[Any]:
    docker_client = docker_engine(REGISTRY_HOST, PYTHON_IMAGE, HOW)
    yield docker_client
    docker_client.close()
    if TIMINGS:
        print("\nimage measurements:\n" + "\n".join(f"  {k}: {v}" for k, v in TIMINGS.items()))


@pytest.fixture(scope="session")
def registry() -> str:
    """A registry namespace of this run's own, so nothing collides with anyone's images."""
    return f"{REGISTRY_HOST}/catwalk-e2e-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def created(client: Any) -> Iterator[list[str]]:
    """Image tags this session made; removed at the end, with the untagged images built on
    them (:class:`engine_leftovers.Leftovers`), and nothing else."""
    leftovers = Leftovers(client)
    refs: list[str] = []
    yield refs
    ours = leftovers.image_ids(refs)
    for ref in reversed(refs):
        try:
            dk.remove_image(client, ref)
        except Exception as exc:  # pragma: no cover - clean-up must go on
            print(f"could not remove {ref}: {exc}")
    leftovers.remove(ours)


@pytest.fixture(scope="session")
def base_image(client: Any, registry: str, created: list[str]) -> str:
    """The catwalk base image, built from the root Dockerfile as the README says, and pushed."""
    ref = f"{registry}/catwalk:{__version__}"
    started = time.monotonic()
    dk.build_image(
        client,
        ROOT,
        ref,
        echo=print,
        network="host",
        buildargs={"PYTHON_IMAGE": PYTHON_IMAGE},
    )
    created.append(ref)
    TIMINGS["base image build"] = f"{time.monotonic() - started:.1f} s"
    TIMINGS["base image size"] = f"{image_size_mb(client, ref):.0f} MB"
    dk.push_image(client, ref, echo=print)
    return ref
