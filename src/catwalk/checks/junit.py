"""The check commands' steps as JUnit XML, the test-report format GitLab, Jenkins and GitHub read.

One ``<testsuite>`` per :class:`~catwalk.checks.report.Report` (``test`` writes two:
test-model and test-server), one ``<testcase>`` per step. The case's name is the step's name
as its line prints it (``2. model.yml``, ``POST /predict: correlation_id echoed``), without the
detail, which changes from run to run (paths, ports, ids) and would break a CI system's
history of the test; the detail is the case's ``<system-out>``. A failed step is a
``<failure>`` whose ``message`` is the detail's first line and whose text is all of it (rows,
fields, expected vs got, tracebacks) and the server's log printed after it; a step skipped, or
never reached because an earlier one failed, is ``<skipped>``; an error that ended the command
is an ``<error>``. Only the attributes of the common JUnit schema (Jenkins' junit-10.xsd, which
GitLab and the GitHub report actions also read) are written.
"""

from __future__ import annotations

import os
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from catwalk.checks.report import Report, Step
from catwalk.errors import ConfigError

# Characters XML 1.0 cannot hold at all (even escaped): a model's output may contain them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NOT_REACHED = "not run: an earlier step failed"


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _case(suite: ET.Element, classname: str, step: Step, later: list[str]) -> None:
    """One step's ``<testcase>``; ``later`` is what was printed after it (logs of a failure)."""
    case = ET.SubElement(
        suite,
        "testcase",
        name=_text(step.name),
        classname=classname,
        time=_seconds(step.seconds),
    )
    first = step.detail.splitlines()[0] if step.detail else ""
    details = "\n".join([step.detail, *step.output]).strip("\n")
    if step.status in ("FAIL", "ERROR"):
        # A server's or container's log is printed once the server is stopped, steps later.
        details = "\n".join([details, *later]).strip("\n")
    if step.status == "FAIL":
        failure = ET.SubElement(case, "failure", message=_text(first), type="CheckFailed")
        failure.text = _text(details)
    elif step.status == "ERROR":
        error = ET.SubElement(case, "error", message=_text(first), type="CatwalkError")
        error.text = _text(details)
    elif step.status == "SKIP":
        ET.SubElement(case, "skipped", message=_text(first))
    if details and step.status in ("PASS", "SKIP"):
        ET.SubElement(case, "system-out").text = _text(details)


def render(reports: Sequence[Report], timestamp: datetime | None = None) -> bytes:
    """The JUnit XML document (UTF-8 bytes with the XML declaration) for ``reports``."""
    stamp = (timestamp or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S")
    root = ET.Element("testsuites", name="catwalk")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    time_total = 0.0
    for report in reports:
        steps = [
            *report.records,
            *(Step("SKIP", n, _NOT_REACHED, 0.0) for n in report.not_reached()),
        ]
        counts = {
            "tests": len(steps),
            "failures": sum(s.status == "FAIL" for s in steps),
            "errors": sum(s.status == "ERROR" for s in steps),
            "skipped": sum(s.status == "SKIP" for s in steps),
        }
        took = sum(s.seconds for s in steps)
        attributes = {key: str(value) for key, value in counts.items()}
        attributes.update(time=_seconds(took), timestamp=stamp, hostname=socket.gethostname())
        suite = ET.SubElement(root, "testsuite", {"name": report.title, **attributes})
        classname = f"catwalk.{report.title}"
        for i, step in enumerate(steps):
            _case(suite, classname, step, [text for s in steps[i + 1 :] for text in s.output])
        for key in totals:
            totals[key] += counts[key]
        time_total += took
    root.attrib.update({key: str(value) for key, value in totals.items()})
    root.set("time", _seconds(time_total))
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def write(path: str | Path, reports: Sequence[Report]) -> None:
    """Write the report file (its folder is created); ConfigError when it cannot be written."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temporary.write_bytes(render(reports))
        temporary.replace(target)  # a CI job never reads half a report
    except OSError as exc:
        raise ConfigError(
            f"--junit-xml {path}: cannot be written ({exc.strerror or exc})"
        ) from None
