"""How the running catwalk is installed, so a model's environment gets exactly the same one.

The distribution is found from the import package (never from a name written here: the
distribution's name may change while the package's stays), and its PEP 610
``direct_url.json`` says where it came from: an editable or local-folder install is installed
again from that folder, a wheel or archive from that file, a VCS checkout from its commit, and
anything else (PyPI, a private index) as ``name==version``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import platform
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: The import package whose distribution is looked for ("catwalk").
PACKAGE = __name__.partition(".")[0]
#: Files of a source folder that decide what an install from it pulls in.
_BUILD_FILES = ("pyproject.toml", "setup.cfg", "setup.py")


@dataclass(frozen=True)
class OwnInstall:
    """What ``uv pip install`` is given to put the running catwalk into an environment."""

    name: str
    version: str
    #: The arguments, e.g. ``["-e", "/src/catwalk"]`` or ``["catwalk==0.1.0"]``.
    args: tuple[str, ...]
    #: Changes whenever an environment built before would hold another catwalk.
    fingerprint: str

    def describe(self) -> str:
        return f"{self.name} {self.version} ({' '.join(self.args)})"


def own_distribution() -> metadata.Distribution | None:
    """The installed distribution that provides the running ``catwalk`` package, if any.

    None when catwalk runs from a source tree that was never installed (``PYTHONPATH=src``):
    then there is nothing an environment could be given.
    """
    module_file = Path(sys.modules[PACKAGE].__file__ or "").resolve()
    # Most often the distribution is named as the package: try that before the full scan.
    for name in _unique([PACKAGE], lambda: metadata.packages_distributions().get(PACKAGE, [])):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if _provides(dist, module_file):
            return dist
    return None


def _unique(first: list[str], rest: Callable[[], list[str]]) -> Iterator[str]:
    seen = set()
    for name in itertools.chain(first, _lazy(rest)):
        if name not in seen:
            seen.add(name)
            yield name


def _lazy(names: Callable[[], list[str]]) -> Iterator[str]:
    yield from names()


def _provides(dist: metadata.Distribution, module_file: Path) -> bool:
    """True when ``dist`` is the install the running package was imported from."""
    source = _source_dir(dist)
    if source is not None and module_file.is_relative_to(source):
        return True  # an editable install: its files are a .pth, the code is in the folder
    for file in dist.files or []:
        if file.parts[-2:] == (PACKAGE, "__init__.py"):
            return Path(str(dist.locate_file(file))).resolve() == module_file
    return False


def _direct_url(dist: metadata.Distribution) -> dict[str, object]:
    text = dist.read_text("direct_url.json")
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _local_path(url: object) -> Path | None:
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    return Path(unquote(parts.path))


def _source_dir(dist: metadata.Distribution) -> Path | None:
    info = _direct_url(dist)
    if "dir_info" not in info:
        return None
    path = _local_path(info.get("url"))
    return path.resolve() if path is not None else None


def own_install() -> OwnInstall | None:
    """How to install the running catwalk elsewhere; None when it is not installed."""
    dist = own_distribution()
    return install_of(dist) if dist is not None else None


def install_of(dist: metadata.Distribution) -> OwnInstall:
    """How to install ``dist`` again, as its PEP 610 record says it was installed."""
    name, version = dist.metadata["Name"], dist.version
    info = _direct_url(dist)
    url = info.get("url")
    path = _local_path(url)
    digest = hashlib.sha256(f"{name}\0{version}\0".encode())
    dir_info = info.get("dir_info")
    if isinstance(dir_info, dict) and path is not None and path.is_dir():
        for build_file in _BUILD_FILES:  # a new dependency there means a new environment
            if (path / build_file).is_file():
                digest.update(build_file.encode() + (path / build_file).read_bytes())
        if dir_info.get("editable"):
            args: tuple[str, ...] = ("-e", str(path))
        else:  # a copy of the folder as it was installed: the install's RECORD tells it
            digest.update((dist.read_text("RECORD") or "").encode())
            args = (str(path),)
    elif isinstance(info.get("archive_info"), dict) and isinstance(url, str):
        digest.update(json.dumps(info, sort_keys=True).encode())
        if path is not None and path.is_file():
            args = (str(path),)
        elif path is None:
            args = (f"{name} @ {url}",)
        else:  # the wheel it came from is gone: the same version from the indexes
            args = (f"{name}=={version}",)
    elif isinstance(info.get("vcs_info"), dict) and isinstance(url, str):
        vcs = info["vcs_info"]
        assert isinstance(vcs, dict)
        commit = vcs.get("commit_id", "")
        digest.update(f"{url}@{commit}".encode())
        args = (f"{name} @ {vcs.get('vcs', 'git')}+{url}@{commit}",)
    else:
        args = (f"{name}=={version}",)
    digest.update("\0".join(args).encode())
    return OwnInstall(name, version, args, digest.hexdigest())


def python_identity() -> str:
    """The interpreter an environment is built on: a new Python means a new environment."""
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    return f"{sys.implementation.cache_tag} {sys.version} {platform.machine()} {base}"
