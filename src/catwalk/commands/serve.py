"""``catwalk serve``, ``catwalk test-server`` and ``catwalk test``.

Options follow the one rule of every command (see :mod:`catwalk.commands.common`): an
environment variable that is set (``MODEL_PATH``, ``SERVER_CONFIG``, ``SERVER_PORT``,
``RUN_TESTS``) overrides the flag typed on the command line, which wins over application.yml and
the defaults.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from catwalk.checks.model_checks import TestData
from catwalk.checks.report import Report, Step
from catwalk.commands.common import (
    DEFAULT_TEST_TIMEOUT,
    env_option,
    finish,
    handle_errors,
    in_model_env,
    install_option,
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
from catwalk.config import ServerSettings, load_settings
from catwalk.errors import ConfigError
from catwalk.tokens_file import read_tokens

if TYPE_CHECKING:
    from catwalk.model import LoadedModel
    from catwalk.server.app import ModelApp
    from catwalk.server.repository_app import RepositoryApp

    DebugServed = ModelApp | RepositoryApp

DEBUG_HOST = "0.0.0.0"  # containers are reached from outside: listen on every interface

debug_option = click.option(
    "--debug",
    is_flag=True,
    help="Flask's development server with verbose logs instead of nginx + gunicorn.",
)


@click.command("serve")
@model_path_option
@server_config_option
@server_port_option
@debug_option
@env_option(
    "--run-tests/--no-run-tests",
    envvar="RUN_TESTS",
    default=False,
    show_default=True,
    help="Run the test-model checks first and refuse to start if they fail.",
)
@install_option
@click.option(
    "--reload",
    is_flag=True,
    help="With --debug: restart the server whenever a file in the model folder changes.",
)
@handle_errors
@in_model_env
def serve_command(
    model_path: str,
    server_config: Path | None,
    server_port: int,
    debug: bool,
    run_tests: bool,
    install: bool,
    reload: bool,
) -> None:
    """Serve the model as a REST API (nginx + gunicorn, or --debug).

    An environment variable that is set overrides the flag typed on the command line.
    """
    from catwalk.model import load_model
    from catwalk.requirements import ensure_requirements
    from catwalk.spec import load_spec

    settings = load_settings(server_config, server_port)
    if reload:
        if not debug:
            raise click.UsageError(
                "--reload needs --debug (the production server is not for editing)"
            )
        sys.exit(_serve_reloading(model_path, server_config, server_port, run_tests, install))
    from catwalk.repository.discover import is_repository

    if is_repository(model_path):
        from catwalk.commands.serve_repository import serve_repository

        serve_repository(model_path, settings, debug, run_tests, install)
        return
    spec = load_spec(model_path)
    if install:
        click.echo(f"requirements: {ensure_requirements(spec.path)}", err=True)

    model = None
    if run_tests:
        from catwalk.checks.model_checks import test_model

        report = new_report("test-model")
        model, _ = test_model(spec.path, report, install=False)
        report.summary()
        if not report.passed:
            raise ConfigError("not serving: the test-model checks failed (see above)")

    if not debug:
        sys.exit(serve_production_mode(spec.path, settings))

    if model is None:
        model = load_model(spec)
    _serve_debug(model, settings)


def _serve_reloading(
    model_path: str,
    server_config: Path | None,
    server_port: int,
    run_tests: bool,
    install: bool,
) -> int:
    """This command with --debug and without --reload, as a child restarted on every change."""
    from catwalk.repository.discover import discover
    from catwalk.server.dev.reload import serve_with_reload

    folder = discover(model_path).root  # a model folder, or a repository
    command = [sys.executable, "-m", "catwalk", "serve", "--debug", "-m", str(folder)]
    command += ["--server-port", str(server_port), "--run-tests" if run_tests else "--no-run-tests"]
    command += ["--install" if install else "--no-install"]
    watched = [folder]
    if server_config:
        command += ["--server-config", str(Path(server_config).resolve())]
        watched.append(Path(server_config))
    return serve_with_reload(command, watched, lambda line: click.echo(line, err=True))


def serve_production_mode(model_path: Path, settings: ServerSettings) -> int:
    """nginx + gunicorn serving ``model_path`` (a model folder or a repository) until stopped."""
    from catwalk.server.production.supervisor import serve_production

    return serve_production(model_path, settings)


def configure_debug_logging(settings: ServerSettings) -> None:
    from catwalk.server.logs import configure_logging

    configure_logging("DEBUG", settings.log_format)
    # catwalk.server logs every request already; the development server's own line repeats it.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def _serve_debug(model: LoadedModel, settings: ServerSettings) -> None:
    from catwalk.server.app import create_app
    from catwalk.server.logs import name_the_model

    configure_debug_logging(settings)
    name_the_model(model.spec.name, model.spec.version)
    app = create_app(model, settings)
    spec = model.spec
    batched = settings.batching.apply(spec.batching) is not None
    run_debug(app, settings, f"{spec.name} {spec.version} from {spec.path}", batched=batched)


def run_debug(app: DebugServed, settings: ServerSettings, what: str, *, batched: bool) -> None:
    """Run ``app`` on Werkzeug's development server until Ctrl-C or SIGTERM."""
    from catwalk.server.dev.debug import DebugApp, request_handler

    app.wsgi_app = DebugApp(  # type: ignore[method-assign]
        app.wsgi_app, settings.max_body_bytes, one_at_a_time=not batched
    )
    ssl_context = None
    if settings.ssl.enabled:
        ssl_context = (str(settings.ssl.cert), str(settings.ssl.key))
    url = f"{settings.scheme}://{DEBUG_HOST}:{settings.port}"
    click.echo(f"serving {what} on {url} (debug)", err=True)

    def stop(signum: int, frame: Any) -> None:
        app.readiness.stopping = True  # /ready: 503 (the debug server stops at once anyway)
        raise KeyboardInterrupt  # the development server shuts down cleanly on it

    signal.signal(signal.SIGTERM, stop)
    try:
        # Threaded, so an idle client blocks no one; DebugApp runs one request at a time.
        app.run(
            host=DEBUG_HOST,
            port=settings.port,
            debug=False,
            use_reloader=False,
            threaded=True,
            ssl_context=ssl_context,
            request_handler=request_handler(settings.client_timeout),
        )
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot listen on port {settings.port}: {exc.strerror}") from None


def _check_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--url must be an http(s) URL with a host (and, if any, a valid port)."""
    if value is None:
        return None
    parts = urlsplit(value.strip())
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise click.BadParameter(f"{value!r} has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(
            f"{value!r} is not an http(s) URL with a host, e.g. http://localhost:9090"
        )
    return value.strip()


@click.command("test-server")
@model_path_option
@click.option(
    "--url",
    default=None,
    callback=_check_url,
    help="Check this running server (e.g. http://localhost:9090) instead of starting one.",
)
@server_config_option
@debug_option
@click.option(
    "--cacert",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Verify an HTTPS server's certificate against this CA file "
    "(without it, HTTPS certificates are not verified: self-signed pairs are the norm).",
)
@tolerance_option
@test_timeout_option
@token_option
@install_option
@junit_option
@handle_errors
@in_model_env
def test_server_command(
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
) -> None:
    """Start the model's server (or use --url) and check it against the test data.

    A model repository: one server, every model checked on it (a block each).
    """
    from catwalk.checks.server_process import planned_steps
    from catwalk.repository.discover import is_repository

    if is_repository(model_path):
        from catwalk.commands.serve_repository import test_repository

        test_repository(
            model_path, url, server_config, debug, cacert, tolerance, timeout, token,
            install, junit_xml, with_model_checks=False,
        )  # fmt: skip
        return

    with junit_reports(junit_xml) as reports:
        report = new_report("test-server", planned_steps(url))
        reports.append(report)
        _test_server(
            report,
            model_path,
            url,
            server_config,
            debug,
            cacert,
            tolerance,
            install,
            token,
            timeout,
        )
        finish(report)


@click.command("test")
@model_path_option
@server_config_option
@debug_option
@tolerance_option
@test_timeout_option
@token_option
@install_option
@junit_option
@handle_errors
@in_model_env
def test_command(
    model_path: str,
    server_config: Path | None,
    debug: bool,
    tolerance: float,
    timeout: float,
    token: str | None,
    install: bool,
    junit_xml: str | None,
) -> None:
    """Run test-model, then test-server (which is skipped when test-model fails).

    A model repository: test-model of every model, then one server checked for each.
    """
    from catwalk.checks.model_checks import MODEL_STEPS, test_model
    from catwalk.checks.server_process import planned_steps
    from catwalk.repository.discover import is_repository

    if is_repository(model_path):
        from catwalk.commands.serve_repository import test_repository

        test_repository(
            model_path, None, server_config, debug, None, tolerance, timeout, token,
            install, junit_xml, with_model_checks=True,
        )  # fmt: skip
        return

    with junit_reports(junit_xml) as reports:
        report = new_report("test-model", MODEL_STEPS)
        reports.append(report)
        model, data = test_model(model_path, report, install=install, tolerance=tolerance)
        report.summary()
        # Numbered on from test-model's steps (7, or 8 with batching): no number twice.
        step = report.steps + 1
        server_report = new_report("test-server", planned_steps(None, step=step)[-2:])
        reports.append(server_report)
        if not report.passed or model is None or data is None:
            # Recorded for a CI system; the console already says test-model failed.
            server_report.planned = ()
            server_report.records.append(
                Step("SKIP", "test-server", "not run: test-model failed", 0.0)
            )
            sys.exit(1)
        click.echo("")
        _check_server(
            server_report,
            model,
            data,
            None,
            server_config,
            debug,
            None,
            tolerance,
            token,
            step=step,
            timeout=timeout,
        )
        finish(server_report)


def _test_server(
    report: Report,
    model_path: str,
    url: str | None,
    server_config: Path | None,
    debug: bool,
    cacert: str | None,
    tolerance: float,
    install: bool,
    token: str | None = None,
    timeout: float = DEFAULT_TEST_TIMEOUT,
) -> None:
    from catwalk.checks.model_checks import load_test_data, prepare

    load_settings(server_config)  # a broken application.yml is reported before anything runs
    model = prepare(model_path, report, install=install)
    if model is None:
        return
    data = load_test_data(model, report)
    if data is None:
        return
    _check_server(
        report, model, data, url, server_config, debug, cacert, tolerance, token, timeout=timeout
    )


def _check_server(
    report: Report,
    model: LoadedModel,
    data: TestData,
    url: str | None,
    server_config: Path | None,
    debug: bool,
    cacert: str | None,
    tolerance: float,
    token: str | None = None,
    step: int = 7,
    timeout: float = DEFAULT_TEST_TIMEOUT,
) -> None:
    from catwalk.checks.server_process import test_server

    settings = load_settings(server_config)
    if token is None and url is None and settings.auth.tokens_file is not None:
        # The server test-server starts takes the tokens of this file: use its first one.
        token = read_tokens(settings.auth.tokens_file)[0]
    https = url.startswith("https:") if url else settings.ssl.enabled
    # Without a CA to check against, HTTPS is not verified: self-signed pairs are the norm.
    verify: bool | str = cacert if cacert else not https
    test_server(
        model,
        data,
        report,
        url=url,
        server_config=server_config,
        scheme=settings.scheme,
        debug=debug,
        verify=verify,
        tolerance=tolerance,
        token=token,
        step=step,
        timeout=timeout,
    )


COMMANDS = [serve_command, test_server_command, test_command]
