"""``catwalk serve --debug --reload``: restart the debug server when the model folder changes.

This process never imports the model: it runs ``catwalk serve --debug`` (without ``--reload``)
as a child and watches the model folder (model.py, the modules beside it, model.yml, weights,
requirements.txt) and the server config with watchfiles (inotify; changes within 1.6 s are
taken together). On a change it stops the child (SIGTERM, as ``docker stop`` would) and starts
a new one. A child that cannot load the model prints why and exits; this process then says
so once and waits for the next change: a broken save never turns into a restart loop.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import FrameType

import watchfiles

STOP_TIMEOUT = 10.0
_POLL_MS = 500  # how often the child's liveness is checked while no file changes
# Written by build-prep/deploy-prep into the folder, never read by the server.
_NOT_THE_MODEL = frozenset({"Dockerfile", ".dockerignore", "docker-compose.yml"})


class ModelFilter(watchfiles.DefaultFilter):
    """watchfiles' defaults (no __pycache__, .git, editor swap files) minus catwalk's output."""

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        return Path(path).name not in _NOT_THE_MODEL and super().__call__(change, path)


def lasting(changes: Iterable[tuple[watchfiles.Change, str]]) -> set[str]:
    """The changed paths, less the temporary files created and deleted in the same batch
    (``sed -i``, editors that write a copy and rename it)."""
    changes = list(changes)
    added = {path for change, path in changes if change == watchfiles.Change.added}
    deleted = {path for change, path in changes if change == watchfiles.Change.deleted}
    return {path for _, path in changes} - (added & deleted)


def describe_changes(paths: Iterable[str], roots: Sequence[Path]) -> str:
    """``model.py, weights.json changed`` — paths relative to the watched folder, at most 3."""
    names: list[str] = []
    for raw in sorted(paths):
        path = Path(raw)
        for root in roots:
            if path.is_relative_to(root):  # a watched file is named by its own name
                path = path.relative_to(root) if path != root else Path(path.name)
                break
        if str(path) not in names:
            names.append(str(path))
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{shown} changed"


class Supervisor:
    """The one child server and its restarts."""

    def __init__(self, command: Sequence[str], log: Callable[[str], None]) -> None:
        self.command = list(command)
        self.log = log
        self.child: subprocess.Popen[bytes] | None = None
        self.exit_reported = False

    def start(self) -> None:
        self.child = subprocess.Popen(self.command)
        self.exit_reported = False

    def stop(self) -> None:
        child, self.child = self.child, None
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.log(f"reload: the server did not stop within {STOP_TIMEOUT:g} s: killed")
            child.kill()
            child.wait()

    def check(self) -> None:
        """Say once that the child has exited (it printed why), and that we keep watching."""
        if self.child is None or self.exit_reported:
            return
        code = self.child.poll()
        if code is not None:
            self.exit_reported = True
            self.log(
                f"reload: the server exited (code {code}, see above); "
                "fix the model and save: it restarts on the next change"
            )


def serve_with_reload(
    command: Sequence[str], watched: Sequence[Path], log: Callable[[str], None]
) -> int:
    """Run ``command`` and restart it whenever a file under ``watched`` changes; until Ctrl-C."""
    roots = [path.resolve() for path in watched]
    supervisor = Supervisor(command, log)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    where = " and ".join(str(root) for root in roots)
    log(f"reload: watching {where}; a saved change restarts the server (Ctrl-C stops)")
    try:
        supervisor.start()
        for changes in watchfiles.watch(
            *roots,
            watch_filter=ModelFilter(),
            rust_timeout=_POLL_MS,
            yield_on_timeout=True,
            raise_interrupt=True,
        ):
            paths = lasting(changes)
            if not paths:
                supervisor.check()
                continue
            log(f"reload: {describe_changes(paths, roots)}: restarting the server")
            supervisor.stop()
            supervisor.start()
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0
