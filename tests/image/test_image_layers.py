"""The image's layers without Docker: model.yml's system_packages and weights, the Dockerfile's
stages, the build context catwalk assembles, the wheelhouse (a real pip, offline), build
suffixes and the rule that nothing untested is pushed."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

from catwalk.errors import BuildError, SpecError
from catwalk.image.base import BaseImage, has_registry
from catwalk.image.build import BuildOptions, build_model_image
from catwalk.image.context import FIXED_MTIME, context_file, model_files
from catwalk.image.dockerfile import LARGE_FILE_MIB, MODEL_DIR, ImageOptions, render_dockerfile
from catwalk.image.naming import check_suffix, image_ref
from catwalk.image.wheelhouse import (
    _key,
    _pip_command,
    _without_credentials,
    build_wheelhouse,
    cache_root,
)
from catwalk.spec import load_spec


def _instructions(text: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def _add_to_spec(folder: Path, text: str) -> None:
    spec = folder / "model.yml"
    spec.write_text(spec.read_text() + text)


# --- model.yml ----------------------------------------------------------------------------


def test_system_packages_and_weights_are_read(example_copy: Any) -> None:
    folder = example_copy("rng")
    _add_to_spec(folder, "system_packages: [libgomp1, libpq5=15.10-0+deb12u1, g++]\n")
    _add_to_spec(folder, "weights: [weights/*.bin, big/]\n")
    spec = load_spec(folder)
    assert spec.system_packages == ("libgomp1", "libpq5=15.10-0+deb12u1", "g++")
    assert spec.weights == ("weights/*.bin", "big/")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("system_packages: libgomp1\n", "system_packages: must be a list of strings, got str"),
        (
            "system_packages: [libgomp1, 'curl; rm -rf /']\n",
            "system_packages[1]: 'curl; rm -rf /' is not a Debian package name",
        ),
        ("system_packages: [LibGomp]\n", "system_packages[0]: 'LibGomp' is not a Debian"),
        ("system_packages: [1]\n", "system_packages[0]: 1 is not a Debian package name"),
        ("weights: [../outside.bin]\n", "weights[0]: '../outside.bin' is not a path or glob"),
        ("weights: [/etc/passwd]\n", "weights[0]: '/etc/passwd' is not a path or glob"),
        ("weight: [x.bin]\n", "weight: unknown field"),
    ],
)
def test_bad_image_keys_name_the_field(example_copy: Any, text: str, expected: str) -> None:
    folder = example_copy("rng")
    _add_to_spec(folder, text)
    with pytest.raises(SpecError) as info:
        load_spec(folder)
    assert f"model.yml: {expected}" in str(info.value)


# --- the Dockerfile -----------------------------------------------------------------------


def test_layers_follow_change_rates(example_copy: Any) -> None:
    """system packages -> requirements -> weights -> code."""
    folder = example_copy("dataframe")
    _add_to_spec(folder, "system_packages: [libgomp1, libpq5]\nweights: [weights/]\n")
    (folder / "weights").mkdir()
    (folder / "weights" / "w.bin").write_bytes(b"\0" * 10)
    lines = _instructions(render_dockerfile(load_spec(folder), ImageOptions()))
    apt = next(i for i, line in enumerate(lines) if "apt-get install" in line)
    assert "libgomp1 libpq5;" in lines[apt]
    assert "rm -rf /var/lib/apt/lists/*" in lines[apt]
    order = [
        apt,
        lines.index("FROM system AS requirements"),
        lines.index("COPY --from=requirements /catwalk-installed/ /"),
        lines.index(f"COPY weights/ {MODEL_DIR}/"),
        lines.index(f"COPY model/ {MODEL_DIR}/"),
    ]
    assert order == sorted(order)
    # no layer changes file modes after the copies (a chmod would copy every file it touches)
    assert not any(line.startswith("RUN") for line in lines[order[-2] :])


def test_a_new_version_changes_no_layer(example_copy: Any) -> None:
    """Everything up to the code's COPY is the same for two versions: Docker's cache keeps
    (and the registry already has) the requirements, weights and code layers."""
    folder = example_copy("dataframe")
    _add_to_spec(folder, "weights: [test_data.json]\n")
    before = _instructions(render_dockerfile(load_spec(folder), ImageOptions()))
    spec = folder / "model.yml"
    spec.write_text(spec.read_text().replace('version: "1.0.0"', 'version: "1.0.1"'))
    after = _instructions(render_dockerfile(load_spec(folder), ImageOptions()))
    code = before.index(f"COPY model/ {MODEL_DIR}/")
    assert f"COPY weights/ {MODEL_DIR}/" in before[:code]
    assert before[: code + 1] == after[: code + 1]
    assert before != after


def test_no_system_packages_no_apt_and_no_weights_no_layer(example_copy: Any) -> None:
    text = render_dockerfile(load_spec(example_copy("rng")), ImageOptions())
    assert "apt-get" not in text
    assert "COPY weights/" not in text
    assert "AS requirements" not in text  # rng has no requirements.txt


# --- the build context --------------------------------------------------------------------


def test_weights_declared_or_large_go_apart_and_wheels_stay_out(example_copy: Any) -> None:
    folder = example_copy("rng")
    (folder / "weights").mkdir()
    (folder / "weights" / "small.bin").write_bytes(b"1" * 100)
    (folder / "big.onnx").write_bytes(b"\0" * (LARGE_FILE_MIB * 1024 * 1024))
    (folder / "vendored-1.0-py3-none-any.whl").write_bytes(b"PK")
    (folder / ".env").write_text("TOKEN=x\n")
    (folder / ".dockerignore").write_text(".env\n")
    files = model_files(folder, ("weights/*.bin",))
    assert files.weights == ("big.onnx", "weights/small.bin")
    assert "model.py" in files.code and "model.yml" in files.code
    assert not any(p.endswith(".whl") or p == ".env" for p in files.code + files.weights)
    (folder / "Dockerfile").write_text("FROM x\n")
    assert "Dockerfile" not in model_files(folder).code
    assert ".dockerignore" not in model_files(folder).code


def test_the_context_tar_is_readable_by_any_uid_and_reproducible(
    example_copy: Any, tmp_path: Path
) -> None:
    folder = example_copy("rng")
    (folder / "model.py").chmod(0o600)  # as a private checkout has it
    (folder / "run.sh").write_text("#!/bin/sh\n")
    (folder / "run.sh").chmod(0o700)
    wheel = tmp_path / "x-1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK")
    (folder / "latest.json").symlink_to("test_data.json")
    files = model_files(folder)
    tars = []
    for _ in range(2):
        with context_file(folder, "FROM scratch\n", files, [wheel]) as out:
            tars.append(out.read())
        (folder / "model.py").touch()  # a new checkout time changes nothing
    assert tars[0] == tars[1]
    with tarfile.open(fileobj=io.BytesIO(tars[0])) as tar:
        members = {m.name: m for m in tar.getmembers()}
        dockerfile = tar.extractfile("Dockerfile")
        assert dockerfile is not None and dockerfile.read() == b"FROM scratch\n"
    assert members["model/model.py"].mode == 0o644
    assert members["model/run.sh"].mode == 0o755
    assert members["wheels/x-1.0-py3-none-any.whl"].isfile()
    assert members["model/latest.json"].issym()
    assert members["model/latest.json"].linkname == "test_data.json"
    for member in members.values():
        assert (member.uid, member.gid, member.mtime) == (0, 0, FIXED_MTIME)


# --- the wheelhouse (a real pip, offline) -----------------------------------------------------


def _host_base(**installed: str) -> BaseImage:
    """A base image with exactly this machine's wheel tags (the wheelhouse uses pip wheel)."""
    from packaging.tags import sys_tags

    return BaseImage(
        ref="localhost:5000/t/catwalk:0",
        image_id="sha256:0",
        python="3.11",
        tags=tuple(str(t) for t in sys_tags()),
        installed=dict(installed),
        keep={"flask": ("Flask", "3.1.3", "Flask>=3.0")},
    )


@pytest.mark.slow  # runs pip wheel
def test_wheelhouse_resolves_find_links_of_the_requirements_and_caches(
    example_copy: Any, build_wheel: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # offline: only the folder's own wheels
    folder = example_copy("rng")
    (folder / "vendor").mkdir()
    build_wheel(folder / "vendor", "catwalk_wh_dep")
    build_wheel(folder / "vendor", "catwalk_wh_top", requires=("catwalk_wh_dep",))
    (folder / "requirements.txt").write_text("--find-links ./vendor\ncatwalk_wh_top\n")
    said: list[str] = []
    house = build_wheelhouse(folder, _host_base(), refresh=False, echo=said.append)
    assert house is not None and not house.cached
    assert [w.name for w in house.wheels] == [
        "catwalk_wh_dep-0.1-py3-none-any.whl",
        "catwalk_wh_top-0.1-py3-none-any.whl",
    ]
    pinned = (house.folder / "requirements.txt").read_text()
    assert pinned == "catwalk-wh-dep==0.1\ncatwalk-wh-top==0.1\n"
    assert house.folder.parent == cache_root()
    assert any("pip wheel" in line for line in said)
    # A second build runs no pip; a changed requirements.txt or vendored wheel resolves again.
    again = build_wheelhouse(folder, _host_base(), refresh=False, echo=said.append)
    assert again is not None and again.cached and again.folder == house.folder
    build_wheel(folder / "vendor", "catwalk_wh_dep")  # rewritten: a new mtime
    (folder / "vendor" / "catwalk_wh_dep-0.1-py3-none-any.whl").touch()
    moved = build_wheelhouse(folder, _host_base(), refresh=False, echo=said.append)
    assert moved is not None and not moved.cached
    refreshed = build_wheelhouse(folder, _host_base(), refresh=True, echo=said.append)
    assert refreshed is not None and not refreshed.cached and refreshed.wheels


@pytest.mark.slow  # runs pip wheel
def test_a_repositorys_wheelhouse_holds_every_models_requirements(
    example_copy: Any, build_wheel: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catwalk.repository.image import requirements_folder

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    repository = tmp_path / "repository"
    repository.mkdir()
    one = example_copy("rng").rename(repository / "one")
    two = example_copy("batch").rename(repository / "two")
    (one / "vendor").mkdir()
    build_wheel(one / "vendor", "catwalk_wh_dep")
    build_wheel(one / "vendor", "catwalk_wh_top", requires=("catwalk_wh_dep",))
    (one / "requirements.txt").write_text(f"--find-links {one / 'vendor'}\ncatwalk_wh_top\n")
    (two / "requirements.txt").write_text("catwalk_wh_dep>=0.1\n")
    folder = requirements_folder(repository)
    assert folder is not None
    house = build_wheelhouse(folder, _host_base(), refresh=False, echo=print)
    assert house is not None
    pinned = (house.folder / "requirements.txt").read_text()
    assert pinned == "catwalk-wh-dep==0.1\ncatwalk-wh-top==0.1\n"


def test_wheelhouse_refuses_replacing_catwalk_s_own_packages(example_copy: Any) -> None:
    from catwalk.errors import RequirementsError

    folder = example_copy("rng")
    (folder / "requirements.txt").write_text("Flask==2.3.3\n")
    with pytest.raises(
        RequirementsError, match=re.escape("'Flask==2.3.3' conflicts with catwalk's own")
    ):
        build_wheelhouse(folder, _host_base(), refresh=False, echo=print)


@pytest.mark.slow  # runs pip wheel
def test_wheelhouse_names_pip_s_error(
    example_copy: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    folder = example_copy("rng")
    (folder / "requirements.txt").write_text("catwalk-no-such-package-anywhere==1.0\n")
    with pytest.raises(BuildError) as info:
        build_wheelhouse(folder, _host_base(), refresh=False, echo=print)
    text = str(info.value)
    assert "resolving the requirements for the image failed (pip wheel" in text
    assert "catwalk-no-such-package-anywhere" in text


@pytest.mark.slow  # runs pip wheel
def test_another_platform_gets_wheels_for_the_image_s_tags(
    example_copy: Any, build_wheel: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A base image whose tags differ from this machine's: pip download, binary only, for
    the image's Python and platforms (a real pip, offline, on hand-made wheels)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    folder = example_copy("rng")
    (folder / "vendor").mkdir()
    build_wheel(folder / "vendor", "catwalk_wh_any")
    (folder / "requirements.txt").write_text("--find-links ./vendor\ncatwalk_wh_any\n")
    base = BaseImage(
        ref="b",
        image_id="i",
        python="3.12",
        tags=("cp312-cp312-manylinux_2_17_aarch64", "py3-none-any"),
        installed={},
        keep={},
    )
    said: list[str] = []
    house = build_wheelhouse(folder, base, refresh=False, echo=said.append)
    assert house is not None
    assert [w.name for w in house.wheels] == ["catwalk_wh_any-0.1-py3-none-any.whl"]
    assert any("Python 3.12 (pip download" in line for line in said)


@pytest.mark.slow  # runs pip wheel
def test_requirements_listing_nothing_give_an_empty_wheelhouse(
    example_copy: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = example_copy("rng")
    (folder / "requirements.txt").write_text("# nothing yet\n")
    house = build_wheelhouse(folder, _host_base(), refresh=False, echo=print)
    assert house is not None and house.wheels == ()
    assert (house.folder / "requirements.txt").read_text() == ""


def test_another_python_downloads_wheels_for_the_image(tmp_path: Path) -> None:
    base = BaseImage(
        ref="b",
        image_id="i",
        python="3.12",
        tags=(
            "cp312-cp312-manylinux_2_36_x86_64",
            "cp312-abi3-manylinux_2_36_x86_64",
            "cp312-none-manylinux_2_36_x86_64",
            "cp312-cp312-linux_x86_64",
            "py3-none-any",
        ),
        installed={},
        keep={},
    )
    cmd = _pip_command(tmp_path / "r.txt", base, "download", tmp_path, tmp_path / "c.txt")
    joined = " ".join(cmd)
    assert "download" in cmd and "--only-binary=:all:" in cmd
    assert "--python-version 3.12 --implementation cp" in joined
    assert "--abi cp312 --abi abi3 --abi none" in joined
    assert "--platform manylinux_2_36_x86_64 --platform linux_x86_64" in joined


def test_credentials_never_reach_the_cache_key(
    example_copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "https://alice:s3cr3t-t0ken@pypi.example.com/simple"
    assert _without_credentials(url) == "https://pypi.example.com/simple"
    folder = example_copy("rng")
    (folder / "requirements.txt").write_text(f"--extra-index-url {url}\nnumpy\n")
    monkeypatch.setenv("PIP_INDEX_URL", url)
    key = _key(folder, folder / "requirements.txt", _host_base(), "wheel")
    monkeypatch.setenv("PIP_INDEX_URL", url.replace("s3cr3t-t0ken", "other"))
    (folder / "requirements.txt").write_text(f"--extra-index-url {url.replace('s3', 'x')}\nnumpy\n")
    assert _key(folder, folder / "requirements.txt", _host_base(), "wheel") == key


# --- names, and nothing untested is pushed ------------------------------------------------


def test_build_suffix_names_a_rebuild(example_copy: Any) -> None:
    spec = load_spec(example_copy("rng"))
    assert image_ref(spec, "localhost:5000/t", "b2") == "localhost:5000/t/rngmodel:0.0.1-b2"
    assert image_ref(spec, None, " ") == "rngmodel:0.0.1"
    assert check_suffix("-20261203") == "20261203"
    with pytest.raises(BuildError, match="--build-suffix 'a b'"):
        check_suffix("a b")


def test_an_untested_image_is_never_pushed(example_copy: Any) -> None:
    spec = load_spec(example_copy("rng"))
    options = BuildOptions(registry="localhost:5000/t", push=True, test=False)
    with pytest.raises(BuildError, match="would be pushed untested: --no-test needs --no-push"):
        build_model_image(spec, options, print)


def test_registry_hosts_are_told_from_docker_hub_names() -> None:
    assert has_registry("localhost:5000/catwalk:0.1.0")
    assert has_registry("registry.example.com/team/catwalk:0.1.0")
    assert has_registry("localhost/catwalk:1")
    assert not has_registry("catwalk:0.1.0")
    assert not has_registry("team/catwalk:0.1.0")


def test_what_a_base_image_runs_is_asked_once_per_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catwalk.image.base import cache_dir, probe_base

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "catwalk"
    data = {"python": "3.11", "tags": ["py3-none-any"], "installed": {"Flask": "3.1.3"}}
    data["keep"] = {"flask": ["Flask", "3.1.3", "Flask>=3.0"]}
    (tmp_path / "catwalk" / "base-images").mkdir(parents=True)
    (tmp_path / "catwalk" / "base-images" / ("ab" * 16 + ".json")).write_text(json.dumps(data))
    # No Docker client at all: the answer comes from the cache.
    base = probe_base(None, "b:1", "sha256:" + "ab" * 32)  # type: ignore[arg-type]
    assert (base.python, base.tags, base.installed) == (
        "3.11",
        ("py3-none-any",),
        data["installed"],
    )
    assert base.keep == {"flask": ("Flask", "3.1.3", "Flask>=3.0")}
