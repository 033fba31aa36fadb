"""Loading every model of a repository into this process, before any traffic.

All models are loaded once (in production, in gunicorn's master before it forks, so that the
workers share their memory); the first one that fails stops the start, its folder named, so a
server is never half loaded. Each model's ``model.py`` imports the modules beside it by
name (``from features import build``), and two versions of one model often have a module of
the same name: the modules a model's loading imported from its own folder are taken out of
``sys.modules`` again, so the next model imports its own copy (the loaded model keeps
references to what it imported).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from catwalk.config_models import ModelsSettings
from catwalk.errors import ModelLoadError
from catwalk.model import LoadedModel, load_model
from catwalk.repository.discover import ModelEntry, discover
from catwalk.repository.routing import Routing, resolve


@dataclass(frozen=True)
class LoadedRepository:
    """The repository's routing and each of its models, loaded (keyed by ``name@version``)."""

    routing: Routing
    models: dict[str, LoadedModel]

    @property
    def single(self) -> bool:
        return self.routing.repository.single

    def model(self, entry: ModelEntry) -> LoadedModel:
        return self.models[entry.ref]


def load_repository(
    path: str | Path,
    settings: ModelsSettings,
    source: str = "application.yml",
    loader: Callable[[ModelEntry], LoadedModel] | None = None,
) -> LoadedRepository:
    """Discover, check ``models:`` against what is found, then load every model.

    Raises SpecError, ConfigError, or ModelLoadError naming the model that failed.
    """
    routing = resolve(discover(path), settings, source)
    return load_routing(routing, loader)


def load_routing(
    routing: Routing, loader: Callable[[ModelEntry], LoadedModel] | None = None
) -> LoadedRepository:
    """Load each model of an already resolved ``routing``."""
    load = loader or (lambda entry: load_model(entry.spec))
    models: dict[str, LoadedModel] = {}
    many = len(routing.entries) > 1
    for entry in routing.entries:
        with own_modules(entry.folder, forget=many):
            try:
                models[entry.ref] = load(entry)
            except ModelLoadError as exc:
                if not many:
                    raise
                raise ModelLoadError(
                    f"model {entry.name} {entry.version} ({entry.folder}) cannot be loaded, "
                    f"so the server does not start: {exc}",
                    exc.details,
                ) from exc
    return LoadedRepository(routing, models)


@contextmanager
def own_modules(folder: Path, *, forget: bool = True) -> Iterator[None]:
    """Afterwards, drop the modules imported from ``folder`` meanwhile from sys.modules (the
    next model imports its own ``features.py``, not this one's)."""
    before = set(sys.modules)
    try:
        yield
    finally:
        if forget:
            root = str(folder) + "/"
            for name in set(sys.modules) - before:
                file = getattr(sys.modules.get(name), "__file__", None) or ""
                if file.startswith(root) and not name.startswith("catwalk_model_"):
                    del sys.modules[name]
