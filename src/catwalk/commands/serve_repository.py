"""``serve``, ``test-server`` and ``test`` for a model repository (:mod:`catwalk.repository`).

``serve`` checks ``application.yml``'s ``models:`` against the repository, installs every
model's requirements together, then serves them all (production: loaded once in gunicorn's
master; ``--debug``: here). ``test-server`` and ``test`` start one server for the whole
repository and check each model on it, one block of steps per model (a model's requests go
to its own ``/models/{name}/versions/{version}/predict``); the exit code is 1 if any fails.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from catwalk.checks.model_checks import MODEL_STEPS, TestData
from catwalk.checks.report import Report, Step
from catwalk.commands.common import junit_reports, new_report
from catwalk.commands.serve import configure_debug_logging, run_debug, serve_production_mode
from catwalk.config import ServerSettings, load_settings
from catwalk.errors import ConfigError
from catwalk.model import LoadedModel
from catwalk.tokens_file import read_tokens


def serve_repository(
    model_path: str, settings: ServerSettings, debug: bool, run_tests: bool, install: bool
) -> None:
    """``serve`` for a model repository: every model, checked and loaded before traffic."""
    from catwalk.repository import discover, resolve
    from catwalk.repository.load import load_routing
    from catwalk.repository.requirements import ensure_repository_requirements
    from catwalk.server.repository_app import create_repository_app

    repository = discover(model_path)
    source = str(settings.config_path) if settings.config_path else "application.yml"
    routing = resolve(repository, settings.models, source)  # before anything installs
    if install:
        click.echo(f"requirements: {ensure_repository_requirements(repository)}", err=True)
    if run_tests:
        from catwalk.checks.model_checks import test_model
        from catwalk.repository.load import own_modules

        failed = []
        for entry in repository.entries:
            report = new_report(f"test-model {entry.ref}", MODEL_STEPS)
            with own_modules(entry.folder):
                test_model(entry.folder, report, install=False)
            report.summary()
            if not report.passed:
                failed.append(entry.ref)
        if failed:
            raise ConfigError(
                f"not serving: the test-model checks of {', '.join(failed)} failed (see above)"
            )
    if not debug:
        sys.exit(serve_production_mode(repository.root, settings))
    loaded = load_routing(routing)
    batched = any(settings.batching.apply(e.spec.batching) for e in repository.entries)
    configure_debug_logging(settings)
    run_debug(
        create_repository_app(loaded, settings),
        settings,
        f"{len(repository.entries)} models ({repository.describe()}) from {repository.root}",
        batched=batched,
    )


def test_repository(
    model_path: str,
    url: str | None,
    server_config: Path | None,
    debug: bool,
    cacert: str | None,
    tolerance: float,
    timeout: float,
    token: str | None,
    install: bool,
    junit_xml: str | None,
    *,
    with_model_checks: bool,
) -> None:
    """``test`` (``with_model_checks``) or ``test-server`` of a repository; exits."""
    from catwalk.checks.model_checks import load_test_data, prepare, test_model
    from catwalk.checks.server_checks import check_server
    from catwalk.checks.server_process import started_server
    from catwalk.checks.server_reach import unreachable
    from catwalk.repository import discover, resolve
    from catwalk.repository.load import own_modules
    from catwalk.repository.requirements import ensure_repository_requirements

    settings = load_settings(server_config)
    repository = discover(model_path)
    source = str(settings.config_path) if settings.config_path else "application.yml"
    resolve(repository, settings.models, source)  # models: checked before anything runs
    if token is None and url is None and settings.auth.tokens_file is not None:
        token = read_tokens(settings.auth.tokens_file)[0]
    https = url.startswith("https:") if url else settings.ssl.enabled
    verify: bool | str = cacert if cacert else not https
    command = "test" if with_model_checks else "test-server"
    ready: list[tuple[LoadedModel, TestData, Report]] = []
    with junit_reports(junit_xml) as reports:
        if install:
            click.echo(f"requirements: {ensure_repository_requirements(repository)}", err=True)
        for entry in repository.entries:
            click.echo(f"== {entry.ref} ({entry.folder}) ==")
            planned = MODEL_STEPS if with_model_checks else MODEL_STEPS[:6]
            report = new_report(f"{command} {entry.ref}", planned)
            reports.append(report)
            with own_modules(entry.folder):
                if with_model_checks:
                    model, data = test_model(
                        entry.folder, report, install=install, tolerance=tolerance
                    )
                else:
                    model = prepare(entry.folder, report, install=install)
                    data = load_test_data(model, report) if model is not None else None
            if model is not None and data is not None and report.passed:
                ready.append((model, data, report))
            else:
                report.summary()
        server = new_report(f"{command} server", ("1. server starts", "2. server stops"))
        reports.append(server)
        click.echo("== the server ==")
        if len(ready) < len(repository.entries):
            server.planned = ()
            server.records.append(Step("SKIP", "server", "not run: a model's checks failed", 0.0))
            _exit(reports)
        if url is not None:
            problem = unreachable(url, verify=verify)
            if problem is not None:
                server.fail("1. server", f"server not reachable at {url}: {problem}")
            else:
                server.ok("1. server", f"checking {url} (already running)")
                _check_each(url, ready, verify, timeout, tolerance, token, check_server)
            _exit(reports)
        with started_server(
            repository.root,
            server,
            step=1,
            server_config=server_config,
            scheme=settings.scheme,
            debug=debug,
            verify=verify,
            ready_timeout=max(120.0, timeout),
            watched=[server, *(report for _, _, report in ready)],
        ) as base_url:
            if base_url is not None:
                _check_each(base_url, ready, verify, timeout, tolerance, token, check_server)
        server.summary()
        _exit(reports)


def _check_each(
    base_url: str,
    ready: list[tuple[LoadedModel, TestData, Report]],
    verify: bool | str,
    timeout: float,
    tolerance: float,
    token: str | None,
    check_server: Any,
) -> None:
    for model, data, report in ready:
        click.echo(f"== {model.spec.name}@{model.spec.version} on the server ==")
        check_server(
            base_url, model, data, report, verify=verify, timeout=timeout,
            tolerance=tolerance, token=token, repository=True,
        )  # fmt: skip
        report.summary()


def _exit(reports: list[Report]) -> None:
    failed = [report.title for report in reports if not report.passed]
    click.echo(
        f"{len(reports) - len(failed)} of {len(reports)} passed"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    sys.exit(1 if failed else 0)
