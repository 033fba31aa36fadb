"""Plumbing commands run inside model images (hidden from ``catwalk --help``).

- ``install-requirements``: the Dockerfile's pip step, so the image gets the same constraints
  (catwalk's own dependencies kept as installed) and the same refusal message as the host.
- ``export-test-data``: the model's test data as JSON on stdout, so ``test-image`` gets it from
  the image itself and the CI host needs only catwalk and a Docker engine, not the model's
  packages.
- ``healthcheck``: the image's ``HEALTHCHECK`` (the image has no curl): exit 0 when the server
  answers ``/status`` on ``SERVER_PORT``, over HTTPS when ``SERVER_CONFIG`` enables SSL.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import sys
import urllib.request

import click

from catwalk.checks.model_checks import TEST_DATA_PREFIX
from catwalk.checks.report import Report
from catwalk.commands.common import handle_errors, model_path_option, server_port_option
from catwalk.config import load_settings
from catwalk.errors import CatwalkError


@click.command("install-requirements", hidden=True)
@model_path_option
@handle_errors
def install_requirements_command(model_path: str) -> None:
    """Install the model folder's requirements.txt under catwalk's constraints."""
    from pathlib import Path

    from catwalk.requirements import ensure_requirements

    click.echo(f"requirements: {ensure_requirements(Path(model_path))}")


@click.command("export-test-data", hidden=True)
@model_path_option
@handle_errors
def export_test_data_command(model_path: str) -> None:
    """Load the model and its test data (test-model's steps 1-6) and print the data as JSON."""
    from catwalk.checks.model_checks import load_test_data, prepare

    report = Report(title="export-test-data", echo=lambda text: click.echo(text, err=True))
    # The model's own prints must not mix with the JSON: they go to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        model = prepare(model_path, report, install=False)
        data = load_test_data(model, report) if model is not None else None
    if data is None:
        report.summary()
        sys.exit(1)
    payload = {"inputs": data.inputs, "outputs": data.outputs, "batch": data.batch}
    click.echo(TEST_DATA_PREFIX + json.dumps(payload, ensure_ascii=False, allow_nan=False))


@click.command("healthcheck", hidden=True)
@server_port_option
@click.option("--timeout", type=click.FloatRange(min=0.1), default=4.0, show_default=True)
def healthcheck_command(server_port: int, timeout: float) -> None:
    """Exit 0 when the server on this machine answers GET /status with 200, else 1."""
    import os

    try:
        settings = load_settings(os.environ.get("SERVER_CONFIG") or None, server_port)
    except CatwalkError as exc:
        click.echo(f"unhealthy: {exc}", err=True)
        sys.exit(1)
    url = f"{settings.scheme}://127.0.0.1:{server_port}/status"
    # The certificate is the operator's (often self-signed, never for 127.0.0.1): the check is
    # that the server answers, not who it is. No proxy: this is loopback.
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if settings.ssl.enabled:
        handlers.append(urllib.request.HTTPSHandler(context=ssl._create_unverified_context()))
    try:
        with urllib.request.build_opener(*handlers).open(url, timeout=timeout) as response:
            ok = response.status == 200
    except OSError as exc:
        click.echo(f"unhealthy: {url}: {exc}", err=True)
        sys.exit(1)
    sys.exit(0 if ok else 1)


COMMANDS = [install_requirements_command, export_test_data_command, healthcheck_command]
