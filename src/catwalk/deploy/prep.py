"""``deploy-prep``: write the rendered deployment files into the model folder."""

from __future__ import annotations

from pathlib import Path

from catwalk.config import DEFAULT_PORT, load_settings
from catwalk.deploy.compose import render_compose
from catwalk.generated import Written, write_generated
from catwalk.spec import ModelSpec

COMPOSE_FILE = "docker-compose.yml"


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
