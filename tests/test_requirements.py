"""Installing a model's requirements.txt: skipped when satisfied, pip otherwise, safely."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from catwalk import requirements
from catwalk.errors import RequirementsError
from catwalk.requirements import ensure_requirements, requirement_names


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stamps go to a fresh folder, so earlier runs never count as 'already installed'."""
    state = tmp_path / "state"
    monkeypatch.setattr(requirements, "_state_dir", lambda: state)
    return state


@pytest.fixture
def no_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything is run as a subprocess (pip, above all)."""

    def run(*args: Any, **kwargs: Any) -> Any:
        pytest.fail(f"subprocess.run called: {args} {kwargs}")

    monkeypatch.setattr(subprocess, "run", run)


class FakePip:
    """Stands in for subprocess.run; records the commands, answers with ``returncode``."""

    def __init__(self, returncode: int = 0, output: str = "") -> None:
        self.calls: list[tuple[list[str], dict[str, Any]]] = []
        self.returncode = returncode
        self.output = output

    def __call__(self, cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((cmd, kwargs))
        return subprocess.CompletedProcess(cmd, self.returncode, self.output, "")


@pytest.fixture
def fake_pip(monkeypatch: pytest.MonkeyPatch) -> FakePip:
    fake = FakePip()
    monkeypatch.setattr(subprocess, "run", fake)
    return fake


def folder_with(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    (folder / "requirements.txt").write_text(textwrap.dedent(text))
    return folder


def test_no_requirements_file(tmp_path: Path, no_pip: None) -> None:
    assert ensure_requirements(tmp_path) == "no requirements.txt"
    assert requirement_names(tmp_path) == set()


def test_only_comments(tmp_path: Path, no_pip: None) -> None:
    folder = folder_with(tmp_path, "# nothing\n\n   # at all\n")
    assert ensure_requirements(folder) == "requirements.txt lists nothing"


def test_satisfied_file_skips_pip(tmp_path: Path, no_pip: None) -> None:
    folder = folder_with(
        tmp_path,
        """\
        # the model's dependencies
        PyYAML>=5.1  # a comment after a requirement
        click
        Packaging[extra]>=20
        numpy<2 ; python_version < "3"
        """,
    )
    assert ensure_requirements(folder) == "4 requirement(s) already satisfied"
    assert requirement_names(folder) == {"pyyaml", "click", "packaging", "numpy"}


def test_missing_package_calls_pip(tmp_path: Path, fake_pip: FakePip) -> None:
    folder = folder_with(tmp_path, "click\ncatwalk-tests-not-installed>=1\n")
    assert ensure_requirements(folder) == "installed 2 requirement(s) with pip"
    ((cmd, kwargs),) = fake_pip.calls
    assert cmd[:3] == [sys.executable, "-m", "pip"]
    assert cmd[-2:] == ["-r", str(folder / "requirements.txt")]
    assert kwargs["cwd"] == folder  # relative paths in the file resolve against the folder


def test_version_too_old_calls_pip(tmp_path: Path, fake_pip: FakePip) -> None:
    folder = folder_with(tmp_path, f"pytest>{metadata.version('pytest')}\n")
    ensure_requirements(folder)
    assert len(fake_pip.calls) == 1


def test_uncheckable_lines_are_remembered_by_a_stamp(
    tmp_path: Path, fake_pip: FakePip, state_dir: Path
) -> None:
    folder = folder_with(tmp_path, "--no-index\n./vendor/thing\nclick\n")
    assert ensure_requirements(folder).startswith("installed")
    assert len(list((state_dir / "stamps").iterdir())) == 1
    assert ensure_requirements(folder).endswith("already satisfied")
    assert len(fake_pip.calls) == 1
    # A changed file is a new stamp: pip runs again.
    (folder / "requirements.txt").write_text("--no-index\n./vendor/other\nclick\n")
    assert ensure_requirements(folder).startswith("installed")
    assert len(fake_pip.calls) == 2


@pytest.mark.parametrize(
    "include",
    [
        "-r other.txt",
        "-rother.txt",
        "--requirement other.txt",
        "--requirement=other.txt",
        "-c other.txt",
        "--constraint=other.txt",
    ],
)
def test_editing_an_included_file_runs_pip_again(
    tmp_path: Path, fake_pip: FakePip, include: str
) -> None:
    folder = folder_with(tmp_path, f"{include}\nclick\n")
    (folder / "other.txt").write_text("click\n")
    assert ensure_requirements(folder).startswith("installed")
    assert ensure_requirements(folder).endswith("already satisfied")
    assert len(fake_pip.calls) == 1
    (folder / "other.txt").write_text("click\ncatwalk-tests-not-installed\n")
    assert ensure_requirements(folder).startswith("installed")
    assert len(fake_pip.calls) == 2


def test_nested_includes_resolve_against_the_including_file(
    tmp_path: Path, fake_pip: FakePip
) -> None:
    folder = folder_with(tmp_path, "-r reqs/base.txt\n")
    (folder / "reqs").mkdir()
    (folder / "reqs" / "base.txt").write_text("-r more.txt  # next to base.txt\n-r base.txt\n")
    (folder / "reqs" / "more.txt").write_text("click\n")
    assert requirements._included_files(folder / "requirements.txt") == [
        folder / "reqs" / "base.txt",
        folder / "reqs" / "more.txt",
    ]
    ensure_requirements(folder)
    ensure_requirements(folder)
    assert len(fake_pip.calls) == 1
    (folder / "reqs" / "more.txt").write_text("click>=1\n")
    ensure_requirements(folder)
    assert len(fake_pip.calls) == 2


def test_failed_pip_writes_no_stamp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakePip(returncode=1, output="ERROR: no luck")
    monkeypatch.setattr(subprocess, "run", fake)
    folder = folder_with(tmp_path, "./vendor/thing\n")
    for _ in range(2):
        with pytest.raises(RequirementsError, match="ERROR: no luck"):
            ensure_requirements(folder)
    assert len(fake.calls) == 2


@pytest.mark.slow  # runs pip
def test_unsatisfiable_requirement_shows_pips_output(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "--no-index\ncatwalk-tests-no-such-package==9.9.9\n")
    with pytest.raises(RequirementsError) as info:
        ensure_requirements(folder)
    message = str(info.value)
    assert message.startswith(f"{folder / 'requirements.txt'}: pip install failed (exit 1):")
    assert "catwalk-tests-no-such-package==9.9.9" in message  # pip's own words


@pytest.fixture
def local_package(tmp_path: Path, build_wheel: Any) -> Iterator[tuple[str, Path]]:
    """A wheel of a tiny package unique to this run; uninstalled from the venv afterwards."""
    name = f"catwalk_tests_tiny_{os.getpid()}"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = build_wheel(wheels, name)
    yield name, wheel
    subprocess.run(
        [sys.executable, "-m", "pip", "uninstall", "-y", "-q", name],
        capture_output=True,
        check=False,
    )


@pytest.mark.slow  # runs pip
def test_real_install_of_a_local_wheel(tmp_path: Path, local_package: tuple[str, Path]) -> None:
    name, wheel = local_package
    folder = folder_with(tmp_path, f"--no-index\n{wheel}\n")
    assert ensure_requirements(folder) == "installed 2 requirement(s) with pip"
    assert metadata.version(name) == "0.1"
    # Importable in this very process, straight after pip.
    module = __import__(name)
    assert module.ANSWER == 42


@pytest.mark.slow  # runs pip
def test_concurrent_processes_both_succeed(tmp_path: Path, local_package: tuple[str, Path]) -> None:
    name, wheel = local_package
    folder = folder_with(tmp_path, f"--no-index\n{wheel}\n")
    script = (
        "import sys; from pathlib import Path; "
        "from catwalk.requirements import ensure_requirements; "
        "print(ensure_requirements(Path(sys.argv[1])))"
    )
    # Both processes share one temp dir: the pip lock and the stamps live there.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert [code for code, _, _ in results] == [0, 0], results
    said = sorted(out.strip() for _, out, _ in results)
    # The lock serialises them: one ran pip, the other found the stamp it left.
    assert said == ["2 requirement(s) already satisfied", "installed 2 requirement(s) with pip"]
    assert metadata.version(name) == "0.1"


# -- catwalk's own dependencies are kept (a model cannot replace Flask) ---------------------


def test_a_pin_on_catwalks_own_dependency_is_refused_naming_both(
    tmp_path: Path, no_pip: None
) -> None:
    flask = metadata.version("flask")
    folder = folder_with(tmp_path, "Flask==2.3.3\n")
    with pytest.raises(RequirementsError) as info:
        ensure_requirements(folder)
    message = str(info.value)
    assert "'Flask==2.3.3' conflicts with catwalk's own dependency Flask>=3.0" in message
    assert f"(installed: Flask {flask})" in message
    assert "nothing was installed" in message
    assert metadata.version("flask") == flask


def test_a_transitive_dependency_is_named_with_its_path(tmp_path: Path, no_pip: None) -> None:
    folder = folder_with(tmp_path, "werkzeug<3\n")
    with pytest.raises(RequirementsError, match=r"werkzeug>=[0-9.]+ \(via Flask\)"):
        ensure_requirements(folder)


def test_pip_runs_under_constraints_pinning_catwalks_dependencies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen.extend(Path(cmd[cmd.index("-c") + 1]).read_text().splitlines())
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", run)
    ensure_requirements(folder_with(tmp_path, "catwalk-tests-not-installed>=1\n"))
    assert f"Flask=={metadata.version('flask')}" in seen
    assert f"werkzeug=={metadata.version('werkzeug')}" in seen
    assert f"catwalk-serve=={metadata.version('catwalk-serve')}" in seen


@pytest.mark.slow  # runs pip
def test_a_package_needing_an_older_flask_is_refused_by_pip_and_nothing_changes(
    tmp_path: Path, build_wheel: Any
) -> None:
    # A real pip run: the model's own dependency wants Flask<3, catwalk's constraint says no.
    name = f"catwalk_tests_old_flask_{os.getpid()}"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = build_wheel(wheels, name, requires=("flask<3",))
    flask = metadata.version("flask")
    folder = folder_with(tmp_path, f"--no-index\n--find-links {wheels}\n{wheel}\n")
    with pytest.raises(RequirementsError) as info:
        ensure_requirements(folder)
    message = str(info.value)
    assert "without changing catwalk's own dependencies" in message
    assert "flask" in message.lower()
    assert metadata.version("flask") == flask
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.version(name)


# -- a model's own environment: what names it, what it is built from ---------------------------


def test_digest_follows_what_the_requirements_say(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "-r base.txt\n./vendor/thing-0.1-py3-none-any.whl\n")
    (folder / "base.txt").write_text("numpy==1.26.4\n")
    (folder / "vendor").mkdir()
    wheel = folder / "vendor" / "thing-0.1-py3-none-any.whl"
    wheel.write_bytes(b"one")
    first = requirements.requirements_digest(folder)
    # Comments and blank lines change nothing...
    (folder / "requirements.txt").write_text(
        "# pins\n-r base.txt\n\n./vendor/thing-0.1-py3-none-any.whl  # vendored\n"
    )
    assert requirements.requirements_digest(folder) == first
    # ...an included file, or a rebuilt local wheel, does.
    (folder / "base.txt").write_text("numpy==2.2.6\n")
    second = requirements.requirements_digest(folder)
    assert second != first
    wheel.write_bytes(b"two, longer")
    assert requirements.requirements_digest(folder) != second
    # A folder without requirements.txt has a digest too (an environment of catwalk only).
    assert requirements.requirements_digest(tmp_path / "nothing") == (
        requirements.requirements_digest(tmp_path / "other")
    )


def test_inside_a_model_environment_nothing_is_installed(
    tmp_path: Path, no_pip: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = folder_with(tmp_path, "catwalk-tests-not-installed==1.0\n")
    env = tmp_path / "env"
    env.mkdir()
    record = {"requirements": requirements.requirements_digest(folder)}
    (env / "catwalk-env.json").write_text(json.dumps(record))
    monkeypatch.setattr(sys, "prefix", str(env))
    assert ensure_requirements(folder) == (
        f"1 requirement(s) installed in the model's environment {env}"
    )
    # requirements.txt edited since the environment was built: said, never pip-installed.
    (folder / "requirements.txt").write_text("catwalk-tests-not-installed==2.0\n")
    with pytest.raises(RequirementsError, match="was built for other requirements"):
        ensure_requirements(folder)


def test_pandas_that_cannot_be_imported_shows_why(
    tmp_path: Path, model_copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure the issue met (a numpy pin broke pandas) said only 'cannot be imported'."""
    from catwalk.checks.model_checks import prepare
    from catwalk.checks.report import Report

    shadow = tmp_path / "shadow"
    (shadow / "pandas").mkdir(parents=True)
    (shadow / "pandas" / "__init__.py").write_text(
        "raise ValueError('numpy.dtype size changed, may indicate binary incompatibility. "
        "Expected 96 from C header, got 88 from PyObject')\n"
    )
    monkeypatch.syspath_prepend(str(shadow))
    for name in [m for m in sys.modules if m == "pandas" or m.startswith("pandas.")]:
        monkeypatch.delitem(sys.modules, name)
    lines: list[str] = []
    report = Report("test-model", echo=lines.append)
    assert prepare(model_copy("dataframe_echo"), report, install=False) is None
    text = "\n".join(lines)
    assert "[FAIL] 3. requirements: pandas is listed but cannot be imported in" in text
    assert "ValueError: numpy.dtype size changed, may indicate binary incompatibility" in text
    assert str(shadow / "pandas" / "__init__.py") in text  # where it was raised


# -- pip's configuration, for uv ----------------------------------------------------------------


def test_pip_config_list_is_merged_as_pip_does() -> None:
    from catwalk.model_env.pipconf import parse_config_list

    text = (
        ":env:.find-links='/opt/wheels'\n"
        "global.find-links='/elsewhere'\n"
        "global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'\n"
        "global.index-url='https://global.example/simple'\n"
        "install.index-url='https://install.example/simple'\n"
        "not a setting line\n"
    )
    assert parse_config_list(text) == {
        "find-links": "/opt/wheels",  # a variable over any file
        "extra-index-url": "file:///opt/pypi/simple file:///opt/pypi-more/simple",
        "index-url": "https://install.example/simple",  # [install] over [global]
    }


def test_pip_settings_map_to_uv(tmp_path: Path) -> None:
    from catwalk.model_env.pipconf import uv_settings

    constraints = tmp_path / "constraints.txt"
    config = {
        "index-url": "https://user:secret@pypi.example/simple",
        "extra-index-url": "file:///opt/pypi/simple https://more.example/simple",
        "find-links": f"{tmp_path} {tmp_path / 'not-there'} https://wheels.example/",
        "constraint": str(constraints),
        "trusted-host": "pypi.example",
        "only-binary": ":all:",
        "pre": "true",
        "cert": "/etc/ssl/certs/ca-certificates.crt",
        "default-timeout": "180",
        "user": "true",  # not an install source: not passed on
    }
    out = uv_settings(config, environ={})
    # URLs travel in variables (never on a command line `ps` shows).
    assert out.env["UV_INDEX_URL"] == "https://user:secret@pypi.example/simple"
    assert out.env["UV_EXTRA_INDEX_URL"] == "file:///opt/pypi/simple https://more.example/simple"
    assert out.env["SSL_CERT_FILE"] == "/etc/ssl/certs/ca-certificates.crt"
    assert out.env["UV_HTTP_TIMEOUT"] == "180"
    assert not any("secret" in arg for arg in out.args)
    assert out.args == [
        "--index-strategy",
        "unsafe-best-match",  # pip's way with several indexes
        # A missing local folder is skipped, as pip skips it (uv would stop).
        "--find-links",
        str(tmp_path),
        "--find-links",
        "https://wheels.example/",
        "--constraint",
        str(constraints),
        "--allow-insecure-host",
        "pypi.example",
        "--only-binary",
        ":all:",
        "--prerelease",
        "allow",
    ]
    # uv's own configuration, when the user set it, is left alone and wins.
    mine = uv_settings(config, environ={"UV_INDEX_URL": "https://mine/simple"})
    assert "UV_INDEX_URL" not in mine.env
    assert "index-url" not in mine.mapped


@pytest.mark.slow  # runs pip
def test_pip_config_comes_from_pip_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from catwalk.model_env.pipconf import pip_config

    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nextra-index-url = https://conf.example/simple\n")
    environ = {**os.environ, "PIP_CONFIG_FILE": str(conf), "PIP_FIND_LINKS": str(tmp_path)}
    found = pip_config(environ)
    assert found["extra-index-url"] == "https://conf.example/simple"
    assert found["find-links"] == str(tmp_path)


# -- the running catwalk, installed again in an environment --------------------------------------


def _dist(tmp_path: Path, direct_url: dict[str, Any] | None) -> metadata.Distribution:
    info = tmp_path / "site" / "catwalk_renamed-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: catwalk-renamed\nVersion: 1.2.3\n")
    (info / "RECORD").write_text("catwalk/__init__.py,sha256=abc,10\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    return metadata.PathDistribution(info)


def test_each_kind_of_install_is_installed_again_the_same_way(tmp_path: Path) -> None:
    from catwalk.model_env.identity import install_of

    source = tmp_path / "src-tree"
    source.mkdir()
    (source / "pyproject.toml").write_text("[project]\nname = 'catwalk-renamed'\n")
    wheel = tmp_path / "catwalk_renamed-1.2.3-py3-none-any.whl"
    wheel.write_bytes(b"")
    cases = {
        "editable": ({"url": source.as_uri(), "dir_info": {"editable": True}}, ("-e", str(source))),
        "folder": ({"url": source.as_uri(), "dir_info": {}}, (str(source),)),
        "wheel": ({"url": wheel.as_uri(), "archive_info": {}}, (str(wheel),)),
        "url": (
            {"url": "https://files.example/c.whl", "archive_info": {}},
            ("catwalk-renamed @ https://files.example/c.whl",),
        ),
        "vcs": (
            {"url": "https://git.example/c.git", "vcs_info": {"vcs": "git", "commit_id": "abc1"}},
            ("catwalk-renamed @ git+https://git.example/c.git@abc1",),
        ),
        "index": (None, ("catwalk-renamed==1.2.3",)),  # the distribution's name, never "catwalk"
    }
    fingerprints = set()
    for case, (direct_url, args) in cases.items():
        own = install_of(_dist(tmp_path / case, direct_url))
        assert own.args == args, case
        assert (own.name, own.version) == ("catwalk-renamed", "1.2.3")
        fingerprints.add(own.fingerprint)
    assert len(fingerprints) == len(cases)
    # A dependency added to the source tree's pyproject.toml means another environment.
    editable = _dist(tmp_path / "again", cases["editable"][0])
    before = install_of(editable).fingerprint
    (source / "pyproject.toml").write_text("[project]\ndependencies = ['numpy']\n")
    assert install_of(editable).fingerprint != before


def test_the_running_catwalk_is_found_by_its_package() -> None:
    from catwalk import __version__
    from catwalk.model_env.identity import own_install

    own = own_install()
    assert own is not None
    assert own.version == __version__
    root = Path(__file__).resolve().parents[1]
    if own.args[0] == "-e":  # the developer's and CI's install: `pip install -e .`
        assert Path(own.args[1]) == root


def test_the_cache_folder_follows_the_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catwalk.model_env.store import default_root

    monkeypatch.delenv("CATWALK_ENV_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_root() == tmp_path / "xdg" / "catwalk" / "envs"
    monkeypatch.setenv("CATWALK_ENV_CACHE", str(tmp_path / "mine"))
    assert default_root() == tmp_path / "mine"


def test_a_cache_folder_that_cannot_be_written_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catwalk.model_env.identity import own_install
    from catwalk.model_env.store import EnvStore, plan_for

    if os.geteuid() == 0:
        # root writes anywhere: a file where the folder should be fails for root too.
        root = tmp_path / "a-file"
        root.write_text("")
    else:
        root = tmp_path / "read-only"
        root.mkdir(mode=0o500)
    own = own_install()
    assert own is not None
    store = EnvStore(root / "envs", echo=lambda line: None)
    with pytest.raises(RequirementsError, match="cannot build a model environment there"):
        store.get(plan_for(folder_with(tmp_path, "click\n"), own))
