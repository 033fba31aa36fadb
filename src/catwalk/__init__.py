"""catwalk: wrap a Python model folder into a tested REST server and Docker image."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
