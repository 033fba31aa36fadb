"""tests/ci's fixtures live in ci_pipelines.py (with the helpers the tests import)."""

from ci_pipelines import auth_registry, dist, engine, model_repo, platform

__all__ = ["auth_registry", "dist", "engine", "model_repo", "platform"]
