"""A model repository: one server for many model folders, versions side by side.

``-m`` names a model folder (it holds ``model.yml``) or a repository (a folder whose
subfolders are model folders). A single model folder is a repository of one model, so the
server and the commands treat both alike.

- :mod:`.discover`: finding the model folders, and what is wrong with a folder that is neither.
- :mod:`.versions`: PEP 440 ordering, and each name's default version.
- :mod:`.routing`: ``application.yml``'s ``models:`` checked against what is loaded; which
  model answers a request (default, canary split, shadow).
- :mod:`.requirements`: every model's requirements merged into one environment, conflicts
  named before anything installs.
"""

from __future__ import annotations

from catwalk.repository.discover import ModelEntry, Repository, discover
from catwalk.repository.routing import Routing, resolve

__all__ = ["ModelEntry", "Repository", "Routing", "discover", "resolve"]
