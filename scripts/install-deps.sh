#!/usr/bin/env bash
# Installs what btblocker needs to build and test, if it is missing:
# DPDK 22.11 (headers, libraries, PMDs, dpdk-testpmd), libclang for bindgen,
# pkg-config, libpcap; iproute2 and python3 for the netns test, ruby for
# `ruby -c Vagrantfile` (make check-packaging). Debian 12 / Ubuntu 22.04+. Idempotent and quiet when
# everything is there.
set -euo pipefail
packages=(libdpdk-dev dpdk dpdk-dev pkg-config libclang-dev libpcap-dev gcc make iproute2 python3 ruby)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
  echo "install-deps: cargo not found: install Rust (https://rustup.rs), then rerun" >&2
  exit 1
fi
pkg-config --atleast-version=22.11 libdpdk || { echo "install-deps: DPDK >= 22.11 not found by pkg-config" >&2; exit 1; }
