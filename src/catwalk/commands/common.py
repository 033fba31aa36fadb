"""Options and error handling shared by every command."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from catwalk.checks.model_checks import DEFAULT_TOLERANCE
from catwalk.checks.report import Report
from catwalk.config import DEFAULT_PORT
from catwalk.errors import CatwalkError, ModelError, ModelLoadError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C

# One rule for every command and every option with an environment variable: a value typed on
# the command line wins over the variable, which wins over application.yml, which wins over
# the default (click's own order). An empty variable counts as unset. catwalk's images set
# MODEL_PATH, SERVER_PORT (and SERVER_CONFIG) with ENV and run `catwalk serve` without those
# flags, so `docker run -e` / a Kubernetes `env:` changes them.

model_path_option = click.option(
    "--model-path",
    "-m",
    default=".",
    envvar="MODEL_PATH",
    show_default=True,
    show_envvar=True,
    help="The model folder (holding model.yml and model.py).",
)

server_config_option = click.option(
    "--server-config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="SERVER_CONFIG",
    show_envvar=True,
    default=None,
    help="application.yml (logging, workers, SSL, ...); its folder holds the certificates.",
)
server_port_option = click.option(
    "--server-port",
    type=click.IntRange(1, 65535),
    envvar="SERVER_PORT",
    show_envvar=True,
    default=DEFAULT_PORT,
    show_default=True,
    help="TCP port the server listens on.",
)
tolerance_option = click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=DEFAULT_TOLERANCE,
    show_default=True,
    help="Relative tolerance when comparing predicted and expected floats.",
)

install_option = click.option(
    "--install/--no-install",
    default=True,
    show_default=True,
    help="Install the model's requirements.txt with pip first (skipped when satisfied).",
)


token_option = click.option(
    "--token",
    envvar="CATWALK_TOKEN",
    default=None,
    help="Bearer token to send, for a server with server.auth (or set CATWALK_TOKEN; "
    "the environment keeps it out of shell history and ps).",
)
junit_option = click.option(
    "--junit-xml",
    "junit_xml",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the steps to this file as a JUnit XML report (for CI test views).",
)


def handle_errors(func: F) -> F:
    """Turn catwalk's errors into a message on stderr and exit code 1, never a traceback.

    Ctrl-C (a KeyboardInterrupt that reaches here) ends the command with the conventional
    exit code 130; a KeyboardInterrupt the model raised itself is reported as the model's
    failure by the checks before it gets here.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CatwalkError as exc:
            click.echo(f"Error: {exc}", err=True)
            details = getattr(exc, "details", "")
            if isinstance(exc, (ModelError, ModelLoadError)) and details:
                click.echo(details.rstrip(), err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("Aborted!", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def new_report(title: str, planned: tuple[str, ...] = ()) -> Report:
    return Report(title=title, echo=click.echo, planned=planned)


@contextmanager
def junit_reports(path: str | None) -> Iterator[list[Report]]:
    """Collect the command's reports and, with ``--junit-xml``, write them however it ends.

    The command appends each report it makes to the yielded list. An error that ends the
    command is recorded in the last report (as an ``<error>``) before it is printed as usual;
    the exit code is never changed, unless the report file itself cannot be written.
    """
    reports: list[Report] = []
    try:
        yield reports
    except CatwalkError as exc:
        if reports:
            reports[-1].error(str(exc))
        raise
    finally:
        if path is not None:
            from catwalk.checks.junit import write

            write(path, reports)


def finish(report: Report) -> None:
    """Print the summary and exit 0 only when every step passed."""
    report.summary()
    sys.exit(0 if report.passed else 1)


def not_yet_available(name: str) -> None:
    click.echo(f"Error: 'catwalk {name}' is not yet available in this version.", err=True)
    sys.exit(2)
