"""Was this model image already pushed? A digest of what the image is built from, kept on it.

A version names one image, so ``build`` refuses to push over a ``name:version`` the registry
already holds. But a pipeline must be able to run again — a retried job, a commit that only
touches the README — without a version bump. So every image carries
``io.catwalk.inputs.digest``: a SHA-256 of what it is built from (the build context as
.dockerignore leaves it, the Dockerfile's instructions, the base images' ids, catwalk's
version). Before a push, the label of the image under that tag in the registry is read (from
the registry's HTTP API: the manifest and the image config, a few KB, never the layers):

- no such tag: push;
- the same digest: the same image was pushed already, nothing to push;
- another digest (or none): the model changed under an existing version — the bump message,
  unless ``--overwrite``.

Build timestamps and the git revision are labels too, but not inputs: a commit that changes
no model input builds the same inputs digest.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.auth
import docker.errors
import requests
from docker.utils.build import exclude_paths

from catwalk import __version__
from catwalk.errors import BuildError
from catwalk.image import docker as dk
from catwalk.image.naming import split_ref
from catwalk.image.prep import DOCKERFILE, DOCKERIGNORE, dockerignore_patterns

Echo = Callable[[str], None]

INPUTS_LABEL = "io.catwalk.inputs.digest"

_MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
_FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", re.IGNORECASE)
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
_TIMEOUT = 30


# --- what the image is built from -----------------------------------------------------------


def inputs_digest(client: dk.Client, folder: Path, echo: Echo) -> str:
    """``sha256:...`` of the model folder's build inputs (see the module docstring)."""
    dockerfile = (folder / DOCKERFILE).read_text(encoding="utf-8", errors="replace")
    digest = hashlib.sha256(f"catwalk {__version__}\n".encode())
    # Instructions only: comments (paths, the generator's notes) do not change the image.
    instructions = [ln for ln in dockerfile.splitlines() if ln.strip() and ln.lstrip()[0] != "#"]
    digest.update(("\n".join(instructions) + "\n").encode())
    for base in base_images(dockerfile):
        digest.update(f"base {base} {_image_id(client, base, echo)}\n".encode())
    ignore = folder / DOCKERIGNORE
    patterns = dockerignore_patterns(ignore.read_text(encoding="utf-8")) if ignore.is_file() else []
    for name in sorted(exclude_paths(str(folder), patterns, dockerfile=DOCKERFILE)):
        if name == DOCKERFILE:
            continue  # its instructions are in already
        path = folder / name
        if path.is_symlink():
            entry = f"link {name} -> {path.readlink()}"
        elif path.is_file():
            mode = "x" if path.stat().st_mode & 0o111 else "-"
            entry = f"file {name} {mode} {_file_sha256(path)}"
        else:
            continue  # directories are their files
        digest.update(f"{entry}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def base_images(dockerfile: str) -> list[str]:
    """The images a Dockerfile's FROM lines name (not its own stages, not ``scratch``)."""
    stages: set[str] = set()
    found: list[str] = []
    for line in dockerfile.splitlines():
        match = _FROM.match(line)
        if not match:
            continue
        ref, alias = match.group(1), match.group(2)
        if ref.lower() not in stages and ref != "scratch" and ref not in found:
            found.append(ref)
        if alias:
            stages.add(alias.lower())
    return found


def _image_id(client: dk.Client, ref: str, echo: Echo) -> str:
    """The engine's id of ``ref``, pulled first when missing (the build would pull it too)."""
    if not dk.image_exists(client, ref):
        try:
            dk.pull_image(client, ref, echo=echo)
        except BuildError as exc:
            raise BuildError(
                f"{exc}\nThe base image is missing: the platform team pushes it once per "
                "catwalk version (docs/images.md); build-prep --base-image (or "
                "CATWALK_BASE_IMAGE) names where it is"
            ) from None
    return str(dk.inspect_image(client, ref)["Id"])


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- what the registry holds ----------------------------------------------------------------


@dataclass(frozen=True)
class Pushed:
    """The image a registry holds under a tag: its manifest digest and its labels."""

    digest: str
    labels: dict[str, str]


def check_before_push(client: dk.Client, ref: str, digest: str, overwrite: bool) -> bool:
    """True when ``ref`` must be pushed; False when the registry holds these inputs already.

    BuildError (the bump message) when it holds other inputs under that tag and not
    ``overwrite``.
    """
    pushed = registry_image(client, ref)
    if pushed is None:
        return True
    theirs = pushed.labels.get(INPUTS_LABEL)
    if theirs == digest:
        return False
    if overwrite:
        return True
    why = (
        f"its inputs differ ({INPUTS_LABEL} {theirs[:19]}..., this build {digest[:19]}...)"
        if theirs
        else f"it has no {INPUTS_LABEL} label to compare with (pushed by an older catwalk)"
    )
    raise BuildError(
        f"{ref} is already in the registry ({pushed.digest}) and {why}; a version names "
        "one image: bump version in model.yml, or replace it with --overwrite (or, for a "
        "rebuild of the same version on a new base image, give a --build-suffix: "
        "docs/upgrades.md)"
    )


def registry_image(client: dk.Client, ref: str) -> Pushed | None:
    """The image ``ref`` names in its registry; None when the registry has no such tag."""
    repository, tag = split_ref(ref)
    index, name = docker.auth.resolve_repository_name(repository)
    host = "registry-1.docker.io" if index == docker.auth.INDEX_NAME else index
    if index == docker.auth.INDEX_NAME and "/" not in name:
        name = f"library/{name}"
    api = _RegistryApi(host, name, _credentials(index), _insecure(client, index))
    try:
        manifest, digest = api.manifest(tag)
        if manifest is None:
            return None
        if "manifests" in manifest:  # an index: the image for the engine's platform
            child = _pick_platform(client, manifest["manifests"])
            manifest, _ = api.manifest(child)
            if manifest is None:
                raise BuildError(f"{ref}: the registry's index names {child}, which is missing")
        config = api.blob(str(manifest["config"]["digest"]))
    except requests.RequestException as exc:
        raise BuildError(f"cannot ask the registry {host} about {ref}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise BuildError(f"the registry {host} gave no image config for {ref}: {exc}") from None
    labels = (config.get("config") or {}).get("Labels") or {}
    return Pushed(digest or "(unknown digest)", {str(k): str(v) for k, v in labels.items()})


def _credentials(index: str) -> tuple[str, str] | None:
    """The user and password docker login stored for ``index`` (in DOCKER_CONFIG's file)."""
    try:
        found = docker.auth.resolve_authconfig(docker.auth.load_config(), index) or {}
    except docker.errors.DockerException as exc:
        raise BuildError(f"cannot read the Docker credentials for {index}: {exc}") from None
    user = found.get("username") or found.get("Username")
    password = found.get("password") or found.get("Password")
    return (str(user), str(password)) if user and password else None


def _insecure(client: dk.Client, index: str) -> bool:
    """Whether the engine talks plain HTTP to ``index`` (a loopback or --insecure-registry)."""
    host = index.rsplit(":", 1)[0] if index.count(":") == 1 else index
    if host in ("localhost", "::1") or host.startswith("127."):
        return True
    try:
        configs = client.info().get("RegistryConfig", {}).get("IndexConfigs", {})
    except (docker.errors.APIError, requests.RequestException):
        return False
    return configs.get(index, {}).get("Secure") is False


def _pick_platform(client: dk.Client, manifests: list[dict[str, Any]]) -> str:
    info = client.info()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(info.get("Architecture", ""), "amd64")
    images = [m for m in manifests if (m.get("platform") or {}).get("os") != "unknown"]
    for entry in images:
        platform = entry.get("platform") or {}
        if platform.get("os") == "linux" and platform.get("architecture") == arch:
            return str(entry["digest"])
    return str((images or manifests)[0]["digest"])


class _RegistryApi:
    """The two reads of the registry HTTP API V2 this needs, with its token handshake."""

    def __init__(
        self, host: str, name: str, credentials: tuple[str, str] | None, insecure: bool
    ) -> None:
        self._host, self._name, self._credentials = host, name, credentials
        self._schemes = ["https", "http"] if insecure else ["https"]
        self._session = requests.Session()
        self._auth: dict[str, str] = {}

    def manifest(self, reference: str) -> tuple[dict[str, Any] | None, str]:
        response = self._get(f"manifests/{reference}", {"Accept": _MANIFEST_TYPES})
        if response.status_code == 404:
            return None, ""
        self._raise_for(response, f"manifest {reference}")
        return dict(response.json()), response.headers.get("Docker-Content-Digest", "")

    def blob(self, digest: str) -> dict[str, Any]:
        response = self._get(f"blobs/{digest}", {})
        self._raise_for(response, f"image config {digest}")
        return dict(response.json())

    def _get(self, path: str, headers: dict[str, str]) -> requests.Response:
        last: requests.RequestException | None = None
        for scheme in self._schemes:
            url = f"{scheme}://{self._host}/v2/{self._name}/{path}"
            try:
                response = self._fetch(url, headers)
                if response.status_code == 401 and not self._auth:
                    self._authenticate(response)
                    response = self._fetch(url, headers)
            except (requests.exceptions.SSLError, requests.exceptions.ConnectionError) as exc:
                last = exc
                continue
            self._schemes = [scheme]  # the one that answered
            return response
        assert last is not None
        raise last

    def _fetch(self, url: str, headers: dict[str, str]) -> requests.Response:
        return self._session.get(url, headers={**headers, **self._auth}, timeout=_TIMEOUT)

    def _authenticate(self, challenge: requests.Response) -> None:
        header = challenge.headers.get("WWW-Authenticate", "")
        kind = header.split(" ", 1)[0].lower()
        basic = requests.auth.HTTPBasicAuth(*self._credentials) if self._credentials else None
        if kind == "basic" and basic is not None:
            request = requests.Request("GET", "http://x", auth=basic).prepare()
            self._auth = {"Authorization": str(request.headers["Authorization"])}
            return
        if kind != "bearer":
            return  # the 401 stands and is reported
        params = dict(_CHALLENGE.findall(header))
        realm = params.pop("realm", "")
        params.setdefault("scope", f"repository:{self._name}:pull")
        response = self._session.get(realm, params=params, auth=basic, timeout=_TIMEOUT)
        self._raise_for(response, "a token")
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if token:
            self._auth = {"Authorization": f"Bearer {token}"}

    def _raise_for(self, response: requests.Response, what: str) -> None:
        if response.ok:
            return
        hint = ""
        if response.status_code in (401, 403):
            hint = (
                " (log in: the credentials come from DOCKER_CONFIG's config.json, "
                "default ~/.docker/config.json)"
            )
        raise BuildError(
            f"the registry {self._host} refused {what} of {self._name}: HTTP "
            f"{response.status_code} {response.text.strip()[:200]}{hint}"
        )
