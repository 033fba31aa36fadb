"""The Jinja2 set-up shared by everything catwalk renders (nginx/gunicorn configs, Dockerfiles,
deployment manifests)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jinja2

from catwalk import __version__
from catwalk.generated import MARKER


def dq(value: object) -> str:
    """A double-quoted string, valid in a Dockerfile and as a YAML/JSON scalar."""
    return json.dumps(" ".join(str(value).split()), ensure_ascii=False)


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


def render_generated(package: str, template: str, **context: object) -> str:
    """A generated file's text: ``template`` of ``package`` with catwalk's marker and version."""
    env = environment(package, dq=dq)
    return env.get_template(template).render(marker=MARKER, catwalk_version=__version__, **context)
