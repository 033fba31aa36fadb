"""What the supervisor hands gunicorn: the job (``job.pickle`` in the run folder).

The supervisor writes it; the gunicorn side (:mod:`catwalk.server.worker.wsgi`) reads it. The
app and the worker class are named by string (the app factory here, gunicorn's
``worker_class`` in :class:`~catwalk.server.production.render.Tuning`): the supervisor never
imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from catwalk.config import ServerSettings
from catwalk.repository.discover import discover
from catwalk.server.production.threads import ThreadPlan
from catwalk.spec import ModelSpec

DEFAULT_FACTORY = "catwalk.server.app:create_app"
# A model repository's (catwalk.repository): "module:function(loaded, settings) -> WSGI app".
REPOSITORY_FACTORY = "catwalk.server.repository_app:create_repository_app"
# gunicorn's own code for "the application could not be loaded" (Arbiter.APP_LOAD_ERROR).
APP_LOAD_ERROR = 4


@dataclass(frozen=True)
class Job:
    """What one production server serves; pickled into the run folder by the supervisor."""

    model_path: Path
    settings: ServerSettings
    app_factory: str = DEFAULT_FACTORY  # "module:function(model, settings) -> WSGI app"
    proxy_secret: str = ""  # what nginx sends in X-Catwalk-Proxy (RunLayout.proxy_secret)
    threads: ThreadPlan = field(default_factory=ThreadPlan)  # each worker's native pools


def specs_of(path: Path) -> list[ModelSpec]:
    """The model.yml of each model ``path`` serves (one folder, or a repository's)."""
    return [entry.spec for entry in discover(path).entries]
