"""Each model runs in an environment of its own (catwalk.model_env), with catwalk's defaults.

Every test here runs real ``catwalk`` processes with the default environment manager (the
module is marked ``model_env``: tests/conftest.py leaves CATWALK_ENV_MANAGER unset) and real
uv. Environments go to a folder of this test session (CATWALK_ENV_CACHE), shared by the tests
that do not test building itself, so a requirements set is built once per session.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import requests

from catwalk.checks.server_checks import free_port

# Each test builds real environments with uv (seconds each): not in the fast lane.
pytestmark = [pytest.mark.model_env, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]

MODEL_YML = """\
name: {name}
version: "1.0"
contact: {{name: Tester, email: tester@example.com}}
schema:
  input: {{type: object, properties: {{n: {{type: integer}}}}, required: [n]}}
  output:
    type: object
    properties:
      prefix: {{type: string}}
      version: {{type: string}}
      n: {{type: integer}}
"""

#: A model that says where it runs and which version of ``module`` it imports; its test data
#: expects ``expected`` (so test-model fails when the environment holds another version).
MODEL_PY = """\
import sys

import {module} as lib

EXPECTED = {expected!r}


def version():
    return getattr(lib, "__version__", None) or str(getattr(lib, "ANSWER", "?"))


class Model:
    def __init__(self, path):
        pass

    def load_test_data(self, path):
        return [{{"n": 1}}], [{{"prefix": sys.prefix, "version": EXPECTED, "n": 1}}]

    def predict(self, X):
        if X["n"] < 0:
            raise ValueError("n must not be negative")
        return {{"prefix": sys.prefix, "version": version(), "n": X["n"]}}
"""


def make_model(
    folder: Path, requirements: str, module: str, expected: str, name: str = "EnvProbe"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.yml").write_text(MODEL_YML.format(name=name))
    (folder / "model.py").write_text(MODEL_PY.format(module=module, expected=expected))
    (folder / "requirements.txt").write_text(textwrap.dedent(requirements))
    return folder


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("envs")


def child_env(cache: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("CATWALK_ENV_MANAGER", "MODEL_PATH", "SERVER_CONFIG", "SERVER_PORT"):
        env.pop(name, None)
    env["CATWALK_ENV_CACHE"] = str(cache)
    env["PYTHONUNBUFFERED"] = "1"
    for name, value in extra.items():
        if value:
            env[name] = value
        else:  # "" means unset (an empty PIP_ variable would count as set, to pip too)
            env.pop(name, None)
    return env


def catwalk(
    *args: str, cache: Path, stdin: str | None = None, timeout: float = 300, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "catwalk", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=child_env(cache, **extra),
        timeout=timeout,
        check=False,
    )


def envs_in(cache: Path) -> list[Path]:
    if not cache.is_dir():
        return []
    return sorted(p for p in cache.iterdir() if p.is_dir() and not p.name.startswith("."))


# -- the scenario: a pin in one model touches nothing else ----------------------------


@pytest.mark.slow
def test_two_models_pin_numpy_without_touching_catwalk_or_each_other(
    tmp_path: Path, shared_cache: Path
) -> None:
    host_numpy = metadata.version("numpy")
    old = make_model(tmp_path / "old", "numpy==1.26.4\n", "numpy", "1.26.4", "OldNumpy")
    new = make_model(tmp_path / "new", "numpy==2.2.6\n", "numpy", "2.2.6", "NewNumpy")

    for folder in (old, new):
        result = catwalk("test-model", "-m", str(folder), cache=shared_cache)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "7. predictions" in result.stdout
        assert "environment: " in result.stderr

    outputs = {}
    for folder in (old, new):
        result = catwalk("predict", "-m", str(folder), "--input", '{"n": 3}', cache=shared_cache)
        assert result.returncode == 0, result.stderr
        outputs[folder.name] = json.loads(result.stdout)
    assert outputs["old"]["version"] == "1.26.4"
    assert outputs["new"]["version"] == "2.2.6"
    prefixes = {Path(out["prefix"]).parent for out in outputs.values()}
    assert prefixes == {shared_cache}, outputs  # both in the cache...
    assert outputs["old"]["prefix"] != outputs["new"]["prefix"]  # ...each in its own

    # catwalk's own environment is as it was, and pandas still imports in it.
    assert metadata.version("numpy") == host_numpy
    check = subprocess.run(
        [sys.executable, "-c", "import numpy, pandas; print(numpy.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == host_numpy

    # The second run of a model uses its environment as it is (one line says so).
    again = catwalk("test-model", "-m", str(old), cache=shared_cache)
    assert again.returncode == 0
    assert f"environment: {outputs['old']['prefix']} (cached)" in again.stderr
    assert "building" not in again.stderr


@pytest.mark.slow
def test_a_repository_runs_in_one_environment_of_every_models_requirements(
    tmp_path: Path, shared_cache: Path
) -> None:
    """A model repository: one environment holding every model's requirements (never
    catwalk's own), and two models that pin one package differently are refused before
    anything is built, naming both files."""
    host_numpy = metadata.version("numpy")
    repo = tmp_path / "repo"
    make_model(repo / "pinned", "numpy==1.26.4\n", "numpy", "1.26.4", "Pinned")
    make_model(repo / "plain", "", "sys", "?", "Plain")
    (repo / "plain" / "requirements.txt").unlink()

    result = catwalk("test-model", "-m", str(repo), cache=shared_cache)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "environment: " in result.stderr
    out = catwalk(
        "predict", "-m", str(repo), "--model", "Pinned", "--input", '{"n": 2}', cache=shared_cache
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["version"] == "1.26.4"
    assert metadata.version("numpy") == host_numpy  # catwalk's own is untouched

    make_model(repo / "newer", "numpy==2.2.6\n", "numpy", "2.2.6", "Newer")
    before = envs_in(shared_cache)
    refused = catwalk("test-model", "-m", str(repo), cache=shared_cache)
    assert refused.returncode != 0
    assert str(repo / "pinned" / "requirements.txt") in refused.stderr, refused.stderr
    assert str(repo / "newer" / "requirements.txt") in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert envs_in(shared_cache) == before  # nothing built


# -- pip's configuration reaches uv -----------------------------------------------------------


@pytest.fixture
def tiny_wheel(tmp_path: Path, build_wheel: Callable[..., Path]) -> Callable[[str], Path]:
    """``tiny_wheel("wheels")`` -> a folder holding a wheel of a package unique to this test."""
    name = f"cwenv_{tmp_path.name.replace('-', '_')}_{os.getpid()}".lower()

    def make(where: str) -> Path:
        folder = tmp_path / where
        folder.mkdir(exist_ok=True)
        build_wheel(folder, name)
        return folder

    make.package = name  # type: ignore[attr-defined]
    return make


def test_pip_conf_find_links_reaches_the_builder(
    tmp_path: Path, tiny_wheel: Any, shared_cache: Path
) -> None:
    wheels = tiny_wheel("wheels")
    package = tiny_wheel.package
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nfind-links = {wheels}\n")
    model = make_model(tmp_path / "model", f"{package}==0.1\n", package, "42")
    # pip.conf is the only place that names the folder (PIP_FIND_LINKS would win over it).
    result = catwalk(
        "predict",
        "-m",
        str(model),
        "--input",
        '{"n": 1}',
        cache=shared_cache,
        PIP_CONFIG_FILE=str(conf),
        PIP_FIND_LINKS="",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["version"] == "42"
    (env,) = [e for e in envs_in(shared_cache) if str(e) == json.loads(result.stdout)["prefix"]]
    record = json.loads((env / "catwalk-env.json").read_text())
    assert record["pip_config"]["find-links"] == str(wheels)


def test_pip_variables_reach_the_builder(
    tmp_path: Path, tiny_wheel: Any, shared_cache: Path
) -> None:
    wheels = tiny_wheel("wheels")
    package = tiny_wheel.package
    model = make_model(tmp_path / "model", f"{package}==0.1\n", package, "42")
    result = catwalk(
        "test-model",
        "-m",
        str(model),
        cache=shared_cache,
        PIP_FIND_LINKS=f"{tmp_path / 'nothing-here'} {wheels}",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_requirements_own_pip_options_work(
    tmp_path: Path, build_wheel: Callable[..., Path], shared_cache: Path
) -> None:
    """``--find-links ./wheels`` and ``--extra-index-url file://...`` lines, as pip reads them."""
    tag = f"{tmp_path.name.replace('-', '_')}_{os.getpid()}".lower()
    model = tmp_path / "model"
    (model / "wheels").mkdir(parents=True)
    build_wheel(model / "wheels", f"cwlinks_{tag}")
    # A PEP 503 simple index on disk, for the second package.
    index = tmp_path / "index"
    files = index / "files"
    files.mkdir(parents=True)
    wheel = build_wheel(files, f"cwindex_{tag}")
    project = index / "simple" / f"cwindex-{tag.replace('_', '-')}"
    project.mkdir(parents=True)
    (project / "index.html").write_text(f'<a href="../../files/{wheel.name}">{wheel.name}</a>\n')
    requirements = (
        "--find-links ./wheels\n"
        f"--extra-index-url {(index / 'simple').as_uri()}\n"
        f"cwlinks_{tag}==0.1\n"
        f"cwindex_{tag}==0.1\n"
    )
    make_model(model, requirements, f"cwindex_{tag}", "42")
    (model / "model.py").write_text(
        (model / "model.py")
        .read_text()
        .replace("import sys\n", f"import sys\nimport cwlinks_{tag}\n")
    )
    result = catwalk("test-model", "-m", str(model), cache=shared_cache, PIP_FIND_LINKS="")
    assert result.returncode == 0, result.stdout + result.stderr


# -- failures show the underlying error --------------------------------------------------------


def test_a_conflict_with_catwalk_shows_uvs_words_and_builds_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    model = make_model(tmp_path / "model", "Flask==2.3.3\n", "flask", "2.3.3")
    junit = tmp_path / "report.xml"
    result = catwalk("test-model", "-m", str(model), "--junit-xml", str(junit), cache=cache)
    assert result.returncode == 1
    assert "No solution found" in junit.read_text()  # a CI test view says why, too
    assert "cannot install the requirements into the model's environment" in result.stderr
    assert "No solution found" in result.stderr  # uv's own explanation follows
    assert "flask" in result.stderr.lower()
    assert envs_in(cache) == []
    assert not list(cache.glob(".build-*"))


def test_an_unknown_package_shows_uvs_words(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    model = make_model(
        tmp_path / "model", "--no-index\ncatwalk-tests-no-such-package==9.9.9\n", "json", "x"
    )
    result = catwalk("test-model", "-m", str(model), cache=cache)
    assert result.returncode == 1
    assert str(model / "requirements.txt") in result.stderr
    assert "catwalk-tests-no-such-package" in result.stderr


def test_an_undeclared_import_names_requirements_txt(
    tmp_path: Path, tiny_wheel: Any, shared_cache: Path
) -> None:
    wheels = tiny_wheel("wheels")
    package = tiny_wheel.package
    # The package is installed nowhere but in the folder of wheels: not listed, not there.
    model = make_model(tmp_path / "model", "", package, "42")
    result = catwalk("test-model", "-m", str(model), cache=shared_cache, PIP_FIND_LINKS=str(wheels))
    assert result.returncode == 1
    assert f"No module named '{package}'" in result.stdout
    assert "listed in requirements.txt?" in result.stdout


# -- two processes, a killed build --------------------------------------------------------------


@pytest.fixture(scope="session")
def probe(tmp_path_factory: pytest.TempPathFactory, build_wheel: Callable[..., Path]) -> Path:
    """One model folder (its own folder of wheels) for the tests that only use an env."""
    root = tmp_path_factory.mktemp("probe")
    package = f"cwprobe_{os.getpid()}"
    (root / "wheels").mkdir()
    build_wheel(root / "wheels", package)
    return make_model(root / "model", f"--find-links ../wheels\n{package}==0.1\n", package, "42")


def _probe(tmp_path: Path, tiny_wheel: Any) -> Path:
    wheels = tiny_wheel("wheels")
    package = tiny_wheel.package
    return make_model(tmp_path / "model", f"--find-links {wheels}\n{package}==0.1\n", package, "42")


def test_two_processes_build_one_environment_once(tmp_path: Path, tiny_wheel: Any) -> None:
    cache = tmp_path / "cache"
    model = _probe(tmp_path, tiny_wheel)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "catwalk", "predict", "-m", str(model), "--input", '{"n": 2}'],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(cache),
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    assert [code for code, _, _ in results] == [0, 0], results
    errors = "".join(err for _, _, err in results)
    assert errors.count("environment: building") == 1, errors
    prefixes = {json.loads(out)["prefix"] for _, out, _ in results}
    assert len(prefixes) == 1
    assert [str(e) for e in envs_in(cache)] == list(prefixes)


def test_a_killed_build_is_never_used(tmp_path: Path, tiny_wheel: Any) -> None:
    cache = tmp_path / "cache"
    model = _probe(tmp_path, tiny_wheel)
    proc = subprocess.Popen(
        [sys.executable, "-m", "catwalk", "test-model", "-m", str(model)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=child_env(cache),
        start_new_session=True,  # its uv goes with it
    )
    deadline = time.monotonic() + 120
    while not list(cache.glob(".build-*")) and time.monotonic() < deadline:
        assert proc.poll() is None, "the build ended before it could be killed"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(cache.glob(".build-*"))  # the half-built folder is left...
    assert envs_in(cache) == []  # ...and nothing is in place

    result = catwalk("test-model", "-m", str(model), cache=cache)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "environment: building" in result.stderr
    assert not list(cache.glob(".build-*"))  # removed by the next build
    assert len(envs_in(cache)) == 1


# -- the command in the environment: streams, exit codes, variables -----------------------------


def test_predict_streams_through_and_keeps_its_exit_code(
    tmp_path: Path, probe: Path, shared_cache: Path
) -> None:
    model = probe
    lines = "".join(json.dumps({"n": n}) + "\n" for n in (1, 2, -1, 4))
    result = catwalk("predict", "-m", str(model), stdin=lines, cache=shared_cache)
    assert result.returncode == 1  # line 3 failed: --on-error stop
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["n"] for o in outputs] == [1, 2]  # stdout holds the outputs and nothing else
    assert "line 3: " in result.stderr and "n must not be negative" in result.stderr
    skipped = catwalk(
        "predict", "-m", str(model), "--on-error", "skip", stdin=lines, cache=shared_cache
    )
    assert skipped.returncode == 0
    assert skipped.stdout.splitlines()[2] == "null"
    assert len(skipped.stdout.splitlines()) == 4


def test_model_path_variable_still_overrides_the_flag(
    tmp_path: Path, probe: Path, shared_cache: Path
) -> None:
    model = probe
    other = tmp_path / "not-a-model"
    other.mkdir()
    result = catwalk(
        "predict",
        "-m",
        str(other),
        "--input",
        '{"n": 5}',
        cache=shared_cache,
        MODEL_PATH=str(model),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["n"] == 5
    assert Path(json.loads(result.stdout)["prefix"]).parent == shared_cache


def test_local_manager_runs_in_this_interpreter(tmp_path: Path, shared_cache: Path) -> None:
    model = make_model(tmp_path / "model", "", "json", "x")
    for extra in ({"CATWALK_ENV_MANAGER": "local"}, {}):
        args = ["predict", "-m", str(model), "--input", '{"n": 1}']
        if not extra:
            args.append("--env-manager=local")
        result = catwalk(*args, cache=shared_cache, **extra)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["prefix"] == sys.prefix
        assert "environment:" not in result.stderr
    # The variable wins over the flag, as every variable does.
    result = catwalk(
        *["predict", "-m", str(model), "--input", '{"n": 1}', "--env-manager", "venv"],
        cache=shared_cache,
        CATWALK_ENV_MANAGER="local",
    )
    assert json.loads(result.stdout)["prefix"] == sys.prefix
    assert "CATWALK_ENV_MANAGER=local overrides --env-manager venv" in result.stderr


def test_no_install_uses_the_built_environment_or_none(tmp_path: Path, tiny_wheel: Any) -> None:
    cache = tmp_path / "cache"
    model = _probe(tmp_path, tiny_wheel)
    args = ["predict", "-m", str(model), "--no-install", "--input", '{"n": 1}']
    # Nothing built, nothing to build: the model runs here (an image's `serve --no-install`),
    # where its package is not installed: the failure names requirements.txt.
    here = catwalk(*args, cache=cache)
    assert here.returncode == 1
    assert "none built for these requirements, and --no-install builds none" in here.stderr
    assert "listed in requirements.txt?" in here.stderr
    assert envs_in(cache) == []
    assert catwalk("test-model", "-m", str(model), cache=cache).returncode == 0
    used = catwalk(*args, cache=cache)
    assert used.returncode == 0, used.stderr
    assert Path(json.loads(used.stdout)["prefix"]).parent == cache


def test_in_process_the_default_says_what_to_do(probe: Path) -> None:
    """click's CliRunner runs a command inside the caller: it must not replace that process."""
    from click.testing import CliRunner

    from catwalk.cli import cli

    result = CliRunner().invoke(cli, ["test-model", "-m", str(probe)])
    assert result.exit_code == 1
    assert "in-process, use --env-manager local or" in result.output


# -- servers run in the environment ------------------------------------------------------------


def _wait_status(url: str, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited {proc.returncode}"
        try:
            if requests.get(url + "/status", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError("server not ready")


@contextmanager
def serving(
    args: list[str], env: dict[str, str], log: Path
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``catwalk <args>`` on a free port (SERVER_PORT: the variable still counts there); yields
    once it answers /status; a SIGTERM must then end it with exit code 0."""
    port = free_port()
    with open(log, "w+") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "catwalk", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env={**env, "SERVER_PORT": str(port), "PATH": f"{env.get('PATH', '')}:/usr/sbin"},
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_status(url, proc)
            yield proc, url
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            out.seek(0)
            print(out.read())


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode", [(), ("--debug",), ("--debug", "--reload")], ids=["production", "debug", "reload"]
)
def test_serve_runs_the_model_in_its_environment(
    tmp_path: Path, probe: Path, shared_cache: Path, mode: tuple[str, ...]
) -> None:
    args = ["serve", "-m", str(probe), *mode]
    with serving(args, child_env(shared_cache), tmp_path / "serve.log") as (proc, url):
        answer = requests.post(url + "/predict", json={"input": {"n": 7}}, timeout=10)
        assert answer.status_code == 200, answer.text
        output = answer.json()["output"]
        assert Path(output["prefix"]).parent == shared_cache
        assert output["version"] == "42"
        if "--reload" not in mode:
            # Moved by exec: the process started is the one that runs, in the environment.
            exe = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            assert Path(exe).parent.parent == Path(output["prefix"])


@pytest.mark.slow
def test_reload_passes_the_local_choice_to_the_server_it_restarts(
    tmp_path: Path, shared_cache: Path
) -> None:
    model = make_model(tmp_path / "model", "", "json", "x")
    args = ["serve", "-m", str(model), "--debug", "--reload", "--env-manager", "local"]
    with serving(args, child_env(shared_cache), tmp_path / "serve.log") as (_, url):
        answer = requests.post(url + "/predict", json={"input": {"n": 1}}, timeout=10)
        assert answer.json()["output"]["prefix"] == sys.prefix


@pytest.mark.slow
def test_test_server_runs_in_the_environment(
    tmp_path: Path, probe: Path, shared_cache: Path
) -> None:
    model = probe
    result = catwalk(
        "test", "-m", str(model), cache=shared_cache, PATH=f"{os.environ['PATH']}:/usr/sbin"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test-server: all" in result.stdout


# -- torch from the folder PIP_FIND_LINKS names, never from the network ------------------------

TORCH_WHEELS = Path("/opt/wheels")


@pytest.mark.slow
def test_torch_comes_from_the_local_wheel_folder(tmp_path: Path, shared_cache: Path) -> None:
    if not list(TORCH_WHEELS.glob("torch-2.13.0*.whl")):
        pytest.skip("no torch 2.13.0 wheel in /opt/wheels on this machine")
    model = make_model(tmp_path / "model", "torch==2.13.0\n", "torch", "2.13.0+cpu")
    started = time.monotonic()
    result = catwalk(
        "test-model", "-m", str(model), cache=shared_cache, PIP_FIND_LINKS=str(TORCH_WHEELS)
    )
    took = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert took < 180, f"building the torch environment took {took:.0f} s"
