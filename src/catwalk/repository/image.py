"""One image holding a whole repository: the spec the image commands build, test and deploy.

The image commands (build-prep, build, test-image, deploy-prep) work on a
:class:`~catwalk.spec.ModelSpec`: its folder is the build context, its name and version tag the
image, its ``system_packages`` and ``weights`` shape the layers. For a repository no model.yml
owns the image, so :func:`image_spec` makes that spec from the repository: the folder is the
repository (every model folder is copied, the server serves it as a repository), the name and
version come from ``--image-name`` and ``--image-version``, the system packages are every
model's, and each model's weights patterns apply under its own folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

from catwalk.errors import ConfigError
from catwalk.repository.discover import Repository, discover, is_repository
from catwalk.spec import REQUIREMENTS_FILE, ModelSpec, load_spec
from catwalk.tmp import temp_dir

NAME_FLAGS = "--image-name NAME --image-version VERSION"


def image_spec(model_path: str | Path, name: str | None, version: str | None) -> ModelSpec:
    """The spec of ``model_path``'s image: its model.yml's, or a repository's (named by flags)."""
    if not is_repository(model_path):
        if name is not None or version is not None:
            raise ConfigError(
                f"--image-name/--image-version: {model_path} is one model folder, whose "
                "model.yml names its image (name and version); the flags name a repository's"
            )
        return load_spec(model_path)
    repository = discover(model_path)
    missing = [flag for flag, value in (("--image-name", name), ("--image-version", version))
               if not (value and value.strip())]  # fmt: skip
    if missing:
        raise ConfigError(
            f"{model_path} is a model repository ({repository.describe()}): no model.yml names "
            f"its image, so give {NAME_FLAGS} (missing: {', '.join(missing)}; or "
            "CATWALK_IMAGE_NAME, CATWALK_IMAGE_VERSION)"
        )
    assert name is not None and version is not None
    return repository_spec(repository, name.strip(), version.strip())


def repository_spec(repository: Repository, name: str, version: str) -> ModelSpec:
    """The image spec of ``repository`` (see the module docstring)."""
    first = repository.entries[0].spec
    packages: list[str] = []
    weights: list[str] = []
    for entry in repository.entries:
        packages += [p for p in entry.spec.system_packages if p not in packages]
        prefix = entry.folder.relative_to(repository.root).as_posix()
        weights += [f"{prefix}/{pattern.strip().lstrip('/')}" for pattern in entry.spec.weights]
    return dataclasses.replace(
        first,
        path=repository.root,
        name=name,
        version=version,
        description=f"model repository: {repository.describe()}",
        system_packages=tuple(packages),
        weights=tuple(weights),
    )


def requirements_folder(folder: Path) -> Path | None:
    """The folder whose requirements.txt the image installs; None when nothing is required.

    A model folder's own; for a repository, a folder (under catwalk's temporary folder) whose
    requirements.txt includes every model's, checked for conflicts first (they share one
    environment in the image as on the host).
    """
    if not is_repository(folder):
        return folder if (folder / REQUIREMENTS_FILE).is_file() else None
    repository = discover(folder)
    if not any((e.folder / REQUIREMENTS_FILE).is_file() for e in repository.entries):
        return None
    return merged_requirements(folder, repository)


def merged_requirements(folder: Path, repository: Repository | None = None) -> Path:
    """A folder whose requirements.txt includes every model's of the repository at
    ``folder``, conflicts refused first (a model environment's or an image's)."""
    from catwalk.repository.requirements import check_conflicts, merged_file_text

    repository = repository or discover(folder)
    check_conflicts(repository)
    return merged_folder(merged_file_text(repository))


def merged_folder(text: str) -> Path:
    """A folder holding ``text`` as its requirements.txt, named by its digest."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    folder = temp_dir() / f"catwalk-{os.getuid()}" / "repositories" / digest
    folder.mkdir(parents=True, exist_ok=True)
    (folder / REQUIREMENTS_FILE).write_text(text, encoding="utf-8")
    return folder
