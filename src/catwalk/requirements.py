"""Installing a model's ``requirements.txt`` into the running interpreter.

The model's dependencies are the user's, so catwalk installs them with pip before importing
the model. pip is only called when something is missing: plain ``name[extras] <specifier>``
lines are checked against the installed distributions, and files with anything else (options,
URLs, paths, ``-r`` includes) are remembered by a stamp of their content, and of the content of
every file they include with ``-r``/``-c``, once pip has succeeded. A file lock
keeps several catwalk processes that start at once on the same environment from running pip
side by side.

This is the ``local`` environment manager (``--env-manager local``, and what images do). By
default a command runs the model in an environment of its own (:mod:`catwalk.model_env`),
built from :func:`requirements_digest`'s inputs; there :func:`ensure_requirements` only checks
that the environment was built from the folder's requirements as they are now.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from catwalk import DISTRIBUTION
from catwalk.errors import RequirementsError
from catwalk.spec import REQUIREMENTS_FILE
from catwalk.tmp import temp_dir

_PIP_TAIL_LINES = 25


def requirement_names(folder: Path) -> set[str]:
    """Canonical names of the distributions a model folder's requirements.txt lists."""
    names: set[str] = set()
    for line in _lines(folder / REQUIREMENTS_FILE):
        try:
            names.add(canonicalize_name(Requirement(line).name))
        except InvalidRequirement:
            continue
    return names


def requirements_digest(folder: Path) -> str:
    """A digest of what the folder's requirements ask for: a model environment's name.

    requirements.txt and the files it includes (comments and blank lines aside), and the size
    and time of each local file a line names (a rebuilt ``./vendor/x.whl`` is a new one).
    """
    req_file = folder / REQUIREMENTS_FILE
    digest = hashlib.sha256()
    if not req_file.is_file():
        return digest.hexdigest()
    root = folder.resolve()
    for file in [req_file.resolve(), *_included_files(req_file)]:
        name = file.relative_to(root) if file.is_relative_to(root) else file
        digest.update(f"\0{name}\0".encode())
        try:
            lines = _lines(file)
        except RequirementsError:
            lines = ["(unreadable)"]  # uv will say what is wrong with it
        for line in lines:
            digest.update(line.encode() + b"\n")
            for word in line.replace("=", " ").split():
                if "://" in word:
                    continue
                try:
                    info = (file.parent / word).stat()
                except (OSError, ValueError):
                    continue  # not a file name: a requirement, an option
                if stat.S_ISREG(info.st_mode):
                    digest.update(f"{word} {info.st_size} {info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def ensure_requirements(folder: Path) -> str:
    """Make sure the folder's requirements are installed; return what was done, in words."""
    built_for, built_from = _model_env_requirements()
    if built_for is not None:
        if built_for != requirements_digest(folder) and (
            built_for != _including(folder, built_from)
        ):
            raise RequirementsError(
                f"{folder / REQUIREMENTS_FILE}: the model's environment {sys.prefix} was built "
                "for other requirements (they changed since): run the command again without "
                "--env-manager local, and catwalk builds the environment for these"
            )
        req_file = folder / REQUIREMENTS_FILE
        listed = len(_lines(req_file)) if req_file.is_file() else 0
        if not listed:
            return f"no requirements.txt entries (the model's environment: {sys.prefix})"
        return f"{listed} requirement(s) installed in the model's environment {sys.prefix}"
    req_file = folder / REQUIREMENTS_FILE
    if not req_file.is_file():
        return "no requirements.txt"
    lines = _lines(req_file)
    if not lines:
        return "requirements.txt lists nothing"
    keep = runtime_constraints()
    check_conflicts(req_file, lines, keep)
    if _satisfied(req_file, lines):
        return f"{len(lines)} requirement(s) already satisfied"
    with _pip_lock():
        if _satisfied(req_file, lines):  # another process installed them while we waited
            return f"{len(lines)} requirement(s) already satisfied"
        _pip_install(req_file, keep)
        _write_stamp(req_file)
    # The model is imported next, in this process: forget the finders' view of site-packages.
    importlib.invalidate_caches()
    return f"installed {len(lines)} requirement(s) with pip"


def _model_env_requirements() -> tuple[str | None, Path | None]:
    """The requirements digest this interpreter's environment was built for, and the folder
    of the requirements.txt it was built from, if catwalk built it as a model environment
    (pip is not even installed there)."""
    from catwalk.model_env.store import read_record

    record = read_record(Path(sys.prefix))
    if record is None:
        return None, None
    value, folder = record.get("requirements"), record.get("folder")
    return (
        value if isinstance(value, str) else None,
        Path(folder) if isinstance(folder, str) else None,
    )


def _including(folder: Path, built_from: Path | None) -> str | None:
    """The digest of the requirements the environment was built from (``built_from``, a
    model repository's: every model's together) when they include ``folder``'s; else None."""
    if built_from is None:
        return None
    own = folder / REQUIREMENTS_FILE
    if own.is_file() and own.resolve() not in _included_files(built_from / REQUIREMENTS_FILE):
        return None
    return requirements_digest(built_from)


def _lines(req_file: Path) -> list[str]:
    if not req_file.is_file():
        return []
    try:
        text = req_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RequirementsError(f"{req_file}: cannot be read ({exc})") from None
    lines = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def _satisfied(req_file: Path, lines: list[str]) -> bool:
    """True when every requirement is met by an installed distribution.

    A line that cannot be checked here (an option, a URL, a path) is trusted only when pip
    already succeeded on this exact file content in this environment.
    """
    checkable = True
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            checkable = False
            continue
        if req.url:
            checkable = False
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            return False
        if req.specifier and not req.specifier.contains(installed, prereleases=True):
            return False
    return checkable or _stamp_path(req_file).exists()


def _stamp_path(req_file: Path) -> Path:
    # The files it pulls in with -r/-c count too: editing one of them must run pip again.
    digest = hashlib.sha256(req_file.read_bytes() + sys.prefix.encode())
    for included in _included_files(req_file):
        digest.update(b"\0" + str(included).encode() + b"\0")
        try:
            digest.update(included.read_bytes())
        except OSError:
            digest.update(b"\0(unreadable)")  # pip will say what is wrong with it
    return _state_dir() / "stamps" / digest.hexdigest()[:24]


_INCLUDE_OPTIONS = ("--requirement", "--constraint", "-r", "-c")


def _included_files(req_file: Path) -> list[Path]:
    """The files ``req_file`` includes with -r/-c (--requirement/--constraint), recursively.

    As pip does, a relative name is resolved against the folder of the file that names it.
    URLs are left out: their content is not ours to watch.
    """
    found: list[Path] = []
    pending = [req_file.resolve()]
    seen = set(pending)
    while pending:
        current = pending.pop(0)
        try:
            text = current.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for raw in text.splitlines():
            name = _included_name(raw.split(" #", 1)[0].strip())
            if not name or "://" in name:
                continue
            target = (current.parent / Path(name).expanduser()).resolve()
            if target not in seen:
                seen.add(target)
                found.append(target)
                pending.append(target)
    return found


def _included_name(line: str) -> str | None:
    """The file named by a ``-r``/``-c`` line (``-r x``, ``-rx``, ``--requirement=x``), or None."""
    for option in _INCLUDE_OPTIONS:
        if not line.startswith(option):
            continue
        rest = line[len(option) :]
        if option.startswith("--") and rest[:1] not in ("=", " ", "\t"):
            continue  # a longer option that merely starts the same way
        return rest.lstrip("= \t").strip() or None
    return None


def _write_stamp(req_file: Path) -> None:
    # Only consulted for files _satisfied cannot check line by line.
    try:
        stamp = _stamp_path(req_file)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(str(req_file) + "\n", encoding="utf-8")
    except OSError:
        pass  # a read-only home is fine: pip will just be asked again next time


def _state_dir() -> Path:
    return temp_dir() / f"catwalk-{os.getuid()}"


@contextmanager
def _pip_lock() -> Iterator[None]:
    digest = hashlib.sha256(sys.prefix.encode()).hexdigest()[:16]
    lock_path = temp_dir() / f"catwalk-pip-{digest}.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _pip_install(req_file: Path, keep: dict[str, Kept]) -> None:
    """pip install -r, under constraints pinning catwalk's own dependencies as installed."""
    constraints = temp_dir() / f"catwalk-constraints-{os.getpid()}.txt"
    constraints.write_text("".join(f"{k.name}=={k.version}\n" for k in keep.values()))
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check"]
    try:
        proc = subprocess.run(
            [*cmd, "-c", str(constraints), "-r", str(req_file)],
            cwd=req_file.parent,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        constraints.unlink(missing_ok=True)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()
        tail = "\n".join(output.splitlines()[-_PIP_TAIL_LINES:])
        if "ResolutionImpossible" in output or "conflicting dependencies" in output:
            raise RequirementsError(
                f"{req_file}: pip cannot install these requirements without changing catwalk's "
                "own dependencies, which are kept as installed (a constraint, in pip's words "
                f"below); nothing was installed:\n{tail}"
            )
        raise RequirementsError(f"{req_file}: pip install failed (exit {proc.returncode}):\n{tail}")


# --- catwalk's own dependencies stay as they are -------------------------------------------


@dataclass(frozen=True)
class Kept:
    """A distribution catwalk runs on: kept at its installed version."""

    name: str
    version: str
    #: Why it is needed: ``Flask>=3.0`` (catwalk's own), ``Werkzeug>=3.0.0 (via Flask)``.
    needed_as: str


def runtime_constraints() -> dict[str, Kept]:
    """catwalk and every distribution its runtime dependencies pull in, by canonical name.

    A model's requirements are installed under these pins: a model cannot replace the Flask
    (or Werkzeug, or ...) catwalk was installed and tested with, and a conflict is refused
    before anything changes instead of leaving a broken environment.
    """
    kept: dict[str, Kept] = {}
    try:
        version = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # running from a source tree: nothing to keep
        return kept
    kept[canonicalize_name(DISTRIBUTION)] = Kept(DISTRIBUTION, version, "catwalk itself")
    pending: list[tuple[str, str | None]] = [(DISTRIBUTION, None)]
    while pending:
        dist, via = pending.pop()
        for text in metadata.requires(dist) or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue  # an extra (catwalk-serve[dev]) or another platform's dependency
            name = canonicalize_name(req.name)
            if name in kept:
                continue
            try:
                version = metadata.version(req.name)
            except metadata.PackageNotFoundError:
                continue  # pip check's business, not a model's
            req.marker = None
            kept[name] = Kept(req.name, version, f"{req} (via {via})" if via else str(req))
            pending.append((req.name, req.name))
    return kept


def check_conflicts(req_file: Path, lines: list[str], keep: dict[str, Kept]) -> None:
    """Refuse, naming both sides, a requirement that would replace one of catwalk's own."""
    problems = []
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        kept = keep.get(canonicalize_name(req.name))
        if kept is None or (req.marker is not None and not req.marker.evaluate()):
            continue
        if req.url or not req.specifier.contains(kept.version, prereleases=True):
            problems.append(
                f"{line!r} conflicts with catwalk's own dependency {kept.needed_as} "
                f"(installed: {kept.name} {kept.version})"
            )
    if problems:
        raise RequirementsError(
            f"{req_file}: " + "; ".join(problems) + ". catwalk keeps its own dependencies as "
            "installed, so a model cannot replace them: drop the pin from requirements.txt or "
            "allow the installed version; nothing was installed"
        )
