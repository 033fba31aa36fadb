"""Which loaded model answers a request: defaults, the canary split, the shadow.

:func:`resolve` checks ``application.yml``'s ``models:`` (:mod:`catwalk.config_models`)
against the repository once, at start, and reports every problem together; the
:class:`Routing` it returns answers :meth:`Routing.pick` per request without further checks.

A request naming a name and a version gets that model; a request naming only a name gets
that name's default version, or, when ``models.traffic`` splits that name, a version drawn by
weight from a stable hash of the request's correlation id (the same id always reaches the same
version: a client's retries and a user's session stay on one); a request naming no model gets
the repository's default name (``models.default``, or the only name), then as above.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from catwalk.config_models import ModelsSettings
from catwalk.errors import ConfigError, InvalidRequest, ModelMismatch
from catwalk.repository.discover import ModelEntry, Repository
from catwalk.repository.versions import default_version, sort_versions

#: Canary buckets: a correlation id falls in one of these, the weights (percent) cover them.
BUCKETS = 100


def bucket(key: str) -> int:
    """A stable bucket (0-99) for ``key``: the same in every process and every run (Python's
    own ``hash()`` of a string is salted per process, so workers would disagree)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


@dataclass(frozen=True)
class Split:
    """One name's canary: cumulative bucket bounds, each with its version's entry."""

    bounds: tuple[tuple[int, ModelEntry], ...]

    def pick(self, key: str) -> ModelEntry:
        point = bucket(key)
        for upper, entry in self.bounds:
            if point < upper:
                return entry
        return self.bounds[-1][1]


@dataclass(frozen=True)
class Routing:
    """The repository with its defaults, canary splits and shadows, checked."""

    repository: Repository
    default_name: str | None
    defaults: dict[str, ModelEntry]  # name -> its default version's entry
    splits: dict[str, Split]
    traffic: dict[str, dict[str, int]]
    shadows: dict[str, ModelEntry]  # name -> the entry that shadows it

    @property
    def entries(self) -> tuple[ModelEntry, ...]:
        return self.repository.entries

    def pick(self, name: str | None, version: str | None, key: str) -> ModelEntry:
        """The model for a request naming ``name``/``version`` (None: not named).

        ``key`` is the request's correlation id (the canary's sticky key). Raises
        ModelMismatch (404) for a name or version not loaded, InvalidRequest (400) when the
        request names no model and the repository has no default.
        """
        if name is None:
            if self.default_name is None:
                raise InvalidRequest(
                    "model: this server serves several models and application.yml sets no "
                    f"models.default: name one ({', '.join(self.repository.names)}) in the "
                    "body's model field, or POST /models/{name}/predict"
                )
            name = self.default_name
        if version is not None:
            found = self.repository.find(name, version)
            if found is None:
                raise ModelMismatch(self.not_found(name, version))
            return found
        split = self.splits.get(name)
        if split is not None:
            return split.pick(key)
        default = self.defaults.get(name)
        if default is None:
            raise ModelMismatch(self.not_found(name, None))
        return default

    def shadow_of(self, entry: ModelEntry) -> ModelEntry | None:
        """The model that also runs each request ``entry`` answers (None: no shadow)."""
        shadow = self.shadows.get(entry.name)
        return None if shadow is None or shadow is entry else shadow

    def not_found(self, name: str, version: str | None) -> str:
        asked = f"{name[:200]!r}" + ("" if version is None else f" version {version[:100]!r}")
        return f"model {asked} not found: this server serves {self.repository.describe()}"

    def index(self) -> list[dict[str, Any]]:
        """``GET /models``: each loaded model, whether it is its name's default, its weight."""
        rows = []
        for name in self.repository.names:
            for version in self.repository.versions(name):
                entry = self.repository.find(name, version)
                assert entry is not None
                row: dict[str, Any] = {
                    "name": name,
                    "version": version,
                    "default": self.defaults[name] is entry,
                }
                weights = self.traffic.get(name)
                if weights is not None:
                    row["traffic"] = weights.get(version, 0)
                shadow = self.shadows.get(name)
                if shadow is entry:
                    row["shadow"] = True
                rows.append(row)
        return rows


def resolve(
    repository: Repository, settings: ModelsSettings, source: str = "application.yml"
) -> Routing:
    """Check ``settings`` (read from ``source``) against ``repository``; raise ConfigError
    listing every problem."""
    problems: list[str] = []
    names = repository.names
    loaded = f"(loaded: {repository.describe()})"

    def known(name: str, where: str) -> bool:
        if name in names:
            return True
        problems.append(f"{where}: no model named {name!r} is loaded {loaded}")
        return False

    default_name = settings.default
    if default_name is not None and not known(default_name, "models.default"):
        default_name = None
    elif default_name is None and len(names) == 1:
        default_name = names[0]
    for name in settings.versions:
        known(name, f"models.versions.{name}")
    defaults: dict[str, ModelEntry] = {}
    for name in names:
        try:
            version = default_version(name, repository.versions(name), settings.versions.get(name))
        except ValueError as exc:
            problems.append(str(exc))
            continue
        found = repository.find(name, version)
        assert found is not None
        defaults[name] = found
    splits: dict[str, Split] = {}
    for name, weights in settings.traffic.items():
        if not known(name, f"models.traffic.{name}"):
            continue
        bounds: list[tuple[int, ModelEntry]] = []
        upper = 0
        for version in sort_versions(weights):
            entry = repository.find(name, version)
            if entry is None:
                problems.append(
                    f"models.traffic.{name}: version {version!r} is not loaded (versions of "
                    f"{name}: {', '.join(repository.versions(name))})"
                )
                continue
            if weights[version]:
                upper += weights[version]
                bounds.append((upper, entry))
        if bounds:
            splits[name] = Split(tuple(bounds))
    shadows: dict[str, ModelEntry] = {}
    for name, version in settings.shadow.items():
        where = f"models.shadow.{name}"
        if not known(name, where):
            continue
        entry = repository.find(name, version)
        if entry is None:
            problems.append(
                f"{where}: version {version!r} is not loaded (versions of {name}: "
                f"{', '.join(repository.versions(name))})"
            )
        elif defaults.get(name) is entry and name not in splits:
            problems.append(
                f"{where}: {version!r} is {name}'s default version, which answers its "
                "requests itself: a shadow runs beside another version"
            )
        else:
            shadows[name] = entry
    if problems:
        raise ConfigError("\n".join(f"{source}: {p}" for p in problems))
    return Routing(repository, default_name, defaults, splits, dict(settings.traffic), shadows)
