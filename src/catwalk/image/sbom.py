"""``catwalk build --sbom``: a CycloneDX SBOM of the model image's Python environment.

The generator is CycloneDX's own (``cyclonedx-bom`` from PyPI, ``catwalk-serve[sbom]``), run on this
machine against the image's environment: a throwaway container of the image (no network)
packs the metadata of every distribution its Python sees (``*.dist-info``: name, version,
licence, licence files — no code), and ``cyclonedx-py environment`` reads them from a venv
laid out here with those folders. So the SBOM lists exactly what the image holds — catwalk,
its dependencies, the model's requirements — and the generator itself never enters the image.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from catwalk.errors import BuildError
from catwalk.image import docker as dk
from catwalk.spec import ModelSpec

SBOM_FILE = "sbom.cdx.json"
_USER = "23456:0"

# Runs inside the image: a tar (base64) of every distribution's metadata folder, the files
# an SBOM needs only (METADATA, licences), as the image's own Python finds them.
_PACK = """
import base64, io, sys, tarfile
from importlib import metadata
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w:gz") as tar:
    seen = set()
    for dist in metadata.distributions():
        path = getattr(dist, "_path", None)
        if path is None or str(path) in seen or not str(path).endswith(".dist-info"):
            continue
        seen.add(str(path))
        for file in path.rglob("*"):
            rel = file.relative_to(path).as_posix()
            if file.is_file() and (rel == "METADATA" or "licen" in rel.lower()
                                   or "copying" in rel.lower() or rel == "top_level.txt"):
                tar.add(file, arcname=path.name + "/" + rel)
print("%d.%d" % sys.version_info[:2])
print(base64.b64encode(buf.getvalue()).decode())
"""


def check_sbom_tool() -> None:
    """BuildError when CycloneDX's generator is missing (build checks before building)."""
    try:
        import cyclonedx_py  # noqa: F401
    except ImportError:
        raise BuildError(
            "catwalk build --sbom needs CycloneDX's generator: pip install 'catwalk-serve[sbom]' "
            "(cyclonedx-bom)"
        ) from None


def make_sbom(client: dk.Client, ref: str, spec: ModelSpec, echo: Callable[[str], None]) -> str:
    """The SBOM (CycloneDX JSON) of image ``ref``'s Python environment."""
    check_sbom_tool()
    echo(f"== sbom of {ref}")
    done = dk.run_command(
        client, ref, ["python", "-c", _PACK], user=_USER, timeout=300, environment={}
    )
    lines = done.stdout.strip().splitlines()
    if done.exit_code != 0 or len(lines) < 2:
        raise BuildError(f"cannot read the Python packages of {ref}: {done.stderr.strip()[-500:]}")
    with tempfile.TemporaryDirectory(prefix="catwalk-sbom-") as tmp:
        python = _venv_of(Path(tmp), lines[-2].strip(), base64.b64decode(lines[-1]))
        out = Path(tmp) / SBOM_FILE
        generator = [sys.executable, "-m", "cyclonedx_py", "environment", str(python)]
        proc = subprocess.run(
            [*generator, "--of", "JSON", "--output-reproducible", "--validate", "-o", str(out)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise BuildError(f"cyclonedx-py failed on {ref}: {(proc.stderr or proc.stdout)[-800:]}")
        bom = json.loads(out.read_text(encoding="utf-8"))
    bom.setdefault("metadata", {})["component"] = _root_component(spec, ref)
    return json.dumps(bom, indent=2, sort_keys=True) + "\n"


def sbom_digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_sbom(model_folder: Path, text: str) -> Path:
    target = model_folder / SBOM_FILE
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BuildError(f"{target}: cannot be written ({exc.strerror})") from None
    return target


def _venv_of(root: Path, version: str, packed: bytes) -> Path:
    """A venv of this machine's Python whose site-packages holds the image's metadata."""
    site = root / "venv" / "lib" / f"python{version}" / "site-packages"
    site.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
        for member in tar.getmembers():
            parts = PurePosixPath(member.name).parts
            if not member.isfile() or member.name.startswith("/") or ".." in parts:
                continue  # only plain files inside the folder
            extracted = tar.extractfile(member)
            if extracted is None:
                continue
            target = site.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(extracted.read())
    # The metadata only is read: any Python runs it. It must be this venv's version, so the
    # interpreter finds lib/pythonX.Y: use this machine's and name the folder after it.
    host = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if host != version:
        site.parent.rename(site.parent.with_name(f"python{host}"))
    base = Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    (root / "venv" / "pyvenv.cfg").write_text(
        f"home = {base.parent}\ninclude-system-site-packages = false\nversion = {host}\n"
    )
    bindir = root / "venv" / "bin"
    bindir.mkdir()
    python = bindir / "python"
    python.symlink_to(base)
    if shutil.which(str(python)) is None:  # pragma: no cover - a platform without symlinks
        raise BuildError("cannot lay out a venv for the SBOM generator here")
    return python


def _root_component(spec: ModelSpec, ref: str) -> dict[str, object]:
    return {
        "type": "container",
        "bom-ref": ref,
        "name": spec.name,
        "version": spec.version,
        "description": spec.description or "",
        "properties": [{"name": "io.catwalk:image", "value": ref}],
    }
