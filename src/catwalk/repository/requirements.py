"""Every model's ``requirements.txt`` in one environment, conflicts named before installing.

A repository's models share one environment (one server process loads them all), so their
requirements are installed together: :func:`merged_file_text` includes each model's file
(``-r``), and pip or uv resolves them as one. Before anything installs, :func:`check_conflicts`
compares what the models ask for, line by line: two requirements of one distribution that no
version satisfies together (``numpy==1.26.4`` and ``numpy>=2``), two different URLs, or a
requirement that would replace one of catwalk's own dependencies, each reported naming both
files and lines. The check knows only the versions the lines write (no index is asked), so it
catches what can be seen on the page; the resolver reports the rest when it installs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from catwalk.errors import RequirementsError
from catwalk.repository.discover import Repository
from catwalk.requirements import Kept, ensure_requirements, runtime_constraints
from catwalk.spec import REQUIREMENTS_FILE


@dataclass(frozen=True)
class Line:
    """One requirement of one model: where it is written, and what it asks."""

    file: Path
    number: int
    text: str
    requirement: Requirement

    @property
    def where(self) -> str:
        return f"{self.file}:{self.number} ({self.text!r})"


def requirement_lines(repository: Repository) -> list[Line]:
    """The requirements of every model that apply here (markers evaluated), in file order."""
    found: list[Line] = []
    for entry in repository.entries:
        file = entry.folder / REQUIREMENTS_FILE
        if not file.is_file():
            continue
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RequirementsError(f"{file}: cannot be read ({exc})") from None
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split(" #", 1)[0].strip()
            if not line or line.startswith(("#", "-")):
                continue  # options and includes: the resolver's business
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            if requirement.marker is not None and not requirement.marker.evaluate():
                continue
            found.append(Line(file, number, line, requirement))
    return found


def check_conflicts(repository: Repository, keep: dict[str, Kept] | None = None) -> None:
    """Raise RequirementsError naming every pair of lines that cannot hold together."""
    keep = runtime_constraints() if keep is None else keep
    problems: list[str] = []
    by_name: dict[str, list[Line]] = {}
    for line in requirement_lines(repository):
        name = canonicalize_name(line.requirement.name)
        for other in by_name.get(name, []):
            if other.file != line.file and not _together(other.requirement, line.requirement):
                problems.append(
                    f"{line.where} conflicts with {other.where}: no version of "
                    f"{line.requirement.name} satisfies both"
                )
        by_name.setdefault(name, []).append(line)
        kept = keep.get(name)
        if kept is not None and (
            line.requirement.url
            or not line.requirement.specifier.contains(kept.version, prereleases=True)
        ):
            problems.append(
                f"{line.where} conflicts with catwalk's own dependency {kept.needed_as} "
                f"(installed: {kept.name} {kept.version})"
            )
    if problems:
        raise RequirementsError(
            "the models' requirements conflict (they are installed into one environment); "
            "nothing was installed:\n" + "\n".join(f"  {p}" for p in problems)
        )


def merged_file_text(repository: Repository) -> str:
    """A requirements file that installs every model's requirements together."""
    lines = ["# catwalk: the requirements of every model of " + str(repository.root)]
    for entry in repository.entries:
        file = entry.folder / REQUIREMENTS_FILE
        if file.is_file():
            lines.append(f"-r {file}")
    return "\n".join(lines) + "\n"


def _together(a: Requirement, b: Requirement) -> bool:
    """False when no version can satisfy both ``a`` and ``b`` (as far as their text shows)."""
    if a.url or b.url:
        return a.url == b.url or not (a.url and b.url)
    return _overlap(a.specifier, b.specifier)


def _overlap(a: SpecifierSet, b: SpecifierSet) -> bool:
    """Whether some version satisfies both sets: tried on the versions they write, and just
    above each (``>1`` with ``<1.5`` meet at ``1.0.0.1``). Wildcards and ``===`` count as
    meeting: nothing on the page rules them out."""
    both = a & b
    if not str(both):
        return True
    candidates: list[Version] = []
    for spec in both:
        if spec.operator == "===" or spec.version.endswith(".*"):
            return True
        try:
            version = Version(spec.version)
        except InvalidVersion:
            return True
        candidates.append(version)
        candidates.append(Version(".".join(map(str, (*version.release, 0, 0, 1)))))
        if spec.operator in ("<", "<="):
            candidates.append(Version("0"))
    return any(both.contains(v, prereleases=True) for v in candidates)


def ensure_repository_requirements(repository: Repository) -> str:
    """Install every model's requirements into this interpreter, together (the ``local``
    environment manager's way for a repository); conflicts are refused first."""
    from catwalk.repository.image import merged_requirements

    folder = merged_requirements(repository.root, repository)  # conflicts refused first
    if not any((entry.folder / REQUIREMENTS_FILE).is_file() for entry in repository.entries):
        return "no model lists requirements"
    return ensure_requirements(folder)
