"""``--junit-xml`` on the check commands: JUnit XML that CI systems (and junitparser) read.

Every report is parsed with junitparser (what CI tooling in Python uses) and validated against
tests/data/junit.xsd (the Jenkins/GitLab element and attribute set) with xmlschema.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from click.testing import CliRunner, Result
from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from catwalk.checks.junit import render
from catwalk.checks.model_checks import MODEL_STEPS
from catwalk.checks.report import Report
from catwalk.cli import cli
from requires import unavailable

ROOT = Path(__file__).resolve().parents[1]
RNG = ROOT / "example_models" / "rng"
MODELS = ROOT / "tests" / "models"
SCHEMA = xmlschema.XMLSchema(ROOT / "tests" / "data" / "junit.xsd")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def parse(path: Path) -> list[TestSuite]:
    SCHEMA.validate(str(path))  # raises with the offending element when invalid
    xml = JUnitXml.fromfile(str(path))
    return list(xml)


def cases(suite: TestSuite) -> dict[str, TestCase]:
    return {case.name: case for case in suite}


def outcome(case: TestCase) -> Any:
    return case.result[0] if case.result else None


def test_a_passing_test_model_is_one_suite_of_seven_passed_cases(tmp_path: Path) -> None:
    report = tmp_path / "reports" / "test-model.xml"  # the folder is created
    result = run("test-model", "-m", str(RNG), "--junit-xml", str(report))
    assert result.exit_code == 0, result.output
    [suite] = parse(report)
    assert (suite.name, suite.tests, suite.failures, suite.errors, suite.skipped) == (
        "test-model",
        7,
        0,
        0,
        0,
    )
    assert [case.name for case in suite] == list(MODEL_STEPS)
    for case in suite:
        assert case.is_passed and case.classname == "catwalk.test-model"
        assert case.time >= 0
    assert cases(suite)["2. model.yml"].system_out == "RNGModel 0.0.1 (PYTHON_DICT)"


def test_failures_carry_the_message_and_the_details(tmp_path: Path) -> None:
    report = tmp_path / "out.xml"
    result = run("test-model", "-m", str(MODELS / "wrong_predictions"), "--junit-xml", str(report))
    assert result.exit_code == 1  # unchanged by the report
    [suite] = parse(report)
    assert (suite.tests, suite.failures) == (7, 1)
    failure = outcome(cases(suite)["7. predictions"])
    assert isinstance(failure, Failure)
    assert failure.message == "row 1: x: expected 2, got 2.5"
    assert "row 2: x: expected 3, got 3.5" in failure.text


def test_steps_not_reached_are_skipped(tmp_path: Path) -> None:
    report = tmp_path / "out.xml"
    result = run("test-model", "-m", str(MODELS / "missing_email"), "--junit-xml", str(report))
    assert result.exit_code == 1
    assert "[SKIP]" not in result.output  # the console shows only what ran
    [suite] = parse(report)
    assert (suite.tests, suite.failures, suite.skipped) == (7, 1, 5)
    found = cases(suite)
    failure = outcome(found["2. model.yml"])
    assert isinstance(failure, Failure) and failure.message == "1 problem"
    assert "model.yml: contact.email: required field missing" in failure.text
    for name in MODEL_STEPS[2:]:
        skipped = outcome(found[name])
        assert isinstance(skipped, Skipped)
        assert skipped.message == "not run: an earlier step failed"


def test_a_model_traceback_is_in_the_failure(tmp_path: Path) -> None:
    report = tmp_path / "out.xml"
    run("test-model", "-m", str(MODELS / "raises_in_predict"), "--junit-xml", str(report))
    [suite] = parse(report)
    failure = outcome(cases(suite)["7. predictions"])
    assert failure.message == "row 0: predict raised ValueError: cannot predict a"
    assert "Traceback (most recent call last)" in failure.text
    assert 'raise ValueError("cannot predict " + X["label"])' in failure.text


@pytest.mark.slow
def test_test_server_cases_and_the_server_log_of_a_failure(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.xml", tmp_path / "bad.xml"
    result = run("test-server", "-m", str(RNG), "--debug", "--junit-xml", str(good))
    assert result.exit_code == 0, result.output
    [suite] = parse(good)
    # 18 steps of catwalk's own REST contract and 7 of the Open Inference Protocol (/v2).
    assert (suite.name, suite.tests, suite.failures) == ("test-server", 25, 0)
    assert len([case for case in suite if "/v2" in case.name]) == 7
    names = [case.name for case in suite]
    assert names[:7] == [*MODEL_STEPS[:6], "7. server starts"]
    assert "POST /predict: correlation_id echoed" in names and names[-1] == "8. server stops"

    folder = str(MODELS / "wrong_predictions")
    result = run("test-server", "-m", folder, "--debug", "--junit-xml", str(bad))
    assert result.exit_code == 1
    [suite] = parse(bad)
    failure = outcome(cases(suite)["POST /predict: test data"])
    assert failure.message == "row 1: output.x: expected 2, got 2.5"
    # What was printed after the failing step (the server's log) belongs to it.
    assert "--- server log (last lines) ---" in failure.text


def test_an_error_that_ends_the_command_is_an_error_case(tmp_path: Path) -> None:
    config = tmp_path / "application.yml"
    config.write_text("server: [not, a, mapping]\n")
    report = tmp_path / "out.xml"
    result = run(
        "test-server", "-m", str(RNG), "--server-config", str(config), "--junit-xml", str(report)
    )
    assert result.exit_code == 1
    assert "Error: " in result.output
    [suite] = parse(report)
    assert suite.errors == 1
    error = outcome(cases(suite)["catwalk error"])
    assert isinstance(error, Error) and "application.yml" in error.message


def test_test_writes_two_suites_and_skips_test_server_after_a_failure(tmp_path: Path) -> None:
    report = tmp_path / "out.xml"
    result = run("test", "-m", str(MODELS / "missing_email"), "--junit-xml", str(report))
    assert result.exit_code == 1
    model_suite, server_suite = parse(report)
    assert (model_suite.name, server_suite.name) == ("test-model", "test-server")
    [case] = list(server_suite)
    assert case.name == "test-server"
    assert isinstance(outcome(case), Skipped)
    assert outcome(case).message == "not run: test-model failed"


def test_an_unwritable_report_path_is_a_clean_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run("test-model", "-m", str(RNG), "--junit-xml", str(blocker / "out.xml"))
    assert result.exit_code == 1
    assert f"Error: --junit-xml {blocker / 'out.xml'}: cannot be written" in result.output
    assert "Traceback" not in result.output


@pytest.mark.docker
def test_test_image_writes_its_report(tmp_path: Path) -> None:
    """An image that was never built: the failing step is reported; needs a Docker engine."""
    if not os.path.exists("/var/run/docker.sock"):
        unavailable("no Docker engine: bash scripts/ci-setup.sh starts one")
    folder = tmp_path / "devex-never-built"
    assert run("init", folder.name, "--path", str(tmp_path)).exit_code == 0
    report = tmp_path / "out.xml"
    result = run("test-image", "-m", str(folder), "--junit-xml", str(report))
    assert result.exit_code == 1
    [suite] = parse(report)
    assert suite.name == "test-image"
    failure = outcome(cases(suite)["image"])
    assert isinstance(failure, Failure)
    assert "not found locally" in failure.message


def test_render_keeps_the_xml_valid_whatever_the_text() -> None:
    """Control characters a model may print are replaced; markup is escaped."""
    report = Report("test-model", echo=lambda _: None)
    report.fail("7. predictions", "row 0: got '\x00\x1b[31m<b>&</b>'")
    report.echo("log line with \x07 bell")
    document = render([report])
    path_text = document.decode("utf-8")
    assert "\x00" not in path_text and "\x07" not in path_text
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in path_text
    SCHEMA.validate(path_text)


@pytest.mark.slow
def test_a_passing_test_has_nothing_skipped(tmp_path: Path) -> None:
    """The planned step names match the ones the checks print (no phantom skipped steps)."""
    report = tmp_path / "out.xml"
    result = run("test", "-m", str(RNG), "--debug", "--junit-xml", str(report))
    assert result.exit_code == 0, result.output
    model_suite, server_suite = parse(report)
    for suite in (model_suite, server_suite):
        assert (suite.failures, suite.errors, suite.skipped) == (0, 0, 0), suite.name
    assert server_suite.tests == 19  # 12 of the REST contract, 7 of /v2
