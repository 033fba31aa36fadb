"""catwalk: wrap a Python model folder into a tested REST server and Docker image."""

from __future__ import annotations

__version__ = "0.1.0"
#: The name pip installs catwalk under (``pip install catwalk-serve``); importlib.metadata
#: knows it by this name. "catwalk" on PyPI is another project.
DISTRIBUTION = "catwalk-serve"

__all__ = ["DISTRIBUTION", "__version__"]
