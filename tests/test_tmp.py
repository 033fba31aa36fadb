"""The one writable directory: a clear one-line error when there is none.

The real read-only root filesystem (``docker run --read-only``) is in tests/image/test_image_e2e.py.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from catwalk.errors import ConfigError
from catwalk.tmp import make_temp_dir, temp_dir


def test_no_writable_directory_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Python's own search, over candidates that do not exist (as on a read-only root).
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.setattr(tempfile, "_candidate_tempdir_list", lambda: [str(tmp_path / "none")])
    with pytest.raises(ConfigError) as info:
        temp_dir()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("no writable temporary directory")
    assert "--tmpfs /tmp" in message and "emptyDir" in message


def test_make_temp_dir_is_private(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = make_temp_dir("catwalk-")
    assert folder.parent == tmp_path
    assert folder.stat().st_mode & 0o777 == 0o700
