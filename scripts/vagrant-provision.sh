#!/usr/bin/env bash
# Provisions the Vagrant VMs (see Vagrantfile); runs as root inside a VM with
# the repository at /vagrant.
#
#   vagrant-provision.sh btblocker INSIDE_MAC OUTSIDE_MAC
#       build btblocker, then scripts/provision-runtime.sh: DPDK runtime + tools,
#       hugepages, vfio-pci (no-IOMMU), the two NICs with these MACs bound to
#       vfio-pci, dpdk-config/vagrant.yaml on their PCI addresses, the service
#   vagrant-provision.sh gen INSIDE_MAC OUTSIDE_MAC
#       tcpreplay, and the two NICs with these MACs up and promiscuous;
#       scripts/vagrant-send.sh then replays a capture through btblocker
set -euo pipefail
role=${1:?usage: vagrant-provision.sh btblocker|gen INSIDE_MAC OUTSIDE_MAC}
inside_mac=${2:?INSIDE_MAC}
outside_mac=${3:?OUTSIDE_MAC}
repo=/vagrant
say() { echo "vagrant-provision: $*"; }
export DEBIAN_FRONTEND=noninteractive

# iface_of_mac: the kernel interface of the NIC with a MAC address. (Vagrant
# runs this script from a copy in /tmp, so the helper comes from the repo.)
# shellcheck source=lib-net.sh
. "$repo/scripts/lib-net.sh"

case "$role" in
btblocker)
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends ca-certificates curl gcc libc6-dev make >/dev/null
  if ! command -v cargo >/dev/null && [ ! -x /root/.cargo/bin/cargo ]; then
    say "installing Rust (rustup, minimal profile): Debian's rustc is older than rust-version"
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
  fi
  export PATH=/root/.cargo/bin:$PATH
  cd "$repo"
  scripts/install-deps.sh
  # Outside the synced folder: the host's target/ is for the host.
  export CARGO_TARGET_DIR=/var/tmp/btblocker-target
  say "cargo build --release (a few minutes)"
  cargo build --release --locked --bin btblocker

  # The PCI addresses of the two NICs: found by MAC while the kernel's
  # virtio-net still owns them, remembered for later runs (once bound to
  # vfio-pci they have no interface, hence no MAC to look up).
  ports=/etc/btblocker/vagrant-ports
  if [ ! -f "$ports" ]; then
    mkdir -p /etc/btblocker
    in_if=$(iface_of_mac "$inside_mac") || { say "no NIC with MAC $inside_mac" >&2; exit 1; }
    out_if=$(iface_of_mac "$outside_mac") || { say "no NIC with MAC $outside_mac" >&2; exit 1; }
    in_pci=$(basename "$(readlink -f "/sys/class/net/$in_if/device")")
    out_pci=$(basename "$(readlink -f "/sys/class/net/$out_if/device")")
    # A virtio-net NIC's netdev hangs off the virtio device: its parent is the PCI function.
    case "$in_pci" in virtio*) in_pci=$(basename "$(readlink -f "/sys/class/net/$in_if/device/..")") ;; esac
    case "$out_pci" in virtio*) out_pci=$(basename "$(readlink -f "/sys/class/net/$out_if/device/..")") ;; esac
    printf 'INSIDE_PCI=%s\nOUTSIDE_PCI=%s\n' "$in_pci" "$out_pci" >"$ports"
    say "inside NIC $in_if ($inside_mac) = $in_pci, outside NIC $out_if ($outside_mac) = $out_pci"
  fi
  # shellcheck source=/dev/null
  . "$ports"
  sed -e "s|\"0000:00:08.0\"|\"$INSIDE_PCI\"|" -e "s|\"0000:00:09.0\"|\"$OUTSIDE_PCI\"|" \
    dpdk-config/vagrant.yaml >/tmp/btblocker-vagrant.yaml
  scripts/provision-runtime.sh --tools --hugepages 512 --vfio-noiommu \
    --bind "$INSIDE_PCI" --bind "$OUTSIDE_PCI" \
    --service "$CARGO_TARGET_DIR/release/btblocker" /tmp/btblocker-vagrant.yaml
  dpdk-devbind.py --status-dev net
  ;;
gen)
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends tcpreplay tcpdump >/dev/null
  for mac in "$inside_mac" "$outside_mac"; do
    ifc=$(iface_of_mac "$mac") || { say "no NIC with MAC $mac" >&2; exit 1; }
    # No addresses: the generator only injects and sniffs frames.
    ip link set "$ifc" up promisc on
    say "$ifc ($mac) up, promiscuous"
  done
  ;;
*)
  echo "vagrant-provision: role must be btblocker or gen" >&2
  exit 2
  ;;
esac
