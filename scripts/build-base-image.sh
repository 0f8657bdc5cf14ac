#!/usr/bin/env bash
# Builds the base image of user code images (default planqk/python-base:3.11, the default of the
# PLANQK_BASE_IMAGE setting) WITHOUT any container registry:
#
#   1. debootstrap a minimal Debian bookworm (python3 is 3.11 there) from a Debian mirror,
#   2. `docker import` it as IMAGE-rootfs (e.g. planqk/python-base:3.11-rootfs),
#   3. `docker build` docker/base/Dockerfile on top of it (runner, venv, user, CA, pip config).
#
# With --from IMAGE (e.g. --from python:3.11-slim) steps 1-2 are skipped and the Dockerfile is
# built on that image instead: the same result for deployments that have a registry.
#
# Usage: scripts/build-base-image.sh [--force] [--from ROOT_IMAGE] [IMAGE_NAME]
#
# Idempotent: does nothing when IMAGE_NAME exists already and was built from the current runner
# and Dockerfile (a label holds their hash). When only those changed, it rebuilds the top layers
# on the existing rootfs image (seconds). --force rebuilds everything, debootstrap included.
#
# Environment:
#   PLANQK_DEBIAN_MIRROR       Debian mirror URL; default: read from this host's apt sources
#   PLANQK_DEBIAN_SUITE        default bookworm
#   PLANQK_BUILD_CA_BUNDLE     CA bundle that pip inside the image trusts besides the image's own
#                              (default /etc/ssl/certs/ca-certificates.crt when it exists)
#   PLANQK_BUILD_NETWORK       network of `docker build` (default host)
#   PLANQK_PIP_INDEX_URL       optional index-url for pip inside the image
#   PLANQK_PIP_EXTRA_INDEX_URL optional extra-index-url for pip inside the image
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

force=0
root_image=""
image=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) force=1 ;;
    --from)
      [[ $# -ge 2 ]] || { echo "--from needs an image name" >&2; exit 2; }
      root_image="$2"
      shift
      ;;
    --from=*) root_image="${1#--from=}" ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    *)
      [[ -z "$image" ]] || { echo "only one IMAGE_NAME, got '$image' and '$1'" >&2; exit 2; }
      image="$1"
      ;;
  esac
  shift
done
image="${image:-${PLANQK_BASE_IMAGE:-planqk/python-base:3.11}}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
suite="${PLANQK_DEBIAN_SUITE:-bookworm}"
network="${PLANQK_BUILD_NETWORK:-host}"

log() { echo "build-base-image: $*" >&2; }

# What the image is built from besides the root filesystem: a stale runner in a cached image
# would silently run old code, so a change of either means a rebuild.
source_hash="$(cd "$repo_root" && cat docker/base/Dockerfile planqk_runtime/*.py | sha256sum | cut -c1-16)"
hash_label="org.planqk.base-image.source-hash"

if [[ $force -eq 0 ]] && docker image inspect "$image" >/dev/null 2>&1; then
  built_from="$(docker image inspect --format "{{ index .Config.Labels \"$hash_label\" }}" "$image" 2>/dev/null || true)"
  if [[ "$built_from" == "$source_hash" ]]; then
    log "$image exists already and is up to date (use --force to rebuild)"
    exit 0
  fi
  log "$image exists but the runner or docker/base/Dockerfile changed: rebuilding its top layers"
fi

# The rootfs image is tagged beside the target: repo:tag -> repo:tag-rootfs. A ':' after the last
# '/' is a tag; one before it belongs to a registry host:port.
name_part="${image##*/}"
if [[ "$name_part" == *:* ]]; then
  rootfs_image="${image}-rootfs"
else
  rootfs_image="${image}:rootfs"
fi

# Reads the Debian mirror from the host's apt sources (deb822 files first, then one-line style),
# preferring an entry for $suite and never a security archive. Prints nothing when none is found.
detect_mirror() {
  local uri=""
  shopt -s nullglob
  local sources=(/etc/apt/sources.list.d/*.sources)
  local lists=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list)
  shopt -u nullglob
  if [[ ${#sources[@]} -gt 0 ]]; then
    # Paragraph mode: one record per stanza; pick a "deb" stanza whose Suites name $suite.
    uri="$(awk -v suite="$suite" 'BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; uris = ""; suites = ""; enabled = "yes"
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^[ \t]*#/) continue
          if (line ~ /^Types:/)   { sub(/^Types:[ \t]*/, "", line); types = line }
          if (line ~ /^URIs:/)    { sub(/^URIs:[ \t]*/, "", line); uris = line }
          if (line ~ /^Suites:/)  { sub(/^Suites:[ \t]*/, "", line); suites = line }
          if (line ~ /^Enabled:[ \t]*no/) enabled = "no"
        }
        if (enabled == "no" || (" " types " ") !~ / deb / || uris == "") next
        split(uris, u, /[ \t]+/)
        if (u[1] ~ /security/) next
        if ((" " suites " ") ~ (" " suite " ")) { print u[1]; found = 1; exit }
        if (fallback == "") fallback = u[1]
      }
      END { if (!found && fallback != "") print fallback }' "${sources[@]}" | head -n 1)"
  fi
  if [[ -z "$uri" ]]; then
    local file
    for file in "${lists[@]}"; do
      [[ -r "$file" ]] || continue
      uri="$(awk -v suite="$suite" '
        $1 == "deb" {
          i = 2
          if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
          if ($i ~ /security/) next
          if ($(i + 1) == suite) { print $i; found = 1; exit }
          if (fallback == "") fallback = $i
        }
        END { if (!found && fallback != "") print fallback }' "$file" | head -n 1)"
      [[ -z "$uri" ]] || break
    done
  fi
  printf '%s' "$uri"
}

workdir="$(mktemp -d "${TMPDIR:-/tmp}/planqk-base-image.XXXXXX")"
rootfs="$workdir/rootfs"
cleanup() {
  # debootstrap mounts /proc and /sys inside the target; never delete through a mount.
  if [[ -d "$rootfs" ]]; then
    local mount_point
    while read -r mount_point; do
      umount -l "$mount_point" 2>/dev/null || true
    done < <(awk -v root="$rootfs" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r)
  fi
  rm -rf --one-file-system "$workdir"
}
trap cleanup EXIT

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    log "needs root (or sudo) for: $*"
    exit 1
  fi
}

start=$SECONDS

if [[ -z "$root_image" && $force -eq 0 ]] && docker image inspect "$rootfs_image" >/dev/null 2>&1; then
  log "reusing the root filesystem image $rootfs_image"
  root_image="$rootfs_image"
fi

if [[ -z "$root_image" ]]; then
  command -v debootstrap >/dev/null 2>&1 || { log "debootstrap is not installed (apt-get install debootstrap)"; exit 1; }
  mirror="${PLANQK_DEBIAN_MIRROR:-}"
  if [[ -z "$mirror" ]]; then
    mirror="$(detect_mirror)"
  fi
  if [[ -z "$mirror" ]]; then
    log "no Debian mirror found in /etc/apt/sources.list(.d); set PLANQK_DEBIAN_MIRROR"
    exit 1
  fi
  log "debootstrap $suite from $mirror"
  as_root debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates \
    "$suite" "$rootfs" "$mirror" >&2
  # Downloaded packages and indexes are not needed in the image.
  as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
  log "importing the root filesystem as $rootfs_image"
  # Docker provides /dev, /proc and /sys itself; their contents do not belong in the image.
  as_root tar -C "$rootfs" --numeric-owner \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
    docker import - "$rootfs_image" >/dev/null
  root_image="$rootfs_image"
fi

# A build context shaped like the repository, holding only what the Dockerfile copies.
context="$workdir/context"
mkdir -p "$context/planqk_runtime" "$context/docker/base"
cp "$repo_root"/planqk_runtime/*.py "$context/planqk_runtime/"
cp "$repo_root/docker/base/Dockerfile" "$context/docker/base/Dockerfile"
ca_bundle="${PLANQK_BUILD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
if [[ -n "$ca_bundle" && -r "$ca_bundle" ]]; then
  cp "$ca_bundle" "$context/docker/base/build-ca.crt"
elif [[ -n "${PLANQK_BUILD_CA_BUNDLE:-}" ]]; then
  log "PLANQK_BUILD_CA_BUNDLE=$PLANQK_BUILD_CA_BUNDLE is not a readable file"
  exit 1
fi

previous_id="$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
log "building $image on $root_image"
docker build --network "$network" \
  --build-arg "ROOT_IMAGE=$root_image" \
  --build-arg "PLANQK_PIP_INDEX_URL=${PLANQK_PIP_INDEX_URL:-}" \
  --build-arg "PLANQK_PIP_EXTRA_INDEX_URL=${PLANQK_PIP_EXTRA_INDEX_URL:-}" \
  --label "$hash_label=$source_hash" \
  -f "$context/docker/base/Dockerfile" -t "$image" "$context" >&2

# The image this one replaces would linger untagged; images built on it keep it (rmi refuses).
new_id="$(docker image inspect --format '{{.Id}}' "$image")"
if [[ -n "$previous_id" && "$previous_id" != "$new_id" ]]; then
  docker rmi "$previous_id" >/dev/null 2>&1 || true
fi

log "built $image in $((SECONDS - start))s"
