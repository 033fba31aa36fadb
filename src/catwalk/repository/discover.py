"""Finding the models of ``-m``: one model folder, or a repository of them.

A folder holding ``model.yml`` is a model folder (a repository of one). A folder without one
is a repository when at least one of its subfolders holds a ``model.yml``; those subfolders
(any names; hidden ones and ``__pycache__`` aside) are its models. Each ``model.yml`` is read
and checked as for one model, every problem of every model reported together. Two folders
holding the same ``name`` and ``version`` are an error naming both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from catwalk.errors import SpecError
from catwalk.repository.versions import sort_versions
from catwalk.spec import (
    MODEL_FILE,
    SPEC_FILE,
    ModelSpec,
    check_model_folder,
    existing_folder,
    load_spec,
)


@dataclass(frozen=True)
class ModelEntry:
    """One model of a repository: its folder's validated ``model.yml``."""

    spec: ModelSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def ref(self) -> str:
        """``name@version``, as the ``X-Catwalk-Model`` header and ``--model`` write it."""
        return f"{self.spec.name}@{self.spec.version}"

    @property
    def folder(self) -> Path:
        return self.spec.path


@dataclass(frozen=True)
class Repository:
    """The models ``-m`` names; ``single`` when it is one model folder (served as before)."""

    root: Path
    entries: tuple[ModelEntry, ...]
    single: bool
    _by_ref: dict[tuple[str, str], ModelEntry] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:  # find() is on every request's path: a dict, not a scan
        index = {(entry.name, entry.version): entry for entry in self.entries}
        object.__setattr__(self, "_by_ref", index)

    @property
    def names(self) -> list[str]:
        return sorted({entry.name for entry in self.entries})

    def versions(self, name: str) -> list[str]:
        """The versions of ``name`` in PEP 440 order."""
        return sort_versions(entry.version for entry in self.entries if entry.name == name)

    def find(self, name: str, version: str) -> ModelEntry | None:
        return self._by_ref.get((name, version))

    def describe(self) -> str:
        """``a 1.0, 2.0; b 0.1``: what is loaded, for messages."""
        return "; ".join(f"{name} {', '.join(self.versions(name))}" for name in self.names)


def is_repository(path: str | Path) -> bool:
    """True when ``path`` is a folder without model.yml whose subfolders hold models."""
    folder = Path(path).expanduser()
    return folder.is_dir() and not (folder / SPEC_FILE).exists() and bool(_model_folders(folder))


def discover(path: str | Path) -> Repository:
    """The models of ``path``; raises SpecError naming every problem found."""
    folder = existing_folder(path)
    if (folder / SPEC_FILE).exists() or (folder / MODEL_FILE).exists():
        spec = load_spec(folder)  # a model folder: its own errors, as always
        return Repository(folder, (ModelEntry(spec),), single=True)
    children = _model_folders(folder)
    if not children:
        raise SpecError(
            [
                f"{path}: neither a model folder (it holds no {SPEC_FILE}) nor a model "
                f"repository (none of its subfolders holds one): give a folder with "
                f"{SPEC_FILE} and {MODEL_FILE}, or a folder of such folders"
            ]
        )
    problems: list[str] = []
    entries: list[ModelEntry] = []
    for child in children:
        try:
            check_model_folder(child)
            entries.append(ModelEntry(load_spec(child)))
        except SpecError as exc:
            problems += [
                f"{child.name}/{p}" if p.startswith(SPEC_FILE) else p for p in exc.problems
            ]
    seen: dict[tuple[str, str], ModelEntry] = {}
    for entry in entries:
        key = (entry.name, entry.version)
        first = seen.get(key)
        if first is None:
            seen[key] = entry
        else:
            problems.append(
                f"{first.folder} and {entry.folder}: both hold model {entry.name} version "
                f"{entry.version} (each name and version once: change one version in its "
                f"{SPEC_FILE})"
            )
    if problems:
        raise SpecError(problems)
    order = {v: i for i, v in enumerate(sort_versions(e.version for e in entries))}
    entries.sort(key=lambda e: (e.name, order[e.version]))  # by name, then PEP 440
    return Repository(folder, tuple(entries), single=False)


def _model_folders(folder: Path) -> list[Path]:
    """Subfolders holding model.yml (or model.py, so a missing model.yml is reported)."""
    try:
        children = sorted(folder.iterdir())
    except OSError:
        return []
    return [
        child
        for child in children
        if child.is_dir()
        and not child.name.startswith((".", "__"))
        and ((child / SPEC_FILE).exists() or (child / MODEL_FILE).exists())
    ]
