"""``catwalk test-image``: run the model's image in a throwaway container and check it.

The container runs as an arbitrary non-root UID in group 0 (as OpenShift runs images), with the
server config mounted read-only when one is given. The checks are test-server's, against the
model's own test data, which the model loads inside its image (``catwalk export-test-data`` in
a throwaway container); the containers are always removed, and the server's logs printed when
a check fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from catwalk.checks.model_checks import TEST_DATA_PREFIX, TestData
from catwalk.checks.report import Report
from catwalk.checks.server_checks import check_server
from catwalk.checks.server_reach import wait_ready
from catwalk.config import DEFAULT_PORT, ServerSettings, load_settings
from catwalk.errors import CatwalkError
from catwalk.image import docker as dk
from catwalk.image.dockerfile import CONFIG_DIR, MODEL_DIR
from catwalk.image.engine_host import engine_host
from catwalk.image.naming import local_image_ref
from catwalk.model import LoadedModel
from catwalk.normalize import DEFAULT_TOLERANCE
from catwalk.ports import free_port, port_is_free
from catwalk.spec import ModelSpec, check_model_folder, load_spec
from catwalk.tokens_file import read_tokens

#: The UID test-image runs the image as: not the image's own user, not root.
TEST_UID = "23456:0"
DEFAULT_READY_TIMEOUT = 120.0
_LOG_TAIL = 200
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class ImageTestOptions:
    docker_registry: str | None = None
    server_port: int | None = DEFAULT_PORT  # None: a free one (9090 on a remote engine)
    server_config: Path | None = None
    network: str | None = None
    user: str = TEST_UID
    ready_timeout: float = DEFAULT_READY_TIMEOUT
    request_timeout: float = DEFAULT_READY_TIMEOUT  # seconds each check's answer may take
    tolerance: float = DEFAULT_TOLERANCE
    image: str | None = None  # default: the tag `catwalk build` gives the model's image
    local_tag: str | None = None  # build's --local-tag: the image is only on this engine
    suffix: str | None = None  # build's --build-suffix
    token: str | None = None  # bearer token for a config with server.auth (default: its first)
    image_name: str | None = None  # a repository's image: --image-name
    image_version: str | None = None  # and --image-version


#: A model the image serves, and its folder in the image (None: the image's one model).
Served = tuple[ModelSpec, str | None]


@contextmanager
def staged_config(config: Path, settings: ServerSettings) -> Iterator[tuple[list[dk.Mount], str]]:
    """Mounts and the SERVER_CONFIG value that give the container the config and its certs.

    The config and the certificate files it names are copied, world-readable, into a private
    temporary folder that is mounted read-only at /etc/catwalk: the container's arbitrary UID
    can read them even when the originals are the user's own (a key is usually mode 600),
    and nothing else of the config's folder is exposed. Relative cert paths keep working; an
    absolute one is mounted at the same path.
    """
    outer = Path(tempfile.mkdtemp(prefix="catwalk-test-image-"))  # mode 700: private on the host
    try:
        inner = outer / "config"
        inner.mkdir()
        inner.chmod(0o755)
        config = config.resolve()
        mounts = [dk.Mount(inner, CONFIG_DIR)]
        files = [config]
        files += [f for f in (settings.ssl.cert, settings.ssl.key) if f is not None]
        tokens = settings.auth.tokens_file
        if tokens is not None:
            files.append(tokens)
        for index, file in enumerate(files):
            try:
                relative = file.relative_to(config.parent)
            except ValueError:
                # Outside the config's folder: copy it aside and mount it at its own path.
                copy = outer / f"file-{index}-{file.name}"
                mounts.append(dk.Mount(copy, str(PurePosixPath(file.as_posix()))))
            else:
                copy = inner / relative
                for parent in reversed(relative.parents[:-1]):
                    (inner / parent).mkdir(exist_ok=True)
                    (inner / parent).chmod(0o755)
            shutil.copyfile(file, copy)
            if file == tokens:
                # catwalk refuses a tokens file others can read: the container's UID reads it
                # through group 0 (it runs in group 0, as OpenShift runs images).
                with contextlib.suppress(PermissionError):
                    os.chown(copy, -1, 0)
                copy.chmod(0o440)
            else:
                copy.chmod(0o444)
        yield mounts, str(PurePosixPath(CONFIG_DIR) / config.name)
    finally:
        shutil.rmtree(outer, ignore_errors=True)


def test_image(path: str | Path, report: Report, options: ImageTestOptions) -> None:
    """Check the model's image: its test data and expected outputs come from the image itself.

    Only model.yml is read on this machine (the image's name, the schemas, /info); the model's
    code and packages are never imported here, so the CI host needs catwalk and a Docker engine
    and nothing of the model's.
    """
    try:
        spec, models = _served(path, options)
    except CatwalkError as exc:
        report.fail("model.yml", str(exc))
        return
    if models[0][1] is None:
        report.ok("model.yml", f"{spec.name} {spec.version} ({spec.io_type})")
    else:
        names = ", ".join(f"{m.name}@{m.version}" for m, _ in models)
        report.ok("repository", f"image {spec.name} {spec.version}: {names}")

    try:
        if options.server_port is None:  # before any check: the settings name the port
            local = engine_host().is_local
            options = dataclasses.replace(
                options, server_port=free_port() if local else DEFAULT_PORT
            )
        settings = load_settings(options.server_config, options.server_port or DEFAULT_PORT)
    except CatwalkError as exc:
        report.fail("server config", str(exc))
        return
    try:
        ref = options.image or local_image_ref(
            spec, options.docker_registry, options.local_tag, options.suffix
        )
    except CatwalkError as exc:
        report.fail("image", str(exc))
        return

    try:
        client = dk.connect()
    except CatwalkError as exc:
        report.fail("docker engine", str(exc))
        return
    try:
        _run_checks(client, ref, models, settings, report, options)
    finally:
        client.close()


def _served(path: str | Path, options: ImageTestOptions) -> tuple[ModelSpec, list[Served]]:
    """The image's spec and the models it serves: one model folder's, or a repository's (each
    checked on the one container, as test-server checks a repository on one server)."""
    from catwalk.repository.discover import discover, is_repository
    from catwalk.repository.image import image_spec

    if not is_repository(path):
        if options.image_name is not None or options.image_version is not None:
            image_spec(path, options.image_name, options.image_version)  # refuses the flags
        spec = load_spec(check_model_folder(path))
        return spec, [(spec, None)]
    repository = discover(path)
    spec = image_spec(path, options.image_name, options.image_version)
    return spec, [
        (e.spec, f"{MODEL_DIR}/{e.folder.relative_to(repository.root).as_posix()}")
        for e in repository.entries
    ]


def _test_data(
    client: dk.Client, ref: str, report: Report, options: ImageTestOptions, served: Served
) -> TestData | None:
    """The test data, loaded by the model in a throwaway container of its own image."""
    spec, folder = served
    name = "test data (from the image)"
    environment = {"RUN_TESTS": "false"}
    if folder is not None:  # one model of the repository the image holds
        name = f"{spec.name}@{spec.version} {name}"
        environment["MODEL_PATH"] = folder
    try:
        done = dk.run_command(
            client,
            ref,
            ["catwalk", "export-test-data"],
            user=options.user,
            timeout=options.ready_timeout,
            environment=environment,
        )
    except dk.Interrupted as exc:
        report.fail("interrupted", f"{exc}: the container was removed")
        raise KeyboardInterrupt from None
    except CatwalkError as exc:
        report.fail(name, str(exc))
        return None
    lines = done.stdout.strip().splitlines()
    if done.exit_code != 0 or not lines or not lines[-1].startswith(TEST_DATA_PREFIX):
        how = "did not finish in time" if done.exit_code is None else f"exit code {done.exit_code}"
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-_LOG_TAIL:])
        report.fail(name, f"`catwalk export-test-data` in {ref}: {how}\n{tail}")
        return None
    payload = json.loads(lines[-1][len(TEST_DATA_PREFIX) :])
    data = TestData(payload["inputs"], payload["outputs"], bool(payload["batch"]))
    count = len(data.outputs[0]) if data.batch else len(data.inputs)
    report.ok(name, f"{count} example(s){', sent as one batch' if data.batch else ''}")
    return data


def _run_checks(
    client: dk.Client,
    ref: str,
    models: list[Served],
    settings: ServerSettings,
    report: Report,
    options: ImageTestOptions,
) -> None:
    try:
        if not dk.image_exists(client, ref):
            if not options.docker_registry or options.local_tag:
                report.fail("image", f"{ref} not found locally: build it with `catwalk build`")
                return
            dk.pull_image(client, ref, echo=report.echo)
        network = dk.default_network(client, options.network, report.echo)
    except CatwalkError as exc:
        report.fail("image", str(exc))
        return
    report.ok("image", ref)
    checked: list[tuple[LoadedModel, TestData]] = []
    for served in models:
        data = _test_data(client, ref, report, options, served)
        if data is None:
            return
        # The checks use the spec's schemas only: the model's code stays in the image.
        checked.append((LoadedModel(spec=served[0], instance=None), data))
    repository = models[0][1] is not None

    port = options.server_port or DEFAULT_PORT
    host = engine_host()
    if host.is_local and not port_is_free(port):
        report.fail(
            "port",
            f"port {port} is already taken on this machine (another server or container); "
            "choose another with --server-port",
        )
        return

    environment = {"SERVER_PORT": str(port), "RUN_TESTS": "false"}
    with _config(options.server_config, settings) as (mounts, config_env):
        if config_env:
            environment["SERVER_CONFIG"] = config_env
        run = dk.RunSpec(
            image=ref,
            port=port,
            user=options.user,
            network=network,
            bind=host.bind,
            environment=environment,
            mounts=mounts,
        )
        failed_before = len(report.failures)
        try:
            with dk.throwaway_container(client, run, echo=report.echo) as container:
                how = f"--network {network}" if network else f"port {host.bind}:{port} published"
                report.ok(
                    "container started", f"{container.short_id} as user {options.user}, {how}"
                )
                base_url = f"{settings.scheme}://{host.url_host()}:{port}"
                # Not verifying is deliberate: the certificate is the user's (often self-signed);
                # the check is that the image serves TLS with it.
                if _ready(container, base_url, report, options.ready_timeout):
                    token = options.token
                    if token is None and settings.auth.tokens_file is not None:
                        token = read_tokens(settings.auth.tokens_file)[0]
                    for model, data in checked:
                        if repository:
                            report.echo(f"== {model.spec.name}@{model.spec.version} ==")
                        check_server(
                            base_url,
                            model,
                            data,
                            report,
                            verify=False,
                            token=token,
                            tolerance=options.tolerance,
                            timeout=options.request_timeout,
                            repository=repository,
                        )
                _stops(container, report)
                if len(report.failures) > failed_before:
                    _print_logs(report, container)
        except dk.Interrupted as exc:
            report.fail("interrupted", f"{exc}: the container was removed")
            raise KeyboardInterrupt from None
        except CatwalkError as exc:
            report.fail("container", str(exc))


def _ready(container: dk.Container, base_url: str, report: Report, timeout: float) -> bool:
    started = time.monotonic()
    try:
        wait_ready(base_url, timeout=timeout, verify=False, alive=container.running)
    except CatwalkError as exc:
        code = container.exit_code()
        why = f" (the container exited with code {code})" if code is not None else ""
        report.fail("ready", f"{exc}{why}")
        return False
    report.ok("ready", f"{base_url} answered after {time.monotonic() - started:.1f} s")
    return True


def _stops(container: dk.Container, report: Report) -> None:
    """``docker stop`` (SIGTERM, then SIGKILL after 10 s) must find the server gone in time."""
    if not container.running():
        return  # already reported: it exited on its own
    started = time.monotonic()
    container.stop(timeout=int(STOP_TIMEOUT))
    took = time.monotonic() - started
    code = container.exit_code()
    if took >= STOP_TIMEOUT:
        report.fail("stops on SIGTERM", f"still running after {STOP_TIMEOUT:g} s: killed")
    else:
        report.ok("stops on SIGTERM", f"exit code {code} after {took:.1f} s")


@contextmanager
def _config(
    config: Path | None, settings: ServerSettings
) -> Iterator[tuple[list[dk.Mount], str | None]]:
    if config is None:
        yield [], None
        return
    with staged_config(config, settings) as (mounts, env):
        yield mounts, env


def _print_logs(report: Report, container: dk.Container) -> None:
    logs = container.logs(tail=_LOG_TAIL).rstrip()
    report.echo(f"--- logs of container {container.short_id} (last {_LOG_TAIL} lines) ---")
    report.echo(logs or "(no output)")
    report.echo("--- end of logs ---")
