"""Turning model outputs into JSON values, and comparing them, the same way everywhere.

Rules (documented in the README):
- numpy scalars become Python numbers, numpy arrays and tuples become lists, pandas
  DataFrames become lists of records and Series become lists; dates and times become
  ISO 8601 strings; dict keys must be strings (numpy/int keys are converted with ``str``).
- NaN (and pandas' NA/NaT) becomes ``null``: it is how pandas and numpy mark a missing value,
  and JSON has no NaN. Whether null is allowed is then up to the output schema (``nullable``).
- +/-Infinity is an error naming the field: JSON cannot carry it and clamping would lie.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

from catwalk.errors import OutputError

_SCALARS = (str, int, bool, type(None))


def to_json(value: Any, path: str = "output") -> Any:
    """Return ``value`` as plain JSON types; raise OutputError naming the field if impossible."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is float:
        return _float(value, path)
    if kind is dict:
        return {_key(k, path): to_json(v, f"{path}.{k}") for k, v in value.items()}
    if kind is list or kind is tuple:
        return [to_json(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return _other(value, path)


def _float(value: float, path: str) -> float | None:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return None
    raise OutputError(f"{path}: {value} cannot be represented in JSON")


def _key(key: Any, path: str) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, (int, float)) or hasattr(key, "item"):
        return str(key)
    raise OutputError(f"{path}: mapping key {key!r} is not a string")


def _other(value: Any, path: str) -> Any:
    """Less common types: subclasses, numpy, pandas, dates, sets."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _float(float(value), path)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return to_json(dict(value), path)
    if isinstance(value, (list, tuple)):
        return to_json(list(value), path)
    module = type(value).__module__.split(".")[0]
    # pandas before datetime: pd.NaT is a datetime whose isoformat() is the string "NaT".
    if module == "pandas":
        return _pandas(value, path)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if module == "numpy":
        return _numpy(value, path)
    raise OutputError(f"{path}: value of type {type(value).__name__} cannot be converted to JSON")


def _numpy(value: Any, path: str) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return to_json(value.tolist(), path)
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else str(np.datetime_as_string(value))
    if isinstance(value, np.generic):
        return to_json(value.item(), path)
    raise OutputError(f"{path}: numpy value of type {type(value).__name__} is not supported")


def _pandas(value: Any, path: str) -> Any:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return to_json(value.to_dict(orient="records"), path)
    if isinstance(value, pd.Series):
        return to_json(value.tolist(), path)
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timedelta):
        return value.isoformat()
    raise OutputError(f"{path}: pandas value of type {type(value).__name__} is not supported")


#: The relative tolerance test-model compares floats with (and a shadow its outputs).
DEFAULT_TOLERANCE = 1e-9


def first_difference(expected: Any, got: Any, rel_tol: float, path: str = "") -> str | None:
    """Return ``"<path>: expected X, got Y"`` for the first difference, or None if equal.

    Both sides are JSON values. Numbers are compared with a relative tolerance (so 1 equals
    1.0); booleans are not numbers.
    """
    where = path or "value"
    if _is_num(expected) and _is_num(got):
        if expected == got or math.isclose(expected, got, rel_tol=rel_tol, abs_tol=0.0):
            return None
        return f"{where}: expected {expected!r}, got {got!r}"
    if isinstance(expected, dict) and isinstance(got, dict):
        for key in expected:
            if key not in got:
                return f"{path}.{key}".lstrip(".") + ": missing from the prediction"
        for key in got:
            if key not in expected:
                return f"{path}.{key}".lstrip(".") + ": not expected, but predicted"
        for key, value in expected.items():
            diff = first_difference(value, got[key], rel_tol, f"{path}.{key}".lstrip("."))
            if diff:
                return diff
        return None
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return f"{where}: expected {len(expected)} items, got {len(got)}"
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            diff = first_difference(e, g, rel_tol, f"{path}[{i}]")
            if diff:
                return diff
        return None
    if type(expected) is type(got) and expected == got:
        return None
    return f"{where}: expected {expected!r}, got {got!r}"


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
