"""``catwalk predict`` through click's runner (and once on a real terminal, for the bar)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import catwalk
from catwalk.cli import cli
from catwalk.scoring import FRAME_CHUNK

ROOT = Path(__file__).resolve().parents[1]
RNG = ROOT / "example_models" / "rng"
DATAFRAME = ROOT / "example_models" / "dataframe"
SERVER_MODELS = ROOT / "tests" / "server" / "models"
MODELS = ROOT / "tests" / "models"
RNG_INPUT = {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}
RNG_SCORE = 0.9417154046806644
CATWALK_PACKAGE = Path(catwalk.__file__).parent


def run(*args: str, stdin: bytes | str | None = None) -> Result:
    return CliRunner().invoke(cli, ["predict", *args], input=stdin, catch_exceptions=False)


def lines(*values: object) -> str:
    return "".join(json.dumps(v) + "\n" for v in values)


def test_one_input_prints_its_output() -> None:
    result = run("-m", str(RNG), "--input", json.dumps(RNG_INPUT))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"score": RNG_SCORE}
    assert result.stdout.count("\n") == 1


def test_one_bad_input_is_a_clean_error() -> None:
    bad = run("-m", str(RNG), "--input", '{"seed": 0, "seed_version": 3, "mu": 0, "sigma": 1}')
    assert bad.exit_code == 1
    assert bad.stdout == ""
    assert "Error: input.seed_version: 3 is not one of [1, 2]" in bad.stderr
    broken = run("-m", str(RNG), "--input", "{seed")
    assert broken.exit_code == 1
    assert "Error: not valid JSON" in broken.stderr
    raising = run("-m", str(SERVER_MODELS / "raises"), "--input", '{"x": 1, "label": "boom"}')
    assert raising.exit_code == 1
    assert "Error: predict raised ValueError: cannot predict 'boom'" in raising.stderr
    assert 'raise ValueError(f"cannot predict' in raising.stderr  # the user's traceback
    # ... without catwalk's frames (its package folder, not any path holding "catwalk/": the
    # user's clone may well live in one)
    assert f'File "{CATWALK_PACKAGE}' not in raising.stderr
    both = run("-m", str(RNG), "--input", "{}", "--input-file", "-")
    assert both.exit_code == 2 and "give --input or --input-file, not both" in both.output


def test_json_lines_from_stdin_give_one_output_per_line_in_order() -> None:
    inputs = [dict(RNG_INPUT, seed=seed) for seed in range(50)]
    result = run("-m", str(RNG), stdin=lines(*inputs))
    assert result.exit_code == 0, result.output
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(outputs) == 50
    assert outputs[0] == {"score": RNG_SCORE}
    single = run("-m", str(RNG), "--input", json.dumps(inputs[17]))
    assert outputs[17] == json.loads(single.stdout)
    assert "predict: 50 line(s) read in " in result.stderr


def test_input_and_output_files(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(lines(RNG_INPUT, dict(RNG_INPUT, seed=1, mu=10.0, sigma=2.5)))
    result = run("-m", str(RNG), "--input-file", str(source), "--output", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert [json.loads(line) for line in target.read_text().splitlines()] == [
        {"score": RNG_SCORE},
        {"score": 13.220461882888657},
    ]


def test_a_bad_line_stops_by_default_after_the_good_ones(tmp_path: Path) -> None:
    text = lines(RNG_INPUT) + "not json\n" + lines(RNG_INPUT)
    result = run("-m", str(RNG), stdin=text)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ['{"score":0.9417154046806644}']
    assert "line 2: not valid JSON" in result.stderr
    assert "predict: 2 line(s) read, 1 failed" in result.stderr


def test_on_error_skip_scores_the_rest_and_keeps_lines_aligned() -> None:
    text = (
        lines({"x": 1, "label": "a"})
        + "[1, 2\n"
        + lines({"x": "one", "label": "b"}, {"x": 2, "label": "boom"})
        + "\n"
        + lines({"x": 3, "label": "c"})
    )
    result = run("-m", str(SERVER_MODELS / "raises"), "--on-error", "skip", stdin=text)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        '{"x":1,"label":"a"}',
        "null",
        "null",
        "null",
        "null",
        '{"x":3,"label":"c"}',
    ]
    errors = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert errors == [
        "line 2: not valid JSON (unexpected end of data: line 1 column 6 (char 5))",
        "line 3: input.x: \"one\" is not of type 'number'",
        "line 4: predict raised ValueError: cannot predict 'boom'",
        "line 5: empty line (expected one JSON input per line)",
    ]
    assert "predict: 6 line(s) read, 4 failed" in result.stderr


def test_outputs_are_validated_and_normalised_as_the_server_does() -> None:
    model = str(SERVER_MODELS / "bad_output")
    text = lines(*({"x": 1, "label": label} for label in ("wrong_type", "inf", "big", "ok")))
    result = run("-m", model, "--on-error", "skip", stdin=text)
    assert result.stdout.splitlines()[2:] == [
        '{"x":1180591620717411303424,"label":"big"}',
        '{"x":1,"label":"ok"}',
    ]
    assert "line 1: output.x: \"not a number\" is not of type 'number'" in result.stderr
    assert "line 2: output.x: inf cannot be represented in JSON" in result.stderr


def test_integers_beyond_64_bits_stay_exact() -> None:
    n = 2**70 + 1
    result = run("-m", str(SERVER_MODELS / "big_ints"), "--input", f'{{"n": {n}}}')
    assert result.exit_code == 0, result.output
    assert str(n) in result.stdout


def test_dataframe_models_take_one_record_per_line() -> None:
    record = {"x1": 0.5, "x2": -1.0, "x3": 2.0}
    result = run("-m", str(DATAFRAME), stdin=lines(record, record))
    assert result.exit_code == 0, result.output
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(outputs) == 2 and outputs[0] == outputs[1]
    assert 0 < outputs[0]["probability"] < 1


def test_the_models_prints_go_to_stderr() -> None:
    result = run("-m", str(MODELS / "prints"), stdin=lines({"x": 1, "label": "a"}))
    assert result.exit_code == 0, result.output
    assert result.stdout == '{"x":1,"label":"a"}\n'
    for said in ("loading Prints", "constructing Prints", "predicting a"):
        assert said in result.stderr


def test_a_broken_model_folder_is_a_clean_error(tmp_path: Path) -> None:
    result = run("-m", str(tmp_path / "absent"), "--input", "{}")
    assert result.exit_code == 1
    assert "model folder does not exist" in result.stderr
    assert "Traceback" not in result.output


def test_requirements_are_installed_first_unless_told_not_to() -> None:
    record = '{"x1": 0.5, "x2": -1.0, "x3": 2.0}'
    result = run("-m", str(DATAFRAME), "--input", record)
    assert "requirements: 2 requirement(s) already satisfied" in result.stderr
    quiet = run("-m", str(DATAFRAME), "--no-install", "--input", record)
    assert "requirements:" not in quiet.stderr and quiet.exit_code == 0


@pytest.mark.slow
def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    """With stderr a terminal and a file of known size, click's bar is drawn."""
    source = tmp_path / "in.jsonl"
    source.write_text(lines(*([RNG_INPUT] * 2000)))
    main, replica = pty.openpty()
    command = [sys.executable, "-m", "catwalk", "predict", "--no-install", "-m", str(RNG)]
    command += ["--input-file", str(source), "--output", str(tmp_path / "out.jsonl")]
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=replica,
    )
    os.close(replica)
    seen = b""
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(60) == 0
    os.close(main)
    text = seen.decode("utf-8", "replace")
    assert "scoring" in text and "100%" in text, text
    assert "predict: 2000 line(s) read" in text
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2000


def test_a_batching_model_gets_chunks_of_its_max_batch_size() -> None:
    result = run("-m", str(MODELS / "batch_printer"), stdin=lines(*({"x": i} for i in range(10))))
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"y": 2.0 * i} for i in range(10)
    ]
    calls = [line for line in result.stderr.splitlines() if line.startswith(("batch", "single"))]
    assert calls == ["batch of 4", "batch of 4", "batch of 2"]


def test_a_failed_batch_is_scored_line_by_line_to_name_the_bad_line() -> None:
    inputs = [{"x": 1}, {"x": "one"}, {"x": 13}, {"x": 4}, {"x": 5}]
    result = run("-m", str(MODELS / "batch_printer"), "--on-error", "skip", stdin=lines(*inputs))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ['{"y":2.0}', "null", "null", '{"y":8.0}', '{"y":10.0}']
    errors = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert errors == [
        "line 2: input.x: \"one\" is not of type 'number'",
        "line 3: predict raised ValueError: 13 is unlucky",
    ]
    calls = [line for line in result.stderr.splitlines() if line.startswith(("batch", "single"))]
    # The first chunk's valid lines (1, 3, 4) failed together, then went one by one.
    assert calls == ["batch of 3", "single", "single", "single", "batch of 1"]


def test_the_sklearn_forest_batched_gives_what_one_by_one_gives() -> None:
    forest = ROOT / "example_models" / "forest"
    test_data = json.loads((forest / "test_data.json").read_text())
    inputs = [row["X"] for row in test_data]
    result = run("-m", str(forest), "--no-install", stdin=lines(*inputs))
    assert result.exit_code == 0, result.output
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert outputs == [row["y"] for row in test_data]
    single = run("-m", str(forest), "--no-install", "--input", json.dumps(inputs[3]))
    assert json.loads(single.stdout) == outputs[3]


def test_a_dataframe_model_is_scored_in_chunks_without_batching() -> None:
    # Issue 17: one DataFrame per line made 10,000 lines of a scikit-learn pipeline take 31 s.
    count = FRAME_CHUNK + 5
    result = run(
        "-m", str(MODELS / "frame_printer"), stdin=lines(*({"x": i} for i in range(count)))
    )
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"y": 2.0 * i} for i in range(count)
    ]
    calls = [line for line in result.stderr.splitlines() if line.startswith("frame of")]
    assert calls == [f"frame of {FRAME_CHUNK}", "frame of 5"]


def test_a_dataframe_chunk_that_fails_names_its_bad_line() -> None:
    inputs = [{"x": 1}, {"x": -1}, {"x": 4}]
    result = run("-m", str(MODELS / "frame_printer"), "--on-error", "skip", stdin=lines(*inputs))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ['{"y":2.0}', "null", '{"y":8.0}']
    assert "line 2: predict raised ValueError: x must not be negative" in result.stderr


@pytest.mark.slow  # starts a process per case
@pytest.mark.parametrize(("omp", "threads"), [("", 1), ("2", 2)])
def test_row_by_row_scoring_runs_native_pools_at_one_thread(omp: str, threads: int) -> None:
    # Issue 17: waking an OpenMP pool for each single row made LightGBM 11x slower.
    model = Path(__file__).parent / "server" / "production" / "models" / "pool_sizes"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MODEL_PATH")}
    if omp:
        env["OMP_NUM_THREADS"] = omp  # who sets it keeps it
    done = subprocess.run(
        [sys.executable, "-m", "catwalk", "predict", "--no-install", "-m", str(model)],
        input="{}\n{}\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for line in done.stdout.splitlines():
        pools = json.loads(line)["pools"]
        assert {p["api"] for p in pools} >= {"openmp"}
        assert all(p["threads"] == threads for p in pools if p["api"] == "openmp"), pools
