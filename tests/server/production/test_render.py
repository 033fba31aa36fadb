"""Pure rendering of nginx.conf and gunicorn.conf.py (nothing is started, except `nginx -t`)."""

from __future__ import annotations

import logging
import re
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest

from catwalk.config import ServerSettings, SslSettings
from catwalk.server import messages
from catwalk.server.messages import ROUTES
from catwalk.server.production.render import (
    MAX_WORKER_CONNECTIONS,
    WORKER_TIMEOUT_MARGIN,
    RunLayout,
    Tuning,
    WorkerUser,
    nginx_errors,
    render_gunicorn_conf,
    render_nginx_conf,
)

RUN = Path("/tmp/catwalk-abc123")


def nginx_conf(root: bool = False, **settings: object) -> str:
    layout = RunLayout(RUN, WorkerUser("nobody", "nogroup") if root else None)
    return render_nginx_conf(ServerSettings(**settings), layout)  # type: ignore[arg-type]


def gunicorn_conf(tmp_path: Path, root: bool = False, **settings: object) -> dict[str, object]:
    layout = RunLayout(RUN, WorkerUser() if root else None)
    text = render_gunicorn_conf(ServerSettings(**settings), layout)  # type: ignore[arg-type]
    file = tmp_path / "gunicorn.conf.py"
    file.write_text(text)
    return {k: v for k, v in runpy.run_path(str(file)).items() if not k.startswith("__")}


def test_every_path_is_inside_the_run_folder() -> None:
    text = nginx_conf(port=9191)
    directives = " ".join(line.split("#")[0] for line in text.splitlines())
    paths = [w.rstrip(";") for w in directives.split() if w.startswith(("/", "unix:/"))]
    paths.remove("/")  # location /
    # The error URIs are locations, not files; nginx's JSON error lines go to its stderr.
    paths = [
        p
        for p in paths
        if not p.startswith(("/.catwalk-error/", "/dev/stderr"))
        and re.sub(r"[^\w./-].*", "", p) not in {route.split()[1] for route in ROUTES}
    ]
    assert len(paths) == 7, paths
    assert all(p.removeprefix("unix:").startswith(f"{RUN}/") for p in paths), paths
    for key in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        assert f"{key}_temp_path {RUN}/nginx/{key};" in " ".join(directives.split())
    assert f"pid {RUN}/nginx.pid;" in text
    assert f"server unix:{RUN}/gunicorn.sock" in text
    assert "daemon off;" in text
    assert "error_log stderr" in text
    assert "access_log /dev/stderr catwalk_error if=$catwalk_message;" in text
    assert "listen 9191;" in text


def test_user_directive_only_as_root() -> None:
    assert "user " not in nginx_conf().replace("# Started as root", "")
    assert "user nobody nogroup;" in nginx_conf(root=True)


def test_knobs() -> None:
    text = nginx_conf(timeout=42, keepalive=7, max_body_size="3m", log_level="ERROR")
    assert "proxy_read_timeout 42s;" in text
    assert "keepalive_timeout 7;" in text
    assert "client_max_body_size 3m;" in text
    assert "error_page 413 /.catwalk-error/413;" in text
    assert "the limit is 3m" in text
    assert "error_log stderr error;" in text


def test_tls() -> None:
    ssl = SslSettings(enabled=True, cert=Path("/certs/c.pem"), key=Path("/certs/k.pem"))
    text = nginx_conf(port=8443, ssl=ssl)
    assert "listen 8443 ssl;" in text
    assert "ssl_certificate     /certs/c.pem;" in text
    assert "ssl_certificate_key /certs/k.pem;" in text
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text
    assert "error_page 495 496 497 /.catwalk-error/495;" in text
    assert "ssl" not in nginx_conf(port=8443).replace("ssl_", "")


def test_tls_without_files_is_refused() -> None:
    with pytest.raises(ValueError):
        nginx_conf(ssl=SslSettings(enabled=True))


def test_every_model_gets_catwalks_worker_and_kept_alive_connections() -> None:
    layout = RunLayout(RUN)
    kept = render_nginx_conf(ServerSettings(), layout)  # the default, for every model
    assert "keepalive 32;" in kept and "proxy_http_version 1.1;" in kept
    assert 'proxy_set_header Connection "";' in kept and "keepalive_timeout 60s;" in kept
    # A request sent on a connection the worker had just closed is sent again.
    assert "proxy_next_upstream error non_idempotent;" in kept
    # gunicorn keeps an idle connection longer than nginx does: nginx closes it first.
    gunicorn = render_gunicorn_conf(ServerSettings(), layout)
    assert "keepalive = 75" in gunicorn
    assert "worker_class = 'catwalk.server.worker.loop_worker.LoopWorker'" in gunicorn
    plain = render_nginx_conf(ServerSettings(), layout, Tuning(upstream_keepalive=0))
    assert "keepalive 32;" not in plain and "proxy_http_version" not in plain
    assert "proxy_next_upstream" not in plain


def test_gunicorn_conf(tmp_path: Path) -> None:
    conf = gunicorn_conf(tmp_path, workers=3, timeout=30, preload=False, log_level="DEBUG")
    assert conf["bind"] == [f"unix:{RUN}/gunicorn.sock"]
    assert conf["workers"] == 3
    # nginx answers 504 at server.timeout; gunicorn aborts the stuck worker a little later
    assert conf["timeout"] == 30 + WORKER_TIMEOUT_MARGIN
    assert conf["graceful_timeout"] == 4  # after nginx's drain, little is left to do
    assert conf["preload_app"] is False
    assert conf["loglevel"] == "debug"
    assert conf["pidfile"] == f"{RUN}/gunicorn.pid"
    assert conf["worker_tmp_dir"] == str(RUN)
    assert conf["control_socket_disable"] is True
    assert conf["accesslog"] is None and conf["errorlog"] == "-"
    assert conf["umask"] == 0o077


def test_gunicorn_socket_is_owner_only_even_as_root(tmp_path: Path) -> None:
    # As root, catwalk opens the socket to nginx's group alone once gunicorn made it.
    assert gunicorn_conf(tmp_path, root=True)["umask"] == 0o077
    assert gunicorn_conf(tmp_path)["preload_app"] is True


def test_every_gunicorn_setting_is_known(tmp_path: Path) -> None:
    from gunicorn.config import Config

    known = Config().settings
    assert set(gunicorn_conf(tmp_path)) <= set(known)


@pytest.mark.skipif(not shutil.which("nginx", path="/usr/sbin:/usr/bin"), reason="no nginx")
@pytest.mark.parametrize(
    ("tls", "ipv6"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_nginx_accepts_the_rendered_config(tmp_path: Path, tls: bool, ipv6: bool, tls_pair) -> None:  # type: ignore[no-untyped-def]
    cert, key = tls_pair
    ssl = SslSettings(enabled=True, cert=cert, key=key) if tls else SslSettings()
    layout = RunLayout(tmp_path)
    (tmp_path / "nginx").mkdir()
    text = render_nginx_conf(ServerSettings(port=9, ssl=ssl), layout, ipv6=ipv6)
    layout.nginx_conf.write_text(text)
    nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin")
    result = subprocess.run(
        [str(nginx), "-t", "-p", str(tmp_path), "-c", str(layout.nginx_conf), "-e", "stderr"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_ipv6_listen_only_when_asked() -> None:
    layout = RunLayout(RUN)
    assert "[::]" not in render_nginx_conf(ServerSettings(port=9191), layout)
    text = render_nginx_conf(ServerSettings(port=9191), layout, ipv6=True)
    assert "listen 9191;" in text and "listen [::]:9191;" in text
    ssl = SslSettings(enabled=True, cert=Path("/c.pem"), key=Path("/k.pem"))
    text = render_nginx_conf(ServerSettings(port=8443, ssl=ssl), layout, ipv6=True)
    assert "listen 8443 ssl;" in text and "listen [::]:8443 ssl;" in text


def test_nginx_passes_its_request_id_to_the_app() -> None:
    assert "proxy_set_header X-Request-Id $request_id;" in nginx_conf()


def test_nginx_says_too_large_in_the_apps_words() -> None:
    text = nginx_conf(max_body_size="3m")
    assert f'set $catwalk_message "{messages.too_large("3m")}";' in text


def test_gunicorn_worker_abort_hook_logs_the_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conf = gunicorn_conf(tmp_path, timeout=7)
    hook = conf["worker_abort"]
    assert callable(hook)
    with caplog.at_level(logging.ERROR, logger="catwalk.server"):
        hook(object())  # a worker that knows no request in flight
    [message] = caplog.messages
    assert "longer than server.timeout (7 s)" in message
    assert message.endswith("no request in flight")


def test_slow_client_limits() -> None:
    text = nginx_conf(client_timeout=7, max_connections_per_client=33, graceful_timeout=45)
    for directive in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        assert f"{directive} 7s;" in text
    assert "reset_timedout_connection on;" in text
    assert "limit_conn_zone $binary_remote_addr zone=catwalk_clients:10m;" in text
    assert "limit_conn catwalk_clients 33;" in text and "limit_conn_status 429;" in text
    assert "worker_shutdown_timeout 55s;" in text  # a safety net past catwalk's own drain
    assert "limit_conn" not in nginx_conf(max_connections_per_client=0)


@pytest.mark.parametrize(("files", "connections"), [(20000, MAX_WORKER_CONNECTIONS), (1024, 960)])
def test_worker_connections_follow_the_open_file_limit(files: int, connections: int) -> None:
    layout = RunLayout(RUN)
    text = render_nginx_conf(ServerSettings(), layout, Tuning(open_files=files))
    assert f"worker_rlimit_nofile {files};" in text
    assert f"worker_connections {connections};" in text


def test_every_status_nginx_makes_is_json() -> None:
    text = nginx_conf()
    statuses = [s for error in nginx_errors(ServerSettings()) for s in error.statuses]
    for status in (400, 404, 405, 408, 411, 413, 414, 429, 494, 495, 496, 497, 500, 501):
        assert status in statuses
    for status in (502, 503, 504, 505):
        assert status in statuses
    for error in nginx_errors(ServerSettings()):
        location = f"location = /.catwalk-error/{error.name} {{"
        assert location in text
        block = text.split(location)[1].split("\n        }\n")[0]
        assert "internal;" in block and f"return {error.answer} " in block
        assert '"correlation_id": "$catwalk_correlation_id"' in block
        # under /v2, the Open Inference Protocol's error body
        assert (
            f"""if ($catwalk_v2) {{
                return {error.answer} '{{"error": "$catwalk_message"}}\\n';"""
            in block
        )
    assert 'add_header Allow "GET, HEAD, POST" always;' in text


def test_the_proxy_secret_goes_with_every_request() -> None:
    layout = RunLayout(RUN, proxy_secret="s3cret")
    text = render_nginx_conf(ServerSettings(), layout)
    assert 'proxy_set_header X-Catwalk-Proxy "s3cret";' in text
    assert "proxy_set_header X-Correlation-Id $catwalk_correlation_id;" in text


def test_worker_recycling(tmp_path: Path) -> None:
    conf = gunicorn_conf(tmp_path, max_requests=500, max_requests_jitter=50)
    assert conf["max_requests"] == 500 and conf["max_requests_jitter"] == 50
    assert "post_request" not in conf  # no memory ceiling: no per-request cost
    conf = gunicorn_conf(tmp_path, max_worker_memory="300m")
    assert conf["max_requests"] == 0
    assert callable(conf["post_request"]) and callable(conf["worker_int"])
    # gunicorn's own limits never come first: nginx's (7k lines) are lower.
    assert conf["limit_request_fields"] == 32768 and conf["limit_request_line"] == 8190
