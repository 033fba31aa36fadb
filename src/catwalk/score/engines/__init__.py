"""The engines that run a scoring job: ``local`` (processes here), ``spark`` and ``ray``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from catwalk.errors import CatwalkError
from catwalk.score.columns import ColumnPlan
from catwalk.score.worker import ScoreJob


def api_job(
    model_path: str, keep: Sequence[str], on_error: str, batch_size: int | None
) -> tuple[ScoreJob, ColumnPlan]:
    """The job and column plan of a Python API call (a Spark DataFrame or a Ray Dataset)."""
    from catwalk.spec import load_spec

    if on_error not in ("record", "stop"):
        raise CatwalkError(f"on_error={on_error!r}: expected 'record' or 'stop'")
    spec = load_spec(model_path)
    plan = ColumnPlan.for_model(spec, tuple(keep))
    job = ScoreJob(
        model_dir=str(Path(spec.path).resolve()),
        keep=tuple(keep),
        batch_size=batch_size,
        stop=on_error == "stop",
    )
    return job, plan
