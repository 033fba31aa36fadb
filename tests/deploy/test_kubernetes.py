"""deploy-prep --target kubernetes: kubernetes.yml validated strictly against the Kubernetes
schemas (kubernetes-validate, offline), and the fields a security review looks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from catwalk.cli import cli
from catwalk.config import load_settings
from catwalk.deploy.kubernetes import KubernetesOptions, grace_seconds, render_kubernetes
from catwalk.generated import is_generated
from catwalk.spec import load_spec
from manifests import VERSIONS, validate_strictly


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def documents(text: str) -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(text) if d]
    by_kind = {d["kind"]: d for d in docs}
    assert len(by_kind) == len(docs), "one object of each kind"
    return by_kind


def test_strict_validation_catches_a_misspelt_field() -> None:
    """The check the tests rely on can fail: an unknown field is an error in strict mode."""
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"prots": []}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, VERSIONS[0], strict=True)


def test_defaults_validate_and_say_what_a_review_wants(example_copy) -> None:
    folder = example_copy("dataframe")
    code, out = run("deploy-prep", "-m", str(folder), "--target", "kubernetes",
                    "--docker-registry", "localhost:5000/team")  # fmt: skip
    assert code == 0, out
    text = (folder / "kubernetes.yml").read_text()
    assert is_generated(text)
    assert "&id" not in text  # no YAML anchors: plain objects
    validate_strictly(text)
    docs = documents(text)
    assert set(docs) == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}

    deployment = docs["Deployment"]["spec"]
    pod = deployment["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "localhost:5000/team/neurondataframe:1.0.0"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/status"
    assert container["startupProbe"]["httpGet"]["path"] == "/status"
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120  # time to load a model
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    # the one writable directory, as the image expects it
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"])
    # drain: the preStop pause lets the endpoints drop the pod, then catwalk drains (30 s)
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pause >= 5
    assert pod["terminationGracePeriodSeconds"] >= pause + 30
    assert deployment["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SERVER_PORT"] == "9090"
    # the ingress and nodes in front are trusted to name the client (per-client limits)
    trusted = env["SERVER_TRUSTED_PROXIES"].split(",")
    assert "10.0.0.0/8" in trusted and "192.168.0.0/16" in trusted and "fc00::/7" in trusted
    assert load_settings(None).trusted_proxies == ()  # only when the variable is set

    service = docs["Service"]["spec"]
    assert service["selector"] == deployment["selector"]["matchLabels"]
    assert service["ports"][0]["targetPort"] == "http"
    hpa = docs["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == docs["Deployment"]["metadata"]["name"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    [cpu] = hpa["spec"]["metrics"]
    assert cpu["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    pdb = docs["PodDisruptionBudget"]
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["selector"]["matchLabels"]


def test_every_option(example_copy) -> None:
    folder = example_copy("rng")
    code, out = run(
        "deploy-prep", "-m", str(folder), "--target", "kubernetes", "--namespace", "models",
        "--replicas", "3", "--server-port", "8443", "--cpu-request", "250m", "--cpu-limit", "2",
        "--memory-request", "256Mi", "--memory-limit", "2Gi", "--hpa-min", "4", "--hpa-max", "9",
        "--hpa-cpu", "60", "--hpa-in-flight", "1.5", "--config-map", "rng-config",
        "--tls-secret", "rng-tls", "--auth-secret", "rng-auth",
    )  # fmt: skip
    assert code == 0, out
    text = (folder / "kubernetes.yml").read_text()
    validate_strictly(text)
    docs = documents(text)
    assert {d["metadata"]["namespace"] for d in docs.values()} == {"models"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert docs["Deployment"]["spec"]["replicas"] == 3
    [container] = pod["containers"]
    assert container["ports"][0]["containerPort"] == 8443
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SERVER_CONFIG"] == "/etc/catwalk/config/application.yml"
    assert env["SERVER_AUTH_TOKENS_FILE"] == "/etc/catwalk/auth/tokens"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert all(mounts[n]["readOnly"] for n in ("config", "tls", "auth"))
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "rng-config"
    assert volumes["tls"]["secret"]["secretName"] == "rng-tls"
    assert volumes["auth"]["secret"]["secretName"] == "rng-auth"
    hpa = docs["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (4, 9)
    cpu, in_flight = hpa["metrics"]
    assert cpu["resource"]["target"]["averageUtilization"] == 60
    assert in_flight["pods"]["metric"]["name"] == "catwalk_in_flight_requests"
    assert in_flight["pods"]["target"] == {"type": "AverageValue", "averageValue": "1500m"}
    assert docs["Service"]["spec"]["ports"][0]["port"] == 443


def test_no_hpa(example_copy) -> None:
    folder = example_copy("rng")
    assert run("deploy-prep", "-m", str(folder), "--target", "kubernetes", "--no-hpa")[0] == 0
    docs = documents((folder / "kubernetes.yml").read_text())
    assert "HorizontalPodAutoscaler" not in docs


def test_grace_period_follows_the_drain_time(example_copy) -> None:
    spec = load_spec(example_copy("rng"))
    long_drain = KubernetesOptions(drain_seconds=60)
    pod = documents(render_kubernetes(spec, long_drain))["Deployment"]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == grace_seconds(long_drain) >= 65


def test_compose_stays_the_default(example_copy) -> None:
    folder = example_copy("rng")
    assert run("deploy-prep", "-m", str(folder))[0] == 0
    assert (folder / "docker-compose.yml").exists()
    assert not (folder / "kubernetes.yml").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--network", "host"], "--network applies to --target compose"),
        (["--server-config", "{config}"], "give --config-map NAME"),
        (["--server-config", "{ssl}", "--config-map", "c"], "give --tls-secret NAME"),
        (["--hpa-cpu", "0"], "Invalid value for '--hpa-cpu'"),
    ],
)
def test_bad_combinations_are_clear_errors(
    example_copy, ssl_config, tmp_path: Path, args: list[str], message: str
) -> None:
    folder = example_copy("rng")
    config = tmp_path / "application.yml"
    config.write_text("server: {workers: 1}\n")
    ssl = ssl_config(tmp_path / "ssl")
    args = [a.format(config=config, ssl=ssl) for a in args]
    code, out = run("deploy-prep", "-m", str(folder), "--target", "kubernetes", *args)
    assert code != 0
    assert message in out, out
    assert "Traceback" not in out


def test_a_server_config_prints_how_to_create_its_config_map(example_copy, tmp_path: Path) -> None:
    folder = example_copy("rng")
    config = tmp_path / "application.yml"
    config.write_text("server: {workers: 1}\n")
    code, out = run("deploy-prep", "-m", str(folder), "--target", "kubernetes",
                    "--server-config", str(config), "--config-map", "rng-config",
                    "--namespace", "models")  # fmt: skip
    assert code == 0, out
    assert (
        f"kubectl -n models create configmap rng-config --from-file=application.yml={config}" in out
    )
