"""The model in a worker process: checked, loaded once, reused by every batch of the process.

Spark's Python workers and Ray's actors run many batches (and Spark many tasks) in one
process; loading the model for each would cost its start-up time per batch. A worker keeps
its :class:`RowScorer` in :data:`WORKERS`, the one object per process that outlives a task
(the engines' functions are shipped by pickling and hold no state of their own).

Before loading, the model's ``requirements.txt`` is checked against the worker's Python: a
missing package is one error naming the model and the package (the executors' environment
is not the one the model was tested in), not an ImportError from deep in an executor's log.
Errors leave a worker as :class:`WorkerFailed`, whose message carries a mark that the driver
finds in the engine's wrapped exception (:func:`unwrap`) to report it as catwalk's own.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from catwalk.errors import CatwalkError, RequirementsError
from catwalk.score.columns import ColumnPlan
from catwalk.score.rows import InputMode, RowScorer
from catwalk.spec import ModelSpec

MARK = "[catwalk score] "


@dataclass(frozen=True)
class ScoreJob:
    """What a worker needs to score batches (pickled to every worker)."""

    model_dir: str  # where the model folder is in the worker's filesystem
    keep: tuple[str, ...] = ()
    mode: InputMode = "arrow"
    batch_size: int | None = None
    stop: bool = False
    flat: bool = False


class WorkerFailed(Exception):
    """A worker's error, marked so that the driver can tell it from the engine's own."""

    def __init__(self, message: str) -> None:
        # Unpickled in the driver, it is made again from its marked text: mark it once.
        super().__init__(message if message.startswith(MARK) else MARK + message)


class WorkerCache:
    """This process's loaded scorers, by job; ``loads`` counts the models loaded here."""

    def __init__(self) -> None:
        self.scorers: dict[ScoreJob, RowScorer] = {}
        self.loads = 0

    def scorer(
        self, job: ScoreJob, folder: Callable[[], str] | None = None
    ) -> tuple[RowScorer, bool]:
        """The job's scorer, and whether this call loaded it (the model's first batch here).

        ``folder`` gives the model folder on this machine (unpacking it), called only when
        the model is not loaded yet; by default it is ``job.model_dir``.
        """
        found = self.scorers.get(job)
        if found is not None:
            return found, False
        try:
            where = folder() if folder is not None else job.model_dir
        except (OSError, ValueError) as exc:
            raise WorkerFailed(f"cannot unpack the model folder here ({exc})") from None
        try:
            scorer = load_scorer(job, where)
        except CatwalkError as exc:
            raise WorkerFailed(str(exc)) from None
        self.scorers[job] = scorer
        self.loads += 1
        return scorer, True


WORKERS = WorkerCache()


def load_scorer(job: ScoreJob, folder: str) -> RowScorer:
    from catwalk.model import load_model
    from catwalk.spec import load_spec

    spec = load_spec(folder)
    check_requirements(spec)
    plan = ColumnPlan.for_model(spec, job.keep, flat=job.flat)
    return RowScorer(
        load_model(spec), plan, mode=job.mode, batch_size=job.batch_size, stop=job.stop
    )


def check_requirements(spec: ModelSpec) -> None:
    """RequirementsError naming the model and the first package of its requirements.txt
    that this Python does not have."""
    from catwalk.requirements import requirement_names

    for name in sorted(requirement_names(Path(spec.path))):
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise RequirementsError(
                f"model {spec.name} {spec.version}: package {name!r} of its requirements.txt "
                f"is not installed in this worker's Python ({sys.executable} on "
                f"{socket.gethostname()}, pid {os.getpid()}): install the model's "
                f"requirements on the workers, or run them in the model's catwalk image "
                f"(docs/scoring.md, 'The workers' environment')"
            ) from None


def unwrap(exc: BaseException) -> CatwalkError | None:
    """The worker's error inside an engine's exception (its text), or None if none is."""
    text = str(exc)
    at = text.find(MARK)
    if at < 0:
        return None
    message = text[at + len(MARK) :].split("\n", 1)[0].strip()
    return CatwalkError(message)


def pack_folder(folder: str) -> bytes:
    """The model folder as zip bytes, to send to workers that do not share its filesystem."""
    import io
    import zipfile

    buffer = io.BytesIO()
    root = Path(folder)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()


def unpack_folder(data: bytes, name: str) -> str:
    """Unpack :func:`pack_folder`'s bytes once per content on this machine; the folder."""
    import hashlib
    import io
    import tempfile
    import zipfile

    from catwalk.tmp import temp_dir

    digest = hashlib.sha256(data).hexdigest()[:16]
    target = temp_dir() / f"catwalk-score-{digest}" / name
    if (target.parent / ".complete").exists():
        return str(target)
    staging = Path(tempfile.mkdtemp(prefix="catwalk-score-unpack-", dir=temp_dir()))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(staging / name)
    (staging / ".complete").touch()
    try:
        staging.rename(target.parent)
    except OSError:  # another worker of this machine was first: use its copy
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
    return str(target)
