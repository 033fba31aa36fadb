#!/usr/bin/env bash
# Install what production serving needs (nginx from the system packages, catwalk in .venv),
# then serve example_models/rng in production mode (nginx -> gunicorn) on port 9090.
# Extra arguments go to `catwalk serve` (e.g. --server-config conf/local/application.yml).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-system-deps.sh nginx

PYTHON=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .

exec .venv/bin/catwalk serve --model-path example_models/rng --server-port "${SERVER_PORT:-9090}" "$@"
