"""The Jinja2 set-up shared by everything catwalk renders (nginx/gunicorn configs, Dockerfiles)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jinja2


def environment(package: str, **filters: Callable[..., Any]) -> jinja2.Environment:
    """Templates from ``<package>/templates``; an undefined variable is an error, not ''."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # configuration files, not HTML
    )
    env.filters.update(filters)
    return env
