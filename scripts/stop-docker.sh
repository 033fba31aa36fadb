#!/usr/bin/env bash
# Stop the Docker engine and/or registry that scripts/start-docker.sh started.
#
# Usage: scripts/stop-docker.sh [engine] [registry]           (no argument = both)
#
# Kills only the pids recorded in $CATWALK_RUN_DIR (default /run/catwalk)/{dockerd,registry}.pid,
# and only if they still are dockerd / docker-registry; never anything by name.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

RUN_DIR=${CATWALK_RUN_DIR:-/run/catwalk}

# stop_pidfile NAME PIDFILE EXE
stop_pidfile() {
  local name=$1 pidfile=$2 exe=$3 pid i
  pid=$(read_pidfile "$pidfile")
  if ! pid_alive "$pid" "$exe"; then
    log "$name not running (per $pidfile)"
    rm -f "$pidfile"
    return 0
  fi
  log "stopping $name (pid $pid)"
  kill -TERM "$pid"
  # dockerd stops its containers first; give it time.
  for ((i = 0; i < 300; i++)); do pid_alive "$pid" || break; sleep 0.1; done
  pid_alive "$pid" && die "$name (pid $pid) still running after 30s"
  rm -f "$pidfile"
}

what=("$@")
((${#what[@]})) || what=(registry engine)
for w in "${what[@]}"; do
  case $w in
    engine) stop_pidfile dockerd "$RUN_DIR/dockerd.pid" dockerd ;;
    registry) stop_pidfile docker-registry "$RUN_DIR/registry.pid" docker-registry ;;
    -h | --help) sed -n '2,7s/^# \{0,1\}//p' "$0" >&2; exit 0 ;;
    *) die "unknown: $w (engine|registry)" ;;
  esac
done
