"""``--model NAME[@VERSION]``: the one model of a repository a command runs (predict, score).

A model folder needs no ``--model`` (given, it must name that model); a repository needs one:
``NAME`` picks that name's default version (the highest by PEP 440, as the server picks it
without ``models.versions``), ``NAME@VERSION`` that version.
"""

from __future__ import annotations

from pathlib import Path

from catwalk.errors import ConfigError
from catwalk.repository.discover import discover, is_repository
from catwalk.repository.versions import default_version


def select_folder(model_path: str | Path, model: str | None) -> Path:
    """The model folder to run: ``model_path`` itself, or ``--model`` of its repository.

    A path that is not a repository is returned as given (the command reports what is wrong
    with it, as it always has).
    """
    if not is_repository(model_path):
        if model is not None:
            only = discover(model_path).entries[0]
            name, _, version = model.partition("@")
            if name != only.name or (version and version != only.version):
                raise ConfigError(
                    f"--model {model}: {model_path} is the model {only.ref}, not {model}"
                )
        return Path(model_path)
    repository = discover(model_path)
    if model is None:
        raise ConfigError(
            f"{model_path} is a model repository ({repository.describe()}): name the model to "
            "run with --model NAME or --model NAME@VERSION"
        )
    name, _, version = model.partition("@")
    versions = repository.versions(name)
    if not versions:
        raise ConfigError(
            f"--model {model}: no model named {name!r} in {model_path} (it holds "
            f"{repository.describe()})"
        )
    if not version:
        try:
            version = default_version(name, versions, None)
        except ValueError as exc:
            raise ConfigError(
                f"--model {model}: {exc}; or name one: --model {name}@VERSION"
            ) from None
    entry = repository.find(name, version)
    if entry is None:
        raise ConfigError(
            f"--model {model}: {name} has no version {version!r} in {model_path} (versions: "
            f"{', '.join(versions)})"
        )
    return entry.folder
