"""``catwalk test-model``."""

from __future__ import annotations

import sys

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
    """Check a model folder: spec, requirements, import, test data, predictions.

    A model repository: every model, one block of steps each (exit 1 if any fails).
    """
    from catwalk.repository.discover import is_repository

    if is_repository(model_path):
        _test_repository(model_path, install, tolerance, junit_xml)
        return
    with junit_reports(junit_xml) as reports:
        report = new_report("test-model", MODEL_STEPS)
        reports.append(report)
        test_model(model_path, report, install=install, tolerance=tolerance)
        finish(report)


def _test_repository(
    model_path: str, install: bool, tolerance: float, junit_xml: str | None
) -> None:
    from catwalk.repository import discover
    from catwalk.repository.load import own_modules
    from catwalk.repository.requirements import ensure_repository_requirements

    repository = discover(model_path)
    with junit_reports(junit_xml) as reports:
        if install:  # all models' together first: then each model's step 3 finds them met
            click.echo(f"requirements: {ensure_repository_requirements(repository)}", err=True)
        for entry in repository.entries:
            click.echo(f"== {entry.ref} ({entry.folder}) ==")
            report = new_report(f"test-model {entry.ref}", MODEL_STEPS)
            reports.append(report)
            with own_modules(entry.folder):
                test_model(entry.folder, report, install=install, tolerance=tolerance)
            report.summary()
            click.echo("")
        failed = [report.title for report in reports if not report.passed]
        click.echo(
            f"test-model: {len(reports) - len(failed)} of {len(reports)} model(s) passed"
            + (f"; failed: {', '.join(failed)}" if failed else "")
        )
        sys.exit(1 if failed else 0)


COMMANDS = [test_model_command]
