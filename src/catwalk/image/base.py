"""The base image a model image starts FROM: finding it, and asking it what it runs.

Model images start from ``[registry/]catwalk:<version>``, which the platform team builds from
catwalk's repository and pushes; catwalk never publishes it to Docker Hub. So a base reference
without a registry host (``catwalk:0.1.0``) must be on the engine already: asking Docker to
pull it would fetch ``docker.io/library/catwalk``, someone else's image at best. A reference
with a registry is pulled when it is missing (or always, with ``pull``: a rebuild after a
security fix to the base).

The wheelhouse needs to know what the base image runs: its Python's compatible wheel tags, and
the distributions its environment holds (kept as they are). A throwaway container of the base
image, with no network, prints them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catwalk.errors import BuildError
from catwalk.image import docker as dk
from catwalk.image.naming import BASE_IMAGE_NAME, split_ref

Echo = Callable[[str], None]

_PROBE = """
import json, sys
from importlib import metadata
from packaging import tags
try:
    from catwalk.requirements import runtime_constraints
    keep = {k: [v.name, v.version, v.needed_as] for k, v in runtime_constraints().items()}
except Exception:
    keep = {}
installed = {}
for dist in metadata.distributions():
    name = dist.metadata["Name"]
    if name:
        installed[name] = dist.version
print(json.dumps({
    "python": "%d.%d" % sys.version_info[:2],
    "tags": [str(t) for t in tags.sys_tags()],
    "installed": installed,
    "keep": keep,
}))
"""


@dataclass(frozen=True)
class BaseImage:
    """What a base image runs: the facts the wheelhouse is resolved for."""

    ref: str
    image_id: str
    python: str  # "3.11"
    tags: tuple[str, ...]  # its Python's compatible wheel tags, most specific first
    installed: dict[str, str]  # distribution name -> version, in catwalk's environment
    keep: dict[str, tuple[str, str, str]]  # catwalk's own runtime: name, version, needed as


def has_registry(ref: str) -> bool:
    """True when ``ref`` names a registry host (``host.domain/...``, ``host:port/...``)."""
    first, slash, _ = ref.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


def ensure_base(client: dk.Client, ref: str, *, pull: bool, echo: Echo) -> str:
    """Make sure ``ref`` is on the engine (pulling it from its registry when it may); its id."""
    local = dk.image_exists(client, ref)
    if has_registry(ref):
        if pull or not local:
            echo(f"pulling the base image {ref}")
            try:
                dk.pull_image(client, ref, echo=echo)
            except BuildError as exc:
                if not local:
                    raise BuildError(
                        f"the base image {ref} is neither on this Docker engine nor pullable "
                        f"({exc}). Build and push it from catwalk's repository: docker build . "
                        f"-t {ref} && docker push {ref} (docs/images.md), or give build-prep "
                        "--base-image"
                    ) from None
                echo(f"note: could not pull {ref} ({exc}); building on the local copy")
    elif not local:
        repository, _ = split_ref(ref)
        ours = repository.rsplit("/", 1)[-1] == BASE_IMAGE_NAME
        raise BuildError(
            f"the base image {ref} is not on this Docker engine, and its name has no registry, "
            f"so Docker would pull it from Docker Hub (docker.io/"
            f"{'library/' if '/' not in repository else ''}{repository})"
            + (", where catwalk's base image is not published" if ours else "")
            + ". Either build it here from catwalk's repository (docker build . -t "
            f"{ref}, docs/images.md), or give build (or build-prep) --docker-registry R to "
            f"start FROM R/{BASE_IMAGE_NAME}:<version> that the platform team pushed, or "
            "--base-image with a full reference"
        )
    return str(dk.inspect_image(client, ref)["Id"])


def cache_dir() -> Path:
    """catwalk's cache on this machine: ``$XDG_CACHE_HOME/catwalk`` (``~/.cache/catwalk``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "catwalk"


def probe_base(client: dk.Client, ref: str, image_id: str) -> BaseImage:
    """What the base image's Python runs: asked once per image id, then read from the cache."""
    cached = cache_dir() / "base-images" / f"{image_id.removeprefix('sha256:')[:32]}.json"
    try:
        return _base_image(ref, image_id, json.loads(cached.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        pass
    data = _ask(client, ref, image_id)
    with contextlib.suppress(OSError):
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(data), encoding="utf-8")
    return _base_image(ref, image_id, data)


def _ask(client: dk.Client, ref: str, image_id: str) -> dict[str, Any]:
    """Run the probe in a throwaway container of the image (no network)."""
    done = dk.run_command(
        client, image_id, ["python", "-c", _PROBE], user="0:0", timeout=120, environment={}
    )
    lines = done.stdout.strip().splitlines()
    if done.exit_code != 0 or not lines:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise BuildError(
            f"the base image {ref} did not say what its Python runs (is it a catwalk base "
            f"image, with python and catwalk on PATH?):\n{tail}"
        )
    try:
        data = json.loads(lines[-1])
    except json.JSONDecodeError:
        raise BuildError(f"the base image {ref} printed {lines[-1][:200]!r}") from None
    return dict(data)


def _base_image(ref: str, image_id: str, data: dict[str, Any]) -> BaseImage:
    return BaseImage(
        ref=ref,
        image_id=image_id,
        python=str(data["python"]),
        tags=tuple(str(t) for t in data["tags"]),
        installed={str(k): str(v) for k, v in data["installed"].items()},
        keep={str(k): (str(v[0]), str(v[1]), str(v[2])) for k, v in data["keep"].items()},
    )
