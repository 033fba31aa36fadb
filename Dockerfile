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

# CATWALK_ENV_MANAGER=local: the image is the model's environment, its requirements installed
# into catwalk's interpreter (docs/environments.md); no command builds another one here.
ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CATWALK_ENV_MANAGER=local \
    VIRTUAL_ENV=/opt/catwalk \
    PATH=/opt/catwalk/bin:${PATH} \
    HOME=/home/catwalk

# nginx, and the runtime libraries the common ML wheels load at import but do not bundle
# (libgomp1: LightGBM's and XGBoost's OpenMP; libstdc++6: every C++ extension), from the
# distribution, unless the base already has them all (the CI base does). A model needing more
# lists them in model.yml's system_packages. The user runs with group 0 so that an arbitrary
# UID (OpenShift assigns one, always in group 0) can write the same folders: HOME, and the
# nginx folders nginx touches before it reads its config.
ARG RUNTIME_PACKAGES="nginx libgomp1 libstdc++6"
RUN set -eux; \
    missing=""; \
    for package in ${RUNTIME_PACKAGES}; do \
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
            || missing="$missing $package"; \
    done; \
    if [ -n "$missing" ]; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing; \
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
