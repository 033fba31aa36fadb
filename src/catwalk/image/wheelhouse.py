"""The wheelhouse: a model's requirements resolved and downloaded on the build machine.

``catwalk build`` runs pip here, on the machine that has the user's pip configuration: the
options in requirements.txt (``--index-url``, ``--extra-index-url``, ``--find-links``, local
wheels, ``-r`` includes), ``PIP_*`` variables, pip.conf, netrc. So a private index's
credentials never enter Docker at all: the image's build stage installs the wheels offline
(``--no-index --find-links``), and only the installed files reach the final image (see the
Dockerfile template). A build argument or a ``COPY``'d pip.conf would be in the image's history;
BuildKit's secret mounts would avoid that, but the classic builder the Docker SDK drives has
none.

The wheels are for the base image's Python, not this machine's: when both have the same wheel
tags (same Python version and platform), ``pip wheel`` (which can also build an sdist); else
``pip download --only-binary=:all:`` with the base image's tags. Resolution runs under
constraints that pin every distribution the base image's environment holds, so the result
installs there without replacing any of them.

A wheelhouse is cached on this machine (``$XDG_CACHE_HOME/catwalk/wheelhouse``) by a key of
what decides it: requirements.txt and the local files it names, the base image's tags and
distributions, pip's settings from the environment (URLs without their credentials). So a
code change runs no pip at all. ``--no-cache`` resolves again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from packaging.tags import sys_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from catwalk import __version__
from catwalk.errors import BuildError
from catwalk.image.base import BaseImage, cache_dir
from catwalk.requirements import Kept, check_conflicts
from catwalk.spec import REQUIREMENTS_FILE

Echo = Callable[[str], None]

#: Wheelhouses kept in the cache (the most recently used).
KEEP_CACHED = 4
_PIP_TAIL_LINES = 30
_DONE = ".complete"


@dataclass(frozen=True)
class Wheelhouse:
    """A folder of wheels and the ``requirements.txt`` pinning them, ready for the image."""

    folder: Path
    wheels: tuple[Path, ...]
    cached: bool

    @property
    def files(self) -> list[Path]:
        """What goes into the build context's ``wheels/``: the wheels and the pinned list."""
        return [*self.wheels, self.folder / REQUIREMENTS_FILE]

    @property
    def size(self) -> int:
        return sum(w.stat().st_size for w in self.wheels)


def cache_root() -> Path:
    return cache_dir() / "wheelhouse"


def requirement_lines(req_file: Path) -> list[str]:
    """The requirement lines of a requirements.txt: comments and blank lines dropped."""
    try:
        text = req_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"{req_file}: cannot be read ({exc})") from None
    lines = (raw.split(" #", 1)[0].strip() for raw in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def native(base: BaseImage) -> bool:
    """True when this machine's Python takes exactly the base image's wheels."""
    return tuple(str(t) for t in sys_tags()) == base.tags


def build_wheelhouse(
    folder: Path, base: BaseImage, *, refresh: bool, echo: Echo
) -> Wheelhouse | None:
    """The wheelhouse of ``folder``'s requirements.txt for ``base``; None without one."""
    req_file = folder / REQUIREMENTS_FILE
    if not req_file.is_file():
        return None
    lines = requirement_lines(req_file)
    # The refusal the host gives, naming both sides, before pip runs (RequirementsError).
    check_conflicts(req_file, lines, {k: Kept(*v) for k, v in base.keep.items()})

    mode = "wheel" if native(base) else "download"
    key = _key(folder, req_file, base, mode)
    target = cache_root() / key
    if not refresh and (target / _DONE).is_file():
        os.utime(target)  # most recently used
        return _house(target, cached=True)
    echo(
        f"resolving {req_file.name} on this machine for the image's Python {base.python} "
        f"(pip {mode}, with this machine's pip configuration)"
    )
    started = time.monotonic()
    target.parent.mkdir(parents=True, exist_ok=True)
    work = target.parent / f".{key}.{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        _run_pip(folder, req_file, base, mode, work)
        wheels = sorted(work.glob("*.whl"))
        _write_pinned(work / REQUIREMENTS_FILE, wheels)
        (work / _DONE).write_text(f"catwalk {__version__}\n", encoding="utf-8")
        # Unless another build made the same one meanwhile (then it is as good as ours).
        if refresh or not (target / _DONE).is_file():
            shutil.rmtree(target, ignore_errors=True)  # an old or half-written one
            with contextlib.suppress(OSError):  # lost a race: the other one is as good
                work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    house = _house(target, cached=False)
    echo(
        f"wheelhouse: {len(house.wheels)} wheel(s), {house.size / 1e6:.1f} MB in "
        f"{time.monotonic() - started:.1f} s"
    )
    _prune(target.parent)
    return house


def _house(folder: Path, *, cached: bool) -> Wheelhouse:
    return Wheelhouse(folder, tuple(sorted(folder.glob("*.whl"))), cached)


def _write_pinned(path: Path, wheels: list[Path]) -> None:
    """``name==version`` for each wheel: what the image installs, offline, and nothing else."""
    pins = []
    for wheel in wheels:
        try:
            name, version, _, _ = parse_wheel_filename(wheel.name)
        except InvalidWheelFilename:
            raise BuildError(f"pip left {wheel.name}, which is not a valid wheel name") from None
        pins.append(f"{name}=={version}\n")
    path.write_text("".join(sorted(pins)), encoding="utf-8")


def _pip_command(
    req_file: Path, base: BaseImage, mode: str, out: Path, constraints: Path
) -> list[str]:
    cmd = [sys.executable, "-m", "pip", mode, "--disable-pip-version-check", "--progress-bar=off"]
    if mode == "wheel":
        return [*cmd, "-w", str(out), "-c", str(constraints), "-r", str(req_file)]
    interpreters, abis, platforms = _tag_parts(base.tags)
    cmd += ["-d", str(out), "--only-binary=:all:", "--python-version", base.python]
    cmd += ["--implementation", interpreters[0][:2] if interpreters else "cp"]
    for abi in abis:
        cmd += ["--abi", abi]
    for platform in platforms:
        cmd += ["--platform", platform]
    return [*cmd, "-c", str(constraints), "-r", str(req_file)]


def _tag_parts(tags: tuple[str, ...]) -> tuple[list[str], list[str], list[str]]:
    """The distinct interpreters, ABIs and platforms of a tag list, in their order."""
    parts: tuple[dict[str, None], dict[str, None], dict[str, None]] = ({}, {}, {})
    for tag in tags:
        pieces = tag.split("-")
        if len(pieces) == 3:
            for index, piece in enumerate(pieces):
                parts[index][piece] = None
    interpreters, abis, platforms = (list(p) for p in parts)
    return interpreters, abis, [p for p in platforms if p != "any"]


def _run_pip(folder: Path, req_file: Path, base: BaseImage, mode: str, out: Path) -> None:
    if importlib.util.find_spec("pip") is None:
        raise BuildError(
            f"{req_file}: catwalk build resolves the requirements with pip on this machine, "
            f"and {sys.executable} has no pip: python -m ensurepip (or install catwalk in a "
            "virtual environment made with pip)"
        )
    constraints = out / "constraints-of-the-base-image.txt"
    constraints.write_text(
        "".join(f"{name}=={version}\n" for name, version in sorted(base.installed.items())),
        encoding="utf-8",
    )
    cmd = _pip_command(req_file, base, mode, out, constraints)
    try:
        proc = subprocess.run(
            cmd, cwd=folder, capture_output=True, text=True, check=False, timeout=3600
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"{req_file}: pip {mode} could not run ({exc})") from None
    finally:
        constraints.unlink(missing_ok=True)
    if proc.returncode == 0:
        return
    output = (proc.stdout + proc.stderr).strip()
    tail = "\n".join(output.splitlines()[-_PIP_TAIL_LINES:])
    hint = ""
    if "ResolutionImpossible" in output or "conflicting dependencies" in output:
        hint = (
            f"\nThe base image {base.ref} keeps every package of its environment as it is "
            "(a constraint, in pip's words above): allow those versions in requirements.txt."
        )
    elif mode == "download" and "No matching distribution" in output:
        hint = (
            f"\nThe image runs Python {base.python} ({base.tags[0]}), this machine another "
            "one, so only wheels can be used: pick a version with a wheel for it, vendor a "
            "wheel built for it in the model folder, or build on a machine with the image's "
            "Python."
        )
    raise BuildError(
        f"{req_file}: resolving the requirements for the image failed (pip {mode}, exit "
        f"{proc.returncode}):\n{tail}{hint}"
    )


# --- the cache key ----------------------------------------------------------------------------

_PIP_VARIABLES = re.compile(r"^PIP_")


def _key(folder: Path, req_file: Path, base: BaseImage, mode: str) -> str:
    digest = hashlib.sha256()

    def add(*parts: object) -> None:
        for part in parts:
            digest.update(str(part).encode("utf-8", "surrogateescape") + b"\0")

    add(__version__, mode, sys.version, base.python, *base.tags)
    add(*sorted(f"{k}=={v}" for k, v in base.installed.items()))
    for name in sorted(os.environ):
        if _PIP_VARIABLES.match(name):
            add(name, _without_credentials(os.environ[name]))
    for path, stamp in _referenced(req_file):
        add(path, stamp)
    return digest.hexdigest()[:24]


def _without_credentials(value: str) -> str:
    """A pip setting with every URL's user and password dropped (the key must not hold them)."""
    out = []
    for word in value.split():
        parts = urlsplit(word)
        if parts.scheme and "@" in parts.netloc:
            parts = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])
            word = urlunsplit(parts)
        out.append(word)
    return " ".join(out)


def _referenced(req_file: Path) -> list[tuple[str, str]]:
    """requirements.txt's content, and every local file or folder it names (recursively
    through ``-r``/``-c``): text files by content, others by size and time."""
    found: list[tuple[str, str]] = []
    pending, seen = [req_file.resolve()], {req_file.resolve()}
    while pending:
        current = pending.pop(0)
        try:
            text = current.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found.append((str(current), _without_credentials(text)))
        for line in text.splitlines():
            line = line.split(" #", 1)[0].strip()
            for word in re.split(r"[\s=]+", line):
                word = word.removeprefix("file://").removeprefix("file:")
                if not word or "://" in word or word.startswith("-"):
                    continue
                path = (current.parent / Path(word).expanduser()).resolve()
                if path in seen or not path.exists():
                    continue
                seen.add(path)
                if path.is_dir():
                    found += [(str(p), _stamp(p)) for p in sorted(path.rglob("*")) if p.is_file()]
                elif path.suffix == ".txt" or path.name.endswith((".in", ".cfg")):
                    pending.append(path)
                else:
                    found.append((str(path), _stamp(path)))
    return found


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _prune(root: Path) -> None:
    """Keep the :data:`KEEP_CACHED` most recently used wheelhouses."""
    entries = [p for p in root.iterdir() if p.is_dir() and (p / _DONE).is_file()]
    entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP_CACHED:]:
        shutil.rmtree(old, ignore_errors=True)
