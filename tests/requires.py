"""What a test needs from the machine, said the same way everywhere: outside CI a missing
component skips with how to get it; under ``CI=true`` it fails (CI never passes by skipping).

A module of its own beside tests/conftest.py (on sys.path for every test folder), not a
conftest: ``from conftest import`` picks whichever folder's conftest was imported last.
"""

from __future__ import annotations

import os
from typing import Any, NoReturn

import pytest
import requests


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip, saying why; under ``CI=true`` fail instead."""
    if in_ci():
        pytest.fail(f"CI=true, so not skipping: {reason}", pytrace=False)
    pytest.skip(reason)


def loopback_session() -> requests.Session:
    """HTTP to this machine only: never through a proxy from the environment."""
    session = requests.Session()
    session.trust_env = False
    return session


def docker_engine(registry: str, base_image: str, how: str) -> Any:
    """A Docker SDK client for the engine, once the registry answers and the base OS image
    exists (else :func:`unavailable`, with ``how`` to set them up)."""
    from catwalk.image import docker as dk

    try:
        client = dk.connect(timeout=900)
    except Exception as exc:
        unavailable(f"{exc}: {how}")
    try:
        loopback_session().get(f"http://{registry}/v2/", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        client.close()
        unavailable(f"no registry answers on {registry} ({exc}): {how}")
    if not dk.image_exists(client, base_image):
        client.close()
        unavailable(f"the base OS image {base_image} does not exist: {how}")
    return client
