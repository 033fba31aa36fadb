"""deploy-prep --target kserve: kserve.yml validated against KServe's own CRD (offline, strict).

The CRD (tests/data/kserve, with its version and licence) holds the InferenceService's
openAPIV3Schema; an object with listed properties takes no others unless the schema says
``x-kubernetes-preserve-unknown-fields`` (the API server's strict field validation), so a
misspelt field fails here as it would on a cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from catwalk.cli import cli
from catwalk.deploy.kserve import KServeOptions, render_kserve
from catwalk.errors import ConfigError
from catwalk.generated import is_generated
from catwalk.spec import load_spec
from manifests import check, kserve_validator


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    return kserve_validator()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.mark.slow  # builds KServe's CRD schema
def test_the_strict_schema_catches_a_misspelt_field(validator: jsonschema.Draft7Validator) -> None:
    doc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "x"},
        "spec": {"predictor": {"containers": [{"name": "kserve-container", "imag": "x"}]}},
    }
    assert any("imag" in e.message for e in validator.iter_errors(doc))
    doc["spec"]["predictor"]["containers"][0] = {"name": "c", "image": "x", "ports": "8080"}
    assert list(validator.iter_errors(doc))


def test_defaults_validate_against_kserves_crd(
    validator: jsonschema.Draft7Validator, example_copy: Any
) -> None:
    folder = example_copy("rng")
    code, out = run("deploy-prep", "-m", str(folder), "--target", "kserve",
                    "--docker-registry", "localhost:5000/team")  # fmt: skip
    assert code == 0, out
    text = (folder / "kserve.yml").read_text()
    assert is_generated(text) and "&id" not in text
    doc = check(validator, text)
    assert doc["metadata"]["annotations"] == {"serving.kserve.io/deploymentMode": "RawDeployment"}
    predictor = doc["spec"]["predictor"]
    [container] = predictor["containers"]
    assert container["name"] == "kserve-container"
    assert container["image"] == "localhost:5000/team/rngmodel:0.0.1"
    assert container["ports"] == [{"name": "http1", "containerPort": 8080, "protocol": "TCP"}]
    assert {"name": "SERVER_PORT", "value": "8080"} in container["env"]
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/v2/health/ready",
        "port": 8080,
        "scheme": "HTTP",
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert (
        container["startupProbe"]["periodSeconds"] * container["startupProbe"]["failureThreshold"]
        >= 120
    )
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["capabilities"] == {
        "drop": ["ALL"]
    }
    assert predictor["securityContext"]["runAsNonRoot"] is True
    assert predictor["automountServiceAccountToken"] is False
    assert predictor["minReplicas"] == 2 and predictor["maxReplicas"] == 10
    assert predictor["deploymentStrategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert "canaryTrafficPercent" not in predictor


def test_serverless_canary_auth_and_config(
    validator: jsonschema.Draft7Validator, example_copy: Any, tmp_path: Path
) -> None:
    folder = example_copy("forest")
    config = tmp_path / "application.yml"
    config.write_text("server:\n  graceful_timeout: 50\n")
    code, out = run(
        "deploy-prep", "-m", str(folder), "--target", "kserve", "--kserve-mode", "Serverless",
        "--canary-traffic-percent", "10", "--namespace", "models", "--auth-secret", "tokens",
        "--server-config", str(config), "--config-map", "forest-config", "--replicas", "1",
        "--hpa-max", "4", "--hpa-cpu", "60", "--memory-limit", "2Gi", "--server-port", "9000",
    )  # fmt: skip
    assert code == 0, out
    assert "kubectl -n models create configmap forest-config" in out
    doc = check(validator, (folder / "kserve.yml").read_text())
    assert doc["metadata"]["namespace"] == "models"
    predictor = doc["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10
    assert (predictor["minReplicas"], predictor["maxReplicas"], predictor["scaleTarget"]) == (
        1,
        4,
        60,
    )
    assert "deploymentStrategy" not in predictor  # Knative's revisions roll it out
    assert predictor["terminationGracePeriodSeconds"] >= 50 + 5
    [container] = predictor["containers"]
    assert (
        "startupProbe" not in container and container["livenessProbe"]["initialDelaySeconds"] >= 30
    )
    assert container["ports"][0]["containerPort"] == 9000
    assert {"name": "SERVER_PORT", "value": "9000"} in container["env"]
    assert {"name": "SERVER_AUTH_TOKENS_FILE", "value": "/etc/catwalk/auth/tokens"} in container[
        "env"
    ]
    assert {"name": "SERVER_CONFIG", "value": "/etc/catwalk/config/application.yml"} in container[
        "env"
    ]
    volumes = {v["name"]: v for v in predictor["volumes"]}
    assert volumes["auth"]["secret"]["secretName"] == "tokens"
    assert volumes["config"]["configMap"]["name"] == "forest-config"
    assert container["resources"]["limits"]["memory"] == "2Gi"


def test_bad_combinations_are_clear_errors(example_copy: Any, tmp_path: Path) -> None:
    folder = example_copy("rng")
    code, out = run("deploy-prep", "-m", str(folder), "--target", "kserve",
                    "--canary-traffic-percent", "20")  # fmt: skip
    assert code != 0 and "--canary-traffic-percent needs --kserve-mode Serverless" in out
    code, out = run("deploy-prep", "-m", str(folder), "--target", "kserve", "--tls-secret", "t")
    assert code != 0 and "--tls-secret applies to --target kubernetes" in out
    code, out = run("deploy-prep", "-m", str(folder), "--canary-traffic-percent", "20")
    assert code != 0 and "applies to --target kserve" in out
    config = tmp_path / "application.yml"
    config.write_text("server:\n  workers: 2\n")
    code, out = run("deploy-prep", "-m", str(folder), "--target", "kserve",
                    "--server-config", str(config))  # fmt: skip
    assert code != 0 and "give --config-map NAME" in out
    assert not (folder / "kserve.yml").exists()
    with pytest.raises(ConfigError, match="below the minimum"):
        render_kserve(load_spec(folder), KServeOptions(min_replicas=5, max_replicas=2))
