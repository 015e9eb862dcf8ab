#!/usr/bin/env bash
# What a machine needs to RUN btblocker (not to build it), shared by the
# docker image (docker/Dockerfile), the Vagrant VM (Vagrantfile) and a bare
# metal install, so the three stay the same:
#
#   provision-runtime.sh                    the DPDK runtime libraries + PMDs only
#                                           (the docker runtime stage)
#   provision-runtime.sh --tools            + dpdk (dpdk-devbind.py, dpdk-hugepages.py,
#                                           dpdk-testpmd) and driverctl
#   provision-runtime.sh --hugepages N      reserve N 2 MiB hugepages now and at boot
#   provision-runtime.sh --vfio-noiommu     load vfio-pci now and at boot, in no-IOMMU
#                                           mode (a VM without a virtual IOMMU)
#   provision-runtime.sh --bind PCI         bind PCI to vfio-pci, persistently (driverctl)
#   provision-runtime.sh --service BIN CONFIG
#                                           install BIN as /usr/local/bin/btblocker,
#                                           CONFIG as /etc/btblocker/btblocker.yaml and
#                                           packaging/btblocker.service; enable + start
# Options combine; run as root (or with sudo). Debian 12 / Ubuntu 22.04+.
set -euo pipefail

# The libraries the binary links (ldd: librte_eal, ethdev, mbuf, mempool, ring,
# net, meter, kvargs, telemetry: dependencies of these) and the PMDs EAL loads
# from its driver directory for the devices btblocker is documented with:
# the mempool driver, the vdev and PCI buses, virtio (PCI and virtio_user),
# vhost, pcap, null, ring, tap, af_packet. Nothing for other NICs: add
# librte-net-<driver>23 for yours (e.g. librte-net-ixgbe23, librte-net-i40e23).
RUNTIME_PACKAGES=(
  librte-eal23 librte-ethdev23 librte-mbuf23 librte-mempool23 librte-ring23 librte-net23
  librte-mempool-ring23 librte-bus-vdev23 librte-bus-pci23
  librte-net-virtio23 librte-net-vhost23 librte-net-pcap23 librte-net-null23
  librte-net-ring23 librte-net-tap23 librte-net-af-packet23
)
TOOL_PACKAGES=(dpdk driverctl pciutils kmod)

here=$(cd "$(dirname "$0")" && pwd)
tools=0 hugepages="" noiommu=0 bind=() service_bin="" service_config=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tools) tools=1 ;;
    --hugepages) hugepages=${2:?--hugepages N}; shift ;;
    --vfio-noiommu) noiommu=1 ;;
    --bind) bind+=("${2:?--bind PCI}"); shift ;;
    --service) service_bin=${2:?--service BIN CONFIG}; service_config=${3:?--service BIN CONFIG}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "provision-runtime: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "provision-runtime: run as root" >&2; exit 1; }
say() { echo "provision-runtime: $*"; }

packages=("${RUNTIME_PACKAGES[@]}")
[ "$tools" -eq 1 ] && packages+=("${TOOL_PACKAGES[@]}")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # In an image build, leave no apt lists behind (a VM keeps them: harmless).
  [ -f /.dockerenv ] && rm -rf /var/lib/apt/lists/*
fi

if [ -n "$hugepages" ]; then
  say "reserving $hugepages hugepages of 2 MiB (vm.nr_hugepages, now and at boot)"
  echo "vm.nr_hugepages = $hugepages" >/etc/sysctl.d/80-btblocker-hugepages.conf
  sysctl -q -p /etc/sysctl.d/80-btblocker-hugepages.conf
  got=$(cat /proc/sys/vm/nr_hugepages)
  [ "$got" -ge "$hugepages" ] || say "WARNING: only $got hugepages could be reserved (memory fragmented? reboot)"
  # systemd mounts hugetlbfs on /dev/hugepages (dev-hugepages.mount); elsewhere:
  mountpoint -q /dev/hugepages || { mkdir -p /dev/hugepages; mount -t hugetlbfs nodev /dev/hugepages; }
fi

if [ "$noiommu" -eq 1 ]; then
  say "vfio-pci in no-IOMMU mode (now and at boot)"
  echo "options vfio enable_unsafe_noiommu_mode=1" >/etc/modprobe.d/btblocker-vfio-noiommu.conf
  echo vfio-pci >/etc/modules-load.d/btblocker-vfio-pci.conf
  modprobe vfio enable_unsafe_noiommu_mode=1
  modprobe vfio-pci
  echo 1 >/sys/module/vfio/parameters/enable_unsafe_noiommu_mode
fi

for pci in "${bind[@]}"; do
  say "binding $pci to vfio-pci (driverctl: persists across reboots)"
  command -v driverctl >/dev/null || { echo "provision-runtime: --bind needs --tools (driverctl)" >&2; exit 1; }
  # The kernel's virtio-net driver lets go of the device; driverctl records
  # the override so udev re-applies it at every boot.
  driverctl set-override "$pci" vfio-pci
done

if [ -n "$service_bin" ]; then
  say "installing the btblocker service ($service_config)"
  install -m 0755 "$service_bin" /usr/local/bin/btblocker
  install -d -m 0755 /etc/btblocker
  install -m 0644 "$service_config" /etc/btblocker/btblocker.yaml
  /usr/local/bin/btblocker check-config /etc/btblocker/btblocker.yaml
  install -m 0644 "$here/../packaging/btblocker.service" /etc/systemd/system/btblocker.service
  systemctl daemon-reload
  systemctl enable btblocker.service
  systemctl restart btblocker.service
  systemctl --no-pager --lines=20 status btblocker.service || true
fi
