"""Each model runs in an environment of its own: its ``requirements.txt`` plus catwalk.

A model's pins (``numpy==1.26.4``) must never change catwalk's own environment or another
model's, so on a developer's machine and in CI the commands that load a model (``test-model``,
``test-server``, ``test``, ``serve``, ``predict``) run it in a virtual environment built with
uv from the model's requirements and the very catwalk that runs, cached by a digest of both
and of the Python version (as MLflow's ``env_manager`` does). ``--env-manager local`` (or
``CATWALK_ENV_MANAGER=local``) keeps the old way, installing into the running interpreter:
that is what images do, where the container is the model's environment.

- :mod:`.identity`: how the running catwalk is installed, so an environment gets the same.
- :mod:`.pipconf`: the user's pip configuration, passed on to uv (which ignores it).
- :mod:`.store`: the cache of environments: digest, lock, build into a temporary folder,
  atomic rename.
- :mod:`.runner`: picks the environment of a model folder and re-executes the command in it.
"""

from __future__ import annotations

#: ``venv`` (the default): the model's own environment; ``local``: this interpreter.
ENV_MANAGERS = ("venv", "local")
#: The variable that chooses the manager (it overrides ``--env-manager``, as every variable
#: overrides its flag).
ENV_MANAGER_VAR = "CATWALK_ENV_MANAGER"
#: Where the environments live (default: ``$XDG_CACHE_HOME/catwalk/envs``).
ENV_CACHE_VAR = "CATWALK_ENV_CACHE"
#: Set by the re-execution: the environment the command was moved into.
MODEL_ENV_VAR = "CATWALK_MODEL_ENV"
#: The file an environment's builder writes last: what it was built from.
RECORD_FILE = "catwalk-env.json"
#: ``click`` context ``obj`` when catwalk runs as the program (``catwalk.cli.main``): only then
#: may a command replace its process, never inside a caller's (click's CliRunner, tests).
PROGRAM = "catwalk.program"
#: Where ``catwalk.cli`` keeps the command line as typed (``ctx.meta``): what is re-executed.
ARGV_KEY = "catwalk.argv"
