"""Moving a command into its model's environment: ``exec`` of the same command there.

The command is re-executed, not run as a child: ``os.execve`` replaces this process with
``<env>/bin/python -m catwalk <the same arguments>``, so the process id, stdin/stdout/stderr
(``predict`` streams), the terminal, signals and the exit code are the command's own, with
nothing in between to forward them. The new process gets ``CATWALK_ENV_MANAGER=local`` (it
is where it should be: it must not move again) and ``CATWALK_MODEL_ENV`` naming the
environment; ``MODEL_PATH``, ``SERVER_CONFIG``, ``SERVER_PORT`` and every other variable pass
through unchanged, so they override the flags there exactly as they did here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from catwalk.errors import RequirementsError
from catwalk.model_env import ENV_MANAGER_VAR, MODEL_ENV_VAR
from catwalk.model_env.identity import PACKAGE, own_install
from catwalk.model_env.store import EnvStore, default_root, plan_for
from catwalk.repository.discover import is_repository
from catwalk.repository.image import merged_requirements
from catwalk.spec import SPEC_FILE


def run_in_model_env(
    model_path: str,
    argv: Sequence[str],
    *,
    install: bool,
    echo: Callable[[str], None],
) -> None:
    """Re-execute the command in the model folder's environment (building it if needed); a
    model repository's environment holds every model's requirements.

    Returns, to let the command run here, only when there is nothing to move: a folder that
    is not a model folder (the command reports that itself), a catwalk that is not installed,
    or ``install=False`` (``--no-install``: build nothing) and no environment built yet. That
    last one is an image's ``catwalk serve --no-install``: the image is the model's
    environment, its requirements installed into catwalk's interpreter.
    """
    folder = Path(model_path)
    if (folder / SPEC_FILE).is_file():
        requirements = folder
    elif is_repository(folder):
        # A model repository shares one environment: every model's requirements together,
        # refused before anything is built when two of them conflict.
        requirements = merged_requirements(folder)
    else:
        return
    own = own_install()
    if own is None:
        echo(
            "environment: catwalk runs from a source tree, not an installed distribution, so "
            "no model environment can be built: the model runs in this interpreter"
        )
        return
    store = EnvStore(default_root(), echo)
    plan = plan_for(requirements, own)
    if install:
        env = store.get(plan)
    else:
        found = store.find(plan)
        if found is None:
            echo(
                "environment: none built for these requirements, and --no-install builds none: "
                "the model runs in this interpreter"
            )
            return
        echo(f"environment: {found} (cached)")
        env = found
    if Path(sys.prefix).resolve() == env.resolve():
        return  # already in it (started with the environment's own python)
    exec_in(env, argv)


def exec_in(env: Path, argv: Sequence[str]) -> None:
    """Replace this process with the same catwalk command run by ``env``'s interpreter."""
    python = env / "bin" / "python"
    environ = dict(os.environ)
    environ.pop("PYTHONHOME", None)
    environ.update(
        {
            ENV_MANAGER_VAR: "local",
            MODEL_ENV_VAR: str(env),
            "VIRTUAL_ENV": str(env),
            "PATH": os.pathsep.join([str(env / "bin"), environ.get("PATH", os.defpath)]),
        }
    )
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(python, [str(python), "-m", PACKAGE, *argv], environ)
    except OSError as exc:
        raise RequirementsError(
            f"{python}: cannot run the model's environment ({exc.strerror}); remove {env} "
            "and run the command again to rebuild it"
        ) from None


def inside_chosen_env() -> bool:
    """True in a process that :func:`exec_in` started (or its children): it stays here."""
    chosen = os.environ.get(MODEL_ENV_VAR, "")
    return bool(chosen) and Path(chosen).resolve() == Path(sys.prefix).resolve()
