"""Options and error handling shared by every command."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from catwalk.checks.report import Report
from catwalk.config import DEFAULT_PORT
from catwalk.errors import CatwalkError, ConfigError, ModelError, ModelLoadError
from catwalk.model_env import ARGV_KEY, ENV_MANAGER_VAR, ENV_MANAGERS, PROGRAM
from catwalk.normalize import DEFAULT_TOLERANCE

F = TypeVar("F", bound=Callable[..., Any])

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C

# One rule for every command and every option with an environment variable: the variable, when
# set, overrides the flag typed on the command line (the seed's contract for MODEL_PATH,
# SERVER_CONFIG and SERVER_PORT: "setting these will override anything passed as a CLI
# argument"), which wins over application.yml, which wins over the default. An empty variable
# counts as unset. When a variable overrides a typed flag, stderr says so. catwalk's images set
# MODEL_PATH, SERVER_PORT (and SERVER_CONFIG) with ENV, so `docker run -e` / a Kubernetes `env:`
# changes them whatever the command line says.


class EnvFirstOption(click.Option):
    """A click option whose environment variable, when set, wins over the command line.

    click's own order is the reverse (command line, then variable); the seed's contract and
    catwalk's images need this one. ``secret=True`` keeps the values out of the stderr note.
    """

    def __init__(self, *args: Any, secret: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.secret = secret

    def consume_value(
        self, ctx: click.Context, opts: Mapping[str, click.Parameter]
    ) -> tuple[Any, ParameterSource]:
        value, source = super().consume_value(ctx, opts)
        if source is not ParameterSource.COMMANDLINE or ctx.resilient_parsing:
            return value, source
        from_env = self.value_from_envvar(ctx)
        if from_env is None:
            return value, source
        raw = self.resolve_envvar_value(ctx)
        name = self._envvar_name()
        flag = self.opts[0]
        if self.secret:
            note = f"{name} overrides {flag} given on the command line"
        elif self.is_flag:
            note = f"{name}={raw} overrides the command line's {flag} choice"
        else:
            note = f"{name}={raw} overrides {flag} {value}"
        click.echo(note, err=True)
        return from_env, ParameterSource.ENVIRONMENT

    def _envvar_name(self) -> str:
        names = [self.envvar] if isinstance(self.envvar, str) else list(self.envvar or ())
        return next((n for n in names if os.environ.get(n)), names[0] if names else "?")


def env_option(*param_decls: str, **attrs: Any) -> Callable[[F], F]:
    """``click.option`` for an option with an environment variable (see EnvFirstOption)."""
    assert "envvar" in attrs, "env_option needs envvar="
    attrs.setdefault("show_envvar", True)
    return click.option(*param_decls, cls=EnvFirstOption, **attrs)


model_path_option = env_option(
    "--model-path",
    "-m",
    default=".",
    envvar="MODEL_PATH",
    show_default=True,
    help="The model folder (holding model.yml and model.py).",
)

model_option = env_option(
    "--model",
    "model",
    envvar="CATWALK_MODEL",
    default=None,
    metavar="NAME[@VERSION]",
    help="With a model repository as --model-path: the model to run (NAME: its default "
    "version, the highest by PEP 440).",
)

server_config_option = env_option(
    "--server-config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="SERVER_CONFIG",
    default=None,
    help="application.yml (logging, workers, SSL, ...); its folder holds the certificates.",
)
server_port_option = env_option(
    "--server-port",
    type=click.IntRange(1, 65535),
    envvar="SERVER_PORT",
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

#: Seconds test-server and test-image wait for the server to start, and for each answer.
DEFAULT_TEST_TIMEOUT = 120.0
test_timeout_option = env_option(
    "--timeout",
    type=click.FloatRange(min=1),
    envvar="CATWALK_TEST_TIMEOUT",
    default=DEFAULT_TEST_TIMEOUT,
    show_default=True,
    help="Seconds to wait for each of the server's answers, and at least that long (120 s at "
    "least) for it to start; each worker warms the model up before it answers.",
)

install_option = click.option(
    "--install/--no-install",
    default=True,
    show_default=True,
    help="Install the model's requirements.txt with pip first (skipped when satisfied).",
)


# -- the model's own environment (catwalk.model_env) -----------------------------------------


class EnvManagerOption(EnvFirstOption):
    """``--env-manager``: in a process already moved into the model's environment, ``local``
    without a word (the move itself set CATWALK_ENV_MANAGER, not the user)."""

    def consume_value(
        self, ctx: click.Context, opts: Mapping[str, click.Parameter]
    ) -> tuple[Any, ParameterSource]:
        from catwalk.model_env.runner import inside_chosen_env

        if inside_chosen_env():
            return "local", ParameterSource.ENVIRONMENT
        return super().consume_value(ctx, opts)


def in_model_env(func: F) -> F:
    """Add ``--env-manager`` and, with ``venv`` (the default), run the command in the model
    folder's own environment: requirements.txt + catwalk, built with uv and cached.

    Goes below ``@handle_errors`` (so its errors are reported like the command's) and needs
    the command's ``model_path`` and ``install`` parameters. ``serve --reload`` stays here:
    the server it restarts on every change is the command that moves (and picks up an edited
    requirements.txt).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, env_manager: str, **kwargs: Any) -> Any:
        if env_manager == "local":
            # The catwalk processes this one starts (test-server's server, --reload's) too.
            os.environ[ENV_MANAGER_VAR] = "local"
        elif not kwargs.get("reload"):
            from catwalk.model_env.runner import run_in_model_env

            ctx = click.get_current_context()
            if ctx.find_root().obj != PROGRAM:
                raise ConfigError(
                    "the model's own environment needs catwalk run as a program (it "
                    "re-executes itself there): in-process, use --env-manager local or "
                    "CATWALK_ENV_MANAGER=local"
                )
            try:
                from catwalk.repository.select import select_folder

                # --model (predict, score): that model of a repository in its own environment;
                # a whole repository in one environment holding every model's requirements.
                folder = kwargs["model_path"]
                if "model" in kwargs:
                    folder = str(select_folder(folder, kwargs["model"]))
                run_in_model_env(
                    folder,
                    ctx.meta.get(ARGV_KEY, sys.argv[1:]),
                    install=kwargs.get("install", True),
                    echo=lambda line: click.echo(line, err=True),
                )
            except CatwalkError:
                if kwargs.get("junit_xml") is None:
                    raise
                # A CI system reading --junit-xml learns why nothing ran, too.
                with junit_reports(kwargs["junit_xml"]) as reports:
                    reports.append(new_report(ctx.info_name or "catwalk"))
                    raise
        return func(*args, **kwargs)

    option = click.option(
        "--env-manager",
        cls=EnvManagerOption,
        type=click.Choice(ENV_MANAGERS),
        envvar=ENV_MANAGER_VAR,
        show_envvar=True,
        default="venv",
        show_default=True,
        help="Where the model runs: venv = an environment of its own (requirements.txt + "
        "catwalk, built with uv, cached under ~/.cache/catwalk/envs); local = this "
        "interpreter, installing requirements.txt into it with pip (what images do).",
    )
    return option(wrapper)  # type: ignore[return-value]


token_option = env_option(
    "--token",
    envvar="CATWALK_TOKEN",
    secret=True,
    show_envvar=False,
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
