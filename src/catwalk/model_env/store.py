"""The cache of model environments: one folder per digest, built once, never half-used.

An environment's folder name is a digest of what it holds: the model's requirements (the
file, the files it includes, the local files it names), the catwalk that runs (see
:mod:`.identity`) and the Python it runs on. Two models with the same requirements share one.
A build runs under a per-digest file lock (two catwalk processes starting at once build it
once; the second waits and uses it), into a temporary folder beside the final one that is
renamed into place only when uv succeeded: a build killed half-way leaves a ``.build-*``
folder that is never used and is removed by the next build of that digest.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from catwalk.errors import RequirementsError
from catwalk.model_env import ENV_CACHE_VAR, RECORD_FILE
from catwalk.model_env.identity import OwnInstall, python_identity
from catwalk.model_env.pipconf import pip_config, uv_settings
from catwalk.requirements import requirements_digest
from catwalk.spec import REQUIREMENTS_FILE

_OUTPUT_TAIL_LINES = 40


def default_root() -> Path:
    """``$CATWALK_ENV_CACHE``, else ``$XDG_CACHE_HOME/catwalk/envs`` (``~/.cache/...``)."""
    chosen = os.environ.get(ENV_CACHE_VAR, "").strip()
    if chosen:
        return Path(chosen).expanduser().resolve()
    cache = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(cache).expanduser().resolve() / "catwalk" / "envs"


def find_uv() -> str:
    """The uv executable: the one the ``uv`` package (a catwalk dependency) ships, else PATH."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise RequirementsError(
        "uv is not installed (a dependency of catwalk: reinstall catwalk), so the model's "
        "environment cannot be built; --env-manager local installs into this interpreter instead"
    )


@dataclass(frozen=True)
class EnvPlan:
    """What one model folder's environment is made of."""

    folder: Path
    own: OwnInstall
    requirements: str  # requirements_digest(folder)

    @property
    def key(self) -> str:
        digest = hashlib.sha256()
        for part in (self.requirements, self.own.fingerprint, python_identity()):
            digest.update(part.encode() + b"\0")
        return f"py{sys.version_info[0]}{sys.version_info[1]}-{digest.hexdigest()[:20]}"

    @property
    def requirements_file(self) -> Path | None:
        path = self.folder / REQUIREMENTS_FILE
        return path if path.is_file() else None


def plan_for(folder: Path, own: OwnInstall) -> EnvPlan:
    return EnvPlan(folder.resolve(), own, requirements_digest(folder))


def read_record(env: Path) -> dict[str, object] | None:
    """The record an environment's builder wrote last, or None (not a built environment)."""
    try:
        data = json.loads((env / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class EnvStore:
    """The folder of environments; ``echo`` says on stderr what is used or built."""

    def __init__(self, root: Path, echo: Callable[[str], None]) -> None:
        self.root = root
        self.echo = echo

    def find(self, plan: EnvPlan) -> Path | None:
        """The built environment for ``plan``, or None."""
        env = self.root / plan.key
        return env if read_record(env) is not None else None

    def get(self, plan: EnvPlan) -> Path:
        """The environment for ``plan``, built first when there is none yet."""
        found = self.find(plan)
        if found is not None:
            self.echo(f"environment: {found} (cached)")
            return found
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with self._lock(plan.key):
                found = self.find(plan)  # built by another catwalk process meanwhile
                if found is not None:
                    self.echo(f"environment: {found} (built by another catwalk process)")
                    return found
                return self._build(plan)
        except OSError as exc:
            raise RequirementsError(
                f"{self.root}: cannot build a model environment there ({exc.strerror}); set "
                f"{ENV_CACHE_VAR} to a writable folder, or use --env-manager local"
            ) from None

    @contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        fd = os.open(self.root / f".{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.echo(f"environment: waiting for another catwalk process building {key}")
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock; a killed process's lock goes with it

    def _build(self, plan: EnvPlan) -> Path:
        final = self.root / plan.key
        for stale in self.root.glob(f".build-{plan.key}-*"):  # left by a killed build
            shutil.rmtree(stale, ignore_errors=True)
        if final.exists():  # no record: not one of ours, or damaged by hand
            shutil.rmtree(final)
        req = plan.requirements_file
        own = f"{plan.own.name} {plan.own.version}"
        what = f"{req} + {own}" if req else own
        self.echo(f"environment: building {final} ({what}) with uv")
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix=f".build-{plan.key}-", dir=self.root))
        try:
            mapped = self._install(plan, work)
            record = {
                "folder": str(plan.folder),
                "requirements": plan.requirements,
                "catwalk": list(plan.own.args),
                "python": python_identity(),
                "pip_config": mapped,
                "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "seconds": round(time.monotonic() - started, 1),
            }
            (work / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
            os.rename(work, final)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return final

    def _install(self, plan: EnvPlan, work: Path) -> dict[str, str]:
        """Build the environment in ``work``; returns the pip settings passed on to uv.

        catwalk goes in first, on its own, so that the model's requirements.txt options
        (``--no-index`` and a folder of wheels, say) apply to the model's packages only; then
        the requirements, resolved together with the catwalk just installed (a pin that
        conflicts with one of catwalk's dependencies is uv's error, naming both); then
        ``uv pip check``.
        """
        uv = find_uv()
        settings = uv_settings(pip_config())
        env = {**os.environ, **settings.env, "UV_NO_PROGRESS": "1"}
        env.pop("VIRTUAL_ENV", None)  # the target is given with --python, never guessed
        python = str(work / "bin" / "python")
        venv = [uv, "venv", "--quiet", "--relocatable", "--python", sys.executable, str(work)]
        self._run(venv, plan, env, "create")
        # As pip does: every later start imports from .pyc (PYTHONDONTWRITEBYTECODE or a
        # read-only cache would otherwise compile the model's libraries on every run).
        install = [uv, "pip", "install", "--python", python, "--compile-bytecode", *settings.args]
        self._run([*install, *plan.own.args], plan, env, f"install {plan.own.name} into")
        if plan.requirements_file is not None:
            pinned = f"{plan.own.name}=={plan.own.version}"  # satisfied by the one installed
            cmd = [*install, "-r", str(plan.requirements_file), pinned]
            self._run(cmd, plan, env, "install the requirements into")
        self._run([uv, "pip", "check", "--python", python], plan, env, "check")
        return settings.mapped

    def _run(self, cmd: list[str], plan: EnvPlan, env: dict[str, str], what: str) -> None:
        # In the model folder: relative paths in requirements.txt resolve as pip resolves them.
        proc = subprocess.run(
            cmd, cwd=plan.folder, env=env, capture_output=True, text=True, check=False
        )
        if proc.returncode == 0:
            return
        output = (proc.stdout + proc.stderr).strip()
        tail = "\n".join(output.splitlines()[-_OUTPUT_TAIL_LINES:])
        source = plan.requirements_file or plan.folder
        raise RequirementsError(
            f"{source}: cannot {what} the model's environment (uv exit {proc.returncode}); "
            f"nothing was changed in this or any other environment. uv says:\n{tail}"
        )
