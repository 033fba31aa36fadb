"""The output folder: written in a temporary place beside it, moved into place only on success.

A job never writes into ``--output`` directly. It writes into a hidden sibling
``.<name>.catwalk-tmp-<id>`` and, when every row has been scored and written, moves that
folder to ``--output`` (a rename on the same filesystem). An existing output is refused
before anything is scored, unless ``--overwrite``: then the old folder is moved aside, the
new one moved in, and the old one deleted. A job that fails or is interrupted deletes its
temporary folder; one killed outright leaves only that hidden folder, never a half output
under the name asked for.

:class:`Store` is the filesystem: pyarrow's (local, S3, GCS, HDFS, ...) for the local and Ray
engines; the Spark engine brings Hadoop's so that any path Spark writes can be moved too.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any, Protocol

from catwalk.errors import CatwalkError


class OutputExists(CatwalkError):
    """The output exists and --overwrite was not given."""


class Store(Protocol):
    def exists(self, path: str) -> bool: ...
    def move(self, src: str, dest: str) -> None: ...
    def delete(self, path: str) -> None: ...
    def makedirs(self, path: str) -> None: ...


class ArrowStore:
    """A :class:`Store` on a pyarrow filesystem; paths are the filesystem's (no scheme)."""

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    def exists(self, path: str) -> bool:
        import pyarrow.fs as pafs

        info = self.fs.get_file_info(path)
        return bool(info.type != pafs.FileType.NotFound)

    def move(self, src: str, dest: str) -> None:
        self.fs.move(src, dest)

    def delete(self, path: str) -> None:
        import pyarrow.fs as pafs

        info = self.fs.get_file_info(path)
        if info.type == pafs.FileType.Directory:
            self.fs.delete_dir(path)
        elif info.type != pafs.FileType.NotFound:
            self.fs.delete_file(path)

    def makedirs(self, path: str) -> None:
        self.fs.create_dir(path, recursive=True)


def arrow_store(target: str) -> tuple[ArrowStore, str, str]:
    """The store for ``target``, its path there, and the prefix that makes a path a URI."""
    import os

    import pyarrow.fs as pafs

    if "://" not in target:
        return ArrowStore(pafs.LocalFileSystem()), os.path.abspath(target), ""
    fs, path = pafs.FileSystem.from_uri(target)
    scheme = target.split("://", 1)[0]
    return ArrowStore(fs), path.rstrip("/"), f"{scheme}://"


class OutputDir:
    """One job's output: :meth:`claim` before scoring, then :meth:`publish` or :meth:`discard`."""

    def __init__(self, store: Store, path: str, *, overwrite: bool, prefix: str = "") -> None:
        self.store = store
        self.path = path.rstrip("/")
        self.overwrite = overwrite
        self.prefix = prefix
        parent, _, name = self.path.rpartition("/")
        token = uuid.uuid4().hex[:12]
        self.temp = f"{parent}/.{name}.catwalk-tmp-{token}"
        self.old = f"{parent}/.{name}.catwalk-old-{token}"

    @property
    def temp_uri(self) -> str:
        """Where the engine writes (a URI when the output is not local)."""
        return self.prefix + self.temp

    def claim(self) -> None:
        """Refuse an existing output (without --overwrite), before any row is scored."""
        if self.store.exists(self.path) and not self.overwrite:
            raise OutputExists(
                f"{self.prefix}{self.path} exists: give --overwrite to replace it "
                f"(it is replaced only when the new output is complete)"
            )

    def publish(self) -> None:
        """Move the finished output into place (the old one replaced with --overwrite)."""
        self.claim()  # it may have appeared while the job ran
        replaced = self.store.exists(self.path)
        if replaced:
            self.store.move(self.path, self.old)
        try:
            self.store.move(self.temp, self.path)
        except Exception:
            if replaced:
                self.store.move(self.old, self.path)
            raise
        if replaced:
            self.store.delete(self.old)

    def discard(self) -> None:
        """Delete whatever the job wrote (a failed or interrupted job)."""
        with contextlib.suppress(OSError):
            self.store.delete(self.temp)
