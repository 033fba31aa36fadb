"""catwalk's own distribution: catwalk-serve, built by the standard tools (defect 1).

"catwalk" on PyPI is an unrelated 2009 TurboGears project (Catwalk 2.0.2, with an old
setup.py): ``pip install catwalk`` would run someone else's code. catwalk is distributed as
``catwalk-serve`` (import name and command unchanged). The sdist and wheel are built by
``python -m build`` and checked by ``twine check --strict``; the wheel installs into a fresh
virtual environment from this folder alone, under the documented requirement; and nothing in
the templates, docs or scripts names a requirement that would resolve to the other project.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from ci_pipelines import ROOT

from catwalk import DISTRIBUTION, __version__

pytestmark = pytest.mark.slow

#: Where users read how to install catwalk: every file of these, the templates, and catwalk's
#: own messages (an error that says what to pip install).
DOCUMENTED = [
    "README.md", "CONTRIBUTING.md", "docs", "ci", "tutorials", "scripts", "Dockerfile", "src",
]  # fmt: skip
#: A pip requirement naming the PyPI project "catwalk" (not catwalk-serve).
OTHER_PROJECT = re.compile(
    r"pip3?\s+(?:install|download)\b[^\n|;&`]*?(?<![\w./-])catwalk(?![\w-]|'s\b)"
    r"|(?<![\w./-])catwalk\[\w"
    r"|(?<![\w-])catwalk\s*(?:==|>=|~=|<=)"
    r"|CATWALK_PACKAGE"
)


def test_sdist_and_wheel_are_catwalk_serve_and_pass_twine(dist: Path) -> None:
    names = sorted(p.name for p in dist.iterdir())
    assert names == [
        f"catwalk_serve-{__version__}-py3-none-any.whl",
        f"catwalk_serve-{__version__}.tar.gz",
    ]
    check = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("PASSED") == 2

    wheel = zipfile.ZipFile(dist / names[0])
    info = f"catwalk_serve-{__version__}.dist-info"
    metadata = Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
    assert metadata["Name"] == DISTRIBUTION == "catwalk-serve"
    assert metadata["Version"] == __version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert "Installing catwalk" in (metadata.get_payload() or "")  # the README, as on PyPI
    entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert "catwalk = catwalk.cli:main" in entry_points
    top = {name.split("/")[0] for name in wheel.namelist()}
    assert top == {"catwalk", info}  # the import name stays catwalk; nothing else ships
    assert "catwalk/image/templates/Dockerfile.j2" in wheel.namelist()

    with tarfile.open(dist / names[1]) as sdist:
        members = {m.name.split("/", 1)[-1] for m in sdist.getmembers()}
    assert {"pyproject.toml", "README.md", "src/catwalk/__init__.py"} <= members


def test_the_documented_requirement_installs_this_project(dist: Path, tmp_path: Path) -> None:
    """``pip install catwalk-serve==<version>`` (only this folder as the index) installs this
    wheel, whose ``catwalk`` command is this catwalk."""
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--find-links", str(dist), f"{DISTRIBUTION}=={__version__}"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    shown = subprocess.run(
        [str(python), "-m", "pip", "show", "--files", DISTRIBUTION],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert f"Version: {__version__}" in shown.stdout
    assert "catwalk/cli.py" in shown.stdout
    version = subprocess.run(
        [str(env / "bin" / "catwalk"), "--version"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"catwalk, version {__version__}"
    # The runtime pins of a model's pip run name this distribution, not PyPI's "catwalk".
    pins = subprocess.run(
        [str(python), "-c", "from catwalk.requirements import runtime_constraints as r; "
         "print(sorted(r()))"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "'catwalk-serve'" in pins.stdout and "'catwalk'" not in pins.stdout, pins


def documented_files() -> list[Path]:
    files: list[Path] = []
    for entry in DOCUMENTED:
        path = ROOT / entry
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += [
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix not in (".pyc", ".so")
                # pip's own build output (an editable install's PKG-INFO copies the README)
                and not any(part.endswith(".egg-info") for part in p.parts)
            ]
    return files


def test_no_doc_or_template_names_the_other_catwalk() -> None:
    found = []
    for path in documented_files():
        text = path.read_text(errors="replace")
        for match in OTHER_PROJECT.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{path.relative_to(ROOT)}:{line}: {match.group()}")
    assert not found, "requirements that resolve to PyPI's unrelated 'catwalk':\n" + "\n".join(
        found
    )
    # catwalk's own code reads its metadata by its distribution name.
    by_old_name = re.compile(r"""metadata\.(version|requires|distribution)\(["']catwalk["']""")
    for path in (ROOT / "src" / "catwalk").rglob("*.py"):
        assert not by_old_name.search(path.read_text()), path


BAD = [
    "pip install catwalk",
    "pip install -U catwalk",
    "python -m pip install 'catwalk'",
    "catwalk==0.1.0",
    "CATWALK_PACKAGE: catwalk",
    "pip download --no-deps catwalk",
    "pip install 'catwalk[sbom]'",
]
GOOD = [
    "pip install catwalk-serve",
    "pip install catwalk-serve==0.1.0",
    "pip install -e '.[dev]'",
    "catwalk test-model",
    "pip install 'catwalk-serve[sbom]'",
    "pip install ./catwalk_serve-0.1.0-py3-none-any.whl",
    "pip install -r, under constraints pinning catwalk's own dependencies",
]


def test_the_check_catches_the_other_catwalk() -> None:
    assert [bad for bad in BAD if not OTHER_PROJECT.search(bad)] == []
    assert [good for good in GOOD if OTHER_PROJECT.search(good)] == []


def test_every_pinned_version_is_this_version() -> None:
    """A release bumps catwalk/__init__.py's __version__ and every catwalk-serve==X pin with it
    (docs/releasing in README: the templates install the version that matches the base image)."""
    stale = []
    for path in documented_files():
        for version in re.findall(r"catwalk-serve==([\w.+-]+)", path.read_text(errors="replace")):
            if version.rstrip(".") != __version__ and "<" not in version:
                stale.append(f"{path.relative_to(ROOT)}: catwalk-serve=={version}")
    assert not stale, stale
