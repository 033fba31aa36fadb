"""tests/ci's fixtures live in ci_pipelines.py (with the helpers the tests import)."""

from ci_pipelines import dist, engine, model_repo, platform

__all__ = ["dist", "engine", "model_repo", "platform"]
