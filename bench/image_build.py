"""Image sizes and build times: this checkout against a reference commit, side by side.

For each source tree (the reference, exported with ``git archive``, and this checkout), in
interleaved rounds: the base image from the root Dockerfile (``--no-cache``), then the rng and
dataframe examples through that tree's own ``catwalk build-prep`` + ``catwalk build --no-cache``,
then a rebuild after a ``model.py`` change. Images are tagged ``catwalk-bench-<tree>-<run>/...``
and removed at the end.

    .venv/bin/python bench/image_build.py --reference 79ea062 --rounds 2

Needs a Docker engine and the base OS image (``bash scripts/ci-setup.sh``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ("Dockerfile", ".dockerignore", "docker-compose.yml", "kubernetes.yml", "__pycache__")


def export(ref: str, where: Path) -> Path:
    """The tree of commit ``ref`` in ``where`` (git archive: committed files only)."""
    archive = where / "ref.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), ref], check=True)
    tree = where / "reference"
    tree.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="tar")  # our own tree: a committed link may be absolute
    return tree


def catwalk(tree: Path, *args: str, env: dict[str, str] | None = None) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), **(env or {})}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "catwalk", *args], env=env, capture_output=True, text=True
    )
    took = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"catwalk {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return took


def size_mb(client: docker.DockerClient, ref: str) -> float:
    return float(client.api.inspect_image(ref)["Size"]) / 1e6


def one_tree(
    client: docker.DockerClient, tree: Path, namespace: str, python_image: str, work: Path
) -> dict[str, float]:
    figures: dict[str, float] = {}
    base = f"{namespace}/catwalk:0.1.0"
    started = time.monotonic()
    for chunk in client.api.build(
        path=str(tree), tag=base, nocache=True, rm=True, forcerm=True, network_mode="host",
        buildargs={"PYTHON_IMAGE": python_image}, decode=True,
    ):  # fmt: skip
        if "error" in chunk:
            raise SystemExit(f"base image of {tree}: {chunk['error']}")
    figures["base build s"] = time.monotonic() - started
    figures["base MB"] = size_mb(client, base)
    for name, tag in (("rng", "rngmodel:0.0.1"), ("dataframe", "neurondataframe:1.0.0")):
        folder = work / f"{namespace.replace('/', '_')}-{name}"
        shutil.copytree(tree / "example_models" / name, folder,
                        ignore=shutil.ignore_patterns(*GENERATED))  # fmt: skip
        catwalk(tree, "build-prep", "-m", str(folder), "--docker-registry", namespace)
        build = ["build", "-m", str(folder), "--docker-registry", namespace, "--no-push",
                 "--network", "host"]  # fmt: skip
        figures[f"{name} cold build s"] = catwalk(tree, *build, "--no-cache")
        figures[f"{name} MB"] = size_mb(client, f"{namespace}/{tag}")
        model = folder / "model.py"
        model.write_text(model.read_text() + "\n# changed\n")
        figures[f"{name} rebuild after model.py s"] = catwalk(tree, *build)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="commit to compare with")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--python-image", default="catwalk-debian:bookworm")
    args = parser.parse_args()
    client = docker.from_env(timeout=1800)
    run = uuid.uuid4().hex[:6]
    results: dict[str, list[dict[str, float]]] = {"reference": [], "this": []}
    with tempfile.TemporaryDirectory(prefix="catwalk-bench-") as tmp:
        work = Path(tmp)
        trees = {"reference": export(args.reference, work), "this": ROOT}
        namespaces: list[str] = []
        try:
            for round_ in range(args.rounds):
                order = ["reference", "this"] if round_ % 2 == 0 else ["this", "reference"]
                for name in order:
                    namespace = f"catwalk-bench-{name}-{run}-{round_}"
                    namespaces.append(namespace)
                    figures = one_tree(client, trees[name], namespace, args.python_image, work)
                    results[name].append(figures)
                    print(f"round {round_ + 1} {name}: " + ", ".join(
                        f"{k} {v:.1f}" for k, v in figures.items()))  # fmt: skip
        finally:
            for image in client.images.list():
                for tag in image.tags:
                    if any(tag.startswith(ns + "/") for ns in namespaces):
                        client.api.remove_image(tag)
    print(f"\n| figure | {args.reference} (median) | this (median) | this / reference |")
    print("|---|---:|---:|---:|")
    for key in results["this"][0]:
        ref = statistics.median(r[key] for r in results["reference"])
        new = statistics.median(r[key] for r in results["this"])
        print(f"| {key} | {ref:.1f} | {new:.1f} | {new / ref:.2f} |")


if __name__ == "__main__":
    main()
