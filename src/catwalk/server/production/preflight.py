"""Production mode's checks before anything starts, each failing with a clear ServeError.

nginx on PATH, IPv6 available, the port free, nginx's worker user (as root), this machine's
open-file limit, and ``nginx -t`` on the rendered configuration.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import resource
import shutil
import socket
import subprocess
from pathlib import Path

from catwalk.errors import ServeError
from catwalk.server.production.render import RunLayout, WorkerUser

NGINX_MISSING = (
    "nginx is not installed: run `bash scripts/install-system-deps.sh nginx` "
    "or `apt-get install nginx`"
)
# The account nginx's workers switch to when the server runs as root.
WORKER_USER = "catwalk-nginx"
# nginx's open-file limit when this machine sets none (RLIM_INFINITY), and its cap.
MAX_OPEN_FILES = 32768


def find_nginx() -> str:
    """The nginx binary on PATH, or ServeError saying how to install it."""
    found = shutil.which("nginx")
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        candidate = Path(folder) / "nginx"
        if os.access(candidate, os.X_OK):
            raise ServeError(
                f"nginx is not on PATH (found {candidate}): add {folder} to PATH, e.g. "
                f'`export PATH="$PATH:{folder}"`'
            )
    raise ServeError(NGINX_MISSING)


def ipv6_available() -> bool:
    """True when nginx can also listen on ``[::]``: IPv6 is built in and not disabled here."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # as nginx does
            probe.bind(("::", 0))
    except OSError:
        return False
    return True


def check_port(port: int, *, ipv6: bool = False) -> None:
    """Fail early and clearly when nginx could not listen on the port (on IPv6 too)."""
    probes = [(socket.AF_INET, ("0.0.0.0", port))]
    if ipv6:
        probes.append((socket.AF_INET6, ("::", port)))
    for family, address in probes:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nginx does
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise ServeError(f"port {port} is already in use") from None
                if exc.errno == errno.EACCES:
                    raise ServeError(
                        f"port {port}: permission denied (ports below 1024 need root)"
                    ) from None
                raise ServeError(f"port {port}: cannot listen ({exc.strerror})") from None


def worker_user() -> WorkerUser:
    """nginx's workers' own account when the server runs as root (``catwalk-nginx``).

    Its own, not ``nobody``: the run folder and gunicorn's socket are open to its group
    only, and any other process running as ``nobody`` must not reach the model past nginx.
    catwalk's image has it; elsewhere it is created once (a system user: no home, no shell).
    """
    name = WORKER_USER
    try:
        pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        result = subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", "--home-dir",
             "/nonexistent", "--shell", "/usr/sbin/nologin", name],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0 and result.returncode != 9:  # 9: made meanwhile
            raise ServeError(
                f"running as root: nginx's workers need a user of their own, {name!r}, and it "
                f"could not be created ({result.stderr.strip() or result.returncode}); create "
                f"it: useradd --system --user-group --no-create-home --shell "
                f"/usr/sbin/nologin {name}"
            ) from None
    entry = pwd.getpwnam(name)
    try:
        group = grp.getgrgid(entry.pw_gid).gr_name
    except KeyError:
        raise ServeError(f"the user {name!r} has no group (gid {entry.pw_gid})") from None
    return WorkerUser(name, group)


def open_files_limit() -> int:
    """How many files each nginx worker may open: this machine's hard limit, capped.

    As root, nginx's workers raise their limit to it before dropping privileges; otherwise
    the hard limit is as far as an unprivileged process may raise its own.
    """
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, MAX_OPEN_FILES)


def check_nginx_conf(nginx: str, layout: RunLayout) -> None:
    """``nginx -t``: catches a bad certificate or key before anything is started."""
    result = subprocess.run(
        [nginx, "-t", "-q", *nginx_args(layout)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if "test failed" not in line]
        raise ServeError("nginx rejects the configuration:\n" + "\n".join(lines).strip())


def nginx_args(layout: RunLayout) -> list[str]:
    # -e: before reading the config nginx would open its compiled-in /var/log/nginx/error.log.
    return ["-p", str(layout.run_dir), "-c", str(layout.nginx_conf), "-e", "stderr"]
