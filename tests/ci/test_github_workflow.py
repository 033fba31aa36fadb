"""ci/github/catwalk.yml run by a real runner: nektos act, as a self-hosted runner.

``act -P ubuntu-24.04=-self-hosted`` runs the job's steps on this machine, as a self-hosted
runner would. The runner here cannot clone actions from GitHub (nor could an offline one), so
the two actions the workflow uses are mapped to local stand-ins with ``--local-repository``:
actions/checkout (act copies the work tree itself) and actions/upload-artifact (a composite
action that copies the files, failing when there are none). The template is copied byte for
byte; only its documented variables and secrets are set. Three runs, in order:

1. a push to main: the whole flow, then the push;
2. a push of a commit that changes no model input (the README): passes, nothing pushed;
3. a pull request from a feature branch changing the model: passes, nothing pushed.

And: the reports reach the job summary and the artifact stand-in; the model registry wants
a password, given as the workflow's secrets; the credentials are gone from the job's
RUNNER_TEMP at the end and never in the runner's home.
"""

from __future__ import annotations

import json
import os

import pytest
from ci_pipelines import ROOT, ModelRepo, Platform, run_pipeline, tool

from catwalk import __version__

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TEMPLATE = "ci/github/catwalk.yml"
STAND_IN = """\
name: upload-artifact (local stand-in for tests/ci)
inputs:
  name: {required: true}
  path: {required: true}
runs:
  using: composite
  steps:
    - shell: bash
      run: |
        test -e "${{ inputs.path }}" || { echo "no ${{ inputs.path }} to upload"; exit 1; }
        mkdir -p "$CATWALK_TEST_ARTIFACTS/${{ inputs.name }}"
        cp -r "${{ inputs.path }}" "$CATWALK_TEST_ARTIFACTS/${{ inputs.name }}/"
"""


class Act:
    def __init__(self, repo: ModelRepo, platform: Platform, password: str) -> None:
        self.repo = repo
        self.executable = tool("act")
        top = repo.path.parent
        self.home = top / "runner-home"
        self.artifacts = top / "artifacts"
        stand_in = top / "upload-artifact"
        for folder in (self.home, self.artifacts, stand_in):
            folder.mkdir()
        (stand_in / "action.yml").write_text(STAND_IN)
        self.mapping = f"actions/upload-artifact@v4={stand_in}"
        self.variables = {  # repository variables
            "MODEL_PATH": "model",
            "CATWALK_REQUIREMENT": str(platform.wheel),
            "CATWALK_BASE_IMAGE": platform.base_image,
            "DOCKER_REGISTRY": platform.models,
        }
        self.secrets = {"REGISTRY_USER": platform.registry.user, "REGISTRY_PASSWORD": password}
        self.runs = 0

    def run(self, event: str, payload: dict[str, object]) -> tuple[int, str]:
        self.runs += 1
        event_file = self.repo.path.parent / f"event-{self.runs}.json"
        event_file.write_text(json.dumps(payload))
        command = [
            self.executable, event, "-e", str(event_file),
            "-P", "ubuntu-24.04=-self-hosted",
            "--local-repository", self.mapping,
            "--no-cache-server",
        ]  # fmt: skip
        for key, value in self.variables.items():
            command += ["--var", f"{key}={value}"]
        for key, value in self.secrets.items():
            command += ["--secret", f"{key}={value}"]
        env = {
            "HOME": str(self.home),
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "CATWALK_TEST_ARTIFACTS": str(self.artifacts),
        }
        for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "DOCKER_HOST"):
            if os.environ.get(name):
                env[name] = os.environ[name]
        return run_pipeline(command, self.repo.path, f"act run {self.runs} ({event})", env)


def push(branch: str) -> dict[str, object]:
    return {"ref": f"refs/heads/{branch}", "repository": {"default_branch": "main"}}


def test_github_workflow_passes_twice_on_main_and_on_a_pull_request(
    platform: Platform, model_repo: object
) -> None:
    repo: ModelRepo = model_repo(TEMPLATE, ".github/workflows/catwalk.yml", None)  # type: ignore[operator]
    workflow = repo.path / ".github" / "workflows" / "catwalk.yml"
    assert workflow.read_bytes() == (ROOT / TEMPLATE).read_bytes()
    password = platform.registry.password
    act = Act(repo, platform, password)
    ref = platform.model_ref()

    # 1. a push to main: the whole flow, then the push.
    code, out = act.run("push", push("main"))
    assert code == 0, out[-4000:]
    assert "Job succeeded" in out
    assert "Success - Main push" in out and f"pushed {ref}" in out
    first = platform.pushed_digest()
    assert first is not None
    reports = act.artifacts / "catwalk-reports" / "reports"
    assert sorted(p.name for p in reports.glob("*.xml")) == [
        "test-image.xml",
        "test-model.xml",
        "test-server.xml",
    ]
    assert "| test-image | GET /status | passed |" in out  # the job summary, no action
    assert f"FROM {platform.base_image}:{__version__}" in out  # the build's step 1 (defect 5)

    # 2. a commit that changes no model input: passes, nothing pushed.
    repo.write("README.md", "More about the model.\n", append=True)
    repo.commit("docs", "README.md")
    code, out = act.run("push", push("main"))
    assert code == 0, out[-4000:]
    assert f"{ref} is in the registry already, built from the same inputs" in out
    assert f"pushed {ref}" not in out
    assert platform.pushed_digest() == first

    # 3. a pull request from a branch that changes the model: checked, built, tested, not pushed.
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("model/model.py", "\n# a change on a branch\n", append=True)
    repo.commit("change the model", "model/model.py")
    pull_request = {
        "number": 7,
        "pull_request": {"number": 7, "head": {"ref": "feature"}, "base": {"ref": "main"}},
        "repository": {"default_branch": "main"},
    }
    code, out = act.run("pull_request", pull_request)
    assert code == 0, out[-4000:]
    assert "Success - Main test-image" in out
    assert "Main push" not in out and f"pushed {ref}" not in out
    assert platform.pushed_digest() == first

    # The credentials: in RUNNER_TEMP for the job only, never in the runner's home.
    assert not (act.home / ".docker").exists()
    for path in act.home.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 1 << 20:
            assert password not in path.read_text(errors="replace"), path
