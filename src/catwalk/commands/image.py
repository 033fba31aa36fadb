"""``catwalk build-prep``, ``build`` and ``test-image`` (``deploy-prep``: commands/deploy.py)."""

from __future__ import annotations

from pathlib import Path

import click

from catwalk.checks.image_checks import ImageTestOptions, test_image
from catwalk.commands.common import (
    DEFAULT_TEST_TIMEOUT,
    env_option,
    finish,
    handle_errors,
    junit_option,
    junit_reports,
    model_path_option,
    new_report,
    server_config_option,
    server_port_option,
    test_timeout_option,
    token_option,
    tolerance_option,
)
from catwalk.image.dockerfile import ImageOptions
from catwalk.image.naming import check_registry, check_suffix, image_ref
from catwalk.image.prep import build_prep
from catwalk.spec import ModelSpec

registry_option = env_option(
    "--docker-registry",
    envvar="DOCKER_REGISTRY",
    default=None,
    help="Registry (host[:port][/namespace]) for the base image and the model image.",
)
suffix_option = env_option(
    "--build-suffix",
    envvar="CATWALK_BUILD_SUFFIX",
    default=None,
    help="Tag <version>-<suffix> instead of <version>: a rebuild of the same model version "
    "(e.g. on a base image with a security fix; docs/upgrades.md).",
)
network_option = env_option(  # also deploy-prep's
    "--network",
    envvar="DOCKER_NETWORK",
    default=None,
    help="Docker network mode (e.g. host). Default: the engine's default network, or host "
    "when the engine has no bridge network.",
)
local_tag_option = env_option(
    "--local-tag",
    envvar="CATWALK_LOCAL_TAG",
    default=None,
    help="Build and test the image under this tag (e.g. one per CI pipeline) instead of the "
    "model's version; the push still pushes <name>:<version>.",
)


image_name_option = env_option(  # also deploy-prep's
    "--image-name",
    envvar="CATWALK_IMAGE_NAME",
    default=None,
    help="A model repository's image name (one model's image is named by its model.yml).",
)
image_version_option = env_option(  # also deploy-prep's
    "--image-version",
    envvar="CATWALK_IMAGE_VERSION",
    default=None,
    help="A model repository's image version (its tag; one model's: model.yml's version).",
)


def _spec(model_path: str, image_name: str | None, image_version: str | None) -> ModelSpec:
    from catwalk.repository.image import image_spec

    return image_spec(model_path, image_name, image_version)


@click.command("build-prep")
@model_path_option
@image_name_option
@image_version_option
@registry_option
@env_option(
    "--base-image",
    envvar="CATWALK_BASE_IMAGE",
    default=None,
    help="Image to build FROM (without a tag: catwalk's version is added). "
    "Default: [REGISTRY/]catwalk:<catwalk version>.",
)
@server_config_option
@server_port_option
@click.option("--force", is_flag=True, help="Replace a Dockerfile catwalk did not generate.")
@handle_errors
def build_prep_command(
    model_path: str,
    image_name: str | None,
    image_version: str | None,
    docker_registry: str | None,
    base_image: str | None,
    server_config: Path | None,
    server_port: int,
    force: bool,
) -> None:
    """Write a Dockerfile and .dockerignore for the model folder."""
    spec = _spec(model_path, image_name, image_version)
    options = ImageOptions(
        docker_registry=check_registry(docker_registry),
        base_image=base_image,
        server_port=server_port,
        server_config=server_config,
    )
    prepared = build_prep(spec, options, force=force)
    for written in prepared.files:
        click.echo(f"{written.action}: {written.path}")
    for note in prepared.notes:
        click.echo(f"note: {note}")
    flag = f" --docker-registry {options.docker_registry}" if options.docker_registry else ""
    if image_name is not None:
        flag += f" --image-name {spec.name} --image-version {spec.version}"
    ref = image_ref(spec, options.docker_registry)
    click.echo(f"next: catwalk build -m {model_path}{flag}  (builds {ref})")


@click.command("build")
@model_path_option
@image_name_option
@image_version_option
@registry_option
@click.option(
    "--push/--no-push",
    default=None,
    help="Push after building. Default: push when a registry is given.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Push even when the registry already has this name:version (replacing it).",
)
@click.option(
    "--sbom",
    is_flag=True,
    help="Also write sbom.cdx.json (CycloneDX: the image's Python packages, versions, "
    "licences) next to model.yml and label the image with its digest.",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Build without Docker's layer cache, and resolve the requirements again.",
)
@click.option(
    "--test/--no-test",
    default=None,
    help="Run test-image's checks on the image before any push. Default: when pushing "
    "(an untested image is never pushed: --no-test needs --no-push).",
)
@suffix_option
@click.option(
    "--pull",
    is_flag=True,
    help="Pull the base image from its registry again, even when this engine has it.",
)
@test_timeout_option
@network_option
@local_tag_option
@handle_errors
def build_command(
    model_path: str,
    image_name: str | None,
    image_version: str | None,
    docker_registry: str | None,
    push: bool | None,
    overwrite: bool,
    sbom: bool,
    no_cache: bool,
    test: bool | None,
    build_suffix: str | None,
    pull: bool,
    timeout: float,
    network: str | None,
    local_tag: str | None,
) -> None:
    """Build the model's Docker image, tagged [REGISTRY/]<name>:<version>[-<suffix>], test it
    with test-image's checks, and push it."""
    from catwalk.image.build import BuildOptions, build_model_image

    spec = _spec(model_path, image_name, image_version)
    registry = check_registry(docker_registry)
    options = BuildOptions(
        registry=registry,
        push=registry is not None if push is None else push,
        overwrite=overwrite,
        no_cache=no_cache,
        network=network,
        sbom=sbom,
        local_tag=local_tag,
        test=test,
        suffix=check_suffix(build_suffix),
        pull=pull,
        test_timeout=timeout,
    )
    build_model_image(spec, options, click.echo)


@click.command("test-image")
@model_path_option
@image_name_option
@image_version_option
@registry_option
@env_option(
    "--server-port",
    type=click.IntRange(1, 65535),
    envvar="SERVER_PORT",
    default=None,
    help="Port the container's server uses during the test. Default: a free port on this "
    "machine (pipelines sharing an engine never meet), 9090 on an engine elsewhere.",
)
@server_config_option
@network_option
@local_tag_option
@tolerance_option
@click.option(
    "--install/--no-install",
    default=True,
    hidden=True,
    help="No effect (kept for old pipelines): the model's packages are in the image.",
)
@test_timeout_option
@suffix_option
@token_option
@junit_option
@handle_errors
def test_image_command(
    model_path: str,
    image_name: str | None,
    image_version: str | None,
    docker_registry: str | None,
    build_suffix: str | None,
    server_port: int | None,
    server_config: Path | None,
    network: str | None,
    local_tag: str | None,
    tolerance: float,
    install: bool,
    timeout: float,
    token: str | None,
    junit_xml: str | None,
) -> None:
    """Run the model's image in a throwaway container and check it."""
    with junit_reports(junit_xml) as reports:
        report = new_report("test-image")
        reports.append(report)
        options = ImageTestOptions(
            docker_registry=check_registry(docker_registry),
            suffix=check_suffix(build_suffix),
            local_tag=local_tag,
            server_port=server_port,
            server_config=server_config,
            network=network,
            ready_timeout=max(timeout, DEFAULT_TEST_TIMEOUT),
            request_timeout=timeout,
            tolerance=tolerance,
            token=token,
            image_name=image_name,
            image_version=image_version,
        )
        test_image(model_path, report, options)
        finish(report)


COMMANDS = [build_prep_command, build_command, test_image_command]
