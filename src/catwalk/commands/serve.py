"""``catwalk serve``, ``catwalk test-server`` and ``catwalk test``."""

from __future__ import annotations

import click

from catwalk.commands.common import model_path_option, not_yet_available


@click.command("serve")
@model_path_option
def serve_command(model_path: str) -> None:
    """Serve the model as a REST API (nginx + gunicorn, or --debug)."""
    not_yet_available("serve")


@click.command("test-server")
@model_path_option
def test_server_command(model_path: str) -> None:
    """Start the model's server (or use --url) and check it against the test data."""
    not_yet_available("test-server")


@click.command("test")
@model_path_option
def test_command(model_path: str) -> None:
    """Run test-model, then test-server."""
    not_yet_available("test")


COMMANDS = [serve_command, test_server_command, test_command]
