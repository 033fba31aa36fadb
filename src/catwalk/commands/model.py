"""``catwalk test-model``."""

from __future__ import annotations

import click

from catwalk.checks.model_checks import MODEL_STEPS, test_model
from catwalk.commands.common import (
    finish,
    handle_errors,
    in_model_env,
    install_option,
    junit_option,
    junit_reports,
    model_path_option,
    new_report,
    tolerance_option,
)


@click.command("test-model")
@model_path_option
@install_option
@tolerance_option
@junit_option
@handle_errors
@in_model_env
def test_model_command(
    model_path: str, install: bool, tolerance: float, junit_xml: str | None
) -> None:
    """Check a model folder: spec, requirements, import, test data, predictions."""
    with junit_reports(junit_xml) as reports:
        report = new_report("test-model", MODEL_STEPS)
        reports.append(report)
        test_model(model_path, report, install=install, tolerance=tolerance)
        finish(report)


COMMANDS = [test_model_command]
