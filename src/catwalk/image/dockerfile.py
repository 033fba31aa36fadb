"""Pure rendering of the files ``build-prep`` writes: no Docker, no disk writes.

:func:`render_dockerfile` and :func:`render_dockerignore` turn a :class:`~catwalk.spec.ModelSpec`
and a few options into text, from the Jinja2 templates in ``image/templates/``. Writing them into
the model folder is :mod:`catwalk.image.prep`'s job.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from catwalk.config import DEFAULT_PORT, load_settings
from catwalk.image.naming import base_image_ref
from catwalk.spec import ModelSpec
from catwalk.templates import render_generated

#: Where model images hold the model folder.
MODEL_DIR = "/srv/model"
#: Where a server config that lives outside the model folder is mounted (read-only).
CONFIG_DIR = "/etc/catwalk"
#: The base image's non-root user (group 0, so any UID in group 0 works too).
IMAGE_USER = "10001:0"
#: The base image's virtual environment, where catwalk and the model's requirements live.
VENV_DIR = "/opt/catwalk"
#: A file at least this large goes to the weights layer even when model.yml does not name it.
LARGE_FILE_MIB = 32


@dataclass(frozen=True)
class ImageOptions:
    """What ``build-prep`` bakes into the model's image."""

    docker_registry: str | None = None
    base_image: str | None = None
    server_port: int = DEFAULT_PORT
    #: The server config on the host; None: the image runs with the defaults.
    server_config: Path | None = None
    run_tests: bool = False
    #: Extra ``catwalk serve`` arguments. The requirements are installed when the image is
    #: built, so the image never runs pip when it starts (its user could not write there).
    serve_args: tuple[str, ...] = ("--no-install",)


def _render(template: str, **context: object) -> str:
    return render_generated("catwalk.image", template, **context)


def config_secrets(server_config: Path | None, port: int = DEFAULT_PORT) -> tuple[Path, ...]:
    """The secret files the server config names: TLS certificate and key, bearer tokens.

    Raises :class:`~catwalk.errors.ConfigError` when the config is invalid.
    """
    if server_config is None:
        return ()
    settings = load_settings(server_config, port)
    ssl = settings.ssl
    files = [f for f in (ssl.cert, ssl.key) if f is not None] if ssl.enabled else []
    if settings.auth.tokens_file is not None:
        files.append(settings.auth.tokens_file)
    return tuple(f.resolve() for f in files)


def config_in_image(
    model_folder: Path, server_config: Path | None, *, ssl: bool = False
) -> tuple[str | None, str]:
    """Where the image finds the server config, and a note saying how it gets there.

    A config without SSL inside the model folder is copied with the model. One outside it, or
    one that enables SSL (its certificate and private key are never baked into an image), is
    expected to be mounted read-only at ``/etc/catwalk`` (as test-image and the
    docker-compose.yml do).
    """
    if server_config is None:
        return None, ""
    config = server_config.resolve()
    try:
        relative = config.relative_to(model_folder.resolve())
    except ValueError:
        relative = None
    if relative is None or ssl:
        why = (
            "it names TLS keys or tokens: keys are never baked into images"
            if ssl
            else "it is outside"
        )
        target = str(PurePosixPath(CONFIG_DIR) / config.name)
        note = (
            f"The server config is not in the image ({why}): mount the folder holding\n"
            f"# {config.name} and its certificates read-only at {CONFIG_DIR} (catwalk test-image\n"
            "# and deploy-prep's compose file do)."
        )
        return target, note
    return str(PurePosixPath(MODEL_DIR) / relative.as_posix()), ""


def context_relative(model_folder: Path, files: tuple[Path, ...]) -> tuple[str, ...]:
    """The ``files`` inside the model folder, as /-separated paths relative to it."""
    folder = model_folder.resolve()
    inside = []
    for file in files:
        try:
            inside.append(file.resolve().relative_to(folder).as_posix())
        except ValueError:
            continue
    return tuple(inside)


#: The Dockerfile's second line records build-prep's options after this, as JSON, so that
#: ``build`` can render it again with them (a new version, a new requirements.txt).
OPTIONS_MARKER = "build-prep options: "


def recorded_options(text: str, model_folder: Path) -> ImageOptions | None:
    """The options a generated Dockerfile was rendered with; None when it records none."""
    for line in text.splitlines()[:5]:
        head, found, data = line.partition(OPTIONS_MARKER)
        if not found or head.strip() != "#":
            continue
        try:
            raw = json.loads(data)
        except json.JSONDecodeError:
            return None
        config = raw.get("server_config")
        return ImageOptions(
            docker_registry=raw.get("docker_registry"),
            base_image=raw.get("base_image"),
            server_port=int(raw.get("server_port", DEFAULT_PORT)),
            server_config=(model_folder / config) if config else None,
        )
    return None


def _options_json(spec: ModelSpec, options: ImageOptions) -> str:
    config = None
    if options.server_config is not None:
        # Relative to the model folder (../conf/application.yml), never a host's absolute path:
        # the Dockerfile may be committed, and the pair moves together within a repository.
        config = os.path.relpath(options.server_config.resolve(), spec.path.resolve())
    record = {
        "docker_registry": options.docker_registry,
        "base_image": options.base_image,
        "server_port": options.server_port,
        "server_config": config,
    }
    return json.dumps(record, sort_keys=True)


def render_dockerfile(spec: ModelSpec, options: ImageOptions) -> str:
    """The model image's Dockerfile (its weights layer only when the folder has weights)."""
    from catwalk.image.context import model_files  # it needs prep, which needs this module
    from catwalk.repository.image import requirements_folder

    secrets = config_secrets(options.server_config, options.server_port)
    server_config, note = config_in_image(spec.path, options.server_config, ssl=bool(secrets))
    return _render(
        "Dockerfile.j2",
        options_marker=OPTIONS_MARKER,
        options_json=_options_json(spec, options),
        base_image=base_image_ref(options.docker_registry, options.base_image),
        name=spec.name,
        version=spec.version,
        description=spec.description or "",
        authors=f"{spec.contact.name} <{spec.contact.email}>",
        system_packages=list(spec.system_packages),
        requirements=requirements_folder(spec.path) is not None,
        weights=bool(model_files(spec.path, spec.weights).weights),
        venv=VENV_DIR,
        large_mib=LARGE_FILE_MIB,
        model_dir=MODEL_DIR,
        server_config=server_config,
        config_note=note,
        port=options.server_port,
        run_tests="true" if options.run_tests else "false",
        user=IMAGE_USER,
        serve_args=list(options.serve_args),
    )


def render_dockerignore(extra: tuple[str, ...] = ()) -> str:
    """The model folder's .dockerignore: VCS, venvs, caches, secrets and build files stay out.

    ``extra``: paths relative to the model folder to keep out as well (the certificate and key
    an SSL server config names).
    """
    return _render("dockerignore.j2", extra=[f"/{p.lstrip('/')}" for p in extra])
