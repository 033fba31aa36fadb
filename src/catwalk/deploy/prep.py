"""``deploy-prep``: write the rendered deployment files into the model folder.

Targets: ``compose`` (docker-compose.yml, the default), ``kubernetes`` (kubernetes.yml) and
``kserve`` (kserve.yml, a KServe InferenceService).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TypeVar

from catwalk.config import DEFAULT_PORT, load_settings
from catwalk.deploy.compose import render_compose
from catwalk.deploy.kserve import KServeOptions, render_kserve
from catwalk.deploy.kubernetes import KubernetesOptions, render_kubernetes
from catwalk.errors import ConfigError
from catwalk.generated import Written, write_generated
from catwalk.spec import ModelSpec

COMPOSE_FILE = "docker-compose.yml"
KUBERNETES_FILE = "kubernetes.yml"
KSERVE_FILE = "kserve.yml"


def _check_config(server_config: Path | None, port: int) -> bool:
    """Validate the server config (ConfigError on a problem); True when it enables SSL."""
    if server_config is None:
        return False
    return load_settings(server_config, port).ssl.enabled


def deploy_prep(
    spec: ModelSpec,
    *,
    docker_registry: str | None = None,
    server_port: int = DEFAULT_PORT,
    server_config: Path | None = None,
    network: str | None = None,
    force: bool = False,
) -> Written:
    """Write the model folder's docker-compose.yml."""
    ssl = _check_config(server_config, server_port)
    text = render_compose(
        spec,
        docker_registry=docker_registry,
        server_port=server_port,
        server_config=server_config,
        ssl=ssl,
        compose_dir=spec.path,
        network=network,
    )
    return write_generated(spec.path / COMPOSE_FILE, text, force)


def deploy_kubernetes(
    spec: ModelSpec,
    options: KubernetesOptions,
    *,
    server_config: Path | None = None,
    force: bool = False,
) -> tuple[Written, list[str]]:
    """Write the model folder's kubernetes.yml; returns it and notes for the user.

    ``server_config``: the application.yml the pods will run with (from ``options.config_map``);
    its drain time sizes the grace period, and an SSL config needs the TLS Secret.
    """
    options, notes = _pod_config(options, server_config, "kubernetes", tls=True)
    text = render_kubernetes(spec, options)
    return write_generated(spec.path / KUBERNETES_FILE, text, force), notes


def deploy_kserve(
    spec: ModelSpec,
    options: KServeOptions,
    *,
    server_config: Path | None = None,
    force: bool = False,
) -> tuple[Written, list[str]]:
    """Write the model folder's kserve.yml (an InferenceService); returns it and notes."""
    options, notes = _pod_config(options, server_config, "kserve", tls=False)
    text = render_kserve(spec, options)
    return write_generated(spec.path / KSERVE_FILE, text, force), notes


_Options = TypeVar("_Options", KubernetesOptions, KServeOptions)


def _pod_config(
    options: _Options, server_config: Path | None, target: str, *, tls: bool
) -> tuple[_Options, list[str]]:
    """``options`` with the drain time of the application.yml the pods run with, and the
    note saying how to create its ConfigMap; ConfigError when a needed name is missing."""
    if server_config is None:
        return options, []
    if not options.config_map:
        raise ConfigError(
            f"--server-config with --target {target}: give --config-map NAME, the "
            "ConfigMap the pods read it from"
        )
    settings = load_settings(server_config, options.server_port)
    if settings.ssl.enabled:
        if not tls:
            raise ConfigError(
                f"{server_config} enables SSL: --target {target} serves plain HTTP inside the "
                "cluster (KServe's ingress or mesh terminates TLS); use a config without ssl"
            )
        if not getattr(options, "tls_secret", None):
            raise ConfigError(
                f"{server_config} enables SSL: give --tls-secret NAME (a kubernetes.io/tls "
                "Secret; the config names its files as ../tls/tls.crt and ../tls/tls.key)"
            )
    drain = float(getattr(settings, "graceful_timeout", 30)) + float(
        getattr(settings, "shutdown_delay", 0)
    )
    options = dataclasses.replace(options, drain_seconds=drain)
    namespace = f" -n {options.namespace}" if options.namespace else ""
    note = (
        f"create the ConfigMap first: kubectl{namespace} create configmap "
        f"{options.config_map} --from-file=application.yml={server_config.resolve()}"
    )
    return options, [note]
