"""Pure rendering of deploy-prep's docker-compose.yml: no Docker, no disk writes."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from catwalk.config import DEFAULT_PORT
from catwalk.image.dockerfile import CONFIG_DIR
from catwalk.image.naming import image_ref, model_tag
from catwalk.spec import ModelSpec
from catwalk.templates import render_generated


def healthcheck_command(port: int, scheme: str) -> str:
    """A Python one-liner probing /status inside the container (the image has no curl)."""
    context = ", context=ssl._create_unverified_context()" if scheme == "https" else ""
    return (
        "import ssl, urllib.request; "
        f"urllib.request.urlopen('{scheme}://127.0.0.1:{port}/status', timeout=4{context})"
    )


def render_compose(
    spec: ModelSpec,
    *,
    docker_registry: str | None = None,
    server_port: int = DEFAULT_PORT,
    server_config: Path | None = None,
    ssl: bool = False,
    compose_dir: Path | None = None,
    network: str | None = None,
) -> str:
    """A docker-compose.yml running the model's image with its port, environment and config.

    The config's folder is mounted read-only at ``/etc/catwalk``. Its host path is written
    relative to ``compose_dir`` (the folder the file goes in, the model folder) only when the
    config is inside it, so the pair moves together; otherwise it is absolute, which holds
    whatever folder ``docker compose`` is run from or the model folder is copied to.
    ``network``: the service's ``network_mode`` (``host``: no ports to publish).
    """
    config_source = config_target = config_env = None
    if server_config is not None:
        config = server_config.resolve()
        config_source = config.parent.as_posix()
        if compose_dir is not None:
            config_source = _path_inside(config.parent, compose_dir.resolve()) or config_source
        config_target = CONFIG_DIR
        config_env = str(PurePosixPath(CONFIG_DIR) / config.name)
    return render_generated(
        "catwalk.deploy",
        "docker-compose.yml.j2",
        service=model_tag(spec.name),
        image=image_ref(spec, docker_registry),
        port=server_port,
        server_config=config_env,
        config_source=config_source,
        config_target=config_target,
        network=network,
        healthcheck=healthcheck_command(server_port, "https" if ssl else "http"),
    )


def _path_inside(target: Path, start: Path) -> str | None:
    """``.`` or ``./x`` when ``target`` is ``start`` or inside it, else None."""
    try:
        rel = target.relative_to(start)
    except ValueError:
        return None
    return "." if rel == Path(".") else f"./{rel.as_posix()}"
