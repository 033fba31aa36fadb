"""Helpers of tests/protocol: servers, the clients' imports, test data as numpy tensors for
the real protocol clients, and their answers as records.

tritonclient (and kserve, for its REST client) come with the ``protocol-tests`` extra; under
``CI=true`` a missing one fails instead of skipping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import requests

from catwalk.model import load_model
from catwalk.normalize import to_json
from catwalk.spec import load_spec
from requires import unavailable

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "example_models"


def needs(module: str) -> Any:
    """Import ``module`` (a protocol client) or skip/fail via :func:`unavailable`."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        unavailable(f"{module} missing: pip install -e '.[protocol-tests]'")


class V2Server:
    """One ``catwalk serve`` subprocess."""

    def __init__(self, args: list[str], port: int, log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.address = f"127.0.0.1:{port}"
        self.log_path = log
        self.log = open(log, "w+")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ)
        for name in ("MODEL_PATH", "SERVER_CONFIG", "SERVER_PORT", "RUN_TESTS"):
            env.pop(name, None)  # they would override the arguments
        env["PATH"] = env.get("PATH", "") + ":/usr/sbin"
        env["PYTHONPATH"] = str(ROOT / "src")
        self.proc = subprocess.Popen(
            args, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
            start_new_session=True,
        )  # fmt: skip

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 90) -> V2Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.output()}")
            try:
                if requests.get(self.url + "/ready", timeout=5).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready after {timeout} s:\n{self.output()}")

    def predict(self, data: Any, **kw: Any) -> Any:
        response = requests.post(self.url + "/predict", json={"input": data}, timeout=30, **kw)
        assert response.status_code == 200, response.text
        return response.json()["output"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only its tree
                self.proc.wait()
        self.log.close()


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
