"""Finding a repository's models, PEP 440 defaults, and the models: section checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from repo_fixtures import SHOP, add_model

from catwalk.config import load_settings
from catwalk.config_models import ModelsSettings
from catwalk.errors import ConfigError, InvalidRequest, ModelMismatch, SpecError
from catwalk.repository import discover, resolve
from catwalk.repository.routing import bucket
from catwalk.repository.versions import default_version, sort_versions


def test_a_model_folder_is_a_repository_of_one(model_dir: Path) -> None:
    repo = discover(model_dir("echo"))
    assert repo.single
    assert [e.ref for e in repo.entries] == ["Echo@1.0"]


def test_a_folder_of_model_folders_is_a_repository() -> None:
    repo = discover(SHOP)
    assert not repo.single
    assert repo.names == ["price", "scale"]
    assert repo.versions("scale") == ["1.9", "1.10"]
    assert repo.describe() == "price 0.1; scale 1.9, 1.10"


def test_the_same_name_and_version_twice_names_both_folders(tmp_path: Path) -> None:
    add_model(tmp_path, "one", "scale", "1.0")
    add_model(tmp_path, "two", "scale", "1.0")
    with pytest.raises(SpecError) as caught:
        discover(tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "one") in message and str(tmp_path / "two") in message
    assert "both hold model scale version 1.0" in message


def test_a_folder_that_is_neither_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    with pytest.raises(SpecError) as caught:
        discover(tmp_path)
    assert caught.value.problems == [
        f"{tmp_path}: neither a model folder (it holds no model.yml) nor a model repository "
        "(none of its subfolders holds one): give a folder with model.yml and model.py, or a "
        "folder of such folders"
    ]


def test_every_models_problems_are_reported_together(tmp_path: Path) -> None:
    add_model(tmp_path, "good", "scale", "1.0")
    bad = add_model(tmp_path, "bad", "scale", "2.0")
    (bad / "model.yml").write_text("name: scale\n")
    gone = add_model(tmp_path, "gone", "other", "1.0")
    (gone / "model.py").unlink()
    with pytest.raises(SpecError) as caught:
        discover(tmp_path)
    problems = caught.value.problems
    assert "bad/model.yml: version: required field missing" in problems
    assert f"{gone / 'model.py'}: required file missing" in problems


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        (["1.9", "1.10"], "1.10"),  # never string order
        (["1.0.0", "0.9.12"], "1.0.0"),
        (["2.0rc1", "1.5"], "1.5"),  # a final release before a pre-release
        (["2.0rc1", "2.0b2"], "2.0rc1"),  # only pre-releases: the highest
        (["1.0", "2.0.dev3", "1.0.post1"], "1.0.post1"),
    ],
)
def test_the_default_version_is_the_highest_pep440_release(
    versions: list[str], expected: str
) -> None:
    assert default_version("m", versions, None) == expected


def test_pep440_ordering() -> None:
    assert sort_versions(["1.10", "1.9", "2.0rc1", "2.0", "1.9.1"]) == [
        "1.9", "1.9.1", "1.10", "2.0rc1", "2.0",
    ]  # fmt: skip


def test_a_version_outside_pep440_needs_an_explicit_default() -> None:
    with pytest.raises(ValueError, match=r"set models\.versions\.m in application\.yml"):
        default_version("m", ["1.0", "blue"], None)
    assert default_version("m", ["1.0", "blue"], "blue") == "blue"
    assert default_version("m", ["blue"], None) == "blue"  # alone, it needs no ordering


def test_routing_by_name_version_and_default() -> None:
    routing = resolve(discover(SHOP), ModelsSettings(default="price"))
    assert routing.pick(None, None, "id").ref == "price@0.1"
    assert routing.pick("scale", None, "id").ref == "scale@1.10"
    assert routing.pick("scale", "1.9", "id").ref == "scale@1.9"
    with pytest.raises(ModelMismatch) as caught:
        routing.pick("scale", "3.0", "id")
    assert str(caught.value) == (
        "model 'scale' version '3.0' not found: this server serves price 0.1; scale 1.9, 1.10"
    )
    with pytest.raises(ModelMismatch, match="model 'nope' not found"):
        routing.pick("nope", None, "id")


def test_no_default_name_among_several_is_a_400_listing_the_names() -> None:
    routing = resolve(discover(SHOP), ModelsSettings())
    with pytest.raises(InvalidRequest) as caught:
        routing.pick(None, None, "id")
    assert "(price, scale)" in str(caught.value)


def test_the_canary_split_is_sticky_and_close_to_its_weights() -> None:
    routing = resolve(discover(SHOP), ModelsSettings(traffic={"scale": {"1.9": 90, "1.10": 10}}))
    picked = [routing.pick("scale", None, f"id-{i}").version for i in range(2000)]
    share = picked.count("1.10") / len(picked)
    assert 0.05 <= share <= 0.15
    assert all(routing.pick("scale", None, f"id-{i}").version == picked[i] for i in range(200))
    assert bucket("id-7") == bucket("id-7")  # stable: not Python's salted hash()
    assert routing.pick("scale", "1.9", "id-1").version == "1.9"  # a named version is kept


def test_the_models_section_is_checked_against_what_is_loaded() -> None:
    settings = ModelsSettings(
        default="nope",
        versions={"scale": "9.9"},
        traffic={"scale": {"1.9": 50, "7.0": 50}},
        shadow={"price": "0.1"},
    )
    with pytest.raises(ConfigError) as caught:
        resolve(discover(SHOP), settings)
    lines = str(caught.value).splitlines()
    assert lines == [
        "application.yml: models.default: no model named 'nope' is loaded (loaded: price 0.1; "
        "scale 1.9, 1.10)",
        "application.yml: models.versions.scale: '9.9' is not loaded (versions of scale: "
        "1.9, 1.10)",
        "application.yml: models.traffic.scale: version '7.0' is not loaded (versions of "
        "scale: 1.9, 1.10)",
        "application.yml: models.shadow.price: '0.1' is price's default version, which answers "
        "its requests itself: a shadow runs beside another version",
    ]


def test_the_models_section_of_application_yml(tmp_path: Path) -> None:
    config = tmp_path / "application.yml"
    config.write_text(
        "models:\n  default: scale\n  versions: {scale: '1.9'}\n"
        "  traffic:\n    scale: {'1.9': 80, '1.10': 20}\n  shadow: {price: '0.2'}\n"
    )
    models = load_settings(config).models
    assert models == ModelsSettings(
        default="scale",
        versions={"scale": "1.9"},
        traffic={"scale": {"1.9": 80, "1.10": 20}},
        shadow={"price": "0.2"},
    )


def test_mistakes_in_the_models_section(tmp_path: Path) -> None:
    config = tmp_path / "application.yml"
    config.write_text(
        "models:\n  defualt: scale\n  versions: {scale: 1.10}\n"
        "  traffic:\n    scale: {'1.9': 80, '1.10': 30}\n    price: {'1': 50.5, '2': 49.5}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert "models.defualt: unknown key (allowed: default, versions, traffic, shadow)" in message
    assert 'models.versions.scale: must be a string; write the version in quotes ("1.1")' in message
    assert "models.traffic.scale: weights must sum to 100, they sum to 110" in message
    assert "models.traffic.price.1: weight must be a whole number 0-100, got 50.5" in message


def test_the_index_marks_the_shadow() -> None:
    routing = resolve(
        discover(SHOP), ModelsSettings(versions={"scale": "1.9"}, shadow={"scale": "1.10"})
    )
    assert routing.index()[1:] == [
        {"name": "scale", "version": "1.9", "default": True},
        {"name": "scale", "version": "1.10", "default": False, "shadow": True},
    ]
    shadow = routing.shadow_of(routing.pick("scale", None, "k"))
    assert shadow is not None and shadow.ref == "scale@1.10"
    assert routing.shadow_of(routing.pick("scale", "1.10", "k")) is None  # asked for by name
