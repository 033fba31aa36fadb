"""Model versions: PEP 440 ordering, and which version of a name is its default.

``packaging.version.Version`` orders PEP 440 versions, which covers semantic versions too:
``1.10`` is above ``1.9``, ``2.0rc1`` below ``2.0`` and above ``1.9``; string order would get
both wrong. A name's default version is ``models.versions.NAME`` when set, else its only
version, else its highest final release (pre-releases such as ``2.0rc1`` only when the name
has nothing else, as pip picks versions), which needs every version to be PEP 440.
"""

from __future__ import annotations

from collections.abc import Iterable

from packaging.version import InvalidVersion, Version


def pep440(version: str) -> Version | None:
    """The parsed version, or None when ``version`` is not PEP 440."""
    try:
        return Version(version)
    except InvalidVersion:
        return None


def sort_versions(versions: Iterable[str]) -> list[str]:
    """PEP 440 versions in ascending order, the others after them in string order."""
    parsed = [(pep440(v), v) for v in versions]
    good = sorted((p, v) for p, v in parsed if p is not None)
    return [v for _, v in good] + sorted(v for p, v in parsed if p is None)


def default_version(name: str, versions: Iterable[str], chosen: str | None) -> str:
    """The default version of ``name`` among ``versions``; raises ValueError saying why not.

    ``chosen`` is ``models.versions.NAME`` (None when not set).
    """
    known = sort_versions(versions)
    if chosen is not None:
        if chosen not in known:
            raise ValueError(
                f"models.versions.{name}: {chosen!r} is not loaded (versions of {name}: "
                f"{', '.join(known)})"
            )
        return chosen
    if len(known) == 1:
        return known[0]
    odd = [v for v in known if pep440(v) is None]
    if odd:
        raise ValueError(
            f"{name} has versions {', '.join(known)}, and {', '.join(odd)} is not a PEP 440 "
            f"version, so they cannot be ordered: set models.versions.{name} in application.yml"
        )
    final = [v for v in known if not Version(v).is_prerelease]
    return (final or known)[-1]
