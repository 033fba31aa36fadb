"""The user's pip configuration, passed on to uv, which ignores it.

A team's index, its mirror and a folder of vendored wheels are set up for pip: ``PIP_*``
variables and ``pip.conf`` files (``pip config list`` shows what is in effect). uv reads
neither, so a builder that only called uv would go to PyPI: for ``torch==2.13.0`` that means
gigabytes of CUDA wheels instead of the CPU wheel on the local disk. pip itself is asked what
is in effect (its own precedence: a ``PIP_*`` variable over the ``[install]`` section over
``[global]``), and each setting is mapped to uv's equivalent. A ``UV_*`` variable the user set
is uv's own configuration: it is left as it is and wins.

Index URLs (which may carry credentials) travel in uv's variables, never on its command line,
where ``ps`` would show them.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: pip's sections in the order it applies them: a later one wins.
_SECTIONS = ("global", "install", ":env:")
_LINE = re.compile(r"^(?P<section>[^.]+)\.(?P<key>[^=]+)=(?P<value>.*)$")
_TRUE = {"1", "true", "yes", "on"}


@dataclass
class UvSettings:
    """uv's arguments and environment that carry the user's pip configuration."""

    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    #: The pip settings that were passed on, for the build's log line and for tests.
    mapped: dict[str, str] = field(default_factory=dict)


def pip_config(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """pip's effective settings for ``pip install``, by option name (``find-links``, ...).

    Asked of pip itself (``python -m pip config list``), so every file pip reads counts, in
    pip's order. Without pip in this interpreter only the ``PIP_*`` variables are read: a user
    without pip configures uv directly (uv.toml, ``UV_*``), which uv reads itself.
    """
    environ = os.environ if environ is None else environ
    if importlib.util.find_spec("pip") is None:
        return _from_variables(environ)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        env={**environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        check=False,
    )
    if proc.returncode != 0:
        return _from_variables(environ)
    return parse_config_list(proc.stdout)


def parse_config_list(text: str) -> dict[str, str]:
    """``pip config list``'s lines (``global.find-links='/opt/wheels'``), merged as pip does."""
    by_section: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        try:
            value = ast.literal_eval(match["value"])
        except (ValueError, SyntaxError):
            value = match["value"]
        by_section.setdefault(match["section"], {})[match["key"]] = str(value)
    merged: dict[str, str] = {}
    for section in _SECTIONS:
        merged.update(by_section.get(section, {}))
    return merged


def _from_variables(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        name[4:].lower().replace("_", "-"): value
        for name, value in environ.items()
        if name.startswith("PIP_") and value
    }


def uv_settings(config: Mapping[str, str], environ: Mapping[str, str] | None = None) -> UvSettings:
    """Map pip's settings to uv's; a ``UV_*`` variable already set wins over pip's."""
    environ = os.environ if environ is None else environ
    out = UvSettings()

    def to_env(key: str, variable: str, value: str) -> None:
        if not environ.get(variable):
            out.env[variable] = value
            out.mapped[key] = config[key]

    def many(key: str) -> list[str]:
        return config.get(key, "").split()

    def flag(key: str) -> bool:
        return config.get(key, "").strip().lower() in _TRUE

    if config.get("index-url"):
        to_env("index-url", "UV_INDEX_URL", config["index-url"].strip())
    if many("extra-index-url"):
        to_env("extra-index-url", "UV_EXTRA_INDEX_URL", " ".join(many("extra-index-url")))
        if not environ.get("UV_INDEX_STRATEGY"):
            # pip takes the best version across every index; uv's default stops at the
            # first index that has the package. Same requirements, same answer as pip.
            out.args += ["--index-strategy", "unsafe-best-match"]
    # pip skips a folder that is not there (with a warning); uv would stop: leave it out.
    for link in many("find-links"):
        if _reachable(link):
            out.args += ["--find-links", link]
            out.mapped["find-links"] = config["find-links"]
    if flag("no-index"):
        out.args.append("--no-index")
        out.mapped["no-index"] = config["no-index"]
    for constraint in many("constraint"):
        out.args += ["--constraint", constraint]
        out.mapped["constraint"] = config["constraint"]
    for host in many("trusted-host"):
        out.args += ["--allow-insecure-host", host]
        out.mapped["trusted-host"] = config["trusted-host"]
    for option in ("only-binary", "no-binary"):
        if config.get(option):
            out.args += [f"--{option}", config[option].strip()]
            out.mapped[option] = config[option]
    if flag("pre"):
        out.args += ["--prerelease", "allow"]
        out.mapped["pre"] = config["pre"]
    if flag("require-hashes"):
        out.args.append("--require-hashes")
        out.mapped["require-hashes"] = config["require-hashes"]
    if config.get("keyring-provider") == "subprocess":
        out.args += ["--keyring-provider", "subprocess"]
        out.mapped["keyring-provider"] = "subprocess"
    if config.get("cert"):
        to_env("cert", "SSL_CERT_FILE", config["cert"])
    if config.get("client-cert"):
        to_env("client-cert", "SSL_CLIENT_CERT", config["client-cert"])
    timeout = config.get("timeout") or config.get("default-timeout")
    if timeout and not environ.get("UV_HTTP_TIMEOUT"):
        out.env["UV_HTTP_TIMEOUT"] = str(round(float(timeout))) if _number(timeout) else timeout
    if config.get("proxy"):
        for variable in ("HTTPS_PROXY", "HTTP_PROXY"):
            to_env("proxy", variable, config["proxy"])
    return out


def _reachable(link: str) -> bool:
    """False for a local folder or file that does not exist; URLs are uv's to fetch."""
    parts = urlsplit(link)
    if parts.scheme not in ("", "file"):
        return True
    return Path(unquote(parts.path) if parts.scheme else link).expanduser().exists()


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
