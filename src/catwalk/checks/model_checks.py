"""``catwalk test-model``: check a model folder end to end without any server."""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from catwalk.checks.batch_checks import check_batching
from catwalk.checks.report import Report
from catwalk.errors import CatwalkError, ModelError, ModelLoadError, OutputError, SpecError
from catwalk.model import LoadedModel, describe, load_model, user_traceback
from catwalk.normalize import DEFAULT_TOLERANCE, first_difference, to_json
from catwalk.requirements import ensure_requirements, requirement_names
from catwalk.spec import MODEL_FILE, ModelSpec, check_model_folder, load_spec

# Every step's name, in order (test-server runs the first six, then its own).
MODEL_STEPS = (
    "1. model folder",
    "2. model.yml",
    "3. requirements",
    "4. model loads",
    "5. test data",
    "6. test data matches the schema",
    "7. predictions",
)
_MAX_ROW_FAILURES = 5
#: ``catwalk export-test-data`` prints its JSON on a last line starting with this.
TEST_DATA_PREFIX = "catwalk-test-data: "


@dataclass
class TestData:
    """The model's test data as JSON values, one entry per request the server would get."""

    inputs: list[Any]
    outputs: list[Any]
    # True when the whole test set is one request (array schema or DataFrame model): then
    # failures are reported by the row inside that batch.
    batch: bool = False


class _Sigint:
    """Whether a real Ctrl-C (SIGINT) arrived while the user's code ran."""

    received = False


@contextmanager
def _user_code() -> Iterator[_Sigint]:
    """Run the user's code, telling a real Ctrl-C from a KeyboardInterrupt the model raised.

    A KeyboardInterrupt raised by the model itself is the model's failure, reported like any
    other exception; one that comes from SIGINT is the user stopping catwalk, so it is
    re-raised (and ends the command with exit code 130). Only the main thread receives
    signals; elsewhere every KeyboardInterrupt is the model's.
    """
    sigint = _Sigint()
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield sigint
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        sigint.received = True
        previous(signum, frame)  # Python's default handler raises KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield sigint
    finally:
        signal.signal(signal.SIGINT, previous)


def _raised(exc: KeyboardInterrupt, sigint: _Sigint, what: str) -> str:
    """The failure text for a KeyboardInterrupt from the model; a real Ctrl-C is re-raised."""
    if sigint.received:
        raise exc
    return f"{what} raised {describe(exc)}\n{user_traceback(exc)}"


def _loading(spec: ModelSpec, exc: BaseException) -> str:
    """What was running when loading the model raised: its import or its constructor."""
    file = spec.path / MODEL_FILE
    frames = traceback.extract_tb(exc.__traceback__)
    if any(f.name == "<module>" and Path(f.filename) == file for f in frames):
        return f"{file}: importing it"
    return f"{file}: Model({str(spec.path)!r})"


def prepare(path: str | Path, report: Report, *, install: bool = True) -> LoadedModel | None:
    """Steps 1-4: folder, spec, requirements, model import. None when a step failed."""
    try:
        folder = check_model_folder(path)
    except SpecError as exc:
        report.fail("1. model folder", str(exc))
        return None
    report.ok("1. model folder", f"{folder} has model.yml and model.py")

    try:
        spec = load_spec(folder)
    except SpecError as exc:
        # Each problem already reads "model.yml: <field>: <problem>": list them under the step
        # rather than after its name, which would print "model.yml: model.yml: ...".
        count = len(exc.problems)
        report.fail("2. model.yml", f"{count} problem{'' if count == 1 else 's'}\n{exc}")
        return None
    report.ok("2. model.yml", f"{spec.name} {spec.version} ({spec.io_type})")

    if not _requirements(spec, report, install):
        return None

    with _user_code() as sigint:
        try:
            model = load_model(spec)
        except ModelLoadError as exc:
            report.fail("4. model loads", f"{exc}\n{exc.details}")
            return None
        except KeyboardInterrupt as exc:
            report.fail("4. model loads", _raised(exc, sigint, _loading(spec, exc)))
            return None
    report.ok("4. model loads", "model.py imported, Model constructed")
    return model


def _requirements(spec: ModelSpec, report: Report, install: bool) -> bool:
    name = "3. requirements"
    if spec.io_type == "PANDAS_DATA_FRAME" and "pandas" not in requirement_names(spec.path):
        report.fail(name, "io_type PANDAS_DATA_FRAME needs pandas listed in requirements.txt")
        return False
    if install:
        try:
            done = ensure_requirements(spec.path)
        except CatwalkError as exc:
            report.fail(name, str(exc))
            return False
    else:
        done = "installation skipped (--no-install)"
    if spec.io_type == "PANDAS_DATA_FRAME":
        try:
            import pandas  # noqa: F401
        except Exception as exc:  # ImportError, or a ValueError of a binary mismatch
            report.fail(
                name,
                f"pandas is listed but cannot be imported in {sys.prefix}: {describe(exc)}\n"
                f"{user_traceback(exc)}",
            )
            return False
    report.ok(name, done)
    return True


def load_test_data(model: LoadedModel, report: Report) -> TestData | None:
    """Steps 5-6: load the model's test data and validate it against both schemas."""
    name = "5. test data"
    with _user_code() as sigint:
        try:
            X, y = model.load_test_data()
            data = _as_requests(model, X, y)
        except CatwalkError as exc:
            details = getattr(exc, "details", "")
            report.fail(name, f"{exc}\n{details}" if details else str(exc))
            return None
        except KeyboardInterrupt as exc:
            report.fail(name, _raised(exc, sigint, "load_test_data"))
            return None
    if data.batch:
        report.ok(name, f"{len(data.outputs[0])} example(s), sent as one batch")
    else:
        report.ok(name, f"{len(data.inputs)} example(s)")

    problems = []
    for i, (x, expected) in enumerate(zip(data.inputs, data.outputs, strict=True)):
        row = "" if data.batch else f"row {i}: "  # a batch's messages carry X[row] already
        problems += [row + m for m in model.input_errors(x, "X")]
        problems += [row + m for m in model.output_errors(expected, "y")]
    if problems:
        report.fail("6. test data matches the schema", _first(problems))
        return None
    report.ok("6. test data matches the schema", "every X and y validates")
    return data


def _as_requests(model: LoadedModel, X: Any, y: Any) -> TestData:
    """Turn (X, y) into the JSON inputs and expected outputs of the requests to make."""
    spec = model.spec
    if model.is_dataframe:
        import pandas as pd

        for label, value in (("X", X), ("y", y)):
            if not isinstance(value, pd.DataFrame):
                raise ModelError(
                    f"load_test_data: {label} must be a pandas DataFrame for io_type "
                    f"PANDAS_DATA_FRAME, got {type(value).__name__}"
                )
        xs, ys = to_json(X, "X"), to_json(y, "y")
    else:
        for label, value in (("X", X), ("y", y)):
            if not isinstance(value, list):
                raise ModelError(
                    f"load_test_data: {label} must be a list, got {type(value).__name__}"
                )
        xs, ys = to_json(X, "X"), to_json(y, "y")
    if len(xs) != len(ys):
        raise ModelError(f"load_test_data: X has {len(xs)} rows but y has {len(ys)}")
    if not xs:
        raise ModelError("load_test_data: returned no test data")
    if spec.input.is_batch or model.is_dataframe:
        # One request carries the whole batch (a DataFrame model also takes a list of records).
        return TestData(inputs=[xs], outputs=[ys], batch=True)
    return TestData(inputs=xs, outputs=ys)


def check_predictions(model: LoadedModel, data: TestData, report: Report, tolerance: float) -> None:
    """Step 7: predict on the test data; outputs must validate and equal y."""
    problems: list[str] = []
    for i, (x, expected) in enumerate(zip(data.inputs, data.outputs, strict=True)):
        with _user_code() as sigint:
            try:
                got = model.predict(x)
            except ModelError as exc:
                report.fail("7. predictions", f"row {i}: {exc}\n{exc.details}")
                return
            except OutputError as exc:
                problems.append(f"row {i}: {exc}")
                continue
            except KeyboardInterrupt as exc:
                report.fail("7. predictions", _raised(exc, sigint, f"row {i}: predict"))
                return
        row = "" if data.batch else f"row {i}: "
        problems += [row + m for m in model.output_errors(got, "output")]
        problems += _differences(expected, got, tolerance, i, data.batch)
    if problems:
        report.fail("7. predictions", _first(problems))
    else:
        if data.batch:
            done = f"{len(data.outputs[0])} row(s), predicted as one batch,"
        else:
            done = f"{len(data.inputs)} prediction(s)"
        report.ok(
            "7. predictions",
            f"{done} validate and equal y (rel. tolerance {tolerance:g})",
        )


def _differences(expected: Any, got: Any, tolerance: float, row: int, batch: bool) -> list[str]:
    if batch and isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return [f"batch: expected {len(expected)} output rows, got {len(got)}"]
        found = []
        for j, (e, g) in enumerate(zip(expected, got, strict=True)):
            diff = first_difference(e, g, tolerance)
            if diff:
                found.append(f"row {j}: {diff}")
        return found
    diff = first_difference(expected, got, tolerance)
    return [f"row {row}: {diff}"] if diff else []


def _first(problems: list[str]) -> str:
    shown = problems[:_MAX_ROW_FAILURES]
    if len(problems) > _MAX_ROW_FAILURES:
        more = len(problems) - _MAX_ROW_FAILURES
        shown.append(f"... and {more} more ({len(problems)} problems in all)")
    return "\n".join(shown)


def test_model(
    path: str | Path,
    report: Report,
    *,
    install: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
) -> tuple[LoadedModel | None, TestData | None]:
    """Run all seven steps (eight with ``batching:``), printing each.

    Returns the model and its data for later checks.
    """
    model = prepare(path, report, install=install)
    if model is None:
        return None, None
    data = load_test_data(model, report)
    if data is None:
        return model, None
    check_predictions(model, data, report, tolerance)
    check_batching(model, data.inputs, data.batch, report, tolerance)
    return model, data
