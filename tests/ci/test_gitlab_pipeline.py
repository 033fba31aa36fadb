"""ci/gitlab/.gitlab-ci.yml run by a real runner: gitlab-ci-local, shell executor, not root.

The template is copied byte for byte into a model project's repository; only its documented
variables are set (as a project's CI/CD variables would be). The runner runs as the account
``catwalk-runner`` (a member of the docker group, as gitlab-runner's user is): no apt-get, no
system pip, no ``python`` command. Four pipelines, in order:

1. the default branch: test-model, test-server, build-prep, build, test-image, then the push;
2. the same commit again (a retried pipeline): passes, nothing pushed, the registry unchanged;
3. a feature branch changing the model: passes, nothing pushed;
4. that change merged without a version bump: fails with the bump message.

And: the model image starts FROM the platform's base image, in another registry than the
model's (defect 5); the model registry wants a password (htpasswd), so every push and every
read of the pushed label works only with the credentials the template wrote to its own
DOCKER_CONFIG, found under REGISTRY_HOST's default, DOCKER_REGISTRY's host (defect 6); and
those credentials never reach the runner account's home nor stay in its temporary folder
(defect 4).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from ci_pipelines import (
    RUNUSER,
    ModelRepo,
    Platform,
    run_pipeline,
    runner_account,
    tool,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TEMPLATE = "ci/gitlab/.gitlab-ci.yml"
GITLAB_CI_LOCAL_VERSION = "4.70.0"


class Runner:
    """gitlab-ci-local as a shell executor, run as the runner account with a clean env."""

    def __init__(self, repo: ModelRepo, platform: Platform) -> None:
        self.repo = repo
        self.executable = tool("gitlab-ci-local")
        tool("rsync")  # gitlab-ci-local copies the work tree with it
        version = subprocess.run(
            [self.executable, "--version"], capture_output=True, text=True, timeout=60
        ).stdout.strip()
        assert version == GITLAB_CI_LOCAL_VERSION, f"gitlab-ci-local {version}"
        # The runner account's home and temporary folder: checked for leftovers afterwards.
        self.home = repo.path.parent / "runner-home"
        self.tmp = repo.path.parent / "runner-tmp"
        for folder in (self.home, self.tmp):
            folder.mkdir()
            if repo.user:
                shutil.chown(folder, repo.user, repo.user)
        self.variables = {  # only the template's documented variables
            "MODEL_PATH": "model",
            "CATWALK_REQUIREMENT": str(platform.wheel),
            "CATWALK_BASE_IMAGE": platform.base_image,
            "CATWALK_ENGINE": "host",
            "DOCKER_REGISTRY": platform.models,
            "REGISTRY_USER": platform.registry.user,
            "REGISTRY_PASSWORD": platform.registry.password,
        }
        self.runs = 0

    def run(self) -> tuple[int, str]:
        self.runs += 1
        command = [self.executable, "--force-shell-executor", "--no-color"]
        for key, value in self.variables.items():
            command += ["--variable", f"{key}={value}"]
        env = {
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp),
            "PATH": "/usr/local/bin:/usr/bin:/bin",  # a plain account's: no /usr/sbin
            "LANG": "C.UTF-8",
        }
        for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "DOCKER_HOST"):
            if os.environ.get(name):  # this machine's package index settings, if any
                env[name] = os.environ[name]
        command = ["env", "-i", *(f"{k}={v}" for k, v in env.items()), *command]
        if self.repo.user:
            command = [RUNUSER, "-u", self.repo.user, "--", *command]
        return run_pipeline(command, self.repo.path, f"gitlab-ci-local pipeline {self.runs}")


def test_gitlab_template_passes_twice_on_main_and_on_a_branch(
    platform: Platform, model_repo: object
) -> None:
    user = runner_account()
    repo: ModelRepo = model_repo(TEMPLATE, ".gitlab-ci.yml", user)  # type: ignore[operator]
    assert (repo.path / ".gitlab-ci.yml").read_bytes() == (
        Path(__file__).resolve().parents[2] / TEMPLATE
    ).read_bytes()
    password = platform.registry.password
    runner = Runner(repo, platform)
    ref = platform.model_ref()

    # 1. the default branch: the whole flow, then the push.
    code, out = runner.run()
    assert code == 0, out[-4000:]
    assert "PASS  test-model" in out and "PASS  docker-image-host" in out
    assert "docker:27-dind" not in out  # the shell executor's job pulls no dind service
    assert f"pushed {ref}" in out
    for step in ("test-model", "test-server", "test-image"):
        assert (repo.path / "reports" / f"{step}.xml").is_file(), step
    first = platform.pushed_digest()
    assert first is not None
    # defect 5: FROM the platform's base image, not <DOCKER_REGISTRY>/catwalk.
    dockerfile = (repo.path / "model" / "Dockerfile").read_text()
    assert f"FROM {platform.base_image}:" in dockerfile
    assert f"{platform.models}/catwalk" not in dockerfile
    # built and tested under the pipeline's own tag; tagged name:version only to push.
    assert f"== build {platform.model_ref('ci-')}" in out

    # 2. the same commit again: passes, nothing pushed.
    code, out = runner.run()
    assert code == 0, out[-4000:]
    assert f"{ref} is in the registry already, built from the same inputs" in out
    assert "nothing to push" in out and f"pushed {ref}" not in out
    assert platform.pushed_digest() == first

    # 3. a feature branch that changes the model: checked, built, tested, never pushed.
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("model/model.py", "\n# a change on a branch\n", append=True)
    repo.commit("change the model", "model/model.py")
    code, out = runner.run()
    assert code == 0, out[-4000:]
    assert "is not the default branch: nothing pushed" in out
    assert f"pushed {ref}" not in out
    assert platform.pushed_digest() == first

    # 4. the change merged into the default branch without a version bump: refused.
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--ff-only", "feature")
    code, out = runner.run()
    assert code != 0
    assert "FAIL  docker-image-host" in out
    assert f"{ref} is already in the registry" in out
    assert "bump version in model.yml" in out
    assert platform.pushed_digest() == first

    # defect 4: the credentials were in a DOCKER_CONFIG of the job's own, now gone.
    assert not (runner.home / ".docker").exists()
    for folder in (runner.home, runner.tmp):
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.stat().st_size < 1 << 20:
                assert password not in path.read_text(errors="replace"), path
