#!/usr/bin/env bash
# Builds the Debian 12 base image the Dockerfile starts from, for a docker
# engine that cannot pull images (an air-gapped lab, this project's CI box):
# debootstrap a minimal bookworm from the apt mirror and `docker import` it.
# Where images can be pulled, skip this: the Dockerfile defaults to
# debian:bookworm-slim and rust:1-bookworm.
#
#   scripts/docker-base-image.sh [TAG]      default TAG: btblocker/base:bookworm
#
# Idempotent: does nothing when TAG exists. Needs root (debootstrap) and the
# debootstrap package (installed with apt when missing).
set -euo pipefail
tag=${1:-btblocker/base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "docker-base-image: $tag exists"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v debootstrap >/dev/null; then
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
root=$(mktemp -d /var/tmp/btblocker-rootfs.XXXXXX)
trap '$sudo rm -rf "$root"' EXIT
echo "docker-base-image: debootstrap --variant=minbase bookworm ($mirror), a few minutes"
$sudo debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 \
  || { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# Keep the image small, as debian:bookworm-slim does.
$sudo rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
$sudo tar -C "$root" -c . | docker import -c 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "docker-base-image: $tag imported"
