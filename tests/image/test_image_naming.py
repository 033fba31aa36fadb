"""Image-name rules: the model tag, the version tag, registries and the base image."""

from __future__ import annotations

import pytest

from catwalk import __version__
from catwalk.errors import BuildError
from catwalk.image.naming import (
    base_image_ref,
    check_registry,
    image_ref,
    model_tag,
    split_ref,
    version_tag,
)
from catwalk.spec import load_spec


@pytest.mark.parametrize(
    ("name", "tag"),
    [
        ("Adder Model", "adder-model"),
        ("RNGModel", "rngmodel"),
        ("  spaced   out  ", "spaced-out"),
        ("a - b", "a-b"),
        ("My.Model_v2", "my.model_v2"),
        ("Modèle Français!", "modele-francais"),
        ("x/y:z@w", "xyzw"),
        ("-leading.and.trailing_", "leading.and.trailing"),
        ("a..b", "a.b"),
        ("a___b", "a_b"),
    ],
)
def test_model_tag(name: str, tag: str) -> None:
    assert model_tag(name) == tag


@pytest.mark.parametrize("name", ["", "   ", "!!!", "___", "模型"])
def test_model_tag_empty_is_an_error(name: str) -> None:
    with pytest.raises(BuildError, match="rename the model"):
        model_tag(name)


def test_version_tag() -> None:
    assert version_tag("0.0.1") == "0.0.1"
    assert version_tag("1.0.0+local") == "1.0.0-local"
    assert version_tag(".5") == "v.5"


def test_registry_normalised() -> None:
    assert check_registry(None) is None
    assert check_registry("") is None
    assert check_registry("localhost:5000/") == "localhost:5000"
    assert check_registry("http://localhost:5000") == "localhost:5000"
    assert check_registry("registry.example.com/team") == "registry.example.com/team"
    with pytest.raises(BuildError, match="host\\[:port\\]"):
        check_registry("not a registry")


def test_image_ref(model_dir) -> None:
    spec = load_spec("example_models/rng")
    assert image_ref(spec) == "rngmodel:0.0.1"
    assert image_ref(spec, "localhost:5000") == "localhost:5000/rngmodel:0.0.1"


def test_base_image_ref() -> None:
    assert base_image_ref() == f"catwalk:{__version__}"
    assert base_image_ref("localhost:5000") == f"localhost:5000/catwalk:{__version__}"
    assert base_image_ref("localhost:5000", "python:3.12-slim") == "python:3.12-slim"


def test_split_ref() -> None:
    assert split_ref("localhost:5000/rngmodel:0.0.1") == ("localhost:5000/rngmodel", "0.0.1")
    assert split_ref("rngmodel") == ("rngmodel", "latest")
    assert split_ref("localhost:5000/rngmodel") == ("localhost:5000/rngmodel", "latest")
