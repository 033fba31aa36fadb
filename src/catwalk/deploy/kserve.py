"""Pure rendering of ``deploy-prep --target kserve``'s ``kserve.yml``: no cluster, no disk writes.

One KServe ``InferenceService`` (``serving.kserve.io/v1beta1``) whose predictor is the model's
image as a custom container, ``kserve-container``, serving the Open Inference Protocol beside
``/predict`` on port 8080 (``SERVER_PORT``); KServe's router, InferenceGraph and any OIP
client (tritonclient, KServe's own) reach it as they reach a Triton or MLServer predictor.
The container gets what ``kubernetes.yml``'s Deployment gets (:mod:`catwalk.deploy.kubernetes`):
the hardened securityContext, resources, /tmp as the one writable directory, the optional
ConfigMap and bearer-token Secret, a ``preStop`` pause and a grace period longer than the
drain; probes are the protocol's ``/v2/health/live`` and ``/v2/health/ready``.

Two deployment modes (KServe's ``serving.kserve.io/deploymentMode`` annotation):
``RawDeployment`` (a Deployment, Service and HPA made by KServe; no Knative) and
``Serverless`` (Knative: scale to zero is possible, and ``--canary-traffic-percent`` rolls a
new image out to that share of the traffic first, which only Knative's revisions can do).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import yaml

from catwalk import __version__
from catwalk.deploy.kubernetes import (
    PRESTOP_SECONDS,
    Dumper,
    KubernetesOptions,
    container_security,
    grace_seconds,
    label_value,
    pod_files,
    pod_security,
)
from catwalk.errors import ConfigError
from catwalk.generated import MARKER
from catwalk.image.naming import image_ref, model_tag
from catwalk.spec import ModelSpec

KSERVE_PORT = 8080
CONTAINER = "kserve-container"
Mode = Literal["RawDeployment", "Serverless"]
MODES: tuple[Mode, ...] = ("RawDeployment", "Serverless")


@dataclass(frozen=True)
class KServeOptions:
    """What ``deploy-prep --target kserve`` can change."""

    docker_registry: str | None = None
    server_port: int = KSERVE_PORT
    namespace: str | None = None
    mode: Mode = "RawDeployment"
    min_replicas: int = 2
    max_replicas: int = 10
    #: Target average CPU utilisation (% of the request) the autoscaler keeps.
    cpu_percent: int = 70
    cpu_request: str = "500m"
    cpu_limit: str = "1"
    memory_request: str = "512Mi"
    memory_limit: str = "1Gi"
    #: Serverless only: the share of traffic a new revision gets until it is promoted.
    canary_traffic_percent: int | None = None
    config_map: str | None = None
    auth_secret: str | None = None
    drain_seconds: float = 30.0

    def check(self) -> None:
        """ConfigError for combinations KServe cannot run."""
        if self.canary_traffic_percent is not None and self.mode != "Serverless":
            raise ConfigError(
                "--canary-traffic-percent needs --kserve-mode Serverless (KServe splits "
                "traffic between Knative revisions; a RawDeployment has none)"
            )
        if self.max_replicas < self.min_replicas:
            raise ConfigError(
                f"--hpa-max {self.max_replicas} is below the minimum of {self.min_replicas} "
                "replicas"
            )


def render_kserve(spec: ModelSpec, options: KServeOptions) -> str:
    """The model's kserve.yml: one InferenceService."""
    options.check()
    name = model_tag(spec.name)[:63].rstrip("-._")
    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/version": label_value(spec.version),
        "app.kubernetes.io/managed-by": "catwalk",
    }
    meta: dict[str, Any] = {
        "name": name,
        "labels": labels,
        "annotations": {"serving.kserve.io/deploymentMode": options.mode},
    }
    if options.namespace:
        meta["namespace"] = options.namespace
    service = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": meta,
        "spec": {"predictor": _predictor(spec, options, labels)},
    }
    model_url = f"/v2/models/{spec.name}/infer"
    header = (
        f"# {MARKER} {__version__} by `catwalk deploy-prep --target kserve`.\n"
        "# Apply with `kubectl apply -f kserve.yml` on a cluster running KServe. The model\n"
        f"# answers the Open Inference Protocol (POST {model_url}) and /predict.\n"
    )
    body = yaml.dump(service, Dumper=Dumper, sort_keys=False, default_flow_style=False)
    return header + "---\n" + body


def _predictor(spec: ModelSpec, options: KServeOptions, labels: dict[str, str]) -> dict[str, Any]:
    port = options.server_port
    env, mounts, volumes = pod_files(port, options.config_map, None, options.auth_secret)

    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": port, "scheme": "HTTP"},
            "periodSeconds": period,
            "timeoutSeconds": 5,
            "failureThreshold": failures,
        }

    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image_ref(spec, options.docker_registry),
        "imagePullPolicy": "IfNotPresent",
        # Knative routes to the one declared port; "http1" names its protocol.
        "ports": [{"name": "http1", "containerPort": port, "protocol": "TCP"}],
        "env": env,
        "resources": {
            "requests": {"cpu": options.cpu_request, "memory": options.memory_request},
            "limits": {"cpu": options.cpu_limit, "memory": options.memory_limit},
        },
        "readinessProbe": probe("/v2/health/ready", 5, 2),
        "livenessProbe": probe("/v2/health/live", 10, 3),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_SECONDS)]}}},
        "securityContext": container_security(),
        "volumeMounts": mounts,
    }
    if options.mode == "RawDeployment":
        # Up to 2 minutes to load the model; liveness only counts once it has started.
        container["startupProbe"] = probe("/v2/health/live", 2, 60)
    else:  # Knative has no startup probe: liveness waits for a slow model instead
        container["livenessProbe"]["initialDelaySeconds"] = 60
    predictor: dict[str, Any] = {
        "labels": labels,
        "minReplicas": options.min_replicas,
        "maxReplicas": options.max_replicas,
        "scaleMetric": "cpu",
        "scaleTarget": options.cpu_percent,
    }
    if options.canary_traffic_percent is not None:
        predictor["canaryTrafficPercent"] = options.canary_traffic_percent
    if options.mode == "RawDeployment":
        # A new pod must be ready before an old one goes: no capacity lost on a rollout.
        predictor["deploymentStrategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        }
    drain = KubernetesOptions(drain_seconds=options.drain_seconds)
    predictor.update(
        {
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": grace_seconds(drain),
            "securityContext": pod_security(),
            "containers": [container],
            "volumes": volumes,
        }
    )
    return predictor
