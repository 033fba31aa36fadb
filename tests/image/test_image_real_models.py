"""Real models through the image, on the real Docker engine and registry: a private package
index whose credentials never reach the image, system packages, a broken image that is never
pushed, LightGBM on the base image's libgomp1, weights in a layer of their own, and a rebuild
under a build suffix that pushes only the code layer."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from image_env import (  # shared fixtures and helpers of the Docker tests
    EXAMPLES,
    GENERATED,
    REGISTRY_HOST,
    TIMINGS,
    base_image,
    catwalk,
    client,
    created,
    image_size_mb,
    registry,
)

from catwalk.ports import free_port
from requires import loopback_session

pytestmark = [pytest.mark.docker, pytest.mark.slow]
__all__ = ["base_image", "client", "created", "registry"]  # fixtures, used by name


def _copy(name: str, dest: Path, new_name: str, version: str = "1.0.0") -> Path:
    folder = dest / new_name.lower()
    shutil.copytree(EXAMPLES / name, folder, ignore=shutil.ignore_patterns(*GENERATED))
    spec = folder / "model.yml"
    text = spec.read_text()
    text = re.sub(r"^name: .*$", f"name: {new_name}", text, count=1, flags=re.M)
    text = re.sub(r"^version: .*$", f'version: "{version}"', text, count=1, flags=re.M)
    spec.write_text(text)
    return folder


def _tags(registry: str, repository: str) -> list[str]:
    namespace = registry.split("/", 1)[1]
    url = f"http://{REGISTRY_HOST}/v2/{namespace}/{repository}/tags/list"
    response = loopback_session().get(url, timeout=10)
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return list(response.json().get("tags") or [])


# --- a private index, with basic auth, on loopback -------------------------------------------


class _Index:
    """A PEP 503 simple index serving ``wheels`` to ``user:password`` only."""

    def __init__(self, wheels: list[Path], user: str, password: str) -> None:
        self.wheels = {w.name: w for w in wheels}
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.denied = 0
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.headers.get("Authorization") != index.auth:
                    index.denied += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="private"')
                    self.end_headers()
                    return
                body, kind = index.page(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", kind)
                self.end_headers()
                self.wfile.write(body or b"")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def page(self, path: str) -> tuple[bytes | None, str]:
        if path.startswith("/files/"):
            wheel = self.wheels.get(path.rsplit("/", 1)[1])
            return (wheel.read_bytes() if wheel else None), "application/octet-stream"
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["simple"] and len(parts) == 2:
            links = [
                f'<a href="/files/{name}#sha256={hashlib.sha256(w.read_bytes()).hexdigest()}">'
                f"{name}</a>"
                for name, w in self.wheels.items()
                if name.split("-")[0].replace("_", "-") == parts[1]
            ]
            if links:
                return ("<html><body>" + "".join(links) + "</body></html>").encode(), "text/html"
        return None, "text/plain"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def private_indexes(build_wheel: Any, tmp_path: Path) -> Iterator[tuple[_Index, _Index, str]]:
    """Two private indexes (alice's, bob's) and a unique token stem that must never leak."""
    token = "tok-" + os.urandom(8).hex()
    wheels = tmp_path / "private-wheels"
    wheels.mkdir()
    a = _Index([build_wheel(wheels, "catwalk_private_a")], "alice", token + "-a")
    b = _Index([build_wheel(wheels, "catwalk_private_b")], "bob", token + "-b")
    try:
        yield a, b, token
    finally:
        a.close()
        b.close()


def _image_texts(client: Any, ref: str) -> Iterator[tuple[str, bytes]]:
    """Every file of every layer of ``ref`` (docker save), its config and its history."""
    saved = io.BytesIO(b"".join(client.api.get_image(ref)))
    with tarfile.open(fileobj=saved) as outer:
        for member in outer.getmembers():
            data = outer.extractfile(member) if member.isfile() else None
            if data is None:
                continue
            content = data.read()
            yield member.name, content
            if member.name.endswith("layer.tar"):
                with tarfile.open(fileobj=io.BytesIO(content)) as layer:
                    for entry in layer.getmembers():
                        handle = layer.extractfile(entry) if entry.isfile() else None
                        if handle is not None:
                            yield f"{member.name}:{entry.name}", handle.read()
    history = client.api.history(ref)  # `docker history --no-trunc`: CreatedBy in full
    yield "history", json.dumps(history).encode()


def test_private_index_credentials_never_reach_the_image(
    private_indexes: tuple[_Index, _Index, str],
    base_image: str,
    registry: str,
    client: Any,
    created: list[str],
    tmp_path: Path,
) -> None:
    """alice's token in PIP_INDEX_URL, bob's in a netrc for requirements.txt's
    --extra-index-url: both packages reach the image, neither token does."""
    a, b, token = private_indexes
    folder = _copy("rng", tmp_path, "PrivateIndexModel")
    (folder / "requirements.txt").write_text(
        f"--extra-index-url http://127.0.0.1:{b.port}/simple\n"
        "catwalk-private-a==0.1\ncatwalk-private-b==0.1\n"
    )
    model = folder / "model.py"
    model.write_text(
        "import catwalk_private_a, catwalk_private_b  # from the private indexes\n"
        + model.read_text()
    )
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login bob password {token}-b\n")
    netrc.chmod(0o600)
    ref = f"{registry}/privateindexmodel:1.0.0"
    created.append(ref)
    env = {
        "PIP_INDEX_URL": f"http://alice:{token}-a@127.0.0.1:{a.port}/simple",
        "NETRC": str(netrc),
        "PIP_FIND_LINKS": "",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    build = catwalk(
        "build", "-m", str(folder), "--docker-registry", registry, "--network", "host",
        env=env,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    assert f"pushed {ref}" in build.stdout  # it passed its smoke test: the packages import
    assert token not in build.stdout + build.stderr  # pip's own output redacts them too
    leaks = [name for name, data in _image_texts(client, ref) if token.encode() in data]
    assert leaks == [], f"the token is in {leaks}"
    # The requirements stage (not pushed, but on this engine) has none either.
    history = json.dumps(client.api.history(ref))
    assert "catwalk-wheels" not in history  # the final stage never saw the wheels
    # Without the credentials, the same build cannot resolve: they were really needed.
    denied = catwalk(
        "build", "-m", str(folder), "--no-push", "--no-cache", "--network", "host",
        env={**env, "PIP_INDEX_URL": f"http://127.0.0.1:{a.port}/simple", "NETRC": "/dev/null"},
    )  # fmt: skip
    assert denied.returncode == 1
    assert "resolving the requirements for the image failed" in denied.stderr


# --- system packages, and a broken image is never pushed -------------------------------------


def test_a_broken_image_is_never_pushed_and_system_packages_fix_it(
    base_image: str, registry: str, created: list[str], tmp_path: Path
) -> None:
    """Like LightGBM without libgomp1: the model loads a shared library the base image lacks.
    build tests the image before pushing: the tag never reaches the registry. model.yml's
    system_packages then installs the library, and the same build passes and pushes."""
    folder = _copy("rng", tmp_path, "NativeLibModel")
    model = folder / "model.py"
    model.write_text('import ctypes\n\nctypes.CDLL("libpq.so.5")\n' + model.read_text())
    ref = f"{registry}/nativelibmodel:1.0.0"
    created.append(ref)
    broken = catwalk("build", "-m", str(folder), "--docker-registry", registry,
                     "--network", "host", "--timeout", "60")  # fmt: skip
    assert broken.returncode == 1
    assert f"{ref} failed its smoke test" in broken.stderr
    assert "not pushed" in broken.stderr
    assert "libpq.so.5" in broken.stdout  # the image's own error, from its test data step
    assert "== push" not in broken.stdout
    assert _tags(registry, "nativelibmodel") == []

    spec = folder / "model.yml"
    spec.write_text(spec.read_text() + "system_packages:\n  - libpq5\n")
    fixed = catwalk("build", "-m", str(folder), "--docker-registry", registry,
                    "--network", "host")  # fmt: skip
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "layers: system packages libpq5;" in fixed.stdout
    assert _tags(registry, "nativelibmodel") == ["1.0.0"]


# --- LightGBM, weights, and a code change that pushes one layer ------------------------------

LIGHTGBM_MODEL = '''"""A LightGBM regressor trained when it loads, and a weights file."""

import hashlib
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per worker

import lightgbm as lgb
import numpy as np


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    return X, X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=300)


class Model:
    def __init__(self, path):
        with open(os.path.join(path, "weights", "blob.bin"), "rb") as f:
            self.weights_sha = hashlib.sha256(f.read()).hexdigest()[:12]
        X, y = _data()
        params = {"objective": "regression", "num_threads": 1, "deterministic": True,
                  "verbose": -1, "seed": 0}
        self.booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=20)

    def load_test_data(self, path):
        X, _ = _data()
        rows = [dict(zip("abcd", map(float, row))) for row in X[:5]]
        return rows, [self.predict(row) for row in rows]

    def predict(self, X):
        row = np.array([[X["a"], X["b"], X["c"], X["d"]]])
        return {"y": float(self.booster.predict(row)[0]), "weights": self.weights_sha}
'''

LIGHTGBM_SPEC = """name: LightGBMImage
version: "1.0.0"
description: A LightGBM regressor with a weights file.
contact: {name: catwalk tests, email: tests@example.com}
weights: [weights/]
schema:
  input:
    type: object
    required: [a, b, c, d]
    properties: {a: {type: number}, b: {type: number}, c: {type: number}, d: {type: number}}
  output:
    type: object
    required: [y, weights]
    properties: {y: {type: number}, weights: {type: string}}
"""


def test_lightgbm_weights_and_a_code_change_pushes_only_the_code_layer(
    base_image: str, registry: str, client: Any, created: list[str], tmp_path: Path
) -> None:
    folder = tmp_path / "lightgbm"
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "blob.bin").write_bytes(os.urandom(8 * 1024 * 1024))
    (folder / "model.py").write_text(LIGHTGBM_MODEL)
    (folder / "model.yml").write_text(LIGHTGBM_SPEC)
    (folder / "requirements.txt").write_text("lightgbm==4.7.0\n")
    ref = f"{registry}/lightgbmimage:1.0.0"
    created.append(ref)
    first = catwalk("build", "-m", str(folder), "--docker-registry", registry,
                    "--network", "host")  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    assert "weights 1 file(s) 8.4 MB" in first.stdout
    assert "[PASS] POST /predict: test data" in first.stdout  # libgomp1 is in the base image
    TIMINGS["lightgbm image size"] = f"{image_size_mb(client, ref):.0f} MB"

    with (folder / "model.py").open("a") as f:
        f.write("\n# a one-line change\n")
    rebuilt = f"{registry}/lightgbmimage:1.0.0-b2"
    created.append(rebuilt)
    second = catwalk("build", "-m", str(folder), "--docker-registry", registry,
                     "--network", "host", "--build-suffix", "b2")  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    steps = re.split(r"^Step \d+/\d+ : ", second.stdout, flags=re.M)
    for instruction in ("COPY --from=requirements", "COPY weights/"):
        step = next(s for s in steps if s.startswith(instruction))
        assert "Using cache" in step, step
    pushed = re.findall(r"^[0-9a-f]{12}: Pushed$", second.stdout, flags=re.M)
    assert len(pushed) == 1, second.stdout  # the code layer, and nothing else
    assert f"digest: {registry}/lightgbmimage@sha256:" in second.stdout
    labels = client.api.inspect_image(rebuilt)["Config"]["Labels"]
    assert labels["io.catwalk.build.suffix"] == "b2"
    assert sorted(_tags(registry, "lightgbmimage")) == ["1.0.0", "1.0.0-b2"]
    # The same suffix again: from the same inputs there is nothing to push (a pipeline can run
    # again, issue 18); from a changed model it is refused, as a version is.
    same = catwalk("build", "-m", str(folder), "--docker-registry", registry,
                   "--network", "host", "--build-suffix", "b2")  # fmt: skip
    assert same.returncode == 0, same.stdout + same.stderr
    assert "built from the same inputs" in same.stdout and "nothing to push" in same.stdout
    with (folder / "model.py").open("a") as f:
        f.write("# another change under the same suffix\n")
    again = catwalk("build", "-m", str(folder), "--docker-registry", registry,
                    "--network", "host", "--build-suffix", "b2")  # fmt: skip
    assert again.returncode == 1
    assert f"{rebuilt} is already in the registry" in again.stderr
