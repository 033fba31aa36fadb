"""End to end on a real Docker engine and registry: base image, build-prep, build, push,
test-image, arbitrary UID, graceful stop, HTTPS, deploy-prep.

Needs an engine (``bash scripts/ci-setup.sh`` starts one, a registry on 127.0.0.1:5000 and
makes the ``catwalk-debian:bookworm`` base). Everything is built under a registry namespace of
its own (``localhost:5000/catwalk-e2e-<id>``) and removed afterwards: the tags, and the untagged
images built on them (``engine_leftovers``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from image_env import (  # shared fixtures and helpers of the Docker tests
    EXAMPLES,
    GENERATED,
    REGISTRY_HOST,
    TIMINGS,
    base_image,
    catwalk,
    change_code,
    client,
    created,
    image_size_mb,
    registry,
)

from catwalk import __version__
from catwalk.checks.server_checks import free_port
from requires import loopback_session, unavailable

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MODELS = {
    "rng": ("rngmodel", "0.0.1", {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}),
    "dataframe": ("neurondataframe", "1.0.0", {"x1": 1.0, "x2": 0.5, "x3": -1.0}),
}


__all__ = ["base_image", "client", "created", "registry"]  # fixtures, used by name


@pytest.fixture(scope="session")
def model_images(
    client: Any, base_image: str, registry: str, created: list[str], tmp_path_factory: Any
) -> dict[str, tuple[Path, str]]:
    """build-prep + build (+ push) for each example, through the CLI; name -> (folder, ref)."""
    images: dict[str, tuple[Path, str]] = {}
    for name, (tag, version, _) in MODELS.items():
        folder = tmp_path_factory.mktemp("models") / name
        shutil.copytree(EXAMPLES / name, folder, ignore=shutil.ignore_patterns(*GENERATED))
        prep = catwalk("build-prep", "-m", str(folder), "--docker-registry", registry)
        assert prep.returncode == 0, prep.stdout + prep.stderr
        assert f"FROM {base_image} AS system\n" in (folder / "Dockerfile").read_text()
        started = time.monotonic()
        build = catwalk(
            "build", "-m", str(folder), "--docker-registry", registry, "--network", "host"
        )
        ref = f"{registry}/{tag}:{version}"
        created.append(ref)
        assert build.returncode == 0, build.stdout + build.stderr
        TIMINGS[f"{name} image cold build + push"] = f"{time.monotonic() - started:.1f} s"
        TIMINGS[f"{name} image size"] = f"{image_size_mb(client, ref):.0f} MB"
        assert f"pushed {ref}" in build.stdout
        images[name] = (folder, ref)
    return images


def test_base_image_labels_user_and_version(client: Any, base_image: str) -> None:
    config = client.api.inspect_image(base_image)["Config"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "catwalk"
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert config["User"] not in ("", "root", "0")
    assert config["Cmd"] == ["catwalk", "serve"]
    out = client.containers.run(base_image, ["catwalk", "--version"], remove=True)
    assert out.decode().strip().endswith(__version__)


def test_base_image_serves_rng_as_an_arbitrary_uid(client: Any, base_image: str) -> None:
    port = free_port()
    with _container(client, base_image, port, user="23456:0") as container:
        body = _predict(port, MODELS["rng"][2], container)
        assert body["model"] == {"name": "RNGModel", "version": "0.0.1"}


def test_pushed_to_the_registry(model_images: dict[str, tuple[Path, str]], registry: str) -> None:
    namespace = registry.split("/", 1)[1]
    repositories = _catalog()
    for tag, version, _ in MODELS.values():
        assert f"{namespace}/{tag}" in repositories
        tags = loopback_session().get(
            f"http://{REGISTRY_HOST}/v2/{namespace}/{tag}/tags/list", timeout=10
        )
        assert version in tags.json()["tags"]


@pytest.mark.parametrize("name", list(MODELS))
def test_test_image_passes(
    name: str, model_images: dict[str, tuple[Path, str]], registry: str
) -> None:
    folder, _ = model_images[name]
    port = str(free_port())
    result = catwalk(
        "test-image", "-m", str(folder), "--docker-registry", registry,
        "--network", "host", "--server-port", port,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "as user 23456:0" in result.stdout
    assert "[PASS] POST /predict: extra_data echoed" in result.stdout
    assert "[PASS] stops on SIGTERM" in result.stdout


@pytest.mark.parametrize("name", list(MODELS))
def test_runs_as_uid_23456_and_stops_within_10s(
    name: str, client: Any, model_images: dict[str, tuple[Path, str]]
) -> None:
    _, ref = model_images[name]
    port = free_port()
    with _container(client, ref, port, user="23456:0") as container:
        body = _predict(port, MODELS[name][2], container)
        assert "output" in body
        started = time.monotonic()
        container.stop(timeout=10)
        took = time.monotonic() - started
        container.reload()
        assert took < 10, f"docker stop took {took:.1f} s: SIGTERM did not stop the server"
        assert container.attrs["State"]["ExitCode"] in (0, 143)


def _tls_config(conf: Path) -> Path:
    """An application.yml in ``conf`` with SSL on and a real self-signed pair (openssl CLI)."""
    if shutil.which("openssl") is None:
        unavailable("openssl is not installed (apt-get install openssl)")
    conf.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-keyout", str(conf / "key.pem"),
         "-out", str(conf / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    (conf / "key.pem").chmod(0o600)  # as a real key is: test-image must still get it in
    config = conf / "application.yml"
    config.write_text(
        "server:\n  workers: 1\n  ssl:\n    enabled: true\n    cert: cert.pem\n    key: key.pem\n"
    )
    return config


def _test_image_over_https(folder: Path, registry: str, config: Path) -> None:
    """test-image with an SSL config passes and checked the server over HTTPS."""
    port = str(free_port())
    result = catwalk(
        "test-image", "-m", str(folder), "--docker-registry", registry,
        "--network", "host", "--server-port", port, "--server-config", str(config),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"https://127.0.0.1:{port} answered" in result.stdout


def test_https_with_an_ssl_config(
    model_images: dict[str, tuple[Path, str]], registry: str, tmp_path: Path
) -> None:
    config = _tls_config(tmp_path / "conf")
    folder, _ = model_images["rng"]
    _test_image_over_https(folder, registry, config)


def test_ssl_config_inside_the_model_folder_and_private_files(
    model_images: dict[str, tuple[Path, str]],
    registry: str,
    client: Any,
    created: list[str],
    tmp_path: Path,
) -> None:
    """The key an SSL config inside the model folder names never lands in the image, and model
    files that are mode 600 on the host are readable by the container's arbitrary UID."""
    folder = tmp_path / "sslmodel"
    shutil.copytree(EXAMPLES / "rng", folder, ignore=shutil.ignore_patterns(*GENERATED))
    spec = folder / "model.yml"
    spec.write_text(spec.read_text().replace("name: RNGModel", "name: SslModel"))
    (folder / "model.py").chmod(0o600)
    (folder / ".env").write_text("TOKEN=secret\n")
    config = _tls_config(folder / "conf")
    prep = catwalk(
        "build-prep", "-m", str(folder), "--docker-registry", registry,
        "--server-config", str(config),
    )  # fmt: skip
    assert prep.returncode == 0, prep.stdout + prep.stderr
    ref = f"{registry}/sslmodel:0.0.1"
    created.insert(0, ref)
    build = catwalk("build", "-m", str(folder), "--docker-registry", registry, "--no-push")
    assert build.returncode == 0, build.stdout + build.stderr
    listing = client.containers.run(
        ref,
        ["sh", "-c", "find /srv/model -type f | sort; wc -c < /srv/model/model.py"],
        user="23456:0",
        remove=True,
    ).decode()
    files = listing.split()
    assert "/srv/model/model.py" in files
    for leaked in ("conf/key.pem", "conf/cert.pem", ".env", "Dockerfile", ".dockerignore"):
        assert f"/srv/model/{leaked}" not in files, listing
    # model.py (mode 600 on the host) is readable: wc printed its size, not an error
    assert files[-1] == str((folder / "model.py").stat().st_size), listing
    env = client.api.inspect_image(ref)["Config"]["Env"]
    assert "SERVER_CONFIG=/etc/catwalk/application.yml" in env
    _test_image_over_https(folder, registry, config)


def test_rebuild_after_a_code_change_reuses_the_requirements_layer(
    model_images: dict[str, tuple[Path, str]], registry: str
) -> None:
    folder, _ = model_images["dataframe"]
    change_code(folder)  # the image it replaces goes with the session's leftovers
    started = time.monotonic()
    build = catwalk("build", "-m", str(folder), "--docker-registry", registry, "--no-push")
    took = time.monotonic() - started
    assert build.returncode == 0, build.stdout + build.stderr
    TIMINGS["dataframe rebuild after changing model.py"] = f"{took:.1f} s"
    assert "(cached)" in build.stdout  # the wheelhouse: no pip on this machine either
    steps = re.split(r"^Step \d+/\d+ : ", build.stdout, flags=re.M)
    pip_step = next(s for s in steps if "install-requirements" in s.splitlines()[0])
    installed = next(s for s in steps if s.startswith("COPY --from=requirements"))
    copy_step = next(s for s in steps if s.startswith("COPY model/ "))
    assert "Using cache" in pip_step and "Using cache" in installed
    assert "Using cache" not in copy_step


def test_failed_resolution_names_pip_s_error(
    model_images: dict[str, tuple[Path, str]], registry: str, tmp_path: Path
) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(model_images["rng"][0], folder)
    (folder / "requirements.txt").write_text("this-package-does-not-exist-catwalk==0.0.0\n")
    result = catwalk("build", "-m", str(folder), "--no-push", "--network", "host")
    assert result.returncode == 1
    assert "requirements.txt: resolving the requirements for the image failed" in result.stderr
    assert "this-package-does-not-exist-catwalk" in result.stderr


def test_failed_build_names_the_step(
    model_images: dict[str, tuple[Path, str]], registry: str, tmp_path: Path
) -> None:
    folder = tmp_path / "broken-apt"
    shutil.copytree(model_images["rng"][0], folder)
    spec = folder / "model.yml"
    spec.write_text(spec.read_text() + "system_packages: [catwalk-no-such-debian-package]\n")
    result = catwalk("build", "-m", str(folder), "--no-push", "--network", "host")
    assert result.returncode == 1
    assert "docker build of rngmodel:0.0.1 failed at step" in result.stderr
    assert "apt-get install" in result.stderr
    assert "Unable to locate package catwalk-no-such-debian-package" in result.stdout


def test_test_image_without_an_image_says_build_first(tmp_path: Path, client: Any) -> None:
    folder = tmp_path / "rng"
    shutil.copytree(EXAMPLES / "rng", folder, ignore=shutil.ignore_patterns(*GENERATED))
    spec = folder / "model.yml"
    spec.write_text(spec.read_text().replace('version: "0.0.1"', 'version: "0.0.0-never-built"'))
    result = catwalk("test-image", "-m", str(folder), "--network", "host")
    assert result.returncode == 1
    assert "build it with `catwalk build`" in result.stdout


def test_test_image_removes_its_container_on_sigterm(
    model_images: dict[str, tuple[Path, str]],
    registry: str,
    client: Any,
    created: list[str],
    tmp_path: Path,
) -> None:
    folder = tmp_path / "sleepy"
    shutil.copytree(EXAMPLES / "rng", folder, ignore=shutil.ignore_patterns(*GENERATED))
    spec = folder / "model.yml"
    spec.write_text(spec.read_text().replace("name: RNGModel", "name: Sleepy"))
    # A hand-written Dockerfile: the image never answers, so test-image is still waiting.
    (folder / "Dockerfile").write_text(f'FROM {model_images["rng"][1]}\nCMD ["sleep", "120"]\n')
    ref = f"{registry}/sleepy:0.0.1"
    created.insert(0, ref)
    build = catwalk("build", "-m", str(folder), "--docker-registry", registry, "--no-push")
    assert build.returncode == 0, build.stdout + build.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "catwalk", "test-image", "-m", str(folder),
         "--docker-registry", registry, "--network", "host",
         "--server-port", str(free_port()), "--timeout", "100"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not client.containers.list(filters={"ancestor": ref}):
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "test-image never started its container"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    print(out)
    assert proc.returncode != 0
    assert "the container was removed" in out
    assert client.containers.list(all=True, filters={"ancestor": ref}) == []


def test_deploy_prep_compose(
    model_images: dict[str, tuple[Path, str]], registry: str, tmp_path: Path
) -> None:
    folder, ref = model_images["rng"]
    config = tmp_path / "application.yml"
    config.write_text("server:\n  workers: 1\n")
    result = catwalk(
        "deploy-prep",
        "-m",
        str(folder),
        "--docker-registry",
        registry,
        "--server-config",
        str(config),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    compose = folder / "docker-compose.yml"
    has_plugin = (
        subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    )
    if has_plugin:
        check = subprocess.run(
            ["docker", "compose", "-f", str(compose), "config"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stderr
        doc = yaml.safe_load(check.stdout)
    else:
        doc = yaml.safe_load(compose.read_text())
    service = doc["services"]["rngmodel"]
    assert service["image"] == ref
    assert service["healthcheck"]["test"][0] == "CMD"
    assert any(str(v.get("target")) == "/etc/catwalk" for v in service["volumes"])


def _catalog() -> list[str]:
    """Every repository in the registry, following the catalog's pagination."""
    session, repositories = loopback_session(), []
    url: str | None = f"http://{REGISTRY_HOST}/v2/_catalog?n=100"
    while url:
        response = session.get(url, timeout=10)
        response.raise_for_status()
        repositories += response.json().get("repositories") or []
        link = response.links.get("next", {}).get("url")
        url = f"http://{REGISTRY_HOST}{link}" if link else None
    return repositories


# --- helpers --------------------------------------------------------------------------------


class _container:
    """``docker run -d --network host -u USER`` of an image on ``port``; removed on exit."""

    def __init__(self, client: Any, ref: str, port: int, user: str) -> None:
        self.client, self.ref, self.port, self.user = client, ref, port, user

    def __enter__(self) -> Any:
        self.container = self.client.containers.run(
            self.ref,
            detach=True,
            user=self.user,
            network_mode="host",
            environment={"SERVER_PORT": str(self.port)},
            labels={"io.catwalk.throwaway": "pytest"},
        )
        return self.container

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            print(self.container.logs().decode(errors="replace"))
        self.container.remove(force=True)


def _predict(port: int, record: dict[str, Any], container: Any) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    session = loopback_session()
    while True:
        try:
            if session.get(url + "/status", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        container.reload()
        assert container.status == "running", container.logs().decode(errors="replace")
        assert time.monotonic() < deadline, "the container's server never answered /status"
        time.sleep(0.2)
    envelope = {"correlation_id": "uid-test", "input": record, "extra_data": {"k": [1, "two"]}}
    response = session.post(url + "/predict", json=envelope, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["correlation_id"] == "uid-test"
    assert body["extra_data"] == {"k": [1, "two"]}
    return body


def test_missing_base_image_says_how_to_build_it(client: Any, tmp_path: Path) -> None:
    folder = tmp_path / "rng"
    shutil.copytree(EXAMPLES / "rng", folder, ignore=shutil.ignore_patterns(*GENERATED))
    missing = f"{REGISTRY_HOST}/catwalk-e2e-missing-{uuid.uuid4().hex[:8]}/catwalk:0"
    prep = catwalk("build-prep", "-m", str(folder), "--base-image", missing)
    assert prep.returncode == 0, prep.stdout + prep.stderr
    result = catwalk("build", "-m", str(folder), "--no-push", "--network", "host")
    assert result.returncode == 1
    assert f"the base image {missing} is neither on this Docker engine nor pullable" in (
        result.stderr
    )
    assert f"docker build . -t {missing}" in result.stderr


def test_an_unqualified_base_is_never_pulled_from_docker_hub(client: Any, tmp_path: Path) -> None:
    """The README's flow once wrote FROM catwalk:<version> and Docker went to Docker Hub."""
    folder = tmp_path / "rng"
    shutil.copytree(EXAMPLES / "rng", folder, ignore=shutil.ignore_patterns(*GENERATED))
    missing = f"catwalk-e2e-missing-{uuid.uuid4().hex[:8]}/catwalk:0"
    assert catwalk("build-prep", "-m", str(folder), "--base-image", missing).returncode == 0
    result = catwalk("build", "-m", str(folder), "--no-push", "--network", "host")
    assert result.returncode == 1
    assert "Docker would pull it from Docker Hub" in result.stderr
    assert "--docker-registry" in result.stderr
    assert "pulling" not in result.stdout


def test_the_readme_flow_takes_the_registry_given_to_build(
    base_image: str, registry: str, created: list[str], tmp_path: Path
) -> None:
    """build-prep without --docker-registry, then build --docker-registry: FROM that registry."""
    folder = _copy("rng", tmp_path)
    spec = folder / "model.yml"
    spec.write_text(spec.read_text().replace('version: "0.0.1"', 'version: "0.0.1-readme"'))
    assert catwalk("build-prep", "-m", str(folder)).returncode == 0
    assert f"FROM catwalk:{__version__} AS system" in (folder / "Dockerfile").read_text()
    created.append(f"{registry}/rngmodel:0.0.1-readme")
    build = catwalk("build", "-m", str(folder), "--docker-registry", registry, "--no-push",
                    "--network", "host")  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    assert f"FROM {base_image} AS system" in (folder / "Dockerfile").read_text()


# --- the CI/CD flow's defects and hardened images (issue 12) --------------------------------


def _copy(name: str, tmp_path: Path) -> Path:
    folder = tmp_path / name
    shutil.copytree(EXAMPLES / name, folder, ignore=shutil.ignore_patterns(*GENERATED))
    return folder


def _run(client: Any, ref: str, port: int, **kwargs: Any) -> Any:
    return client.containers.run(
        ref,
        detach=True,
        network_mode="host",
        environment={"SERVER_PORT": str(port)},
        labels={"io.catwalk.throwaway": "pytest"},
        **kwargs,
    )


def test_model_image_has_its_own_labels_and_healthcheck(
    client: Any, model_images: dict[str, tuple[Path, str]]
) -> None:
    _, ref = model_images["dataframe"]
    config = client.api.inspect_image(ref)["Config"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "NeuronDataFrame"
    assert labels["org.opencontainers.image.version"] == "1.0.0"
    assert "<" in labels["org.opencontainers.image.authors"]  # name <email> from contact
    assert labels["org.opencontainers.image.source"] == ""  # not catwalk's repository
    assert labels["org.opencontainers.image.licenses"] == ""  # not catwalk's licence
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labels["org.opencontainers.image.created"]
    )
    assert config["Healthcheck"]["Test"] == ["CMD", "catwalk", "healthcheck"]


def test_hardened_run_as_kubernetes_demands(
    client: Any, model_images: dict[str, tuple[Path, str]]
) -> None:
    """What kubernetes.yml's securityContext asks for, on the real engine: read-only root, a
    tmpfs at /tmp, a random UID in group 0, no capabilities, no privilege escalation; nginx
    still gets its batch scheduling (no capability needed)."""
    _, ref = model_images["dataframe"]
    port, uid = free_port(), 20000 + uuid.uuid4().int % 40000
    container = _run(
        client, ref, port, user=f"{uid}:0", read_only=True, tmpfs={"/tmp": ""},
        cap_drop=["ALL"], security_opt=["no-new-privileges"],
    )  # fmt: skip
    try:
        body = _predict(port, MODELS["dataframe"][2], container)
        assert "output" in body
        top = container.top()  # the engine's view: host PIDs
        pid, command = top["Titles"].index("PID"), top["Titles"].index("CMD")
        nginx = [int(p[pid]) for p in top["Processes"] if p[command].startswith("nginx")]
        assert len(nginx) >= 2, top  # the master and its workers
        assert {os.sched_getscheduler(p) for p in nginx} == {os.SCHED_BATCH}, top
        deadline = time.monotonic() + 45  # HEALTHCHECK --interval=15s
        while client.api.inspect_container(container.id)["State"]["Health"]["Status"] != "healthy":
            assert time.monotonic() < deadline, container.logs().decode(errors="replace")
            time.sleep(1)
    finally:
        container.remove(force=True)


def test_read_only_without_a_writable_tmp_is_one_clear_line(
    client: Any, model_images: dict[str, tuple[Path, str]]
) -> None:
    _, ref = model_images["rng"]
    container = _run(client, ref, free_port(), user="23456:0", read_only=True)
    try:
        assert container.wait(timeout=60)["StatusCode"] == 1
        logs = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    assert "Error: no writable temporary directory" in logs, logs
    assert "--tmpfs /tmp" in logs
    assert "Traceback" not in logs


def test_a_cpu_limit_gives_one_worker(
    client: Any, model_images: dict[str, tuple[Path, str]]
) -> None:
    _, ref = model_images["rng"]
    port = free_port()
    container = _run(client, ref, port, user="23456:0", nano_cpus=1_000_000_000)  # --cpus 1
    try:
        _predict(port, MODELS["rng"][2], container)
        # The supervisor logs its "serving ... N workers" line once it has seen gunicorn
        # answer, which may come just after the first prediction: wait for it.
        deadline = time.monotonic() + 30
        logs = container.logs().decode(errors="replace")
        while "serving " not in logs and time.monotonic() < deadline:
            time.sleep(0.2)
            logs = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    assert re.search(r"\b1 workers\b", logs), logs
    assert logs.count("Booting worker with pid") == 1, logs


def test_push_never_replaces_a_version_unless_told(
    model_images: dict[str, tuple[Path, str]], registry: str, tmp_path: Path
) -> None:
    pushed_from, ref = model_images["rng"]
    folder = tmp_path / "rng"  # a copy: the same inputs, changed below without side effects
    shutil.copytree(pushed_from, folder)
    # The same inputs again (a retried pipeline): built and tested, nothing pushed, no error.
    again = catwalk("build", "-m", str(folder), "--docker-registry", registry, "--network", "host")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{ref} is in the registry already, built from the same inputs" in again.stdout
    assert f"pushed {ref}" not in again.stdout
    # A changed model under the same version: refused.
    model = folder / "model.py"
    model.write_text(model.read_text() + "\n# changed\n")
    changed = catwalk(
        "build", "-m", str(folder), "--docker-registry", registry, "--network", "host"
    )  # fmt: skip
    assert changed.returncode == 1
    assert f"{ref} is already in the registry" in changed.stderr
    assert "--overwrite" in changed.stderr
    forced = catwalk(
        "build", "-m", str(folder), "--docker-registry", registry, "--network", "host",
        "--overwrite",
    )  # fmt: skip
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert f"pushed {ref}" in forced.stdout


def test_build_renders_the_dockerfile_again(
    client: Any, base_image: str, registry: str, created: list[str], tmp_path: Path
) -> None:
    folder = _copy("rng", tmp_path)
    assert catwalk("build-prep", "-m", str(folder), "--docker-registry", registry).returncode == 0
    spec = folder / "model.yml"
    spec.write_text(spec.read_text().replace('version: "0.0.1"', 'version: "0.0.9"'))
    (folder / "requirements.txt").write_text("PyYAML>=6\n")  # after build-prep
    ref = f"{registry}/rngmodel:0.0.9"
    created.append(ref)
    build = catwalk("build", "-m", str(folder), "--docker-registry", registry, "--no-push",
                    "--network", "host")  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    labels = client.api.inspect_image(ref)["Config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == "0.0.9"
    assert "catwalk install-requirements" in build.stdout  # the new pip step ran


def test_a_model_cannot_replace_catwalks_flask_in_the_image(
    base_image: str, registry: str, created: list[str], tmp_path: Path
) -> None:
    folder = _copy("rng", tmp_path)
    (folder / "requirements.txt").write_text("Flask==2.3.3\n")
    assert catwalk("build-prep", "-m", str(folder), "--docker-registry", registry).returncode == 0
    build = catwalk("build", "-m", str(folder), "--docker-registry", registry, "--no-push",
                    "--network", "host")  # fmt: skip
    assert build.returncode == 1
    output = build.stdout + build.stderr
    assert "'Flask==2.3.3' conflicts with catwalk's own dependency Flask>=3.0" in output, output


def test_test_image_needs_nothing_of_the_model_on_this_machine(
    base_image: str, registry: str, created: list[str], tmp_path: Path, build_wheel: Any
) -> None:
    """The model imports a package only its image has: test-image still passes here."""
    name = f"catwalk_e2e_image_only_{uuid.uuid4().hex[:6]}"
    folder = _copy("rng", tmp_path)
    (folder / "wheels").mkdir()
    wheel = build_wheel(folder / "wheels", name)
    (folder / "requirements.txt").write_text(f"--no-index\n./wheels/{wheel.name}\n")
    model = folder / "model.py"
    model.write_text(f"import {name}  # only in the image\n" + model.read_text())
    spec = folder / "model.yml"
    spec.write_text(spec.read_text().replace('version: "0.0.1"', 'version: "0.0.1-imageonly"'))
    with pytest.raises(ImportError):
        __import__(name)
    assert catwalk("build-prep", "-m", str(folder), "--docker-registry", registry).returncode == 0
    created.append(f"{registry}/rngmodel:0.0.1-imageonly")
    build = catwalk("build", "-m", str(folder), "--docker-registry", registry, "--no-push",
                    "--network", "host")  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    result = catwalk("test-image", "-m", str(folder), "--docker-registry", registry,
                     "--network", "host", "--server-port", str(free_port()))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[PASS] test data (from the image): 5 example(s)" in result.stdout


def test_sbom_lists_the_model_s_requirements(
    client: Any, model_images: dict[str, tuple[Path, str]], registry: str
) -> None:
    folder, ref = model_images["dataframe"]
    started = time.monotonic()
    build = catwalk("build", "-m", str(folder), "--docker-registry", registry, "--no-push",
                    "--network", "host", "--sbom")  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    TIMINGS["dataframe rebuild with --sbom"] = f"{time.monotonic() - started:.1f} s"
    sbom = folder / "sbom.cdx.json"
    text = sbom.read_text()
    bom = json.loads(text)
    assert bom["bomFormat"] == "CycloneDX"
    components = {c["name"].lower(): c for c in bom["components"]}
    for package in ("numpy", "pandas", "catwalk-serve", "flask"):
        assert package in components, sorted(components)
        assert components[package]["version"]
    assert any(c.get("licenses") for c in components.values())
    assert bom["metadata"]["component"]["name"] == "NeuronDataFrame"
    digest = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    labels = client.api.inspect_image(ref)["Config"]["Labels"]
    assert labels["io.catwalk.sbom.digest"] == digest
