"""``catwalk deploy-prep``: the files that run the model's image (compose, Kubernetes)."""

from __future__ import annotations

from pathlib import Path

import click

from catwalk.commands.common import (
    handle_errors,
    model_path_option,
    server_config_option,
    server_port_option,
)
from catwalk.commands.image import network_option, registry_option
from catwalk.deploy.kubernetes import KubernetesOptions
from catwalk.deploy.prep import deploy_kubernetes, deploy_prep
from catwalk.errors import ConfigError
from catwalk.image.naming import check_registry
from catwalk.spec import load_spec


@click.command("deploy-prep")
@model_path_option
@registry_option
@server_port_option
@server_config_option
@click.option(
    "--target",
    type=click.Choice(["compose", "kubernetes"]),
    default="compose",
    show_default=True,
    help="compose: docker-compose.yml; kubernetes: kubernetes.yml (Deployment, Service, "
    "HorizontalPodAutoscaler, PodDisruptionBudget).",
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
@click.option("--force", is_flag=True, help="Replace a file catwalk did not generate.")
@handle_errors
def deploy_prep_command(
    model_path: str,
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
    force: bool,
) -> None:
    """Write docker-compose.yml (default) or kubernetes.yml to run the model's image."""
    spec = load_spec(model_path)
    registry = check_registry(docker_registry)
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
    written, notes = deploy_kubernetes(spec, options, server_config=server_config, force=force)
    click.echo(f"{written.action}: {written.path}")
    for note in notes:
        click.echo(f"note: {note}")


COMMANDS = [deploy_prep_command]
