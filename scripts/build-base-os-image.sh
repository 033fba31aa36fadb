#!/usr/bin/env bash
# Build (or re-import from cache) catwalk's Debian base image, for machines that cannot pull one.
#
# Usage: scripts/build-base-os-image.sh [IMAGE]          (default IMAGE: catwalk-debian:bookworm)
#
# The image: `debootstrap --variant=minbase` bookworm with python3, python3-venv, python3-pip,
# ca-certificates, nginx and libgomp1 (the OpenMP runtime LightGBM's and XGBoost's wheels load
# and do not bundle), the host's CA certificates (HTTPS to the package registries goes
# through a proxy whose CA only the host bundle has; they are added as local CAs, so they also
# survive a later update-ca-certificates), apt sources for bookworm, -updates and -security
# (run `apt-get update` before `apt-get install` in a Dockerfile), a policy-rc.d that keeps
# package installs from starting services (builds run with --network host: an nginx started by
# its postinst would bind the host's port 80), and docs/man pages/locales left out (as in
# debian:*-slim). Debian's Python is "externally managed" (PEP 668): pip-install into a venv.
# Build/run containers with --network host (the engine has no bridge network here).
#
# Idempotent: does nothing if IMAGE exists and was made from the same recipe (label
# org.catwalk.base-recipe). Otherwise imports the cached rootfs tarball for this recipe
# (seconds), or runs debootstrap (about a minute) and caches the tarball first.
#
# Environment (all optional):
#   CATWALK_CACHE_DIR                tarball cache (default /var/cache/catwalk)
#   CATWALK_DEBIAN_MIRROR            (default http://deb.debian.org/debian)
#   CATWALK_DEBIAN_SECURITY_MIRROR   (default http://deb.debian.org/debian-security)
#   CATWALK_HOST_CA_BUNDLE           CA bundle to trust in the image
#                                    (default /etc/ssl/certs/ca-certificates.crt)
#   CATWALK_REBUILD=1                ignore the tarball cache and the existing image
#
# Prints "IMAGE SIZE_MB MB ID" on stdout at the end.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

case ${1:-} in -h | --help) sed -n '2,30s/^# \{0,1\}//p' "$0" >&2; exit 0 ;; esac
(($# <= 1)) || die "usage: $0 [IMAGE]"

IMAGE=${1:-catwalk-debian:bookworm}
[[ $IMAGE == *:* ]] || IMAGE=$IMAGE:latest
CACHE_DIR=${CATWALK_CACHE_DIR:-/var/cache/catwalk}
MIRROR=${CATWALK_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${CATWALK_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
HOST_CA_BUNDLE=${CATWALK_HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
SUITE=bookworm
INCLUDE=python3,python3-venv,python3-pip,ca-certificates,nginx,libgomp1
LABEL_KEY=org.catwalk.base-recipe
IMPORT_CHANGES=(
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change 'ENV LANG=C.UTF-8'
  --change 'CMD ["bash"]'
)

# ---------------------------------------------------------------------------------------------
# The recipe. Its key hashes these functions' code (comments excluded), the settings above and
# the host CA bundle, so a real change to any of them makes a new tarball and image.

# configure_rootfs ROOTFS - everything after debootstrap.
configure_rootfs() {
  local root=$1
  # apt: the full set of bookworm suites (debootstrap writes only "bookworm main").
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # apt/dpkg settings of Debian's official container images: no caches or translations kept,
  # no docs/man pages/locales unpacked (as debian:*-slim), no suggested packages kept.
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  printf '%s\n' 'APT::AutoRemove::SuggestsImportant "false";' \
    >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  find "$root/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/{man,info,groff,lintian,linda,locale}/*

  # Package installs in containers must not start services (see header).
  printf '#!/bin/sh\n# catwalk base image: no service starts on package install\nexit 101\n' \
    >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"

  # The host's extra CAs (the registries' HTTPS proxy) become local CAs of the image.
  add_host_cas "$root"

  # Leave no machine-specific or cached state behind.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/archives/partial/* \
    "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old "$root"/tmp/* "$root"/root/.cache
  rm -f "$root/etc/hostname" "$root/etc/resolv.conf"
  : >"$root/etc/machine-id"
  find "$root/var/log" -type f -exec truncate -s 0 {} +
}

# add_host_cas ROOTFS - certificates of the host bundle missing from the image's bundle go to
# /usr/local/share/ca-certificates/catwalk-host-N.crt; then update-ca-certificates in the rootfs.
add_host_cas() {
  local root=$1 bundle=$1/etc/ssl/certs/ca-certificates.crt dir n
  dir=$root/usr/local/share/ca-certificates
  mkdir -p "$dir"
  rm -f "$dir"/catwalk-host-*.crt
  n=$(awk -v dir="$dir" '
    /-----BEGIN CERTIFICATE-----/ { cert = ""; inside = 1 }
    inside { cert = cert $0 "\n" }
    /-----END CERTIFICATE-----/ {
      inside = 0
      if (FILENAME == ARGV[1]) { known[cert] = 1 }
      else if (!(cert in known) && !(cert in added)) {
        added[cert] = 1; n++
        f = sprintf("%s/catwalk-host-%d.crt", dir, n); printf "%s", cert > f; close(f)
      }
    }
    END { print n + 0 }' "$bundle" "$HOST_CA_BUNDLE")
  if ((n > 0)); then
    chroot "$root" /usr/sbin/update-ca-certificates >/dev/null 2>&1 ||
      die "update-ca-certificates failed in the rootfs"
  fi
  # Every host certificate must now be in the image's bundle.
  awk '/-----BEGIN CERTIFICATE-----/ { cert = ""; inside = 1 } inside { cert = cert $0 "\n" }
       /-----END CERTIFICATE-----/ { inside = 0; if (FILENAME == ARGV[1]) have[cert] = 1
                                     else if (!(cert in have)) missing++ }
       END { exit missing > 0 }' "$bundle" "$HOST_CA_BUNDLE" ||
    die "host CA certificates missing from the image bundle"
  log "host CAs: $n added to the image"
}

recipe_key() {
  {
    declare -f configure_rootfs add_host_cas build_rootfs
    printf '%s\n' "$SUITE" "$INCLUDE" "$MIRROR" "$SECURITY_MIRROR" "${IMPORT_CHANGES[@]}" \
      "$(dpkg --print-architecture 2>/dev/null || uname -m)"
    cat "$HOST_CA_BUNDLE"
  } | sha256sum | cut -c1-16
}

# build_rootfs ROOTFS LOGFILE
build_rootfs() {
  local root=$1 logfile=$2
  # debootstrap itself installs a policy-rc.d and a fake start-stop-daemon while it configures
  # packages, so nginx's postinst does not start nginx (it would share the host's network).
  debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$root" "$MIRROR" >>"$logfile" 2>&1
  configure_rootfs "$root"
}
# ---------------------------------------------------------------------------------------------

# unmount_under DIR - unmount anything debootstrap may have left mounted below DIR.
unmount_under() {
  local dir m
  dir=$(realpath -m "$1")
  # deepest first
  awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# kill_rooted_in DIR - end processes (started by our debootstrap) whose root is DIR.
kill_rooted_in() {
  local dir p r
  dir=$(realpath -m "$1")
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    if [[ $r == "$dir" ]]; then
      log "warning: process ${p#/proc/} ($(tr '\0' ' ' <"$p/cmdline")) runs in the rootfs; ending it"
      kill -TERM "${p#/proc/}" 2>/dev/null || true
    fi
  done
}

ROOTFS=''
cleanup() {
  if [[ -n $ROOTFS && -d $ROOTFS ]]; then
    kill_rooted_in "$ROOTFS"
    unmount_under "$ROOTFS"
    if awk -v d="$(realpath -m "$ROOTFS")" 'index($2, d) == 1 { found = 1 } END { exit !found }' \
      /proc/self/mounts; then
      log "warning: mounts remain under $ROOTFS; not removing it"
    else
      rm -rf --one-file-system "$ROOTFS"
    fi
  fi
}

image_label() {
  docker image inspect -f "{{index .Config.Labels \"$LABEL_KEY\"}}" "$IMAGE" 2>/dev/null || true
}

report_size() {
  local size id
  size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
  id=$(docker image inspect -f '{{.Id}}' "$IMAGE")
  log "image $IMAGE: $((size / 1000000)) MB"
  printf '%s %s MB %s\n' "$IMAGE" "$((size / 1000000))" "${id#sha256:}"
}

main() {
  have docker || die "docker client not found: run scripts/install-system-deps.sh docker"
  timeout 20 docker info >/dev/null 2>&1 || die "docker engine not answering: run scripts/start-docker.sh"
  [[ -r $HOST_CA_BUNDLE ]] || die "host CA bundle $HOST_CA_BUNDLE not readable"

  local key
  key=$(recipe_key)
  if [[ ${CATWALK_REBUILD:-0} != 1 && $(image_label) == "$key" ]]; then
    log "image $IMAGE is up to date (recipe $key)"
    report_size
    return 0
  fi

  is_root || die "building $IMAGE needs root (debootstrap, chroot): sudo $0 $*"
  mkdir -p "$CACHE_DIR"
  local tarball=$CACHE_DIR/catwalk-debian-$SUITE-$key.tar
  # One build at a time per cache dir; the second one then finds the tarball/image.
  exec 9>"$CACHE_DIR/.build.lock"
  if ! flock -n 9; then
    log "waiting for another build (lock $CACHE_DIR/.build.lock)"
    flock -w 900 9 || die "timed out waiting for the build lock"
    if [[ $(image_label) == "$key" ]]; then report_size; return 0; fi
  fi

  if [[ ${CATWALK_REBUILD:-0} == 1 ]]; then rm -f "$tarball"; fi
  if [[ -s $tarball ]]; then
    log "using cached rootfs $tarball"
  else
    have debootstrap || die "debootstrap not found: run scripts/install-system-deps.sh docker"
    local logfile=$CACHE_DIR/debootstrap.log t0
    t0=$(now)
    ROOTFS=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
    trap cleanup EXIT
    log "debootstrap $SUITE (+$INCLUDE) into $ROOTFS (log: $logfile)"
    : >"$logfile"
    if ! build_rootfs "$ROOTFS" "$logfile"; then
      tail -n 25 "$logfile" >&2
      die "debootstrap failed (log: $logfile)"
    fi
    kill_rooted_in "$ROOTFS"
    unmount_under "$ROOTFS"
    [[ -x $ROOTFS/usr/bin/python3 && -x $ROOTFS/usr/sbin/nginx ]] ||
      die "rootfs incomplete (no python3 or nginx)"
    log "rootfs ready in $(elapsed "$t0")s ($(du -sm "$ROOTFS" | cut -f1) MB); writing $tarball"
    tar --numeric-owner --xattrs --xattrs-include='security.capability' -C "$ROOTFS" \
      -cf "$tarball.tmp" .
    mv -f "$tarball.tmp" "$tarball"
    cleanup
    ROOTFS=''
    # Keep only this recipe's tarball.
    find "$CACHE_DIR" -maxdepth 1 -name "catwalk-debian-$SUITE-*.tar" ! -name "${tarball##*/}" -delete
  fi

  local old_id
  old_id=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
  log "docker import $IMAGE"
  docker import "${IMPORT_CHANGES[@]}" --change "LABEL $LABEL_KEY=$key" \
    --message "catwalk base image, recipe $key" "$tarball" "$IMAGE" >/dev/null
  # The image this replaced, if now untagged and unused.
  if [[ -n $old_id && $old_id != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]]; then
    docker image rm "$old_id" >/dev/null 2>&1 || true
  fi
  report_size
}

main "$@"
