#!/usr/bin/env bash
# Ensure a Docker engine (default unix socket) and a local image registry (127.0.0.1:5000) run.
#
# Usage: scripts/start-docker.sh
#
# Starts only what does not already answer, and leaves both running (stop them with
# scripts/stop-docker.sh, which kills by the recorded pids only):
#   engine    `dockerd --iptables=false --bridge=none` (no bridge network on this kind of machine:
#             run containers and builds with --network host), ready when `docker info` answers.
#   registry  `docker-registry serve` with our own config (no auth, no TLS, bound to loopback),
#             ready when `curl http://127.0.0.1:5000/v2/` answers.
#
# Environment (all optional):
#   CATWALK_RUN_DIR       pid files                 (default /run/catwalk: dockerd.pid, registry.pid)
#   CATWALK_LOG_DIR       daemon logs               (default /var/log/catwalk)
#   CATWALK_REGISTRY_DIR  registry config + storage (default /var/lib/catwalk-registry)
#   CATWALK_REGISTRY_ADDR registry listen address   (default 127.0.0.1:5000)
#   CATWALK_DOCKERD_ARGS  extra dockerd arguments   (word-split)
#   CATWALK_DOCKER_TIMEOUT seconds to wait for each (default 60)
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

case ${1:-} in -h | --help) sed -n '2,20s/^# \{0,1\}//p' "$0" >&2; exit 0 ;; esac
(($# == 0)) || die "no arguments expected (see --help)"

RUN_DIR=${CATWALK_RUN_DIR:-/run/catwalk}
LOG_DIR=${CATWALK_LOG_DIR:-/var/log/catwalk}
REGISTRY_DIR=${CATWALK_REGISTRY_DIR:-/var/lib/catwalk-registry}
REGISTRY_ADDR=${CATWALK_REGISTRY_ADDR:-127.0.0.1:5000}
TIMEOUT=${CATWALK_DOCKER_TIMEOUT:-60}
# The engine this script manages is the local default one, whatever DOCKER_HOST/context say.
DOCKER_SOCK=/var/run/docker.sock
DOCKER_PIDFILE_OWN=/var/run/docker.pid # written by dockerd itself

# Left behind by a dockerd that was killed: dockerd refuses to start while its pid file names a
# live process (a zombie counts), and would wait for a containerd that is gone.
CONTAINERD_PIDFILE=/var/run/docker/containerd/containerd.pid
remove_stale_pidfile() {
  local file=$1 exe=$2 pid
  [[ -e $file ]] || return 0
  pid=$(read_pidfile "$file")
  pid_alive "$pid" "$exe" && return 0
  log "removing stale $file (pid ${pid:-none} is no running $exe)"
  rm -f "$file"
}

docker_local() { docker --host "unix://$DOCKER_SOCK" "$@"; }
engine_ok() { timeout 20 docker --host "unix://$DOCKER_SOCK" info >/dev/null 2>&1; }
registry_ok() { curl -fsS -o /dev/null --max-time 5 "http://$REGISTRY_ADDR/v2/" 2>/dev/null; }

need_root() {
  is_root || die "$1 is not running and starting it needs root: sudo $0"
}

# wait_for WHAT PID CHECK_FN - poll CHECK_FN until it passes, PID dies, or TIMEOUT passes.
wait_for() {
  local what=$1 pid=$2 check=$3 logfile=$4 deadline=$((SECONDS + TIMEOUT))
  until "$check"; do
    if [[ -n $pid ]] && ! pid_alive "$pid"; then
      tail -n 20 "$logfile" >&2 || true
      die "$what (pid $pid) exited; log: $logfile"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 20 "$logfile" >&2 || true
      die "$what not ready after ${TIMEOUT}s; log: $logfile"
    fi
    sleep 0.2
  done
}

start_engine() {
  if engine_ok; then
    log "docker engine answers on $DOCKER_SOCK"
    return 0
  fi
  local logfile=$LOG_DIR/dockerd.log pid
  # A dockerd still starting (ours or another), as told by its pid files: wait for it, do not
  # start a second one.
  pid=$(read_pidfile "$RUN_DIR/dockerd.pid")
  pid_alive "$pid" dockerd || pid=$(read_pidfile "$DOCKER_PIDFILE_OWN")
  if pid_alive "$pid" dockerd; then
    log "waiting for the running dockerd (pid $pid)"
  else
    have dockerd || die "dockerd not found: run scripts/install-system-deps.sh docker"
    need_root "the docker engine"
    remove_stale_pidfile "$DOCKER_PIDFILE_OWN" dockerd
    remove_stale_pidfile "$CONTAINERD_PIDFILE" containerd
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    log "starting dockerd (log: $logfile)"
    local extra=()
    # shellcheck disable=SC2206 # word splitting of the extra args is intended
    [[ -n ${CATWALK_DOCKERD_ARGS:-} ]] && extra=($CATWALK_DOCKERD_ARGS)
    printf '\n=== %s catwalk start-docker.sh\n' "$(date -Is)" >>"$logfile"
    setsid dockerd --iptables=false --bridge=none --host "unix://$DOCKER_SOCK" "${extra[@]}" \
      </dev/null >>"$logfile" 2>&1 &
    pid=$!
    echo "$pid" >"$RUN_DIR/dockerd.pid"
  fi
  wait_for "dockerd" "$pid" engine_ok "$logfile"
  # setsid may have forked: record the pid dockerd wrote itself, which is authoritative.
  local own
  own=$(read_pidfile "$DOCKER_PIDFILE_OWN")
  if pid_alive "$own" dockerd && [[ -d $RUN_DIR ]]; then echo "$own" >"$RUN_DIR/dockerd.pid"; fi
  log "docker engine $(docker_local version -f '{{.Server.Version}}' 2>/dev/null) ready (pid ${own:-$pid})"
}

write_registry_config() {
  local conf=$REGISTRY_DIR/config.yml tmp
  mkdir -p "$REGISTRY_DIR/data"
  tmp=$(mktemp "$REGISTRY_DIR/.config.XXXXXX")
  cat >"$tmp" <<YML
# Written by catwalk scripts/start-docker.sh; rewritten on each start. No auth, no TLS: loopback only.
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
  headers:
    X-Content-Type-Options: [nosniff]
YML
  if cmp -s "$tmp" "$conf"; then rm -f "$tmp"; else mv -f "$tmp" "$conf"; fi
  chmod 644 "$conf"
}

start_registry() {
  if registry_ok; then
    log "registry answers on $REGISTRY_ADDR"
    return 0
  fi
  local logfile=$LOG_DIR/registry.log pid code
  pid=$(read_pidfile "$RUN_DIR/registry.pid")
  if pid_alive "$pid" docker-registry; then
    log "waiting for the running registry (pid $pid)"
  else
    # Something else (e.g. the distro's registry, which requires auth) answering on the port?
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$REGISTRY_ADDR/v2/" || true)
    if [[ $code != 000 ]]; then
      die "$REGISTRY_ADDR is taken by another server (HTTP $code on /v2/); stop it first"
    fi
    have docker-registry || die "docker-registry not found: run scripts/install-system-deps.sh docker"
    is_root || [[ -w ${REGISTRY_DIR%/*} || -w $REGISTRY_DIR ]] || need_root "the registry"
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    write_registry_config
    log "starting docker-registry on $REGISTRY_ADDR (log: $logfile)"
    printf '\n=== %s catwalk start-docker.sh\n' "$(date -Is)" >>"$logfile"
    setsid docker-registry serve "$REGISTRY_DIR/config.yml" </dev/null >>"$logfile" 2>&1 &
    pid=$!
    echo "$pid" >"$RUN_DIR/registry.pid"
  fi
  wait_for "docker-registry" "$pid" registry_ok "$logfile"
  log "registry ready on $REGISTRY_ADDR (pid $pid)"
}

if [[ -n ${DOCKER_HOST:-} && ${DOCKER_HOST} != "unix://$DOCKER_SOCK" ]]; then
  log "note: DOCKER_HOST=$DOCKER_HOST is set; this script manages the local engine at $DOCKER_SOCK"
fi
have docker || die "docker client not found: run scripts/install-system-deps.sh docker"
have curl || die "curl not found"
start_engine
start_registry
