"""Bearer-token files (``server.auth.tokens_file``): read the tokens, or say why a file is unfit.

Used when the settings are loaded (a bad file stops the server from starting) and by
:mod:`catwalk.server.ops.auth` each time it re-reads the file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_tokens(file: Path) -> list[str]:
    """The tokens in a tokens file: one per line, blank lines and ``#`` comments skipped.

    Raises ValueError naming the line (never its content: it may be a token) when a line is
    not one token.
    """
    tokens = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        token = line.strip()
        if not token or token.startswith("#"):
            continue
        if any(c.isspace() for c in token) or not token.isprintable():
            raise ValueError(f"{file}: line {number}: a token may not contain spaces")
        tokens.append(token)
    return tokens


def tokens_file_problem(file: Path) -> str | None:
    """Why ``file`` cannot be a tokens file (None when it can): missing, unreadable, shared."""
    try:
        mode = file.stat().st_mode
    except OSError as exc:
        return f"{file}: cannot be read ({exc.strerror})"
    if not stat.S_ISREG(mode):
        return f"{file}: not a regular file"
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        return (
            f"{file}: readable or writable by other users (mode {stat.S_IMODE(mode):04o}); "
            f"make it private: chmod 600 {file}"
        )
    if not os.access(file, os.R_OK):
        return f"{file}: not readable by this user"
    return None
