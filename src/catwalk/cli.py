"""The ``catwalk`` command line: a thin click group over the library.

Each command lives in ``catwalk.commands``; this module only assembles them.
"""

from __future__ import annotations

import importlib

import click

from catwalk import __version__
from catwalk.model_env import ARGV_KEY, PROGRAM

# Each command and the module of catwalk.commands that defines it (in its COMMANDS). A
# command's module is imported only when that command runs: `catwalk serve` does not pay
# for Docker's SDK, nor `catwalk --version` for anything (cold start, the supervisor's memory).
COMMAND_MODULES = {
    "init": "init",
    "test-model": "model",
    "predict": "predict",
    "score": "score",
    "serve": "serve",
    "test-server": "serve",
    "test": "serve",
    "build-prep": "image",
    "build": "image",
    "test-image": "image",
    "deploy-prep": "deploy",
    "install-requirements": "internal",
    "export-test-data": "internal",
    "healthcheck": "internal",
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use (click's documented pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMAND_MODULES})

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # The command line as typed: a command moved into a model's environment runs it again.
        ctx.meta[ARGV_KEY] = list(args)
        return super().parse_args(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            module = importlib.import_module(f"catwalk.commands.{COMMAND_MODULES[cmd_name]}")
            for command in module.COMMANDS:
                self.add_command(command)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="catwalk")
def cli() -> None:
    """Wrap a model folder (model.yml + model.py) into a tested REST server and Docker image.

    CI/CD flow: test-model -> test-server -> build-prep -> build -> test-image.
    """


def main() -> None:
    cli(prog_name="catwalk", obj=PROGRAM)
