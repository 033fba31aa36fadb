"""``catwalk deploy-prep``: the files that run the model's image (compose, Kubernetes, KServe)."""

from __future__ import annotations

from pathlib import Path

import click

from catwalk.commands.common import (
    handle_errors,
    model_path_option,
    server_config_option,
    server_port_option,
)
from catwalk.commands.image import (
    image_name_option,
    image_version_option,
    network_option,
    registry_option,
)
from catwalk.deploy.kserve import KSERVE_PORT, MODES, KServeOptions, Mode
from catwalk.deploy.kubernetes import KubernetesOptions
from catwalk.deploy.prep import deploy_kserve, deploy_kubernetes, deploy_prep
from catwalk.errors import ConfigError
from catwalk.generated import Written
from catwalk.image.naming import check_registry


@click.command("deploy-prep")
@model_path_option
@image_name_option
@image_version_option
@registry_option
@server_port_option
@server_config_option
@click.option(
    "--target",
    type=click.Choice(["compose", "kubernetes", "kserve"]),
    default="compose",
    show_default=True,
    help="compose: docker-compose.yml; kubernetes: kubernetes.yml (Deployment, Service, "
    "HorizontalPodAutoscaler, PodDisruptionBudget); kserve: kserve.yml (a KServe "
    "InferenceService; the port is 8080 unless --server-port is given).",
)
@network_option
@click.option("--namespace", default=None, help="[kubernetes] The objects' namespace.")
@click.option(
    "--replicas",
    type=click.IntRange(1),
    default=2,
    show_default=True,
    help="[kubernetes] Pods to start with (the HPA's minimum by default).",
)
@click.option("--cpu-request", default="500m", show_default=True, help="[kubernetes]")
@click.option(
    "--cpu-limit",
    default="1",
    show_default=True,
    help="[kubernetes] Also sets the workers per pod (catwalk uses the CPUs it may).",
)
@click.option("--memory-request", default="512Mi", show_default=True, help="[kubernetes]")
@click.option("--memory-limit", default="1Gi", show_default=True, help="[kubernetes]")
@click.option(
    "--hpa/--no-hpa",
    default=True,
    show_default=True,
    help="[kubernetes] Write a HorizontalPodAutoscaler.",
)
@click.option(
    "--hpa-min", type=click.IntRange(1), default=None, help="[kubernetes] Default: --replicas."
)
@click.option(
    "--hpa-max", type=click.IntRange(1), default=10, show_default=True, help="[kubernetes]"
)
@click.option(
    "--hpa-cpu",
    type=click.IntRange(1, 100),
    default=70,
    show_default=True,
    help="[kubernetes] Target average CPU utilisation, % of the request.",
)
@click.option(
    "--hpa-in-flight",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="[kubernetes] Also scale on catwalk_in_flight_requests per pod (a "
    "custom-metrics adapter must serve it, see docs/scaling.md).",
)
@click.option(
    "--config-map",
    default=None,
    help="[kubernetes] ConfigMap with an application.yml key, mounted read-only.",
)
@click.option(
    "--tls-secret",
    default=None,
    help="[kubernetes] kubernetes.io/tls Secret, mounted at /etc/catwalk/tls; probes use HTTPS.",
)
@click.option(
    "--auth-secret",
    default=None,
    help="[kubernetes] Secret with a tokens key (bearer tokens), mounted read-only.",
)
@click.option(
    "--kserve-mode",
    type=click.Choice(MODES),
    default="RawDeployment",
    show_default=True,
    help="[kserve] KServe's deployment mode (Serverless needs Knative).",
)
@click.option(
    "--canary-traffic-percent",
    type=click.IntRange(0, 100),
    default=None,
    help="[kserve] Serverless: send this share of the traffic to a new image first.",
)
@click.option("--force", is_flag=True, help="Replace a file catwalk did not generate.")
@handle_errors
def deploy_prep_command(
    model_path: str,
    image_name: str | None,
    image_version: str | None,
    docker_registry: str | None,
    server_port: int,
    server_config: Path | None,
    target: str,
    network: str | None,
    namespace: str | None,
    replicas: int,
    cpu_request: str,
    cpu_limit: str,
    memory_request: str,
    memory_limit: str,
    hpa: bool,
    hpa_min: int | None,
    hpa_max: int,
    hpa_cpu: int,
    hpa_in_flight: float | None,
    config_map: str | None,
    tls_secret: str | None,
    auth_secret: str | None,
    kserve_mode: Mode,
    canary_traffic_percent: int | None,
    force: bool,
) -> None:
    """Write docker-compose.yml (default), kubernetes.yml or kserve.yml to run the model's image."""
    from catwalk.repository.image import image_spec

    spec = image_spec(model_path, image_name, image_version)
    registry = check_registry(docker_registry)
    if canary_traffic_percent is not None and target != "kserve":
        raise ConfigError("--canary-traffic-percent applies to --target kserve")
    if target == "compose":
        written = deploy_prep(
            spec,
            docker_registry=registry,
            server_port=server_port,
            server_config=server_config,
            network=network,
            force=force,
        )
        click.echo(f"{written.action}: {written.path}")
        return
    if network:
        raise ConfigError("--network applies to --target compose (pods use the cluster's network)")
    if target == "kserve":
        if tls_secret:
            raise ConfigError(
                "--tls-secret applies to --target kubernetes (KServe's ingress or mesh "
                "terminates TLS)"
            )
        source = click.get_current_context().get_parameter_source("server_port")
        typed = source not in (None, click.core.ParameterSource.DEFAULT)
        kserve = KServeOptions(
            docker_registry=registry,
            server_port=server_port if typed else KSERVE_PORT,
            namespace=namespace,
            mode=kserve_mode,
            min_replicas=hpa_min if hpa_min is not None else replicas,
            max_replicas=hpa_max if hpa else (hpa_min or replicas),
            cpu_percent=hpa_cpu,
            cpu_request=cpu_request,
            cpu_limit=cpu_limit,
            memory_request=memory_request,
            memory_limit=memory_limit,
            canary_traffic_percent=canary_traffic_percent,
            config_map=config_map,
            auth_secret=auth_secret,
        )
        _said(*deploy_kserve(spec, kserve, server_config=server_config, force=force))
        return
    options = KubernetesOptions(
        docker_registry=registry,
        server_port=server_port,
        namespace=namespace,
        replicas=replicas,
        cpu_request=cpu_request,
        cpu_limit=cpu_limit,
        memory_request=memory_request,
        memory_limit=memory_limit,
        hpa=hpa,
        hpa_min=hpa_min,
        hpa_max=hpa_max,
        hpa_cpu_percent=hpa_cpu,
        hpa_in_flight=hpa_in_flight,
        config_map=config_map,
        tls_secret=tls_secret,
        auth_secret=auth_secret,
    )
    _said(*deploy_kubernetes(spec, options, server_config=server_config, force=force))


def _said(written: Written, notes: list[str]) -> None:
    """Say what was written, and what the user must do before applying it."""
    click.echo(f"{written.action}: {written.path}")
    for note in notes:
        click.echo(f"note: {note}")


COMMANDS = [deploy_prep_command]
