"""``catwalk build-prep``, ``build``, ``test-image`` and ``deploy-prep``."""

from __future__ import annotations

import click

from catwalk.commands.common import model_path_option, not_yet_available


@click.command("build-prep")
@model_path_option
def build_prep_command(model_path: str) -> None:
    """Write a Dockerfile and .dockerignore for the model folder."""
    not_yet_available("build-prep")


@click.command("build")
@model_path_option
def build_command(model_path: str) -> None:
    """Build (and push) the model's Docker image."""
    not_yet_available("build")


@click.command("test-image")
@model_path_option
def test_image_command(model_path: str) -> None:
    """Run the model's image in a throwaway container and check it."""
    not_yet_available("test-image")


@click.command("deploy-prep")
@model_path_option
def deploy_prep_command(model_path: str) -> None:
    """Write a docker-compose.yml that runs the model's image."""
    not_yet_available("deploy-prep")


COMMANDS = [build_prep_command, build_command, test_image_command, deploy_prep_command]
