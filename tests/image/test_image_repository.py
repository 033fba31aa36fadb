"""A model repository as one image, on a real Docker engine and registry: build-prep, build
(which runs test-image's checks on every model before it pushes), test-image, deploy-prep.

The repository: two versions of the rng example and the batch example, named as one image by
``--image-name``/``--image-version``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from image_env import (  # shared fixtures and helpers of the Docker tests
    EXAMPLES,
    GENERATED,
    base_image,
    catwalk,
    client,
    created,
    registry,
)

from catwalk.image.pushed import INPUTS_LABEL
from manifests import check, kserve_validator, validate_strictly

pytestmark = [pytest.mark.docker, pytest.mark.slow]

__all__ = ["base_image", "client", "created", "registry"]  # fixtures, used by name

NAME, VERSION = "demo-models", "1.0.0"
FLAGS = ("--image-name", NAME, "--image-version", VERSION)
MODELS = ("BatchRNGModel@0.0.1", "RNGModel@0.0.1", "RNGModel@0.0.2")


def make_repository(root: Path) -> Path:
    """rng-1 (RNGModel 0.0.1), rng-2 (RNGModel 0.0.2), batch (BatchRNGModel 0.0.1)."""
    repository = root / "repository"
    ignore = shutil.ignore_patterns(*GENERATED)
    shutil.copytree(EXAMPLES / "rng", repository / "rng-1", ignore=ignore)
    shutil.copytree(EXAMPLES / "rng", repository / "rng-2", ignore=ignore)
    shutil.copytree(EXAMPLES / "batch", repository / "batch", ignore=ignore)
    spec = repository / "rng-2" / "model.yml"
    text = spec.read_text()
    assert 'version: "0.0.1"' in text
    spec.write_text(text.replace('version: "0.0.1"', 'version: "0.0.2"', 1))
    return repository


def test_a_repository_is_built_pushed_tested_and_deployed_as_one_image(
    client: Any, base_image: str, registry: str, created: list[str], tmp_path: Path
) -> None:
    repository = make_repository(tmp_path)
    ref = f"{registry}/{NAME}:{VERSION}"

    # No model.yml names a repository's image: the flags must.
    refused = catwalk("build-prep", "-m", str(repository), "--docker-registry", registry)
    assert refused.returncode != 0
    assert "--image-name NAME --image-version VERSION" in refused.stdout + refused.stderr

    prep = catwalk("build-prep", "-m", str(repository), "--docker-registry", registry, *FLAGS)
    assert prep.returncode == 0, prep.stdout + prep.stderr
    dockerfile = (repository / "Dockerfile").read_text()
    assert f"FROM {base_image} AS system\n" in dockerfile
    assert (
        f"catwalk build -m {repository}" in prep.stdout
        and "--image-name demo-models" in prep.stdout
    )

    build = catwalk(
        "build", "-m", str(repository), "--docker-registry", registry, "--network", "host", *FLAGS
    )
    created.append(ref)
    assert build.returncode == 0, build.stdout + build.stderr
    assert f"pushed {ref}" in build.stdout
    # The checks before the push covered every model of the repository.
    for model in MODELS:
        assert f"== {model} ==" in build.stdout, model
    labels = client.images.get(ref).labels
    assert labels["io.catwalk.model.name"] == NAME
    assert labels["io.catwalk.model.version"] == VERSION
    assert labels[INPUTS_LABEL].startswith("sha256:")

    # Every model folder is in the image, and the server serves them as a repository.
    listing = client.containers.run(
        ref, ["ls", "/srv/model"], remove=True, network_mode="host", user="23456:0"
    ).decode()
    assert {"rng-1", "rng-2", "batch"} <= set(listing.split())

    tested = catwalk(
        "test-image", "-m", str(repository), "--docker-registry", registry, "--network", "host",
        *FLAGS,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
    for model in MODELS:
        assert f"== {model} ==" in tested.stdout, model
        assert f"{model} test data (from the image)" in tested.stdout, model

    compose = catwalk("deploy-prep", "-m", str(repository), "--docker-registry", registry, *FLAGS)
    assert compose.returncode == 0, compose.stdout + compose.stderr
    service = yaml.safe_load((repository / "docker-compose.yml").read_text())["services"][NAME]
    assert service["image"] == ref
    assert service["healthcheck"]["test"][0] == "CMD"

    kube = catwalk("deploy-prep", "-m", str(repository), "--docker-registry", registry,
                   "--target", "kubernetes", *FLAGS)  # fmt: skip
    assert kube.returncode == 0, kube.stdout + kube.stderr
    text = (repository / "kubernetes.yml").read_text()
    validate_strictly(text)
    deployment = next(d for d in yaml.safe_load_all(text) if d and d["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == ref

    kserve = catwalk("deploy-prep", "-m", str(repository), "--docker-registry", registry,
                     "--target", "kserve", *FLAGS)  # fmt: skip
    assert kserve.returncode == 0, kserve.stdout + kserve.stderr
    doc = check(kserve_validator(), (repository / "kserve.yml").read_text())
    assert doc["metadata"]["name"] == NAME
