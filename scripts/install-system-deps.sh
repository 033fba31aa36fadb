#!/usr/bin/env bash
# Install the Debian packages catwalk's tests and product need, by group.
#
# Usage: scripts/install-system-deps.sh [nginx] [wrk] [docker] [chromium] [prometheus] [java]
#        (no argument = all groups)
#
#   nginx       nginx                                  (the distro's nginx service is left stopped)
#   wrk         wrk                                    (HTTP load generator for benchmarks)
#   docker      docker.io docker-registry debootstrap  (engine, local registry, base-image builder;
#                                                      see scripts/start-docker.sh, build-base-os-image.sh)
#   chromium    chromium                               (headless browser for the /docs page test)
#   prometheus  prometheus                             (a real scraper for the /metrics test; the
#                                                      distro's service is left stopped)
#   java        openjdk-17-jre-headless                (the JVM PySpark runs on: catwalk score
#                                                      --engine spark and its tests)
#
# Idempotent and fast: a package whose binary is already on PATH is skipped, and apt-get (and
# `apt-get update`) runs only when something is missing. Package maintainer scripts are not
# allowed to start services (a temporary /usr/sbin/policy-rc.d), so neither nginx on port 80,
# nor dockerd with its default bridge, nor the distro registry (with htpasswd auth, on port 5000)
# are started by the install. Not root and something missing: prints the command to run, exit 1.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() { sed -n '2,15s/^# \{0,1\}//p' "$0" >&2; exit "${1:-2}"; }

ALL_GROUPS=(nginx wrk docker chromium prometheus java)

group_packages() {
  case $1 in
    nginx) echo nginx ;;
    wrk) echo wrk ;;
    docker) echo docker.io docker-registry debootstrap debian-archive-keyring ;;
    chromium) echo chromium ;;
    prometheus) echo prometheus ;;
    java) echo openjdk-17-jre-headless ;;
    *) return 1 ;;
  esac
}

# package_present PKG - cheap check (no dpkg/apt call) that what we need from PKG is there.
package_present() {
  case $1 in
    nginx) have nginx ;;
    wrk) have wrk ;;
    docker.io) have dockerd && have containerd && have runc ;;
    docker-registry) have docker-registry ;;
    debootstrap) have debootstrap ;;
    debian-archive-keyring) [[ -s /usr/share/keyrings/debian-archive-keyring.gpg ]] ;;
    chromium) have chromium ;;
    prometheus) have prometheus ;;
    openjdk-17-jre-headless) have java ;;
    *) return 1 ;;
  esac
}

# Distro services whose package may start them, and their pid files.
declare -A SERVICE_PIDFILE=(
  [nginx]=/run/nginx.pid
  [docker-registry]=/run/docker-registry.pid
  [prometheus]=/run/prometheus/prometheus.pid
)
declare -A SERVICE_EXE=([nginx]=nginx [docker-registry]=docker-registry [prometheus]=prometheus)

# stop_distro_service PKG - stop the package's own service if its install left it running.
stop_distro_service() {
  local pkg=$1 pidfile=${SERVICE_PIDFILE[$1]:-} pid i
  [[ -n $pidfile ]] || return 0
  pid=$(read_pidfile "$pidfile")
  pid_alive "$pid" "${SERVICE_EXE[$pkg]}" || return 0
  log "stopping the distro's $pkg service (pid $pid from $pidfile)"
  if have service; then service "$pkg" stop >/dev/null 2>&1 || true; fi
  if pid_alive "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
  for ((i = 0; i < 50; i++)); do pid_alive "$pid" || break; sleep 0.1; done
  pid_alive "$pid" && die "could not stop $pkg (pid $pid)"
  return 0
}

main() {
  local groups=() g p
  if (($# == 0)); then groups=("${ALL_GROUPS[@]}"); fi
  for g in "$@"; do
    case $g in
      -h | --help) usage 0 ;;
      all) groups+=("${ALL_GROUPS[@]}") ;;
      nginx | wrk | docker | chromium | prometheus | java) groups+=("$g") ;;
      *) log "unknown group: $g"; usage 2 ;;
    esac
  done

  local missing=()
  for g in "${groups[@]}"; do
    for p in $(group_packages "$g"); do
      package_present "$p" && continue
      [[ " ${missing[*]} " == *" $p "* ]] || missing+=("$p")
    done
  done

  if ((${#missing[@]} == 0)); then
    log "already installed: ${groups[*]}"
  else
    install_packages "${missing[@]}"
  fi

  # The distro nginx must not hold port 80; tell (but do not kill: not ours) if it does.
  for g in "${groups[@]}"; do
    if [[ $g == nginx ]] && pid_alive "$(read_pidfile /run/nginx.pid)" nginx; then
      log "warning: the distro's nginx service is running (pid file /run/nginx.pid)"
    fi
  done
}

install_packages() {
  local pkgs=("$@") apt_opts=(-y -qq --no-install-recommends
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  if ! is_root; then
    log "missing packages: ${pkgs[*]}; as root, run:"
    printf 'sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install %s\n' \
      "-y --no-install-recommends ${pkgs[*]}"
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  local aptlog
  aptlog=$(mktemp /tmp/catwalk-apt.XXXXXX.log)

  # Keep maintainer scripts from starting services (nginx on :80, dockerd, the distro registry).
  local policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# catwalk install-system-deps.sh: no service starts during install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "'"$policy"'"' EXIT
  fi

  log "apt-get update"
  local try
  for try in 1 2 3; do
    if apt-get update -qq >>"$aptlog" 2>&1; then break; fi
    ((try == 3)) && { tail -n 20 "$aptlog" >&2; die "apt-get update failed (log: $aptlog)"; }
    sleep $((try * 3))
  done
  log "apt-get install ${pkgs[*]}"
  if ! apt-get install "${apt_opts[@]}" "${pkgs[@]}" >>"$aptlog" 2>&1; then
    tail -n 30 "$aptlog" >&2
    die "apt-get install failed (log: $aptlog)"
  fi
  rm -f "$aptlog"

  local p
  for p in "${pkgs[@]}"; do
    stop_distro_service "$p"
    package_present "$p" || die "$p installed but its binaries are not on PATH"
  done
}

main "$@"
