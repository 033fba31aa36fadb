#!/usr/bin/env bash
# Prepare a machine for catwalk's test suite: system packages, Docker engine + registry, base image.
#
# Usage: scripts/ci-setup.sh
#
# Runs, in order: install-system-deps.sh (all groups), start-docker.sh, build-base-os-image.sh
# (image name from CATWALK_BASE_IMAGE, default catwalk-debian:bookworm), install-ci-runners.sh
# (gitlab-ci-local, rsync, the runner account tests/ci uses). Each is idempotent and
# fast when its work is already done. The engine and registry are left running.
# Logs one line per step (with its seconds) on stderr and prints a one-line summary on stdout.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

case ${1:-} in -h | --help) sed -n '2,10s/^# \{0,1\}//p' "$0" >&2; exit 0 ;; esac
(($# == 0)) || die "no arguments expected (see --help)"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE=${CATWALK_BASE_IMAGE:-catwalk-debian:bookworm}
REGISTRY_ADDR=${CATWALK_REGISTRY_ADDR:-127.0.0.1:5000}

timings=()
step() {
  local name=$1 t0 t
  shift
  t0=$(now)
  "$@" || die "step '$name' failed: $*"
  t=$(elapsed "$t0")
  timings+=("$name ${t}s")
  log "step $name done in ${t}s"
}

t_all=$(now)
step deps bash "$HERE/install-system-deps.sh"
step docker bash "$HERE/start-docker.sh"
step image bash "$HERE/build-base-os-image.sh" "$IMAGE" >/dev/null
step runners bash "$HERE/install-ci-runners.sh"

nginx_v=$(nginx -v 2>&1 | sed -n 's|.*nginx/||p')
docker_v=$(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?')
if curl -fsS -o /dev/null --max-time 5 "http://$REGISTRY_ADDR/v2/"; then registry=reachable; else registry=UNREACHABLE; fi
if size=$(docker image inspect -f '{{.Size}}' "$IMAGE" 2>/dev/null); then
  image="present ($((size / 1000000)) MB)"
else
  image=MISSING
fi
summary="ci-setup: nginx ${nginx_v:-?}, docker server $docker_v, registry $REGISTRY_ADDR $registry,"
joined=$(printf '%s, ' "${timings[@]}")
summary+=" image $IMAGE $image; ${joined}total $(elapsed "$t_all")s"
echo "$summary"
[[ $registry == reachable && $image != MISSING ]]
