"""What the production-mode tests share: a real production server in a subprocess, and its
helpers (imported by name: ``from served import Server``; a ``from conftest import`` could find
another folder's conftest).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
MODELS = HERE / "models"
RNG = ROOT / "example_models" / "rng"
RNG_INPUT = {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}
RNG_SCORE = 0.9417154046806644

NGINX_MISSING = shutil.which("nginx") is None and not os.path.exists("/usr/sbin/nginx")


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    path = env.get("PATH", "")
    if "/usr/sbin" not in path.split(":"):
        env["PATH"] = f"{path}:/usr/sbin"
    env["PYTHONPATH"] = str(ROOT / "src")
    for name in ("MODEL_PATH", "SERVER_CONFIG", "SERVER_PORT", "RUN_TESTS"):
        env.pop(name, None)  # they would override the arguments
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def descendants(pid: int) -> list[int]:
    """PIDs of every live descendant of ``pid``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    queue = [pid]
    while queue:
        for kid in children.get(queue.pop(), []):
            found.append(kid)
            queue.append(kid)
    return found


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Server:
    """One production server started as a subprocess."""

    def __init__(
        self, args: list[str], port: int, scheme: str, env: dict[str, str], log: Path
    ) -> None:
        self.port = port
        self.scheme = scheme
        self.url = f"{scheme}://127.0.0.1:{port}"
        self.log = open(log, "w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
        self.tree: list[int] = []

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.url + path, verify=False, timeout=10, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return requests.post(self.url + path, verify=False, timeout=10, **kw)

    def wait_ready(self, timeout: float = 60) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.output()}")
            try:
                if self.get("/status").status_code == 200:
                    self.tree = descendants(self.proc.pid)
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready after {timeout} s:\n{self.output()}")

    def pids(self, name: str) -> list[int]:
        """PIDs (from the tree seen at readiness) whose command line mentions ``name``."""
        return [pid for pid in self.tree if name in cmdline(pid)]

    def wait_pids(self, name: str, count: int, timeout: float = 10) -> list[int]:
        """Refresh the tree until ``count`` processes mention ``name`` (workers fork late)."""
        deadline = time.monotonic() + timeout
        while len(self.pids(name)) < count and time.monotonic() < deadline:
            time.sleep(0.1)
            self.tree = sorted(set(self.tree) | set(descendants(self.proc.pid)))
        return self.pids(name)

    def leftovers(self) -> list[int]:
        return [pid for pid in self.tree if running(pid)]

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    @property
    def catwalk_pid(self) -> int:
        """The catwalk process itself (the child of a wrapper such as setpriv or unshare)."""
        found = [pid for pid in self.tree if " -m catwalk serve" in cmdline(pid)]
        return found[0] if found else self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.catwalk_pid, signal.SIGTERM)
            if self.wait_exit(15) is None:
                self.proc.kill()
                self.proc.wait()
        for pid in self.leftovers():
            os.kill(pid, signal.SIGKILL)
        self.log.close()


def raw(
    port: int, data: bytes, timeout: float = 5, source: str = "127.0.0.1"
) -> tuple[str, dict[str, str], bytes]:
    """Send bytes as they are (from ``source``), read the answer: (status line, headers, body)."""
    with socket.create_connection(
        ("127.0.0.1", port), timeout=timeout, source_address=(source, 0)
    ) as conn:
        conn.sendall(data)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *fields = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
    return status, headers, body


def write_config(folder: Path, text: str) -> Path:
    path = folder / "application.yml"
    path.write_text(text)
    return path


def tls_handshake(port: int, version: ssl.TLSVersion) -> str:
    """Negotiated protocol for a handshake pinned to ``version``; raises ssl.SSLError."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("ALL:@SECLEVEL=0")  # let the client offer old protocols at all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1_1 is, on purpose
        ctx.minimum_version = version
        ctx.maximum_version = version
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw) as tls,
    ):
        return str(tls.version())
