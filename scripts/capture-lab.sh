#!/usr/bin/env bash
# The capture lab: real BitTorrent clients and benign look-alikes recorded on a
# private bridge, one pcap per scenario, for the encrypted-BitTorrent detector.
#
# Topology (all created here, all removed on exit, even on failure):
#   lab-sw    holds the bridge br0 and nothing else; tcpdump runs here.
#   lab-trk   a tiny HTTP tracker (scripts/capture-lab/tracker.py) at .2; the
#             capture filter drops its traffic: the observer cannot see it.
#   lab-cN    one host per client or benign endpoint at .1N (10.77.0.0/24 or
#             fd00:b7::/64), each with one veth into lab-sw.
# No namespace has an uplink or a default route, and nothing is created in the
# caller's namespace: nothing can leave. Every veth end has MTU 1500 and
# TSO/GSO/GRO and checksum offload off so the pcap holds wire-sized segments
# with correct checksums, as an ISP link would carry them.
#
# Outputs land in tests/data/lab/ (override with CAPTURE_LAB_OUT): <scenario>.pcap,
# truth.tsv rows for that file (rewritten), and the file table of MANIFEST.md.
# Needs root and the Debian 12 packages listed in --help.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
lab="$here/capture-lab"
OUT=${CAPTURE_LAB_OUT:-$repo/tests/data/lab}
WORK=${CAPTURE_LAB_WORK:-/tmp/capture-lab}
PY=/usr/bin/python3 # Debian's python: python3-libtorrent lives there
TIMEOUT=${CAPTURE_LAB_TIMEOUT:-120} # seconds for a swarm to finish
LINGER=${CAPTURE_LAB_LINGER:-4}     # seconds recorded after the last copy completes
MAX_PCAP=$((8 * 1024 * 1024))
NET4=10.77.0
NET6=fd00:b7:
TRK_IDX=2
ALL_SCENARIOS="enc-tcp-v4 enc-utp-v4 enc-tcp-v6 default-dht benign-tls benign-ssh benign-raw benign-ss benign-obfs4 benign-envelope"

usage() {
  cat <<EOF
Usage: scripts/capture-lab.sh [--help] [SCENARIO...]     (as root; default: all)

Records real clients on a private bridge (namespaces lab-*, no uplink, no default
route) into $OUT/<scenario>.pcap, rewrites that file's rows in truth.tsv and the
file table in MANIFEST.md. Idempotent: leftover lab-* namespaces are removed first.

Scenarios:
  enc-tcp-v4   encryption required (RC4 only where configurable), TCP only, IPv4:
               libtorrent (python3-libtorrent, seed), transmission-daemon,
               qbittorrent-nox, aria2c, rtorrent
  enc-utp-v4   the same over uTP only: libtorrent (seed) and qbittorrent-nox
  enc-tcp-v6   enc-tcp-v4 over IPv6 only (fd00:b7::/64), without rtorrent
  default-dht  default settings, DHT on and bootstrapped from the swarm only
  benign-tls   TLS 1.3 (python ssl) bulk both ways, three flows
  benign-ssh   sshd, scp a file up and down
  benign-raw   streams of random bytes both ways on random high ports (bulk.py, socat)
  benign-ss    shadowsocks-libev (chacha20-ietf-poly1305), HTTP fetches through it
  benign-obfs4 tor bridge with obfs4proxy and a tor client using it
  benign-envelope  many short flows (each < 64 KiB) with MSE-like openings: 24 obfs4
               handshakes, 40 shadowsocks AEAD connections (chacha20, aes-256-gcm),
               120 random ping-pong flows shaped like MSE, 30 TLS 1.3, 12 SSH

Peers find each other through a hidden HTTP tracker (capture filter
'not host <tracker>'). Every client downloads the same random 1 MiB file from
the seed; the run fails unless every copy has the seed's sha256, and fails if an
encrypted scenario shows a plaintext "BitTorrent protocol" frame.

Environment: CAPTURE_LAB_OUT (output dir), CAPTURE_LAB_WORK (scratch, default
/tmp/capture-lab), CAPTURE_LAB_TIMEOUT (swarm timeout s, default 120).
Packages: transmission-daemon transmission-cli python3-libtorrent qbittorrent-nox
aria2 rtorrent shadowsocks-libev tor obfs4proxy openssh-server openssl socat
tcpdump tshark ethtool iproute2.
EOF
}

die() { echo "capture-lab: $*" >&2; exit 1; }
log() { echo "capture-lab: $*" >&2; }

# ---------------------------------------------------------------- network

lab_namespaces() { ip netns list | awk '{print $1}' | grep -E '^lab-(sw|trk|c[0-9]+)$' || true; }

# Stop every process inside the lab's namespaces (by pid), then delete them.
net_down() {
  local ns pid i
  for ns in $(lab_namespaces); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
  done
  for i in $(seq 30); do
    local left=0
    for ns in $(lab_namespaces); do [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && left=1; done
    [ $left = 0 ] && break
    sleep 0.2
  done
  for ns in $(lab_namespaces); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}

# Wire-like segments: no TSO/GSO/GRO super-packets, checksums computed in software.
offloads_off() { ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true; }

# net_up FAMILY(4|6): the switch and the tracker's host.
net_up() {
  FAMILY=$1
  ip netns add lab-sw
  ip -n lab-sw link set lo up
  ip -n lab-sw link add br0 type bridge
  ip -n lab-sw link set br0 mtu 1500 up
  ip netns exec lab-sw sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  add_host lab-trk $TRK_IDX
}

addr_of() { # index -> address in the current family
  if [ "$FAMILY" = 6 ]; then echo "${NET6}:$1"; else echo "$NET4.$1"; fi
}
url_host() { if [ "$FAMILY" = 6 ]; then echo "[$(addr_of "$1")]"; else addr_of "$1"; fi; }

add_host() { # ns index
  local ns=$1 idx=$2
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip link add "v$idx" netns "$ns" type veth peer name "p$idx" netns lab-sw
  ip -n "$ns" link set "v$idx" name eth0
  ip -n "$ns" link set eth0 mtu 1500
  ip -n lab-sw link set "p$idx" mtu 1500 master br0 up
  offloads_off "$ns" eth0
  offloads_off lab-sw "p$idx"
  if [ "$FAMILY" = 6 ]; then
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    ip -n "$ns" addr add "$(addr_of "$idx")/64" dev eth0 nodad
  else
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip -n "$ns" addr add "$(addr_of "$idx")/24" dev eth0
  fi
  ip -n "$ns" link set eth0 up
  HOSTS+=("$ns")
}

# A distinct random high port (20000-59999) per call within a run.
USED_PORTS=" "
rand_port() {
  local p
  while :; do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    case "$USED_PORTS" in *" $p "*) continue ;; esac
    USED_PORTS="$USED_PORTS$p "
    echo "$p"
    return
  done
}

# ---------------------------------------------------------------- capture

cap_start() { # scenario
  local file="$WORK/$1.pcap" t4 t6 i
  t4="$NET4.$TRK_IDX" t6="${NET6}:$TRK_IDX"
  # Only TCP and UDP between lab hosts; the tracker's traffic is dropped (an
  # observer that cannot see the tracker); ARP and ICMPv6 ND are not recorded.
  CAP_FILTER="(tcp or udp) and not host $t4 and not host $t6"
  rm -f "$file"
  ip netns exec lab-sw tcpdump -i br0 -s 0 -U -Z root -w "$file" "$CAP_FILTER" \
    2>"$WORK/$1.tcpdump.log" &
  CAP_PID=$!
  for i in $(seq 50); do grep -q 'listening on' "$WORK/$1.tcpdump.log" 2>/dev/null && break; sleep 0.1; done
  grep -q 'listening on' "$WORK/$1.tcpdump.log" || die "tcpdump did not start: $(cat "$WORK/$1.tcpdump.log")"
  CAP_T0=$(date +%s)
}

cap_stop() { # scenario
  sleep 0.5
  kill -INT "$CAP_PID" 2>/dev/null || true
  wait "$CAP_PID" 2>/dev/null || true
  tail -n 3 "$WORK/$1.tcpdump.log" >&2
}

# ---------------------------------------------------------------- the shared file

make_data() { # data dir with lab.bin, lab.torrent for the tracker at $TRACKER_URL
  mkdir -p "$WORK/data"
  head -c $((1024 * 1024)) /dev/urandom >"$WORK/data/lab.bin"
  $PY "$lab/mktorrent.py" "$WORK/data/lab.bin" "$TRACKER_URL" "$WORK/data/lab.torrent"
  SHA=$(sha256sum "$WORK/data/lab.bin" | cut -d' ' -f1)
  INFOHASH=$($PY -c 'import libtorrent as lt,sys; print(lt.torrent_info(sys.argv[1]).info_hash())' \
    "$WORK/data/lab.torrent")
}

start_tracker() {
  local port
  port=$(rand_port)
  : >"$WORK/tracker.log"
  ip netns exec lab-trk $PY "$lab/tracker.py" "$(addr_of $TRK_IDX)" "$port" "$WORK/tracker.log" \
    >"$WORK/tracker.out" 2>&1 &
  TRACKER_URL="http://$(url_host $TRK_IDX):$port/announce"
  ROLES+=("$(addr_of $TRK_IDX)	never	HTTP tracker (traffic filtered out of the capture)")
  sleep 0.5
}

# wait_announce IP: until the tracker has heard from IP (its peer list now has it).
wait_announce() {
  local i
  for i in $(seq 150); do
    grep -q "^$INFOHASH $1 " "$WORK/tracker.log" && return 0
    sleep 0.2
  done
  die "no announce from $1 (see $WORK/*/*.log)"
}

# ---------------------------------------------------------------- clients
# start_<client> IDX MODE ROLE: MODE is enc-tcp | enc-utp | default; ROLE seed | leech.
# Each client keeps its data in $WORK/<scenario>/<name>/dl/lab.bin.

client_dir() { # name role -> dir with dl/ (seeded with the file if role=seed)
  local d="$WORK/$SCEN/$1"
  rm -rf "$d"
  mkdir -p "$d/dl" "$d/watch" "$d/home"
  [ "$2" = seed ] && cp "$WORK/data/lab.bin" "$d/dl/lab.bin"
  echo "$d"
}

# DHT bootstrap list for default-dht: every other swarm member's ip:port.
dht_nodes() {
  local n
  for n in "${!PEER_PORT[@]}"; do if [ "$n" != "$1" ]; then echo "${PEER_ADDR[$n]}:${PEER_PORT[$n]}"; fi; done
}

start_lt() { # IDX MODE ROLE [NAME]: NAME libtorrent2 is a second, separate instance
  local idx=$1 mode=$2 role=$3 name=${4:-libtorrent} ns=lab-c$1 d ip port args
  d=$(client_dir "$name" "$role") ip=$(addr_of "$idx") port=${PEER_PORT[$name]}
  args=(--listen "$(url_host "$idx"):$port" --torrent "$WORK/data/lab.torrent" --save "$d/dl")
  case $mode in
    enc-tcp) args+=(--enc forced --transport tcp) ;;
    enc-utp) args+=(--enc forced --transport utp) ;;
    default) args+=(--enc default --transport both --dht --dht-nodes "$(dht_nodes "$name" | paste -sd,)") ;;
  esac
  ip netns exec "$ns" env HOME="$d/home" $PY "$lab/lt-client.py" "${args[@]}" >"$d/client.log" 2>&1 &
  CLIENTS+=("$name:$ns:$d:$ip:$role")
}

start_tr() {
  local idx=$1 mode=$2 role=$3 ns=lab-c$1 d ip port extra
  d=$(client_dir transmission "$role") ip=$(addr_of "$idx") port=${PEER_PORT[transmission]}
  mkdir -p "$d/conf"
  case $mode in
    # encryption 2 = required: Transmission then offers RC4 only (crypto_provide 0x02).
    enc-tcp) extra='"encryption": 2, "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,' ;;
    default) extra=''
      dht_nodes transmission | tr ':' ' ' >"$d/conf/dht.bootstrap" ;;
    *) die "transmission cannot do $mode" ;;
  esac
  cat >"$d/conf/settings.json" <<EOF
{ $extra
  "download-dir": "$d/dl", "incomplete-dir-enabled": false, "rename-partial-files": false,
  "peer-port": $port, "peer-port-random-on-start": false, "port-forwarding-enabled": false,
  "rpc-enabled": true, "rpc-bind-address": "127.0.0.1", "rpc-port": 9091,
  "rpc-authentication-required": false, "rpc-whitelist-enabled": false, "rpc-host-whitelist-enabled": false,
  "watch-dir-enabled": true, "watch-dir": "$d/watch", "start-added-torrents": true,
  "ratio-limit-enabled": false, "idle-seeding-limit-enabled": false, "message-level": 2 }
EOF
  cp "$WORK/data/lab.torrent" "$d/watch/"
  ip netns exec "$ns" env HOME="$d/home" transmission-daemon -f -g "$d/conf" -e "$d/client.log" \
    >"$d/client.out" 2>&1 &
  CLIENTS+=("transmission:$ns:$d:$ip:$role")
}

start_qb() {
  local idx=$1 mode=$2 role=$3 ns=lab-c$1 d ip port extra
  d=$(client_dir qbittorrent "$role") ip=$(addr_of "$idx") port=${PEER_PORT[qbittorrent]}
  mkdir -p "$d/prof/qBittorrent/config"
  case $mode in
    # Encryption 1 = require (libtorrent pe_forced both ways).
    enc-tcp) extra=$'Session\\Encryption=1\nSession\\DHTEnabled=false\nSession\\LSDEnabled=false\nSession\\PeXEnabled=false\nSession\\BTProtocol=TCP' ;;
    enc-utp) extra=$'Session\\Encryption=1\nSession\\DHTEnabled=false\nSession\\LSDEnabled=false\nSession\\PeXEnabled=false\nSession\\BTProtocol=UTP' ;;
    default) extra='' ;; # qBittorrent 4.5 has no bootstrap-node setting: the others bootstrap from it
  esac
  cat >"$d/prof/qBittorrent/config/qBittorrent.conf" <<EOF
[LegalNotice]
Accepted=true

[BitTorrent]
Session\\Port=$port
Session\\DefaultSavePath=$d/dl
$extra

[Preferences]
WebUI\\Port=$((port + 1))
WebUI\\LocalHostAuth=false
Connection\\UPnP=false

[Network]
PortForwardingEnabled=false
EOF
  ip netns exec "$ns" env HOME="$d/home" qbittorrent-nox --profile="$d/prof" --save-path="$d/dl" \
    "$WORK/data/lab.torrent" >"$d/client.log" 2>&1 &
  CLIENTS+=("qbittorrent:$ns:$d:$ip:$role")
}

start_aria() {
  local idx=$1 mode=$2 role=$3 ns=lab-c$1 d ip port args
  d=$(client_dir aria2 "$role") ip=$(addr_of "$idx") port=${PEER_PORT[aria2]}
  args=(--dir="$d/dl" --listen-port="$port" --seed-ratio=0.0 --check-integrity=true --file-allocation=none
    --summary-interval=0 --console-log-level=warn --log="$d/client.log" --log-level=info
    --bt-enable-lpd=false --no-conf=true)
  [ "$FAMILY" = 6 ] && args+=(--disable-ipv6=false) || args+=(--disable-ipv6=true)
  case $mode in
    enc-tcp) args+=(--bt-require-crypto=true --bt-min-crypto-level=arc4 --enable-dht=false --enable-dht6=false
      --enable-peer-exchange=false) ;;
    default) args+=(--enable-dht=true --dht-listen-port="$port" --dht-file-path="$d/home/dht.dat")
      local n; for n in $(dht_nodes aria2 | head -1); do args+=(--dht-entry-point="$n"); done ;;
    *) die "aria2 cannot do $mode" ;;
  esac
  ip netns exec "$ns" env HOME="$d/home" aria2c "${args[@]}" "$WORK/data/lab.torrent" >"$d/client.out" 2>&1 &
  CLIENTS+=("aria2:$ns:$d:$ip:$role")
}

start_rt() {
  local idx=$1 mode=$2 role=$3 ns=lab-c$1 d ip port extra bind
  d=$(client_dir rtorrent "$role") ip=$(addr_of "$idx") port=${PEER_PORT[rtorrent]}
  mkdir -p "$d/session"
  case $mode in
    enc-tcp) extra=$'dht.mode.set = disable\nprotocol.pex.set = no\nprotocol.encryption.set = require,require_RC4,allow_incoming,try_outgoing' ;;
    default) extra='' ;; # rtorrent's defaults: no encryption, DHT off
    *) die "rtorrent cannot do $mode" ;;
  esac
  # 0.9.8 refuses an IPv6 bind address ("not an af_inet address"); unbound, it
  # listens on the wildcard of whatever family the namespace has.
  bind="network.bind_address.set = $ip"
  [ "$FAMILY" = 6 ] && bind=''
  cat >"$d/rtorrent.rc" <<EOF
directory.default.set = $d/dl
session.path.set = $d/session
network.port_range.set = $port-$port
network.port_random.set = no
$bind
trackers.use_udp.set = no
$extra
system.daemon.set = true
log.open_file = "main", $d/client.log
log.add_output = "info", "main"
load.start = $WORK/data/lab.torrent
EOF
  ip netns exec "$ns" env HOME="$d/home" TERM=dumb rtorrent -n -o "import=$d/rtorrent.rc" \
    >"$d/client.out" 2>&1 </dev/null &
  CLIENTS+=("rtorrent:$ns:$d:$ip:$role")
}

# ---------------------------------------------------------------- swarm scenarios

version_of() {
  case $1 in
    libtorrent | libtorrent2) echo "libtorrent-rasterbar $($PY -c 'import libtorrent as lt; print(lt.__version__)') (python3-libtorrent)" ;;
    transmission) echo "transmission-daemon $(dpkg-query -W -f='${Version}' transmission-daemon)" ;;
    qbittorrent) echo "qbittorrent-nox $(dpkg-query -W -f='${Version}' qbittorrent-nox)" ;;
    aria2) echo "aria2 $(dpkg-query -W -f='${Version}' aria2)" ;;
    rtorrent) echo "rtorrent $(dpkg-query -W -f='${Version}' rtorrent)" ;;
  esac
}

# swarm MODE CLIENT...: first client seeds, the others join one by one after the
# previous one announced (so each later peer gets every earlier one from the tracker).
swarm() {
  local mode=$1 name idx=11 i c n d done_all
  shift
  declare -gA PEER_PORT=() PEER_ADDR=()
  for name in "$@"; do
    add_host "lab-c$idx" "$idx"
    PEER_PORT[$name]=$(rand_port)
    PEER_ADDR[$name]=$(url_host "$idx")
    IDX_OF[$name]=$idx
    idx=$((idx + 1))
  done
  start_tracker
  # Multicast groups some clients send to on their own (rows only if they appear).
  ROLES+=("239.192.152.143	never	multicast group of BEP 14 local service discovery (not a host)")
  ROLES+=("239.255.255.250	never	multicast group of SSDP/UPnP discovery (not a host)")
  make_data
  cap_start "$SCEN"
  local role=seed
  for name in "$@"; do
    idx=${IDX_OF[$name]}
    case $name in
      libtorrent | libtorrent2) start_lt "$idx" "$mode" $role "$name" ;;
      transmission) start_tr "$idx" "$mode" $role ;;
      qbittorrent) start_qb "$idx" "$mode" $role ;;
      aria2) start_aria "$idx" "$mode" $role ;;
      rtorrent) start_rt "$idx" "$mode" $role ;;
    esac
    ROLES+=("$(addr_of "$idx")	ban	$name ($(version_of "$name")) $role, port ${PEER_PORT[$name]}")
    wait_announce "$(addr_of "$idx")"
    role=leech
  done
  for i in $(seq $((TIMEOUT * 2))); do
    done_all=1
    for c in "${CLIENTS[@]}"; do
      d=$(echo "$c" | cut -d: -f3)
      [ "$(sha256sum "$d/dl/lab.bin" 2>/dev/null | cut -d' ' -f1)" = "$SHA" ] || { done_all=0; break; }
    done
    [ $done_all = 1 ] && break
    sleep 0.5
  done
  sleep "$LINGER"
  stop_clients
  cap_stop "$SCEN"
  for c in "${CLIENTS[@]}"; do
    n=${c%%:*} d=$(echo "$c" | cut -d: -f3)
    if [ "$(sha256sum "$d/dl/lab.bin" 2>/dev/null | cut -d' ' -f1)" = "$SHA" ]; then
      log "$SCEN: $n has a byte-identical copy ($SHA)"
    else
      tail -n 15 "$d"/client.* >&2 || true
      die "$SCEN: $n did NOT get a byte-identical copy of the file (log: $d)"
    fi
  done
}

stop_clients() {
  local c ns pid
  for c in "${CLIENTS[@]}"; do
    ns=$(echo "$c" | cut -d: -f2)
    for pid in $(ip netns pids "$ns"); do kill -TERM "$pid" 2>/dev/null || true; done
  done
  sleep 2
}

# ---------------------------------------------------------------- benign scenarios

source "$lab/benign.sh"

# ---------------------------------------------------------------- checks and outputs

check_pcap() { # scenario encrypted(0|1)
  local f="$WORK/$1.pcap" n size
  [ -s "$f" ] || die "$1: empty capture"
  size=$(stat -c %s "$f")
  [ "$size" -le $MAX_PCAP ] || die "$1: capture is $size bytes (> 8 MiB)"
  [ "$(capinfos -T -r -E "$f" | cut -f2)" = "ether" ] || die "$1: not Ethernet link type"
  if [ "$2" = 1 ]; then
    n=$(tshark -r "$f" -Y 'frame contains "BitTorrent protocol"' 2>/dev/null | wc -l)
    [ "$n" = 0 ] || die "$1: $n frames carry a plaintext \"BitTorrent protocol\""
  fi
  tshark -r "$f" -q -z conv,tcp 2>/dev/null | sed -n "1,40p" >"$WORK/$1.conv"
  tshark -r "$f" -q -z conv,udp 2>/dev/null | sed -n "1,40p" >>"$WORK/$1.conv"
}

# truth.tsv: one row per address seen in the file; every one must be known.
write_truth() { # scenario
  local f="$WORK/$1.pcap" a row found tmp
  tmp=$(mktemp)
  [ -f "$OUT/truth.tsv" ] && grep -v "^$1.pcap	" "$OUT/truth.tsv" | grep -v '^file	' >"$tmp" || true
  for a in $(tshark -r "$f" -T fields -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst 2>/dev/null | tr '\t,' '\n\n' | grep . | sort -u); do
    found=
    for row in "${ROLES[@]}"; do
      if [ "${row%%	*}" = "$a" ]; then found=$row; break; fi
    done
    [ -n "$found" ] || die "$1: address $a appears in the capture but is not a lab host"
    printf '%s.pcap\t%s\t%s\n' "$1" "$a" "$(echo "$found" | cut -f2-)" >>"$tmp"
  done
  { printf 'file\taddress\tlabel\trole\n'; sort "$tmp"; } >"$OUT/truth.tsv"
  rm -f "$tmp"
}

publish() { # scenario
  cp "$WORK/$1.pcap" "$OUT/$1.pcap"
  write_truth "$1"
  {
    echo "scenario $1: $(capinfos -c -M "$OUT/$1.pcap" | awk -F': *' '/Number of packets/{print $2}') packets," \
      "$(capinfos -u -M "$OUT/$1.pcap" | awk -F': *' '/Capture duration/{print $2}'), $(stat -c %s "$OUT/$1.pcap") bytes"
    printf '  filter: %s\n' "$CAP_FILTER"
    for row in "${ROLES[@]}"; do printf '  %s\n' "$row"; done
  } | tee "$WORK/$1.summary" >&2
  $PY "$lab/manifest.py" "$OUT"
}

run_scenario() {
  SCEN=$1
  HOSTS=() CLIENTS=() ROLES=() USED_PORTS=" "
  declare -gA IDX_OF=()
  net_down
  rm -rf "${WORK:?}/$SCEN"
  mkdir -p "$WORK/$SCEN"
  log "=== $SCEN"
  case $SCEN in
    enc-tcp-v4) net_up 4; swarm enc-tcp libtorrent transmission qbittorrent aria2 rtorrent; check_pcap "$SCEN" 1 ;;
    enc-utp-v4) net_up 4; swarm enc-utp libtorrent qbittorrent libtorrent2; check_pcap "$SCEN" 1 ;;
    enc-tcp-v6) net_up 6; swarm enc-tcp libtorrent transmission qbittorrent aria2 rtorrent; check_pcap "$SCEN" 1 ;;
    default-dht) net_up 4; swarm default libtorrent transmission qbittorrent aria2 rtorrent; check_pcap "$SCEN" 0 ;;
    benign-*) net_up 4; "benign_${SCEN#benign-}"; check_pcap "$SCEN" 0 ;;
    *) die "unknown scenario $SCEN (--help)" ;;
  esac
  publish "$SCEN"
  net_down
}

main() {
  case ${1:-} in -h | --help) usage; exit 0 ;; esac
  [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
  local s
  for s in tcpdump tshark capinfos ethtool ip; do command -v $s >/dev/null || die "$s missing (--help)"; done
  mkdir -p "$WORK" "$OUT"
  trap net_down EXIT
  trap 'exit 130' INT TERM
  for s in ${@:-$ALL_SCENARIOS}; do run_scenario "$s"; done
}

main "$@"
