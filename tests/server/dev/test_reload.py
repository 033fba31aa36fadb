"""``catwalk serve --debug --reload``: real processes, real file changes, real HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from catwalk.checks.server_checks import free_port
from catwalk.checks.server_reach import wait_ready
from catwalk.cli import cli
from catwalk.server.dev.reload import describe_changes, lasting

pytestmark = pytest.mark.slow
INPUT = {"length": 5.1, "width": 3.5}
TIMEOUT = 30.0


class Reloading:
    """One ``catwalk serve --debug --reload`` process on a model folder made by ``init``."""

    def __init__(self, folder: Path, env: dict[str, str], *args: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        command = [sys.executable, "-m", "catwalk", "serve", "-m", str(folder), "--debug"]
        command += ["--reload", "--no-install", "--server-port", str(self.port), *args]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            env=env,
        )  # fmt: skip

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def predict(self) -> Any:
        response = requests.post(self.url + "/predict", json={"input": INPUT}, timeout=5)
        return response.json()

    def wait_for(self, what: Callable[[], bool], why: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                if what():
                    return
            except requests.RequestException:
                pass
            assert self.process.poll() is None, f"the reloader exited\n{self.output()}"
            time.sleep(0.2)
        raise AssertionError(f"{why} within {TIMEOUT:g}s\n--- output ---\n{self.output()}")

    def wait_log(self, text: str, count: int = 1) -> None:
        self.wait_for(lambda: self.output().count(text) >= count, f"no {text!r} in the log")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(20)
        self.log.close()
        return self.process.returncode


@pytest.fixture
def reloading(tmp_path: Path, child_environ: dict[str, str]) -> Iterator[Reloading]:
    result = CliRunner().invoke(cli, ["init", "live", "--path", str(tmp_path)])
    assert result.exit_code == 0, result.output
    server = Reloading(tmp_path / "live", child_environ)
    try:
        wait_ready(
            server.url, timeout=60, verify=False, alive=lambda: server.process.poll() is None
        )
        yield server
    finally:
        server.stop()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_model_py_weights_and_model_yml_changes_restart_the_server(reloading: Reloading) -> None:
    first = reloading.predict()["output"]
    assert first["label"] == "large"
    folder = reloading.folder

    edit(folder / "model.py", '"large" if score >= 0.5 else "small"', '"LARGE"')
    edit(folder / "model.yml", "enum: [small, large]", "enum: [small, large, LARGE]")
    reloading.wait_for(lambda: reloading.predict()["output"]["label"] == "LARGE", "no new label")
    assert "reload: model.py, model.yml changed: restarting the server" in reloading.output()

    weights = json.loads((folder / "weights.json").read_text())
    weights["bias"] = -5.0
    (folder / "weights.json").write_text(json.dumps(weights))
    reloading.wait_for(lambda: reloading.predict()["output"]["score"] > first["score"], "no reload")
    assert "reload: weights.json changed: restarting the server" in reloading.output()

    # A module beside model.py, imported by it, counts too.
    (folder / "helper.py").write_text("LABEL = 'from-helper'\n")
    edit(folder / "model.py", "import os\n", "import os\n\nfrom helper import LABEL\n")
    edit(folder / "model.py", '"LARGE"', "LABEL")
    edit(folder / "model.yml", "LARGE]", "LARGE, from-helper]")
    reloading.wait_for(lambda: reloading.predict()["output"]["label"] == "from-helper", "helper")
    edit(folder / "helper.py", "from-helper", "large")
    reloading.wait_for(lambda: reloading.predict()["output"]["label"] == "large", "helper edit")
    assert "reload: helper.py changed: restarting the server" in reloading.output()


def test_a_broken_save_shows_the_error_and_keeps_watching(reloading: Reloading) -> None:
    model = reloading.folder / "model.py"
    good = model.read_text()
    model.write_text(good + "\nsyntax error(\n")
    reloading.wait_log("reload: the server exited (code 1, see above)")
    output = reloading.output()
    assert "importing it raised SyntaxError" in output
    assert reloading.process.poll() is None  # the reloader itself lives on
    time.sleep(2)  # no restart loop: nothing changed, nothing restarted
    assert reloading.output().count("restarting the server") == 1

    (reloading.folder / "model.yml").write_text("name: [broken\n")
    reloading.wait_log("reload: the server exited (code 1, see above)", count=2)
    assert "model.yml: not valid YAML" in reloading.output()

    model.write_text(good)
    CliRunner().invoke(cli, ["init", "fresh", "--path", str(reloading.folder.parent)])
    fresh = (reloading.folder.parent / "fresh" / "model.yml").read_text()
    (reloading.folder / "model.yml").write_text(fresh.replace("name: fresh", "name: live"))
    reloading.wait_for(lambda: reloading.predict()["output"]["label"] == "large", "no recovery")


def test_files_catwalk_writes_and_editor_temporaries_do_not_restart(reloading: Reloading) -> None:
    (reloading.folder / "Dockerfile").write_text("FROM scratch\n")
    (reloading.folder / ".model.py.swp").write_text("")
    (reloading.folder / "__pycache__").mkdir(exist_ok=True)
    (reloading.folder / "__pycache__" / "x.pyc").write_bytes(b"")
    time.sleep(3)
    assert "restarting" not in reloading.output()


def test_sigterm_stops_the_reloader_and_its_server(reloading: Reloading) -> None:
    assert reloading.predict()["output"]["label"] == "large"
    assert reloading.stop() == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(reloading.url + "/status", timeout=2)


def test_a_change_to_the_server_config_restarts_too(
    tmp_path: Path, child_environ: dict[str, str]
) -> None:
    assert CliRunner().invoke(cli, ["init", "conf", "--path", str(tmp_path)]).exit_code == 0
    config = tmp_path / "application.yml"
    config.write_text("logging:\n  level: INFO\n")
    server = Reloading(tmp_path / "conf", child_environ, "--server-config", str(config))
    try:
        wait_ready(
            server.url, timeout=60, verify=False, alive=lambda: server.process.poll() is None
        )
        config.write_text("logging:\n  level: WARNING\n")
        server.wait_log("reload: application.yml changed: restarting the server")
        server.wait_for(lambda: server.predict()["output"]["label"] == "large", "no restart")
    finally:
        server.stop()


def test_reload_needs_debug_and_an_existing_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", "-m", str(tmp_path), "--reload"])
    assert result.exit_code == 2
    assert "--reload needs --debug" in result.output
    missing = CliRunner().invoke(cli, ["serve", "-m", str(tmp_path / "x"), "--debug", "--reload"])
    assert missing.exit_code == 1
    assert "model folder does not exist" in missing.output


def test_change_descriptions() -> None:
    from watchfiles import Change

    root = Path("/models/m")
    changes = {
        (Change.modified, "/models/m/model.py"),
        (Change.added, "/models/m/sedAbc12"),
        (Change.deleted, "/models/m/sedAbc12"),
        (Change.added, "/models/m/data/w.bin"),
    }
    paths = lasting(changes)
    assert paths == {"/models/m/model.py", "/models/m/data/w.bin"}
    assert describe_changes(paths, [root]) == "data/w.bin, model.py changed"
    many = {f"/models/m/{n}.py" for n in "abcde"}
    assert describe_changes(many, [root]) == "a.py, b.py, c.py and 2 more changed"
    assert describe_changes({"/conf/application.yml"}, [root, Path("/conf/application.yml")]) == (
        "application.yml changed"
    )
