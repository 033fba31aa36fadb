"""The zoo's images: size, cold build and rebuild after a one-line model.py change.

Each zoo model (tests/zoo/builders.py; torch left out unless asked) is trained, then built
with this checkout's ``catwalk build --no-push --network host`` on a base image built from the
root Dockerfile: cold (``--no-cache``, an empty wheelhouse cache: pip resolves and downloads,
from pip's own HTTP cache when it has the files), then again after one line is appended to
model.py. Images go under ``localhost:5000/catwalk-bench-zoo-<run>`` and are removed at the end.

    .venv/bin/python bench/image_zoo.py [--kinds lightgbm,xgboost,...]

Needs the ``zoo`` extra, a Docker engine and the base OS image (``bash scripts/ci-setup.sh``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "zoo"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from builders import KINDS, build_model  # noqa: E402 - the zoo's own trainers
from image_build import catwalk, size_mb  # noqa: E402 - the sibling bench

from catwalk.image.naming import image_ref  # noqa: E402
from catwalk.spec import load_spec  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = ",".join(k for k in KINDS if k != "torch")
    parser.add_argument("--kinds", default=default, help=f"default: {default}")
    parser.add_argument("--registry", default="localhost:5000")
    parser.add_argument("--python-image", default="catwalk-debian:bookworm")
    args = parser.parse_args()
    client = docker.from_env(timeout=1800)
    namespace = f"{args.registry}/catwalk-bench-zoo-{uuid.uuid4().hex[:6]}"
    made: list[str] = []
    rows = []
    with tempfile.TemporaryDirectory(prefix="catwalk-bench-zoo-") as tmp:
        work = Path(tmp)
        base = f"{namespace}/catwalk:0.1.0"
        made.append(base)
        for chunk in client.api.build(
            path=str(ROOT), tag=base, rm=True, forcerm=True, network_mode="host",
            buildargs={"PYTHON_IMAGE": args.python_image}, decode=True,
        ):  # fmt: skip
            if "error" in chunk:
                raise SystemExit(f"base image: {chunk['error']}")
        try:
            for kind in args.kinds.split(","):
                folder = build_model(kind, work / kind)
                ref = image_ref(load_spec(folder), namespace)
                made.append(ref)
                build = ["build", "-m", str(folder), "--docker-registry", namespace,
                         "--no-push", "--network", "host"]  # fmt: skip
                env = {"XDG_CACHE_HOME": str(work / f"cache-{kind}")}
                cold = catwalk(ROOT, *build, "--no-cache", env=env)
                size = size_mb(client, ref)
                with (folder / "model.py").open("a") as f:
                    f.write("\n# a one-line change\n")
                again = catwalk(ROOT, *build, env=env)
                rows.append((kind, size, cold, again))
                print(f"{kind}: {size:.0f} MB, cold {cold:.1f} s, rebuild {again:.1f} s")
        finally:
            for ref in reversed(made):
                try:
                    client.api.remove_image(ref)
                except docker.errors.APIError as exc:
                    print(f"could not remove {ref}: {exc}")
    print("\n| zoo model | image size | cold build (--no-cache) | rebuild after model.py |")
    print("|---|---:|---:|---:|")
    for kind, size, cold, again in rows:
        print(f"| {kind} | {size:.0f} MB | {cold:.1f} s | {again:.1f} s |")


if __name__ == "__main__":
    main()
