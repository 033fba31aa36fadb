# The catwalk base image: catwalk in a virtual environment, nginx from the distribution, and the
# bundled rng example served on 9090 by default. Model images (`catwalk build-prep`) start FROM it.
#
#   docker build . -t ${DOCKER_REGISTRY}/catwalk:$(catwalk --version | cut -d' ' -f3)
#
# PYTHON_IMAGE: any Debian-based image with python3 (and the venv module). CI, where no image can
# be pulled, passes its own: --build-arg PYTHON_IMAGE=catwalk-debian:bookworm --network host.
ARG PYTHON_IMAGE=python:3.12-slim
FROM ${PYTHON_IMAGE}

# Keep in step with catwalk.__version__ (a unit test checks it).
ARG CATWALK_VERSION=0.1.0
ARG SOURCE_URL=https://github.com/catwalk-ml/catwalk

LABEL org.opencontainers.image.title="catwalk" \
      org.opencontainers.image.description="Serves a model folder (model.yml + model.py) as a REST API: nginx in front of gunicorn" \
      org.opencontainers.image.version="${CATWALK_VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/catwalk \
    PATH=/opt/catwalk/bin:${PATH} \
    HOME=/home/catwalk

# nginx from the distribution, unless the base already has it (the CI base does). The user runs
# with group 0 so that an arbitrary UID (OpenShift assigns one, always in group 0) can write the
# same folders: HOME, and the nginx folders nginx touches before it reads its config.
RUN set -eux; \
    if ! command -v nginx >/dev/null 2>&1; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx; \
        apt-get clean; \
        rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; \
    fi; \
    useradd --uid 10001 --gid 0 --home-dir /home/catwalk --create-home --shell /usr/sbin/nologin catwalk; \
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin catwalk-nginx; \
    for dir in /home/catwalk /var/lib/nginx /var/log/nginx; do \
        mkdir -p "$dir"; chgrp -R 0 "$dir"; chmod -R g=u "$dir"; \
    done; \
    python3 -m venv /opt/catwalk

# catwalk from the build context (see .dockerignore: only the package sources and the example).
COPY pyproject.toml README.md /tmp/catwalk-src/
COPY src /tmp/catwalk-src/src
RUN set -eux; \
    /opt/catwalk/bin/python -m pip install --no-cache-dir /tmp/catwalk-src; \
    rm -rf /tmp/catwalk-src /home/catwalk/.cache /root/.cache; \
    catwalk --version

# Readable by any UID in group 0 even when the checkout is private (umask 077, mode 600 files).
COPY example_models/rng /opt/catwalk-examples/rng
RUN chmod -R a+rX,go-w /opt/catwalk-examples

ENV MODEL_PATH=/opt/catwalk-examples/rng \
    SERVER_PORT=9090 \
    RUN_TESTS=false
EXPOSE 9090
WORKDIR /home/catwalk
USER 10001
CMD ["catwalk", "serve"]
