"""``application.yml``'s ``models:`` section: which model of a repository answers what.

```yaml
models:
  default: churn             # the name a request without ``model`` reaches
  versions:                  # a name's default version (else the highest by PEP 440)
    churn: "2.0"
  traffic:                   # canary: requests naming no version, split by weight
    churn: {"1.0": 90, "2.0": 10}
  shadow:                    # each request for churn also runs on 3.0, after the answer
    churn: "3.0"
```
Only the shape is checked here (names and versions are strings, weights whole numbers
summing to 100); whether the names and versions are loaded is checked against the
repository when the server starts (:mod:`catwalk.repository.routing`). Versions must be
quoted: YAML reads an unquoted ``1.10`` as the number 1.1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MODELS_KEYS = ("default", "versions", "traffic", "shadow")


@dataclass(frozen=True)
class ModelsSettings:
    """The parsed ``models:`` section (empty: a single model, or every default)."""

    default: str | None = None
    versions: dict[str, str] = field(default_factory=dict, hash=False)
    traffic: dict[str, dict[str, int]] = field(default_factory=dict, hash=False)
    shadow: dict[str, str] = field(default_factory=dict, hash=False)


def parse_models(section: dict[str, Any], problems: list[str]) -> ModelsSettings:
    """Check the ``models:`` mapping's shape, appending one problem per mistake."""
    for key in section:
        if key not in MODELS_KEYS:
            problems.append(f"models.{key}: unknown key (allowed: {', '.join(MODELS_KEYS)})")
    default = section.get("default")
    if default is not None and not _is_name(default):
        problems.append(f"models.default: must be a model name (a string), got {default!r}")
        default = None
    versions = _versions(section.get("versions"), "models.versions", problems)
    shadow = _versions(section.get("shadow"), "models.shadow", problems)
    traffic: dict[str, dict[str, int]] = {}
    raw = section.get("traffic")
    if raw is not None and not isinstance(raw, dict):
        problems.append("models.traffic: must be a mapping of model name to {version: weight}")
    for name, weights in (raw or {}).items() if isinstance(raw, dict) else ():
        where = f"models.traffic.{name}"
        if not _is_name(name):
            problems.append(f"{where}: a model name must be a string")
            continue
        split = _weights(weights, where, problems)
        if split is not None:
            traffic[name] = split
    return ModelsSettings(
        default=default if isinstance(default, str) else None,
        versions=versions,
        traffic=traffic,
        shadow=shadow,
    )


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _version_problem(value: Any, where: str) -> str | None:
    if isinstance(value, str) and value.strip():
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (
            f'{where}: must be a string; write the version in quotes ("{value}"), because '
            "YAML reads an unquoted version as a number (1.10 becomes 1.1)"
        )
    return f"{where}: must be a version (a string), got {value!r}"


def _versions(value: Any, where: str, problems: list[str]) -> dict[str, str]:
    """``{name: version}``: each name and version a string."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{where}: must be a mapping of model name to version")
        return {}
    found: dict[str, str] = {}
    for name, version in value.items():
        if not _is_name(name):
            problems.append(f"{where}: {name!r} is not a model name (a string)")
            continue
        problem = _version_problem(version, f"{where}.{name}")
        if problem:
            problems.append(problem)
        else:
            found[name] = version
    return found


def _weights(value: Any, where: str, problems: list[str]) -> dict[str, int] | None:
    """``{version: weight}``: whole numbers from 0 to 100 that sum to 100."""
    if not isinstance(value, dict) or not value:
        problems.append(f'{where}: must be a mapping of version to weight, e.g. {{"1.0": 90}}')
        return None
    split: dict[str, int] = {}
    bad = False
    for version, weight in value.items():
        problem = _version_problem(version, f"{where} key {version!r}")
        if problem:
            problems.append(problem)
            bad = True
            continue
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            problems.append(
                f"{where}.{version}: weight must be a whole number 0-100, got {weight!r}"
            )
            bad = True
            continue
        split[version] = weight
    if bad:
        return None
    total = sum(split.values())
    if total != 100:
        problems.append(f"{where}: weights must sum to 100, they sum to {total}")
        return None
    return split
