"""The ``catwalk`` command line: a thin click group over the library.

Each command lives in ``catwalk.commands``; this module only assembles them.
"""

from __future__ import annotations

import click

from catwalk import __version__
from catwalk.commands import deploy, image, init, internal, model, predict, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="catwalk")
def cli() -> None:
    """Wrap a model folder (model.yml + model.py) into a tested REST server and Docker image.

    CI/CD flow: test-model -> test-server -> build-prep -> build -> test-image.
    """


for command in (
    *init.COMMANDS,
    *model.COMMANDS,
    *predict.COMMANDS,
    *serve.COMMANDS,
    *image.COMMANDS,
    *deploy.COMMANDS,
    *internal.COMMANDS,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="catwalk")
