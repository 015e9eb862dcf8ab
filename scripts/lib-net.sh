# Shell helpers for the Vagrant VMs' scripts (sourced, not run).

# The kernel interface of the NIC with MAC address $1 (fails if none).
iface_of_mac() {
  local dev
  for dev in /sys/class/net/*; do
    [ "$(cat "$dev/address")" = "$1" ] && { basename "$dev"; return 0; }
  done
  return 1
}
