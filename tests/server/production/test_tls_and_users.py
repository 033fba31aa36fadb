"""TLS termination by nginx, running as an arbitrary UID, and `catwalk test-server` against
production mode."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from served import RNG, RNG_INPUT, RNG_SCORE, ROOT, Server, child_env, tls_handshake, write_config

from requires import unavailable

Serve = Callable[..., Server]


def tls_config(folder: Path, cert: Path, key: Path) -> Path:
    return write_config(
        folder, f"server:\n  ssl:\n    enabled: true\n    cert: {cert}\n    key: {key}\n"
    )


def test_https(serve: Serve, tmp_path: Path, tls_pair: tuple[Path, Path]) -> None:
    server = serve(RNG, config=tls_config(tmp_path, *tls_pair), scheme="https")
    reply = server.post("/predict", json={"input": RNG_INPUT})
    assert reply.status_code == 200 and reply.json()["output"]["score"] == RNG_SCORE
    assert tls_handshake(server.port, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert tls_handshake(server.port, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        tls_handshake(server.port, ssl.TLSVersion.TLSv1_1)
    plain = requests.get(f"http://127.0.0.1:{server.port}/status", timeout=5)
    assert plain.status_code == 400
    assert "HTTPS" in plain.json()["output"]["message"]
    # the certificate is the one configured
    pem = ssl.get_server_certificate(("127.0.0.1", server.port))
    assert pem.split() == tls_pair[0].read_text().split()


def test_bad_certificate_is_a_clear_startup_error(serve: Serve, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("not a certificate\n")
    key.write_text("not a key\n")
    server = serve(RNG, config=tls_config(tmp_path, cert, key), ready=False)
    assert server.wait_exit(20) == 1
    out = server.output()
    assert "nginx rejects the configuration" in out and "cert.pem" in out, out
    assert "Traceback" not in out
    assert server.leftovers() == []


def test_runs_as_an_arbitrary_uid(serve: Serve) -> None:
    # The venv's interpreter may live under /root (unreachable for UID 23456): run the
    # system Python of the venv's version (/usr/bin/python3.11 on Debian 12) with the venv's
    # packages on PYTHONPATH instead.
    site = Path(sysconfig.get_paths()["purelib"])
    system_python = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    if os.geteuid() != 0:
        unavailable("needs root to switch to another UID")
    if not shutil.which("setpriv"):
        unavailable("no setpriv (util-linux)")
    if not os.access(system_python, os.X_OK):
        unavailable(f"no {system_python}, the system Python of the venv's version")
    env = child_env()
    env["PYTHONPATH"] = f"{ROOT / 'src'}:{site}"
    env.pop("HOME", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["TMPDIR"] = "/tmp"  # the run folder must be creatable by UID 23456
    wrap = ("setpriv", "--reuid", "23456", "--regid", "0", "--clear-groups")
    server = serve(RNG, wrap=wrap, python=system_python, env=env)
    reply = server.post("/predict", json={"input": RNG_INPUT})
    assert reply.status_code == 200 and reply.json()["output"]["score"] == RNG_SCORE
    uids = {
        Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0] for pid in server.tree
    }
    assert uids == {"23456"}, uids
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait_exit(12) == 0, server.output()
    assert server.leftovers() == []


def test_catwalk_test_server_passes_against_production_mode(serve: Serve) -> None:
    server = serve(RNG)
    result = subprocess.run(
        [sys.executable, "-m", "catwalk", "test-server", "--no-install", "-m", str(RNG),
         "--url", server.url],
        capture_output=True, text=True, env=child_env(), cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_catwalk_test_server_starts_production_mode_itself() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "catwalk", "test-server", "--no-install", "-m", str(RNG)],
        capture_output=True, text=True, env=child_env(), cwd=ROOT, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
