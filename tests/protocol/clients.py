"""Test data as numpy tensors for the real protocol clients, and their answers as records."""

from __future__ import annotations

from typing import Any

import numpy as np

from catwalk.model import load_model
from catwalk.normalize import to_json
from catwalk.spec import load_spec

# The datatypes model.yml's types map to (docs/protocol.md), as numpy dtypes.
DTYPES = {"INT64": np.int64, "INT32": np.int32, "FP64": np.float64, "FP32": np.float32,
          "BOOL": np.bool_, "BYTES": np.object_}  # fmt: skip


def example_records(model_dir: Any) -> list[dict[str, Any]]:
    """The model's test inputs as a flat list of records."""
    model = load_model(load_spec(model_dir))
    X, _ = model.load_test_data()
    records = to_json(X, "X")
    assert isinstance(records, list) and records
    return records


def columns(metadata: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """One numpy array per input tensor of ``metadata`` (a field of every record)."""
    out = {}
    for tensor in metadata["inputs"]:
        values = [record[tensor["name"]] for record in records]
        dtype = DTYPES[tensor["datatype"]]
        if dtype is np.object_:
            out[tensor["name"]] = np.array([str(v).encode() for v in values], dtype=np.object_)
        else:
            out[tensor["name"]] = np.array(values, dtype=dtype)
    return out


def as_records(arrays: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Output tensors (first dimension N) back as N records of Python values."""
    count = len(next(iter(arrays.values())))
    return [{name: array[i].item() for name, array in arrays.items()} for i in range(count)]
