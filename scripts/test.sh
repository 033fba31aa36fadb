#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run it: system packages
# (nginx, wrk, a Docker engine, a local registry, a Debian base image), the package in a
# virtual environment, ruff, mypy and pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ci-setup.sh

PYTHON=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev,zoo,spark,ray,protocol-tests]'

# One command per line: under set -e a failure inside an && list would not stop the script.
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
# CI's output lists the slowest tests, to keep the run well under its time limit.
if [[ ${CI:-} == true ]]; then set -- --durations=25 "$@"; fi
.venv/bin/python -m pytest "$@"
