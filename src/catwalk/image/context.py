"""The build context ``catwalk build`` sends for a generated Dockerfile: one tar, three folders.

``docker build FOLDER`` would send the model folder as it is, so one ``COPY .`` would put the
weights and the code in one layer (a one-line code change re-creates and re-pushes hundreds of
megabytes), and a wheel vendored in the folder would land in the image. The context made here
instead holds:

- ``Dockerfile``: the rendered one;
- ``wheels/``: the wheelhouse (requirements resolved on the build machine, see
  :mod:`catwalk.image.wheelhouse`);
- ``weights/``: the model folder's large files, at their paths: those model.yml's ``weights:``
  patterns match, and any file of :data:`~catwalk.image.dockerfile.LARGE_FILE_MIB` MiB or more;
- ``model/``: every other file the .dockerignore lets through, minus ``*.whl`` (wheels are
  installed from the wheelhouse, never copied with the code) and the build's own Dockerfile
  and .dockerignore.

Every entry is owned by root and readable by any user (mode ``a+r``, directories ``a+rx``) in
the tar itself, so the image needs no ``chmod`` layer (which would copy each file it touches),
and has a fixed modification time: the same files give the same layer, whatever the folder's
checkout time, so Docker's layer cache and the registry find them unchanged.
"""

from __future__ import annotations

import fnmatch
import io
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from catwalk.image.dockerfile import LARGE_FILE_MIB
from catwalk.image.prep import DOCKERFILE, DOCKERIGNORE, dockerignore_patterns

#: The modification time given to wheels and weights in the context (2020-01-01).
FIXED_MTIME = 1577836800


@dataclass(frozen=True)
class ContextFiles:
    """The model folder's files (relative /-separated paths), split by layer."""

    weights: tuple[str, ...]
    code: tuple[str, ...]

    def size(self, folder: Path, which: str) -> int:
        return sum((folder / p).lstat().st_size for p in getattr(self, which))


def model_files(folder: Path, weights_patterns: tuple[str, ...] = ()) -> ContextFiles:
    """The files a build sends from ``folder`` (its .dockerignore applied), weights apart."""
    from docker.utils.build import exclude_paths

    ignore = folder / DOCKERIGNORE
    text = ignore.read_text(encoding="utf-8") if ignore.is_file() else ""
    sent = exclude_paths(str(folder), dockerignore_patterns(text), dockerfile=DOCKERFILE)
    large = LARGE_FILE_MIB * 1024 * 1024
    weights: list[str] = []
    code: list[str] = []
    for raw in sorted(sent):
        path = raw.replace(os.sep, "/")
        full = folder / path
        if full.is_symlink():
            code.append(path)  # sent as a link, as docker build sends it
            continue
        if not full.is_file():
            continue
        if path.endswith(".whl") or path in (DOCKERFILE, DOCKERIGNORE):
            continue  # the SDK's list always has both; the image needs neither
        declared = any(_matches(path, pattern) for pattern in weights_patterns)
        (weights if declared or full.stat().st_size >= large else code).append(path)
    return ContextFiles(tuple(weights), tuple(code))


def _matches(path: str, pattern: str) -> bool:
    """A weights pattern matches a file, or a folder holding it (``weights/`` or ``weights``)."""
    pattern = pattern.strip().rstrip("/")
    if fnmatch.fnmatchcase(path, pattern) or PurePosixPath(path).match(pattern):
        return True
    return path.startswith(pattern + "/")


def write_context(
    out: IO[bytes],
    folder: Path,
    dockerfile: str,
    files: ContextFiles,
    wheels: list[Path],
) -> None:
    """Write the build context tar (see the module's docstring) to ``out``."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        writer = _Writer(tar)
        writer.add_bytes(DOCKERFILE, dockerfile.encode("utf-8"))
        for top in ("model", "weights", "wheels"):
            writer.add_dir(top)
        for wheel in wheels:
            writer.add_file(wheel, f"wheels/{wheel.name}")
        for path in files.weights:
            writer.add_file(folder / path, f"weights/{path}")
        for path in files.code:
            writer.add_file(folder / path, f"model/{path}")


def context_file(
    folder: Path, dockerfile: str, files: ContextFiles, wheels: list[Path]
) -> IO[bytes]:
    """The build context as a temporary file, rewound (deleted when closed)."""
    out = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it after the build
    try:
        write_context(out, folder, dockerfile, files, wheels)
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return out


class _Writer:
    """Adds entries owned by root, readable by all, with a fixed time and parents first."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.dirs: set[str] = set()

    def _info(self, name: str, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.mode, info.mtime = mode, FIXED_MTIME
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    def add_dir(self, name: str) -> None:
        if name in self.dirs:
            return
        self.dirs.add(name)
        info = self._info(name, 0o755)
        info.type = tarfile.DIRTYPE
        self.tar.addfile(info)

    def _parents(self, name: str) -> None:
        parts = PurePosixPath(name).parts
        for depth in range(1, len(parts)):
            self.add_dir("/".join(parts[:depth]))

    def add_bytes(self, name: str, data: bytes) -> None:
        info = self._info(name, 0o644)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))

    def add_file(self, source: Path, name: str) -> None:
        self._parents(name)
        if source.is_symlink():
            info = self._info(name, 0o777)
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(source)
            self.tar.addfile(info)
            return
        stat = source.stat()
        mode = (stat.st_mode & 0o777 & ~0o022) | 0o444
        if mode & 0o100:
            mode |= 0o111  # executable for the owner: for everyone
        info = self._info(name, mode)
        info.size = stat.st_size
        with source.open("rb") as handle:
            self.tar.addfile(info, handle)
