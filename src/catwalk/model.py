"""The user-model contract and its loader. No HTTP here.

A model folder's ``model.py`` defines ``class Model`` with ``__init__(path)``,
``load_test_data(path) -> (X, y)`` and ``predict(X)`` (and ``predict_batch(Xs)`` when model.yml
asks for ``batching:``, see :mod:`catwalk.model_batch`). :func:`load_model` imports it (so that
modules beside it can be imported by it) and constructs it once; :class:`LoadedModel` adapts
inputs and outputs to the model's ``io_type`` and normalises outputs to JSON values.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.util
import os
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from catwalk.errors import ModelError, ModelLoadError, OutputError, ProcessExit
from catwalk.normalize import to_json
from catwalk.spec import MODEL_FILE, IoSchema, ModelSpec

# With the separator: a user folder named like ".../catwalk_models" is not catwalk's.
_CATWALK_DIR = str(Path(__file__).resolve().parent) + os.sep


_NOT_DATE_TIME = re.compile(r'"([^"]*)" is not a valid date-time$')
NAIVE_HINT = (
    " (it has no UTC offset: predict returned a naive datetime; return an aware one, e.g. "
    "datetime.now(timezone.utc), dt.replace(tzinfo=timezone.utc) or pd.Timestamp(x, tz='UTC'), "
    "or a string ending in Z or +HH:MM)"
)


def _naive_hint(problem: str) -> str:
    """``problem``, with what to return when it is a naive datetime failing date-time."""
    found = _NOT_DATE_TIME.search(problem)
    if found is None:
        return problem
    try:
        value = datetime.datetime.fromisoformat(found.group(1))
    except ValueError:
        return problem
    return problem + NAIVE_HINT if value.tzinfo is None else problem


def user_traceback(exc: BaseException) -> str:
    """The exception's traceback with catwalk's and importlib's frames left out."""
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith(_CATWALK_DIR) and "importlib" not in frame.filename
    ]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def describe(exc: BaseException) -> str:
    """``TypeName: message`` for an exception raised by user code."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class LoadedModel:
    """A constructed user model together with its spec."""

    spec: ModelSpec
    instance: Any

    @property
    def is_dataframe(self) -> bool:
        return self.spec.io_type == "PANDAS_DATA_FRAME"

    def input_errors(self, value: Any, prefix: str = "input") -> list[str]:
        """Schema problems of a request's input (``[]`` when valid)."""
        return self._errors(self.spec.input, value, prefix)

    def output_errors(self, value: Any, prefix: str = "output") -> list[str]:
        """Schema problems of a (JSON-normalised) model output (``[]`` when valid).

        A naive datetime (no UTC offset) fails ``format: date-time``; its problem says what to
        return instead, in test-model, ``predict`` and the server's 500 alike.
        """
        return [_naive_hint(p) for p in self._errors(self.spec.output, value, prefix)]

    def _errors(self, side: IoSchema, value: Any, prefix: str) -> list[str]:
        # A DataFrame model with a one-record schema also takes and returns lists of records.
        if self.is_dataframe and not side.is_batch and type(value) is list:
            if not value:
                return [f"{prefix}: must not be an empty list"]
            return side.rows_errors(value, prefix)
        return side.errors(value, prefix)

    def predict(self, data: Any) -> Any:
        """Run the model on validated JSON input and return its output as JSON values.

        Raises ModelError when the model raises and OutputError when its output cannot be
        converted to JSON. The output schema is not checked here (see ``output_errors``).
        """
        if self.is_dataframe:
            return self._predict_frame(data)
        return to_json(self._call(self.instance.predict, data))

    def predict_raw(self, data: Any) -> Any:
        """Call the user's predict on native data (a DataFrame for PANDAS_DATA_FRAME models)."""
        return self._call(self.instance.predict, data)

    def _predict_frame(self, data: Any) -> Any:
        import pandas as pd

        single = isinstance(data, dict)
        frame = pd.DataFrame([data] if single else data)
        raw = self._call(self.instance.predict, frame)
        if not isinstance(raw, pd.DataFrame):
            # Said plainly: a schema error about an array's shape would hide the real mistake.
            raise OutputError(
                "predict must return a pandas DataFrame for io_type PANDAS_DATA_FRAME, "
                f"got {type(raw).__module__.split('.')[0]}.{type(raw).__name__}"
            )
        result = to_json(raw)
        if not single:
            return result
        if isinstance(result, list):
            if len(result) != 1:
                raise OutputError(
                    f"output: one record in, {len(result)} records out (expected exactly one)"
                )
            return result[0]
        return result

    def load_test_data(self) -> tuple[Any, Any]:
        """Call the user's ``load_test_data(path)``; it must return ``(X, y)``."""
        result = self._call(self.instance.load_test_data, str(self.spec.path), "load_test_data")
        if not isinstance(result, tuple | list) or len(result) != 2:
            raise ModelError(
                f"load_test_data must return a pair (X, y), got {type(result).__name__}"
            )
        return result[0], result[1]

    def call(self, method: Any, arg: Any, name: str = "predict") -> Any:
        """Call one of the user's methods; raises ModelError when it raises."""
        return self._call(method, arg, name)

    @staticmethod
    def _call(method: Any, arg: Any, name: str = "predict") -> Any:
        try:
            return method(arg)
        except ProcessExit:  # gunicorn ending a timed-out worker must end it...
            raise
        except SystemExit as exc:  # ...but sys.exit() in a model must not end a server
            raise ModelError(f"{name} raised {describe(exc)}", user_traceback(exc)) from exc
        except Exception as exc:
            raise ModelError(f"{name} raised {describe(exc)}", user_traceback(exc)) from exc


def load_model(spec: ModelSpec) -> LoadedModel:
    """Import the folder's ``model.py`` and construct ``Model(path)``."""
    module = _import(spec.path)
    cls = getattr(module, "Model", None)
    if not isinstance(cls, type):
        raise ModelLoadError(f"{spec.path / MODEL_FILE}: defines no class named Model")
    for method in ("predict", "load_test_data"):
        if not callable(getattr(cls, method, None)):
            raise ModelLoadError(f"{spec.path / MODEL_FILE}: Model has no method {method}(...)")
    if (
        spec.batching is not None
        and spec.batch_kind == "predict_batch"
        and not callable(getattr(cls, "predict_batch", None))
    ):
        raise ModelLoadError(
            f"{spec.path / MODEL_FILE}: model.yml has batching:, so Model needs a method "
            f"predict_batch(self, Xs) returning one output per input (or remove batching:)"
        )
    try:
        instance = cls(str(spec.path))
    except (Exception, SystemExit) as exc:
        raise ModelLoadError(
            f"{spec.path / MODEL_FILE}: Model({str(spec.path)!r}) raised {describe(exc)}",
            user_traceback(exc),
        ) from exc
    return LoadedModel(spec=spec, instance=instance)


def _import(folder: Path) -> ModuleType:
    file = folder / MODEL_FILE
    name = "catwalk_model_" + hashlib.sha1(str(folder).encode()).hexdigest()[:12]
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    import_spec = importlib.util.spec_from_file_location(name, file)
    if import_spec is None or import_spec.loader is None:
        raise ModelLoadError(f"{file}: cannot be imported")
    module = importlib.util.module_from_spec(import_spec)
    sys.modules[name] = module
    try:
        import_spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        hint = ""
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            hint = (
                f" (is the distribution that provides {exc.name.partition('.')[0]!r} listed in "
                f"requirements.txt? the model runs with those and catwalk's, in {sys.prefix})"
            )
        raise ModelLoadError(
            f"{file}: importing it raised {describe(exc)}{hint}", user_traceback(exc)
        ) from exc
    return module
