# shellcheck shell=bash
# Shared helpers for catwalk's system scripts (scripts/*.sh). Source it; do not run it.
#
# Conventions: every script is quiet on success except for one short log line per step on
# stderr ("[script] message"); results meant for a caller go to stdout.

# Root's PATH has the sbin directories, a plain user's may not: nginx, dockerd... live there.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/sbin:/sbin" ;; esac
export PATH

CATWALK_SCRIPT_NAME=${CATWALK_SCRIPT_NAME:-$(basename "$0" .sh)}

log() { printf '[%s] %s\n' "$CATWALK_SCRIPT_NAME" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$CATWALK_SCRIPT_NAME" "$*" >&2; exit 1; }

have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [[ $(id -u) -eq 0 ]]; }

# pid_alive PID [EXE_BASENAME] - true if PID runs (and, if given, its executable is EXE_BASENAME).
pid_alive() {
  local pid=${1:-} want=${2:-} exe
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # A zombie (dead, not yet reaped by its parent) is not alive.
  local stat=''
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]] || return 1
  [[ -z $want ]] && return 0
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  exe=${exe% (deleted)}
  [[ ${exe##*/} == "$want" ]]
}

# read_pidfile FILE - prints the pid stored in FILE (nothing if absent/garbage).
read_pidfile() {
  local pid=''
  if [[ -r $1 ]]; then read -r pid <"$1" 2>/dev/null || true; fi
  [[ $pid =~ ^[0-9]+$ ]] && printf '%s\n' "$pid"
  return 0
}

# now - seconds since the epoch with sub-second precision (for timings).
now() { date +%s.%N; }
# elapsed START - seconds since START, one decimal.
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }
