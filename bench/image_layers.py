"""Layers that follow change rates: a one-line model.py change with a large weights file.

For each source tree (a reference commit, exported with ``git archive``, and this checkout), in
one run: the base image from the tree's root Dockerfile (pushed to the local registry), then
the rng example with a ``weights/weights.bin`` of ``--weights-mb`` random megabytes (the same
bytes for both trees; model.yml unchanged, so this checkout finds the file by its size) built
cold with the tree's own ``catwalk build --no-push`` and pushed; then one line is appended to
model.py, the version bumped, and the image rebuilt and pushed again. Reported: cold build,
rebuild, the push after the change (seconds and bytes uploaded, from the engine's push stream)
and the image size. Images go under ``localhost:5000/catwalk-bench-layers-<run>-<tree>`` and
are removed at the end (the registry keeps the blobs, as any registry would).

    .venv/bin/python bench/image_layers.py --reference main --weights-mb 300

Needs a Docker engine, the registry and the base OS image (``bash scripts/ci-setup.sh``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from image_build import GENERATED, catwalk, export, size_mb


def push(client: docker.DockerClient, ref: str) -> tuple[float, int, int]:
    """Push ``ref``; (seconds, bytes uploaded, layers uploaded) from the push stream."""
    repository, _, tag = ref.rpartition(":")
    totals: dict[str, int] = {}
    uploaded: set[str] = set()
    started = time.monotonic()
    for chunk in client.api.push(repository, tag=tag, stream=True, decode=True):
        if "error" in chunk:
            raise SystemExit(f"push {ref}: {chunk['error']}")
        layer, status = chunk.get("id", ""), chunk.get("status", "")
        detail: dict[str, Any] = chunk.get("progressDetail") or {}
        if status == "Pushing" and detail.get("total"):
            totals[layer] = max(totals.get(layer, 0), int(detail["total"]))
        if status == "Pushed":
            uploaded.add(layer)
    took = time.monotonic() - started
    return took, sum(totals.get(layer, 0) for layer in uploaded), len(uploaded)


def one_tree(
    client: docker.DockerClient,
    tree: Path,
    namespace: str,
    python_image: str,
    weights: Path,
    work: Path,
) -> dict[str, float]:
    figures: dict[str, float] = {}
    base = f"{namespace}/catwalk:0.1.0"
    for chunk in client.api.build(
        path=str(tree), tag=base, rm=True, forcerm=True, network_mode="host",
        buildargs={"PYTHON_IMAGE": python_image}, decode=True,
    ):  # fmt: skip
        if "error" in chunk:
            raise SystemExit(f"base image of {tree}: {chunk['error']}")
    push(client, base)
    folder = work / namespace.replace("/", "_")
    shutil.copytree(tree / "example_models" / "rng", folder,
                    ignore=shutil.ignore_patterns(*GENERATED))  # fmt: skip
    (folder / "weights").mkdir()
    os.link(weights, folder / "weights" / "weights.bin")
    catwalk(tree, "build-prep", "-m", str(folder), "--docker-registry", namespace)
    build = ["build", "-m", str(folder), "--docker-registry", namespace, "--no-push",
             "--network", "host"]  # fmt: skip
    figures["cold build s"] = catwalk(tree, *build)
    figures["image MB"] = size_mb(client, f"{namespace}/rngmodel:0.0.1")
    took, sent, _ = push(client, f"{namespace}/rngmodel:0.0.1")
    figures["first push s"], figures["first push MB"] = took, sent / 1e6
    model, spec = folder / "model.py", folder / "model.yml"
    model.write_text(model.read_text() + "\n# a one-line change\n")
    spec.write_text(spec.read_text().replace('version: "0.0.1"', 'version: "0.0.2"'))
    figures["rebuild after model.py s"] = catwalk(tree, *build)
    took, sent, layers = push(client, f"{namespace}/rngmodel:0.0.2")
    figures["push after model.py s"] = took
    figures["push after model.py kB"] = sent / 1e3
    figures["layers pushed after model.py"] = layers
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", default="main", help="commit to compare with")
    parser.add_argument("--weights-mb", type=int, default=300)
    parser.add_argument("--registry", default="localhost:5000")
    parser.add_argument("--python-image", default="catwalk-debian:bookworm")
    args = parser.parse_args()
    client = docker.from_env(timeout=1800)
    run = uuid.uuid4().hex[:6]
    root = Path(__file__).resolve().parents[1]
    results: dict[str, dict[str, float]] = {}
    namespaces: list[str] = []
    with tempfile.TemporaryDirectory(prefix="catwalk-bench-layers-") as tmp:
        work = Path(tmp)
        weights = work / "weights.bin"
        with weights.open("wb") as f:
            for _ in range(args.weights_mb):
                f.write(os.urandom(1024 * 1024))
        trees = {"reference": export(args.reference, work), "this": root}
        try:
            for name, tree in trees.items():
                namespace = f"{args.registry}/catwalk-bench-layers-{run}-{name}"
                namespaces.append(namespace)
                results[name] = one_tree(client, tree, namespace, args.python_image, weights, work)
                print(f"{name}: " + ", ".join(f"{k} {v:.1f}" for k, v in results[name].items()))
        finally:
            for image in client.images.list():
                for tag in image.tags:
                    if any(tag.startswith(ns + "/") for ns in namespaces):
                        client.api.remove_image(tag)
    print(f"\n{args.weights_mb} MB of weights; reference {args.reference}\n")
    print(f"| figure | {args.reference} | this | this / reference |")
    print("|---|---:|---:|---:|")
    for key, new in results["this"].items():
        ref = results["reference"][key]
        ratio = f"{new / ref:.3f}" if ref else "-"
        print(f"| {key} | {ref:,.1f} | {new:,.1f} | {ratio} |")


if __name__ == "__main__":
    main()
