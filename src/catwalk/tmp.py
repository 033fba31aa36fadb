"""The one writable directory catwalk needs at run time: the temporary directory.

Everything the server writes while it runs (nginx and gunicorn configs, the unix socket, nginx's
temporary files, pid files) goes under ``$TMPDIR`` or ``/tmp``, so a container can run with a
read-only root filesystem as long as that one directory is writable (``docker run --read-only
--tmpfs /tmp``; Kubernetes: ``readOnlyRootFilesystem: true`` and an ``emptyDir`` at /tmp).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from catwalk.errors import ConfigError

NO_WRITABLE_DIR = (
    "no writable temporary directory (tried $TMPDIR, /tmp, /var/tmp, /usr/tmp, the working "
    "folder): on a read-only root filesystem mount one at /tmp (docker run --tmpfs /tmp; "
    "Kubernetes: an emptyDir volume at /tmp) or set TMPDIR to a writable folder"
)


def temp_dir() -> Path:
    """The writable temporary directory; ConfigError (one line) when there is none."""
    try:
        return Path(tempfile.gettempdir())
    except OSError:  # FileNotFoundError: "No usable temporary directory found in [...]"
        raise ConfigError(NO_WRITABLE_DIR) from None


def make_temp_dir(prefix: str) -> Path:
    """A new private (mode 700) folder in :func:`temp_dir`."""
    base = temp_dir()
    try:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    except OSError as exc:
        raise ConfigError(
            f"{base}: cannot create a folder ({exc.strerror}); {NO_WRITABLE_DIR}"
        ) from None
