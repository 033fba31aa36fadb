"""A repository's image, without Docker: the spec the image commands use, the rendered
Dockerfile (every model's system packages, the merged requirements, the layer order), the
layers its files go to, and the flags' errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from catwalk.cli import cli
from catwalk.errors import ConfigError, RequirementsError
from catwalk.image.context import model_files
from catwalk.image.dockerfile import ImageOptions, render_dockerfile
from catwalk.repository.image import image_spec, requirements_folder

MakeRepo = Callable[..., Path]


def _image_keys(folder: Path, packages: list[str], weights: list[str]) -> None:
    with (folder / "model.yml").open("a") as spec:
        spec.write(f"system_packages: {packages}\nweights: {weights}\n")


@pytest.fixture
def repo(make_repo: MakeRepo) -> Path:
    root = make_repo(
        ("scale-old", "scale", "1.9", {"requirements": "packaging>=20\n"}),
        ("scale-new", "scale", "1.10", {}),
        ("price", "price", "0.1", {"requirements": "# none yet\n"}),
    )
    _image_keys(root / "scale-old", ["libgomp1", "curl"], ["big/"])
    _image_keys(root / "price", ["curl", "tini"], ["*.bin"])
    return root


def test_the_image_spec_gathers_every_model(repo: Path) -> None:
    spec = image_spec(repo, "shop", "2.0")
    assert (spec.path, spec.name, spec.version) == (repo, "shop", "2.0")
    assert spec.system_packages == ("curl", "tini", "libgomp1")  # price first: by name
    assert spec.weights == ("price/*.bin", "scale-old/big/")
    assert spec.description == "model repository: price 0.1; scale 1.9, 1.10"


def test_weights_of_a_model_go_to_the_weights_layer_under_its_folder(repo: Path) -> None:
    (repo / "scale-old" / "big").mkdir()
    (repo / "scale-old" / "big" / "w.npy").write_bytes(b"0" * 10)
    (repo / "price" / "p.bin").write_bytes(b"1")
    (repo / "scale-new" / "p.bin").write_bytes(b"2")  # not its pattern: code
    files = model_files(repo, image_spec(repo, "shop", "2.0").weights)
    assert files.weights == ("price/p.bin", "scale-old/big/w.npy")
    assert "scale-new/p.bin" in files.code and "scale-old/model.yml" in files.code


def test_the_dockerfile_installs_every_models_packages_in_layer_order(repo: Path) -> None:
    text = render_dockerfile(image_spec(repo, "shop", "2.0"), ImageOptions())
    assert "curl tini libgomp1" in text
    order = [
        text.index("apt-get install"),
        text.index("FROM system AS requirements"),
        text.index("COPY model/ /srv/model/"),
        text.index('io.catwalk.model.name="shop"'),
    ]
    assert order == sorted(order)
    assert "ENV MODEL_PATH=/srv/model" in text


def test_requirements_are_merged_and_checked_for_conflicts(repo: Path) -> None:
    folder = requirements_folder(repo)
    assert folder is not None and folder != repo
    merged = (folder / "requirements.txt").read_text()
    assert f"-r {repo / 'scale-old' / 'requirements.txt'}" in merged
    assert f"-r {repo / 'price' / 'requirements.txt'}" in merged
    (repo / "price" / "requirements.txt").write_text("packaging<20\n")
    with pytest.raises(RequirementsError, match="no version of packaging satisfies both"):
        requirements_folder(repo)


def test_no_requirements_no_stage(make_repo: MakeRepo) -> None:
    root = make_repo(("a", "a", "1", {}), ("b", "b", "1", {}))
    assert requirements_folder(root) is None
    assert "AS requirements" not in render_dockerfile(image_spec(root, "ab", "1"), ImageOptions())


def test_flags_name_a_repositorys_image_only(repo: Path) -> None:
    with pytest.raises(ConfigError, match="missing: --image-version"):
        image_spec(repo, "shop", None)
    with pytest.raises(ConfigError, match=r"model\.yml names its image"):
        image_spec(repo / "price", "shop", "1")
    assert image_spec(repo / "price", None, None).name == "price"


@pytest.mark.parametrize("command", ["build-prep", "build", "test-image", "deploy-prep"])
def test_each_image_command_asks_for_the_flags(repo: Path, command: str) -> None:
    result = CliRunner().invoke(cli, [command, "-m", str(repo)])
    assert result.exit_code != 0
    assert "--image-name NAME --image-version VERSION" in result.output


def test_the_environment_names_the_image(repo: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["build-prep", "-m", str(repo), "--image-name", "flag", "--image-version", "9"],
        env={"CATWALK_IMAGE_NAME": "from-env", "CATWALK_IMAGE_VERSION": "3.1"},
    )
    assert result.exit_code == 0, result.output
    assert 'io.catwalk.model.name="from-env"' in (repo / "Dockerfile").read_text()
    assert "--image-name from-env --image-version 3.1" in result.output
