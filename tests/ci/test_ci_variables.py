"""The variables the CI templates configure catwalk with, and the names they make.

``CATWALK_BASE_IMAGE`` (build-prep's --base-image: the platform's base image, catwalk's
version added when it has no tag), ``CATWALK_LOCAL_TAG`` (the tag a pipeline builds and tests
under) and ``DOCKER_NETWORK`` (--network) follow the environment contract: set, they win over
the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from catwalk import __version__
from catwalk.cli import cli
from catwalk.errors import BuildError
from catwalk.image.naming import base_image_ref, local_image_ref
from catwalk.spec import load_spec


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("r.example.com/platform/catwalk", f"r.example.com/platform/catwalk:{__version__}"),
        ("127.0.0.1:5000/platform/catwalk", f"127.0.0.1:5000/platform/catwalk:{__version__}"),
        ("127.0.0.1:5000/platform/catwalk:0.0.9", "127.0.0.1:5000/platform/catwalk:0.0.9"),
        ("r.example.com/catwalk@sha256:" + "a" * 64, "r.example.com/catwalk@sha256:" + "a" * 64),
        (" catwalk ", f"catwalk:{__version__}"),
    ],
)  # fmt: skip
def test_a_base_image_without_a_tag_gets_catwalks_version(given: str, expected: str) -> None:
    assert base_image_ref("ignored.example.com", given) == expected


def test_the_local_tag_keeps_the_repository(example_copy: Callable[[str], Path]) -> None:
    spec = load_spec(example_copy("rng"))
    assert local_image_ref(spec, "r:5000/models", None) == "r:5000/models/rngmodel:0.0.1"
    assert local_image_ref(spec, "r:5000/models", "ci-1234") == "r:5000/models/rngmodel:ci-1234"
    assert local_image_ref(spec, None, "ci-1") == "rngmodel:ci-1"
    for bad in ("-x", ".x", "a/b", "a b", "x" * 129):
        with pytest.raises(BuildError, match="is not a Docker tag"):
            local_image_ref(spec, None, bad)


def test_catwalk_base_image_overrides_build_prep_s_flag(
    example_copy: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = example_copy("rng")
    monkeypatch.setenv("CATWALK_BASE_IMAGE", "platform.example.com/team/catwalk")
    result = CliRunner().invoke(
        cli, ["build-prep", "-m", str(folder), "--base-image", "other:1", "--docker-registry",
              "models.example.com/churn"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    dockerfile = (folder / "Dockerfile").read_text()
    assert f"FROM platform.example.com/team/catwalk:{__version__} AS system" in dockerfile
    assert "models.example.com/churn/catwalk" not in dockerfile  # defect 5


def test_the_local_tag_and_network_variables_reach_test_image(
    example_copy: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an invalid local tag from the environment, test-image says so before Docker."""
    folder = example_copy("rng")
    monkeypatch.setenv("CATWALK_LOCAL_TAG", "not a tag")
    monkeypatch.setenv("DOCKER_NETWORK", "host")
    result = CliRunner().invoke(cli, ["test-image", "-m", str(folder), "--network", "none"])
    assert result.exit_code == 1
    assert "--local-tag 'not a tag' is not a Docker tag" in result.output
    assert "DOCKER_NETWORK=host overrides --network none" in result.output
