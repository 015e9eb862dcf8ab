#!/usr/bin/env bash
# Builds a local stand-in for the rust:1-bookworm build image out of the host's
# own Rust toolchain, for a docker engine that cannot pull images (rustup
# cannot download toolchains there either). Where images can be pulled, skip
# this: docker/Dockerfile defaults to rust:1-bookworm.
#
#   scripts/docker-rust-image.sh [TAG] [BASE]
#       TAG default btblocker/rust:bookworm, BASE default btblocker/base:bookworm
#
# Idempotent: does nothing when TAG exists. The host toolchain must be a glibc
# x86_64 one no newer than bookworm's glibc allows (rustup's builds are).
set -euo pipefail
tag=${1:-btblocker/rust:bookworm}
base=${2:-btblocker/base:bookworm}
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "docker-rust-image: $tag exists"
  exit 0
fi
here=$(cd "$(dirname "$0")/.." && pwd)
sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
ctx=$(mktemp -d /var/tmp/btblocker-rust.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
# rustc, cargo, their shared libraries and the host's std; no docs, no other
# targets, no clippy/rustfmt (the image only builds).
mkdir -p "$ctx/bin" "$ctx/lib/rustlib"
cp -a "$sysroot/bin/rustc" "$sysroot/bin/cargo" "$ctx/bin/"
cp -a "$sysroot"/lib/*.so* "$ctx/lib/"
cp -a "$sysroot/lib/rustlib/$host" "$ctx/lib/rustlib/"
echo "docker-rust-image: $(rustc --version) from $sysroot ($(du -sh "$ctx" | cut -f1))"
docker build -q -f "$here/docker/rust-local.Dockerfile" --build-arg "BASE_IMAGE=$base" -t "$tag" "$ctx" >/dev/null
echo "docker-rust-image: $tag built"
