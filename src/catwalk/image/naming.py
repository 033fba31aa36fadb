"""Image names: the model's Docker tag, the image reference ``build`` produces, the base image.

Docker repository path components are lower-case ``[a-z0-9]`` runs joined by ``.``, ``_``,
``__`` or ``-`` runs; tags are ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``. A model name is made to
fit the first by lower-casing it, turning whitespace into ``-`` and dropping everything else
that does not fit ("Adder Model" -> ``adder-model``).
"""

from __future__ import annotations

import re
import unicodedata

from catwalk import __version__
from catwalk.errors import BuildError
from catwalk.spec import ModelSpec

BASE_IMAGE_NAME = "catwalk"

_WHITESPACE = re.compile(r"\s+")
_INVALID = re.compile(r"[^a-z0-9._-]")
_SEPARATOR_RUN = re.compile(r"[._-]*[.-][._-]*|_{3,}")
_TAG_INVALID = re.compile(r"[^A-Za-z0-9_.-]")
_SUFFIX = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$")
_REGISTRY = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9._/-]+)?$")


def model_tag(name: str) -> str:
    """The model name made safe as a Docker repository name; BuildError when nothing is left."""
    # Accented letters keep their base letter ("Modèle" -> modele) before the rest is dropped.
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    safe = _INVALID.sub("", _WHITESPACE.sub("-", ascii_name.strip().lower()))
    # Collapse separator runs ("a - b" -> "a-b") and trim them from both ends.
    safe = _SEPARATOR_RUN.sub(lambda m: "-" if "-" in m.group() else m.group()[0], safe)
    safe = safe.strip("._-")
    if not safe:
        raise BuildError(
            f"model name {name!r} has no character usable in a Docker image name "
            "(letters, digits, '.', '_', '-'); rename the model in model.yml"
        )
    return safe[:128]


def version_tag(version: str) -> str:
    """The model version made safe as a Docker tag ("1.0.0+local" -> ``1.0.0-local``)."""
    safe = _TAG_INVALID.sub("-", version.strip())
    if safe[:1] in (".", "-"):
        safe = "v" + safe
    if not safe:
        raise BuildError(f"model version {version!r} cannot be used as a Docker tag")
    return safe[:128]


def check_registry(registry: str | None) -> str | None:
    """Normalise a ``--docker-registry`` value (``host[:port][/namespace]``); None when unset."""
    if registry is None:
        return None
    cleaned = registry.strip().rstrip("/")
    for scheme in ("http://", "https://"):
        if cleaned.startswith(scheme):
            cleaned = cleaned[len(scheme) :]
    if not cleaned:
        return None
    if not _REGISTRY.match(cleaned):
        raise BuildError(
            f"--docker-registry {registry!r}: expected host[:port][/namespace], "
            "for example localhost:5000 or registry.example.com/team"
        )
    return cleaned


def check_suffix(suffix: str | None) -> str | None:
    """Normalise a ``--build-suffix`` (``b2``, ``20261203``); None when unset or empty."""
    if suffix is None or not suffix.strip():
        return None
    cleaned = suffix.strip().lstrip("-")
    if not _SUFFIX.match(cleaned):
        raise BuildError(
            f"--build-suffix {suffix!r}: expected 1 to 32 letters, digits, '.', '_' or '-' "
            "(for example b2 or 20261203), appended to the version as <version>-<suffix>"
        )
    return cleaned


def image_ref(spec: ModelSpec, registry: str | None = None, suffix: str | None = None) -> str:
    """``[registry/]<model-tag>:<model version>[-<suffix>]``: the tag ``catwalk build`` gives
    the image; a build suffix names a rebuild of the same model version (a new base image)."""
    repo = model_tag(spec.name)
    registry = check_registry(registry)
    if registry:
        repo = f"{registry}/{repo}"
    tag = version_tag(spec.version)
    suffix = check_suffix(suffix)
    if suffix:
        tag = f"{tag[: 127 - len(suffix)]}-{suffix}"
    return f"{repo}:{tag}"


def local_image_ref(
    spec: ModelSpec, registry: str | None, local_tag: str | None, suffix: str | None = None
) -> str:
    """The tag an image is built and tested under: ``image_ref``, or the same repository with
    a tag of the pipeline's own (``--local-tag``), so two pipelines on one engine never
    re-tag each other's image between build, test and push."""
    ref = image_ref(spec, registry, suffix)
    if not local_tag:
        return ref
    tag = local_tag.strip()
    if not tag or _TAG_INVALID.search(tag) or tag[0] in ".-" or len(tag) > 128:
        raise BuildError(
            f"--local-tag {local_tag!r} is not a Docker tag: letters, digits, '_', '.', '-' "
            "(not first), at most 128"
        )
    return f"{split_ref(ref)[0]}:{tag}"


def base_image_ref(registry: str | None = None, base_image: str | None = None) -> str:
    """What model images start FROM: ``--base-image``, else ``[registry/]catwalk:<version>``."""
    if base_image:
        base = base_image.strip()
        # A repository without a tag or digest gets catwalk's version: the base image is
        # catwalk's own, and must be the catwalk that renders the Dockerfile.
        if "@" not in base and ":" not in base.rsplit("/", 1)[-1]:
            base = f"{base}:{__version__}"
        return base
    registry = check_registry(registry)
    repo = f"{registry}/{BASE_IMAGE_NAME}" if registry else BASE_IMAGE_NAME
    return f"{repo}:{__version__}"


def split_ref(ref: str) -> tuple[str, str]:
    """``host:5000/name:tag`` -> (``host:5000/name``, ``tag``); the tag defaults to latest."""
    name, _, tag = ref.rpartition(":")
    if not name or "/" in tag:
        return ref, "latest"
    return name, tag
