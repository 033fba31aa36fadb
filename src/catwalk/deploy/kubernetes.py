"""Pure rendering of deploy-prep's ``kubernetes.yml``: no cluster, no disk writes.

One multi-document file: a Deployment that runs the model's image as a security review wants
it (non-root, read-only root filesystem with an ``emptyDir`` at /tmp, no capabilities, no
privilege escalation, the runtime's seccomp profile, no service-account token), with a startup
probe on ``/status`` (loading a model can take a while), a readiness probe on ``/ready`` and a
liveness probe on ``/status``; a ``preStop`` pause so that the endpoints stop sending traffic
before catwalk drains, and a grace period longer than the pause plus the drain. Then a
Service, an ``autoscaling/v2`` HorizontalPodAutoscaler and a PodDisruptionBudget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from catwalk import __version__
from catwalk.config import DEFAULT_PORT
from catwalk.generated import MARKER
from catwalk.image.dockerfile import IMAGE_USER
from catwalk.image.naming import image_ref, model_tag
from catwalk.spec import ModelSpec

#: Seconds the pod keeps serving after it is told to stop, before SIGTERM reaches catwalk:
#: long enough for the endpoints controller and kube-proxy to take it out of the Service.
PRESTOP_SECONDS = 5
#: catwalk's own margin after the drain: nginx and gunicorn stop within 10 s of it.
STOP_MARGIN_SECONDS = 10
CONFIG_MOUNT = "/etc/catwalk/config"
# server.trusted_proxies in the pods: a request reaches a pod through the cluster's network
# (an ingress controller's pod, a load balancer or kube-proxy on a node), whose addresses are
# in the private ranges; their X-Forwarded-For names the client, so that
# server.max_connections_per_client limits each client, not the ingress. (A client inside
# the cluster could name any address: the limit then is per name it gives.)
CLUSTER_PROXIES = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7"
TLS_MOUNT = "/etc/catwalk/tls"
AUTH_MOUNT = "/etc/catwalk/auth"
AUTH_ENV = "SERVER_AUTH_TOKENS_FILE"


@dataclass(frozen=True)
class KubernetesOptions:
    """What ``deploy-prep --target kubernetes`` can change."""

    docker_registry: str | None = None
    server_port: int = DEFAULT_PORT
    namespace: str | None = None
    replicas: int = 2
    cpu_request: str = "500m"
    cpu_limit: str = "1"
    memory_request: str = "512Mi"
    memory_limit: str = "1Gi"
    hpa: bool = True
    hpa_min: int | None = None  # default: replicas
    hpa_max: int = 10
    hpa_cpu_percent: int = 70
    #: Also scale on catwalk_in_flight_requests per pod (needs a custom-metrics adapter).
    hpa_in_flight: float | None = None
    #: An existing ConfigMap with an ``application.yml`` key.
    config_map: str | None = None
    #: An existing ``kubernetes.io/tls`` Secret (tls.crt, tls.key): the probes use HTTPS.
    tls_secret: str | None = None
    #: An existing Secret with a ``tokens`` key (bearer tokens, one per line).
    auth_secret: str | None = None
    #: server.graceful_timeout + server.shutdown_delay of the config the pods run with.
    drain_seconds: float = 30.0


def render_kubernetes(spec: ModelSpec, options: KubernetesOptions) -> str:
    """The model's kubernetes.yml: Deployment, Service, HPA and PDB, one document each."""
    name = model_tag(spec.name)[:63].rstrip("-._")
    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/version": label_value(spec.version),
        "app.kubernetes.io/managed-by": "catwalk",
    }
    selector = {"app.kubernetes.io/name": name}
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if options.namespace:
        meta["namespace"] = options.namespace
    documents = [_deployment(spec, options, meta, selector), _service(options, meta, selector)]
    if options.hpa:
        documents.append(_hpa(options, meta))
    documents.append(_pdb(meta, selector))
    header = (
        f"# {MARKER} {__version__} by `catwalk deploy-prep --target kubernetes`.\n"
        "# Apply with `kubectl apply -f kubernetes.yml`. The HorizontalPodAutoscaler owns the\n"
        "# replica count once it runs: re-applying this file resets it to `replicas` first.\n"
    )
    body = yaml.dump_all(documents, Dumper=Dumper, sort_keys=False, default_flow_style=False)
    return header + "---\n" + body


class Dumper(yaml.SafeDumper):
    """Plain YAML: the labels written twice stay written out, not ``&id001`` / ``*id001``."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def label_value(text: str) -> str:
    """A label value: up to 63 of [A-Za-z0-9_.-], starting and ending alphanumeric."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in text)[:63]
    return safe.strip("-_.") or "unknown"


def grace_seconds(options: KubernetesOptions) -> int:
    """terminationGracePeriodSeconds: the preStop pause, the drain, catwalk's stop margin."""
    return int(PRESTOP_SECONDS + options.drain_seconds + STOP_MARGIN_SECONDS + 0.999)


def _deployment(
    spec: ModelSpec, options: KubernetesOptions, meta: dict[str, Any], selector: dict[str, str]
) -> dict[str, Any]:
    scheme = "HTTPS" if options.tls_secret else "HTTP"
    env, mounts, volumes = pod_files(
        options.server_port, options.config_map, options.tls_secret, options.auth_secret
    )

    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": "http", "scheme": scheme},
            "periodSeconds": period,
            "timeoutSeconds": 5,
            "failureThreshold": failures,
        }

    container = {
        "name": "model",
        "image": image_ref(spec, options.docker_registry),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": options.server_port, "protocol": "TCP"}],
        "env": env,
        "resources": {
            "requests": {"cpu": options.cpu_request, "memory": options.memory_request},
            "limits": {"cpu": options.cpu_limit, "memory": options.memory_limit},
        },
        # Up to 2 minutes to load the model; liveness only counts once it has started.
        "startupProbe": probe("/status", 2, 60),
        "readinessProbe": probe("/ready", 5, 2),
        "livenessProbe": probe("/status", 10, 3),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_SECONDS)]}}},
        "securityContext": container_security(),
        "volumeMounts": mounts,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": options.replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector},
            # A new pod must be ready before an old one goes: no capacity lost on a rollout.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": meta["labels"]},
                "spec": {
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": grace_seconds(options),
                    "securityContext": pod_security(),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def pod_files(
    port: int, config_map: str | None, tls_secret: str | None, auth_secret: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The container's environment, volume mounts and the pod's volumes: /tmp, and the
    config, TLS and token files when their ConfigMap or Secrets are given."""
    env = [
        {"name": "SERVER_PORT", "value": str(port)},
        {"name": "RUN_TESTS", "value": "false"},
        {"name": "SERVER_TRUSTED_PROXIES", "value": CLUSTER_PROXIES},
    ]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]
    if config_map:
        env.append({"name": "SERVER_CONFIG", "value": f"{CONFIG_MOUNT}/application.yml"})
        mounts.append({"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True})
        volumes.append({"name": "config", "configMap": {"name": config_map}})
    if tls_secret:
        mounts.append({"name": "tls", "mountPath": TLS_MOUNT, "readOnly": True})
        volumes.append({"name": "tls", "secret": {"secretName": tls_secret, "defaultMode": 0o440}})
    if auth_secret:
        env.append({"name": AUTH_ENV, "value": f"{AUTH_MOUNT}/tokens"})
        mounts.append({"name": "auth", "mountPath": AUTH_MOUNT, "readOnly": True})
        volumes.append(
            {"name": "auth", "secret": {"secretName": auth_secret, "defaultMode": 0o440}}
        )
    return env, mounts, volumes


def container_security() -> dict[str, Any]:
    """The container's securityContext: non-root, read-only root, no capabilities."""
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security() -> dict[str, Any]:
    """The pod's securityContext: the image's non-root user."""
    return {
        "runAsNonRoot": True,
        "runAsUser": int(IMAGE_USER.split(":")[0]),
        "runAsGroup": 0,  # as the image: any UID in group 0 works
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _service(
    options: KubernetesOptions, meta: dict[str, Any], selector: dict[str, str]
) -> dict[str, Any]:
    port = 443 if options.tls_secret else 80
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def _hpa(options: KubernetesOptions, meta: dict[str, Any]) -> dict[str, Any]:
    metrics: list[dict[str, Any]] = [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": options.hpa_cpu_percent},
            },
        }
    ]
    if options.hpa_in_flight is not None:
        metrics.append(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "catwalk_in_flight_requests"},
                    "target": {
                        "type": "AverageValue",
                        "averageValue": _quantity(options.hpa_in_flight),
                    },
                },
            }
        )
    low = options.hpa_min if options.hpa_min is not None else options.replicas
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"]},
            "minReplicas": low,
            "maxReplicas": max(low, options.hpa_max),
            "metrics": metrics,
            # Scale up at once, down slowly: a loaded model is expensive to bring back.
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }


def _pdb(meta: dict[str, Any], selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta,
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
    }


def _quantity(value: float) -> str:
    """A Kubernetes quantity: ``4`` or ``1500m``."""
    milli = round(value * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"
