"""The command group: every command is listed and found, each imported only when it runs."""

from __future__ import annotations

import importlib
import subprocess
import sys

from click.testing import CliRunner

from catwalk.cli import COMMAND_MODULES, cli


def test_every_command_is_named_with_its_module() -> None:
    found = {}
    for module in set(COMMAND_MODULES.values()):
        for command in importlib.import_module(f"catwalk.commands.{module}").COMMANDS:
            found[command.name] = module
    assert found == COMMAND_MODULES


def test_help_lists_the_public_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line}
    assert listed == {"build", "build-prep", "deploy-prep", "init", "predict", "score", "serve",
                      "test", "test-image", "test-model", "test-server"}  # fmt: skip
    assert CliRunner().invoke(cli, ["no-such"]).exit_code == 2


def test_a_command_imports_only_its_own_module() -> None:
    code = (
        "import sys\n"
        "from catwalk.cli import main\n"
        "sys.argv = ['catwalk', 'test-model', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('catwalk.commands.')))\n"
        "print('docker' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules, docker = out.stdout.strip().splitlines()[-2:]
    assert "catwalk.commands.model" in modules and "catwalk.commands.image" not in modules
    assert docker == "False"
