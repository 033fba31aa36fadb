"""``catwalk init``: scaffold a new model folder."""

from __future__ import annotations

import click

from catwalk.commands.common import handle_errors
from catwalk.spec import IO_TYPES, IoType


def _io_type(ctx: click.Context, param: click.Parameter, value: str) -> IoType:
    """PYTHON_DICT or PANDAS_DATA_FRAME, in any case."""
    found = value.upper()
    if found not in IO_TYPES:
        raise click.BadParameter(f"{value!r} is not one of {', '.join(IO_TYPES)}")
    return found


@click.command("init")
@click.argument("name")
@click.option(
    "--io-type",
    metavar="[" + "|".join(IO_TYPES) + "]",
    callback=_io_type,
    default="PYTHON_DICT",
    show_default=True,
    help="PYTHON_DICT: predict gets a dict per record; PANDAS_DATA_FRAME: a DataFrame.",
)
@click.option(
    "--path",
    "parent",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Create the folder NAME inside this folder.",
)
@handle_errors
def init_command(name: str, io_type: IoType, parent: str) -> None:
    """Create the model folder NAME: model.yml, model.py, test data, requirements, README.

    It passes test-model and test-server as it is; replace its model with yours.
    """
    from catwalk.scaffold import create

    folder = create(name, io_type, parent)
    click.echo(f"created {folder}/ (model.yml, model.py, weights.json, test_data.json, ...)")
    click.echo("next:")
    for line in (
        f"catwalk test-model -m {folder}",
        f"catwalk serve -m {folder} --debug --reload",
        f'catwalk predict -m {folder} --input \'{{"length": 5.1, "width": 3.5}}\'',
        f"catwalk predict -m {folder} --input-file {folder}/inputs.jsonl --output outputs.jsonl",
    ):
        click.echo(f"  {line}")


COMMANDS = [init_command]
