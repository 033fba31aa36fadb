"""``catwalk score`` on the local engine, end to end: real worker processes, real files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from score_data import (
    EXAMPLES,
    forest_rows,
    read_output,
    score,
    score_forest,
    write_parquet,
)

pytestmark = pytest.mark.slow


def test_forest_every_row_out_with_its_error_or_its_output(tmp_path: Path) -> None:
    # Two files, so that both workers get work; row groups of 3 rows: several batches.
    result, _ = score_forest(tmp_path, "--concurrency", "2", ordered=True, row_group_size=3)
    out = tmp_path / "out"
    assert "model loaded" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    assert not [p for p in tmp_path.iterdir() if "catwalk-tmp" in p.name]


def test_existing_output_is_refused_unless_overwrite(tmp_path: Path) -> None:
    data = write_parquet(
        tmp_path / "in.parquet", [{"seed": 1, "seed_version": 2, "mu": 0.0, "sigma": 1.0}]
    )
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    args = ("-m", str(EXAMPLES / "rng"), "--input", str(data), "--output", str(out))
    refused = score(*args)
    assert refused.exit_code == 1
    assert f"Error: {out} exists: give --overwrite to replace it" in refused.stderr
    assert (out / "old.txt").read_text() == "keep me"
    replaced = score(*args, "--overwrite", "--format", "jsonl")
    assert replaced.exit_code == 0, replaced.output
    assert [p.name for p in out.iterdir()] == ["part-00000.jsonl"]
    assert read_output(out, "jsonl")[0]["catwalk_error"] is None


def test_missing_column_stops_before_scoring(tmp_path: Path) -> None:
    rows = [{k: v for k, v in r.items() if k != "s6"} for r in forest_rows()]
    data = write_parquet(tmp_path / "in.parquet", rows)
    out = tmp_path / "out"
    result = score("-m", str(EXAMPLES / "forest"), "--input", str(data), "--output", str(out))
    assert result.exit_code == 1
    assert (
        f"Error: {data}: column 's6' is missing: the model's schema.input requires s6 "
        "(number)" in result.stderr
    )
    assert "model loaded" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_on_error_stop_names_file_and_row_and_writes_nothing(tmp_path: Path) -> None:
    rows = [{"seed": i, "seed_version": 2, "mu": 0.0, "sigma": 1.0} for i in range(50)]
    rows[41]["sigma"] = -2.0
    data = write_parquet(tmp_path / "in.parquet", rows, row_group_size=20)
    out = tmp_path / "out"
    result = score(
        "-m",
        str(EXAMPLES / "rng"),
        "--input",
        str(data),
        "--output",
        str(out),
        "--on-error",
        "stop",
    )
    assert result.exit_code == 1
    assert (
        f"Error: {data}: row 42: input.sigma: -2.0 is less than the minimum of 0" in result.stderr
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_csv_and_json_lines_inputs(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("id,seed,seed_version,mu,sigma\n1,3,2,0.5,1\n2,x,2,0,1\n")
    lines = [{"id": 1, "seed": 3, "seed_version": 2, "mu": 0.5, "sigma": 1}, {"id": 2}]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    for name in ("in.csv", "in.jsonl"):
        out = tmp_path / f"out-{name}"
        result = score(
            "-m",
            str(EXAMPLES / "rng"),
            "--input",
            str(tmp_path / name),
            "--output",
            str(out),
            "--keep",
            "id",
            "--format",
            "csv",
        )
        assert result.exit_code == 0, result.output
        got = read_output(out, "csv")
        assert [r["id"] for r in got] == ["1", "2"]
        assert float(got[0]["score"]) == pytest.approx(1.2521, abs=1e-3) or got[0]["score"]
        assert got[0]["catwalk_error"] == ""
        assert got[1]["catwalk_error"].startswith("input")


def test_interrupted_job_leaves_no_output(tmp_path: Path) -> None:
    rows = [{"seed": i, "seed_version": 2, "mu": 0.0, "sigma": 1.0} for i in range(400_000)]
    data = write_parquet(tmp_path / "in.parquet", rows, row_group_size=10_000)
    out = tmp_path / "out"
    job = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "catwalk",
            "score",
            "--no-install",
            "-m",
            str(EXAMPLES / "rng"),
            "--input",
            str(data),
            "--output",
            str(out),
        ],
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".parquet") for p in _temp_parts(tmp_path)):
        assert job.poll() is None, job.stderr.read() if job.stderr else ""
        assert time.monotonic() < deadline, "the job wrote nothing within 60 s"
        time.sleep(0.05)
    job.send_signal(signal.SIGTERM)
    _, stderr = job.communicate(timeout=60)
    assert job.returncode == 130, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def _temp_parts(folder: Path) -> list[Path]:
    return [f for d in folder.iterdir() if "catwalk-tmp" in d.name for f in d.iterdir()]


def test_a_file_larger_than_the_memory_budget_streams(tmp_path: Path) -> None:
    """1 GB of text in memory in one file (a few MB on disk): each of the job's processes
    stays far below that (batches of ~8 MB, two per worker in flight)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, width = 5_000, 200_000
    data = tmp_path / "big.parquet"
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("seed", pa.int64()),
            ("seed_version", pa.int64()),
            ("mu", pa.float64()),
            ("sigma", pa.float64()),
            ("note", pa.string()),
        ]
    )
    with pq.ParquetWriter(data, schema) as writer:
        for start in range(0, rows, 50):
            ids = list(range(start, start + 50))
            writer.write_table(
                pa.table(
                    {
                        "id": ids,
                        "seed": ids,
                        "seed_version": [2] * 50,
                        "mu": [0.0] * 50,
                        "sigma": [1.0] * 50,
                        "note": [f"{i:06d}" + "x" * width for i in ids],
                    },
                    schema=schema,
                )
            )
    in_memory = rows * width
    out = tmp_path / "out"
    # A fresh parent between pytest and the job: RUSAGE_CHILDREN counts every child this
    # process ever waited for (earlier tests' servers included), the wrapper's only the job's.
    wrapper = (
        "import resource, subprocess, sys; "
        "code = subprocess.run(sys.argv[1:]).returncode; "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
        "sys.exit(code)"
    )
    job = subprocess.run(
        [
            sys.executable,
            "-c",
            wrapper,
            sys.executable,
            "-m",
            "catwalk",
            "score",
            "--no-install",
            "-m",
            str(EXAMPLES / "rng"),
            "--input",
            str(data),
            "--output",
            str(out),
            "--keep",
            "id",
            "--keep",
            "note",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert job.returncode == 0, job.stderr
    # The largest of the job's processes (the command, its workers), in bytes.
    peak = int(job.stderr.splitlines()[-1]) * 1024
    assert peak < in_memory * 0.45, f"peak RSS {peak >> 20} MB for {in_memory >> 20} MB"
    assert f"{rows} row(s), no errors" in job.stderr
    assert pq.ParquetFile(out / "part-00000.parquet").metadata.num_rows == rows
