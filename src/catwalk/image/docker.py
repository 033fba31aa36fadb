"""The only module that talks to Docker, through the Docker SDK for Python.

The SDK (rather than the ``docker`` CLI) because it needs no CLI in the CI image, talks to
whatever engine ``DOCKER_HOST`` (and ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``) point at, and
gives structured build/push streams and typed errors: a failed step is named from the stream
itself instead of being scraped from terminal output, and containers are handled by id, so
clean-up removes exactly what catwalk started.

Every Docker failure becomes a :class:`~catwalk.errors.BuildError` naming the step.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

import docker
import docker.errors
import docker.types
import requests

from catwalk.errors import BuildError
from catwalk.image.naming import split_ref

Echo = Callable[[str], None]
Client = docker.DockerClient

HOW_TO_GET_AN_ENGINE = (
    "start one (on a Debian machine like CI's, as root: bash scripts/ci-setup.sh), "
    "or point DOCKER_HOST at one"
)


def connect(timeout: int = 600) -> docker.DockerClient:
    """A client for the engine DOCKER_HOST names (default: the local socket); BuildError if none."""
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise BuildError(
            f"no Docker engine answers ({_reason(exc)}): {HOW_TO_GET_AN_ENGINE}"
        ) from None
    return client


def engine_answers() -> bool:
    try:
        connect(timeout=10).close()
    except BuildError:
        return False
    return True


def _reason(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def default_network(client: docker.DockerClient, network: str | None, echo: Echo) -> str | None:
    """The network mode to use: the one asked for, else host when the engine has no bridge.

    An engine started with ``--bridge=none`` (as on CI's machines) cannot run a container or a
    build step on the default network at all; host networking is the only way there.
    """
    if network:
        return network
    try:
        bridges = client.networks.list(names=["bridge"])
    except docker.errors.APIError:
        return None
    if not any(n.name == "bridge" for n in bridges):
        echo("note: this Docker engine has no bridge network; using --network host")
        return "host"
    return None


# --- images -------------------------------------------------------------------------------


def build_image(
    client: docker.DockerClient,
    context: Path | IO[bytes],
    tag: str,
    *,
    echo: Echo,
    nocache: bool = False,
    network: str | None = None,
    buildargs: dict[str, str] | None = None,
    pull: bool = False,
    labels: dict[str, str] | None = None,
) -> str:
    """Build ``context`` as ``tag``, streaming the output; returns the image id.

    ``context``: a folder (its Dockerfile and .dockerignore), or a tar of the whole context
    (Dockerfile included). BuildError naming the failing Dockerfile step otherwise.
    """
    step = "sending the build context"
    image_id: str | None = None
    where: dict[str, Any] = (
        {"path": str(context)}
        if isinstance(context, Path)
        else {"fileobj": context, "custom_context": True}
    )
    try:
        stream = client.api.build(
            **where,
            tag=tag,
            nocache=nocache,
            rm=True,
            forcerm=True,
            pull=pull,
            network_mode=network,
            buildargs=buildargs,
            labels=labels,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk or "errorDetail" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk.get("error", "")
                raise BuildError(f"docker build of {tag} failed at {step}:\n{detail.strip()}")
            text = chunk.get("stream")
            if text:
                for line in text.rstrip("\n").splitlines():
                    if line.startswith("Step "):
                        step = _step_name(line)
                    echo(line)
            elif "status" in chunk:  # pulling the base image
                echo(" ".join(str(chunk[k]) for k in ("id", "status") if chunk.get(k)))
            aux = chunk.get("aux")
            if isinstance(aux, dict) and "ID" in aux:
                image_id = str(aux["ID"])
    except BuildError:
        raise
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise BuildError(f"docker build of {tag} failed at {step}: {_reason(exc)}") from None
    if image_id is None:
        image_id = str(inspect_image(client, tag)["Id"])
    return image_id


def _step_name(line: str) -> str:
    """``Step 5/11 : RUN   a  b`` -> ``step 5/11 (RUN a b)``, long instructions shortened."""
    number, _, instruction = line.partition(" : ")
    instruction = " ".join(instruction.split())
    if len(instruction) > 120:
        instruction = instruction[:117] + "..."
    name = number.replace("Step", "step", 1)
    return f"{name} ({instruction})" if instruction else name


def push_image(client: docker.DockerClient, ref: str, *, echo: Echo) -> str:
    """Push ``ref`` to its registry, printing each layer's progress once; returns the digest."""
    repository, tag = split_ref(ref)
    digest = ""
    seen: set[tuple[str, str]] = set()
    try:
        for chunk in client.api.push(repository, tag=tag, stream=True, decode=True):
            if "error" in chunk or "errorDetail" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk.get("error", "")
                raise BuildError(f"docker push of {ref} failed: {detail.strip()}")
            status, layer = str(chunk.get("status", "")), str(chunk.get("id", ""))
            quiet = status in ("Preparing", "Waiting") or chunk.get("progressDetail")
            if status and (layer, status) not in seen and not quiet:
                seen.add((layer, status))
                echo(f"{layer}: {status}" if layer else status)
            aux = chunk.get("aux")
            if isinstance(aux, dict) and "Digest" in aux:
                digest = str(aux["Digest"])
    except BuildError:
        raise
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise BuildError(f"docker push of {ref} failed: {_reason(exc)}") from None
    return digest


def tag_image(client: docker.DockerClient, image: str, ref: str) -> None:
    """Give ``image`` (an id or a tag) the tag ``ref`` as well."""
    repository, tag = split_ref(ref)
    try:
        client.api.tag(image, repository, tag=tag, force=True)
    except docker.errors.APIError as exc:
        raise BuildError(f"cannot tag {image} as {ref}: {_reason(exc)}") from None


def inspect_image(client: docker.DockerClient, ref: str) -> dict[str, Any]:
    try:
        return dict(client.api.inspect_image(ref))
    except docker.errors.ImageNotFound:
        raise BuildError(f"image {ref} not found") from None
    except docker.errors.APIError as exc:
        raise BuildError(f"cannot inspect image {ref}: {_reason(exc)}") from None


def image_exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.APIError as exc:
        raise BuildError(f"cannot inspect image {ref}: {_reason(exc)}") from None
    return True


def pull_image(client: docker.DockerClient, ref: str, *, echo: Echo) -> None:
    repository, tag = split_ref(ref)
    echo(f"pulling {ref}")
    try:
        for chunk in client.api.pull(repository, tag=tag, stream=True, decode=True):
            if "error" in chunk:
                raise BuildError(f"docker pull of {ref} failed: {chunk['error']}")
    except BuildError:
        raise
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise BuildError(f"docker pull of {ref} failed: {_reason(exc)}") from None


def remove_image(client: docker.DockerClient, ref: str) -> None:
    """Remove one tag (and the image if nothing else uses it); missing is fine."""
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.api.remove_image(ref, noprune=False)


# --- throwaway containers -------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = True


@dataclass
class RunSpec:
    """How ``test-image`` runs an image."""

    image: str
    port: int
    user: str = "23456:0"
    network: str | None = None  # None: the default network, with the port published
    bind: str = "127.0.0.1"  # where the port is published (engine_host.EngineHost.bind)
    environment: dict[str, str] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    name: str | None = None


class Interrupted(BaseException):
    """SIGTERM/SIGINT arrived while a throwaway container was running."""


@contextlib.contextmanager
def throwaway_container(
    client: docker.DockerClient, run: RunSpec, *, echo: Echo
) -> Iterator[Container]:
    """Start ``run.image`` detached; always remove the container afterwards.

    Removal also happens on Ctrl-C and SIGTERM: while the container runs, both raise
    :class:`Interrupted` in the main thread, and the ``finally`` removes it by id.
    """
    kwargs: dict[str, Any] = {
        "detach": True,
        "user": run.user,
        "environment": run.environment,
        "labels": {"io.catwalk.throwaway": "test-image"},
        "mounts": [
            docker.types.Mount(
                target=m.target, source=str(m.source), type="bind", read_only=m.read_only
            )
            for m in run.mounts
        ],
    }
    if run.name:
        kwargs["name"] = run.name
    if run.network:
        kwargs["network_mode"] = run.network
    else:
        kwargs["ports"] = {f"{run.port}/tcp": (run.bind, run.port)}

    with _signals_raise_interrupted():
        container = None
        try:
            try:
                raw = client.containers.run(run.image, **kwargs)
            except docker.errors.ImageNotFound:
                raise BuildError(f"image {run.image} not found; build it first") from None
            except docker.errors.APIError as exc:
                reason = _reason(exc)
                if "already allocated" in reason or "address already in use" in reason:
                    raise BuildError(
                        f"port {run.port} is taken on this machine ({reason}); "
                        "choose another with --server-port"
                    ) from None
                raise BuildError(f"docker run {run.image} failed: {reason}") from None
            container = Container(raw)
            yield container
        finally:
            if container is not None:
                container.remove()


@dataclass(frozen=True)
class Finished:
    """What a one-off command in a throwaway container did."""

    exit_code: int | None  # None: it did not finish in time (and was killed)
    stdout: str
    stderr: str


def run_command(
    client: docker.DockerClient,
    image: str,
    command: list[str],
    *,
    user: str,
    timeout: float,
    environment: dict[str, str] | None = None,
) -> Finished:
    """Run ``command`` in a throwaway container of ``image`` (no network), wait, remove it.

    It runs with no network at all and as ``user``: what it prints is all it can give back.
    Removal is by id, also on Ctrl-C and SIGTERM.
    """
    with _signals_raise_interrupted():
        raw = None
        try:
            try:
                raw = client.containers.run(
                    image,
                    command,
                    detach=True,
                    user=user,
                    network_mode="none",
                    environment=environment or {},
                    labels={"io.catwalk.throwaway": "test-image"},
                )
            except docker.errors.ImageNotFound:
                raise BuildError(f"image {image} not found; build it first") from None
            except docker.errors.APIError as exc:
                raise BuildError(
                    f"docker run {image} {' '.join(command)}: {_reason(exc)}"
                ) from None
            try:
                code: int | None = int(raw.wait(timeout=timeout)["StatusCode"])
            except (requests.RequestException, docker.errors.APIError):
                code = None
            out = bytes(raw.logs(stdout=True, stderr=False)).decode("utf-8", "replace")
            err = bytes(raw.logs(stdout=False, stderr=True)).decode("utf-8", "replace")
            return Finished(code, out, err)
        finally:
            if raw is not None:
                with contextlib.suppress(docker.errors.NotFound):
                    raw.remove(force=True)


@contextlib.contextmanager
def _signals_raise_interrupted() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class Container:
    """A container catwalk started; removed by id, never by name pattern."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.id: str = raw.id

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def running(self) -> bool:
        try:
            self._raw.reload()
        except docker.errors.NotFound:
            return False
        return bool(self._raw.status == "running")

    def exit_code(self) -> int | None:
        try:
            self._raw.reload()
        except docker.errors.NotFound:
            return None
        state = self._raw.attrs.get("State", {})
        return None if state.get("Running") else state.get("ExitCode")

    def logs(self, tail: int | str = "all") -> str:
        try:
            data = self._raw.logs(stdout=True, stderr=True, tail=tail)
        except docker.errors.APIError as exc:
            return f"(logs unavailable: {_reason(exc)})"
        return bytes(data).decode("utf-8", errors="replace")

    def stop(self, timeout: int = 10) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self._raw.stop(timeout=timeout)

    def remove(self) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self._raw.remove(force=True)
