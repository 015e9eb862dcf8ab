#!/usr/bin/env bash
# Installs what btblocker needs to build and test, if it is missing:
# DPDK 22.11 (headers, libraries, PMDs, dpdk-testpmd), libclang for bindgen,
# pkg-config, libpcap; iproute2 and python3 for the netns test, ruby for
# `ruby -c Vagrantfile` (make check-packaging); gobgpd (daemon + gobgp CLI), its protos
# (golang-github-osrg-gobgp-dev, compiled by build.rs) and bird2 for the BGP lab
# (tests/bgp_lab.rs, scripts/bgp-lab.sh). Debian 12 / Ubuntu 22.04+. Idempotent and quiet when
# everything is there.
set -euo pipefail
packages=(libdpdk-dev dpdk dpdk-dev pkg-config libclang-dev libpcap-dev gcc make iproute2 python3 ruby
  gobgpd golang-github-osrg-gobgp-dev bird2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # bird2's maintainer scripts start and enable its own bird.service (a router
  # on the host's tables, /run/bird/bird.ctl): the lab runs its own BIRD in a
  # namespace and wants none on the host. policy-rc.d (exit 101) keeps
  # invoke-rc.d from starting services during this install only.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    # shellcheck disable=SC2064 # expand now: the trap must remove this very file
    trap "$sudo rm -f $policy" EXIT
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# A bird.service that is already enabled (bird2 installed earlier) is stopped
# and disabled once, where systemd runs; quiet when it is not there.
if [ -d /run/systemd/system ] && systemctl is-enabled --quiet bird 2>/dev/null; then
  echo "install-deps: disabling the host's bird.service (the BGP lab runs its own BIRD)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo systemctl disable --now bird >/dev/null 2>&1 || true
fi
if ! command -v cargo >/dev/null; then
  echo "install-deps: cargo not found: install Rust (https://rustup.rs), then rerun" >&2
  exit 1
fi
pkg-config --atleast-version=22.11 libdpdk || { echo "install-deps: DPDK >= 22.11 not found by pkg-config" >&2; exit 1; }
