#!/usr/bin/env bash
# In the Vagrant `gen` VM: replays a capture through btblocker with tcpreplay,
# packets from inside addresses into the inside network, the rest into the
# outside one, and counts what comes out on the far side.
#
#   sudo /vagrant/scripts/vagrant-send.sh [PCAP]      default /vagrant/data/demo.pcap
set -euo pipefail
pcap=${1:-/vagrant/data/demo.pcap}
inside_mac=${INSIDE_MAC:-52:54:00:b7:01:02}
outside_mac=${OUTSIDE_MAC:-52:54:00:b7:02:02}
# shellcheck source=lib-net.sh
. "$(dirname "$0")/lib-net.sh"
in_if=$(iface_of_mac "$inside_mac")
out_if=$(iface_of_mac "$outside_mac")
cache=$(mktemp)
trap 'rm -f "$cache" /tmp/btb-in.pcap /tmp/btb-out.pcap' EXIT
# tcpprep --cidr marks packets whose SOURCE is in these networks as "server";
# tcpreplay sends "server" packets out of --intf2 and the rest out of --intf1.
tcpprep --cidr=10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10 --pcap="$pcap" --cachefile="$cache"
tcpdump -i "$in_if" -w /tmp/btb-in.pcap -Q in 2>/dev/null & dump_in=$!
tcpdump -i "$out_if" -w /tmp/btb-out.pcap -Q in 2>/dev/null & dump_out=$!
sleep 1
tcpreplay --cachefile="$cache" --intf1="$out_if" --intf2="$in_if" --pps=2000 "$pcap"
sleep 2
kill "$dump_in" "$dump_out"; wait "$dump_in" "$dump_out" 2>/dev/null || true
echo "came out on the inside network (from outside, through btblocker): $(tcpdump -r /tmp/btb-in.pcap 2>/dev/null | wc -l) packets"
echo "came out on the outside network (from inside, through btblocker): $(tcpdump -r /tmp/btb-out.pcap 2>/dev/null | wc -l) packets"
echo "btblocker's view: vagrant ssh btblocker -c 'sudo journalctl -u btblocker -n 30; curl -s localhost:9977/metrics | grep btblocker_bans'"
