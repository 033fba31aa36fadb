"""The zoo through the image: every zoo model but PyTorch through ``build-prep``, ``build`` and
``test-image`` on the real Docker engine and registry, with the defaults.

The flow is the README's: build-prep with no option, ``build --docker-registry R`` (which
starts FROM R's base image, resolves requirements.txt on this machine, tests the image, then
pushes), ``test-image --docker-registry R`` (on a free port: this machine is shared), in the
image's own interpreter (``CATWALK_ENV_MANAGER=local``: no model environment). Then a
one-line ``model.py`` change must rebuild from the cache (no pip, no reinstall). The image
size, the cold build and the rebuild are printed at the end of the session.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from builders import KINDS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "image"))
from image_env import (
    TIMINGS,
    base_image,
    catwalk,
    change_code,
    client,
    created,
    image_size_mb,
    registry,
)

from catwalk.image.naming import image_ref
from catwalk.ports import free_port
from catwalk.spec import load_spec

pytestmark = [pytest.mark.docker, pytest.mark.slow]
__all__ = ["base_image", "client", "created", "registry"]  # fixtures, used by name

#: PyTorch's CPU wheel (700 MB installed) stays out of the image tests, as the issue says.
IMAGE_KINDS = [kind for kind in KINDS if kind != "torch"]


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_zoo_model_builds_tests_and_pushes_with_the_defaults(
    kind: str,
    zoo_model: Callable[[str], Path],
    base_image: str,
    registry: str,
    client: Any,
    created: list[str],
    tmp_path: Path,
) -> None:
    folder = tmp_path / kind
    shutil.copytree(zoo_model(kind), folder)
    ref = image_ref(load_spec(folder), registry)
    created.append(ref)

    prep = catwalk("build-prep", "-m", str(folder))
    assert prep.returncode == 0, prep.stdout + prep.stderr
    started = time.monotonic()
    build = catwalk("build", "-m", str(folder), "--docker-registry", registry)
    cold = time.monotonic() - started
    assert build.returncode == 0, build.stdout + build.stderr
    assert f"FROM {base_image} AS system" in (folder / "Dockerfile").read_text()
    assert "[PASS] POST /predict: test data" in build.stdout  # tested before the push
    assert f"pushed {ref}" in build.stdout

    check = catwalk("test-image", "-m", str(folder), "--docker-registry", registry,
                    "--server-port", str(free_port()))  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    # The image is the model's environment: its commands never build another one there.
    assert "CATWALK_ENV_MANAGER=local" in client.api.inspect_image(ref)["Config"]["Env"]

    change_code(folder)  # the image it replaces goes with the session's leftovers
    started = time.monotonic()
    again = catwalk("build", "-m", str(folder), "--docker-registry", registry, "--no-push")
    rebuild = time.monotonic() - started
    assert again.returncode == 0, again.stdout + again.stderr
    assert "(cached)" in again.stdout  # the wheelhouse: no pip ran
    steps = re.split(r"^Step \d+/\d+ : ", again.stdout, flags=re.M)
    installed = next(s for s in steps if s.startswith("COPY --from=requirements"))
    assert "Using cache" in installed, installed

    TIMINGS[f"zoo {kind}"] = (
        f"image {image_size_mb(client, ref):.0f} MB, cold build + test + push {cold:.1f} s, "
        f"rebuild after a model.py change {rebuild:.1f} s"
    )
