#!/usr/bin/env bash
# The BGP lab: three network namespaces on a private bridge, with real daemons.
#
#   <name>-rtr  BIRD 2: the router and iBGP route reflector (scripts/bgp-lab/bird.conf.in)
#   <name>-a    gobgpd for box A (router id 10.200.0.2), API on <dir>/a/gobgp.sock
#   <name>-b    gobgpd for box B (router id 10.200.0.3), API on <dir>/b/gobgp.sock
#
# The bridge lives inside <name>-rtr and the boxes' veths lead only there:
# nothing is created in the host's namespace, no namespace has an uplink or a
# default route, so nothing can leave. The gRPC and BIRD control sockets are
# files: btblocker, `gobgp` and `birdc` reach them from the host's namespace.
#
# Usage: scripts/bgp-lab.sh up|down|status|wait|stop-speaker|start-speaker|birdc|gobgp NAME [...]
#   up NAME [DIR]          create the lab (DIR default ${TMPDIR:-/tmp}/bgp-lab-NAME); prints
#                          KEY=VALUE lines (sockets, namespaces) for the caller
#   down NAME              stop its daemons, delete its namespaces and DIR (idempotent)
#   dir NAME               the lab's directory (configs, sockets, logs)
#   status NAME            namespaces, BGP sessions as BIRD and both gobgpd see them
#   wait NAME [SECONDS]    until both sessions are Established (default 30 s)
#   stop-speaker NAME a|b [SIG]   kill that box's gobgpd (SIG default TERM; KILL for -9)
#   start-speaker NAME a|b        start it again (same config, same socket)
#   birdc NAME ARGS...     birdc on the router's control socket
#   gobgp NAME a|b ARGS... the gobgp CLI on that box's API socket
# NAME must be short (namespace names): tests use `bl<pid>x<n>`, the demo `demo`.
# Needs root (ip netns), bird2 and gobgpd (scripts/install-deps.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ASN=65001
RTR_V4=10.200.0.1
A_V4=10.200.0.2
B_V4=10.200.0.3
# The lab's router refuses more than this many routes per session and family.
MAX_PREFIX=${BGP_LAB_MAX_PREFIX:-50000}

die() { echo "bgp-lab: $*" >&2; exit 1; }

state_dir() { cat "/run/bgp-lab/$1" 2>/dev/null || echo "${TMPDIR:-/tmp}/bgp-lab-$1"; }

# Kill the process whose id is in file $1 (only if it still runs that command), wait for it.
kill_pidfile() {
  local file=$1 sig=${2:-TERM} pid i
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$sig" "$pid" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

render() { # template out dir self_v4
  sed -e "s|@DIR@|$3|g" -e "s|@RTR_V4@|$RTR_V4|g" -e "s|@A_V4@|$A_V4|g" -e "s|@B_V4@|$B_V4|g" \
    -e "s|@ASN@|$ASN|g" -e "s|@MAX_PREFIX@|$MAX_PREFIX|g" -e "s|@SELF_V4@|${4:-}|g" "$1" >"$2"
}

start_speaker() { # name box
  local name=$1 box=$2 dir i
  dir=$(state_dir "$name")
  [ -d "$dir/$box" ] || die "no lab $name (or no box $box)"
  rm -f "$dir/$box/gobgp.sock"
  ip netns exec "$name-$box" gobgpd -f "$dir/$box/gobgpd.toml" --api-hosts "unix://$dir/$box/gobgp.sock" \
    --pprof-disable --log-plain --log-level info </dev/null >>"$dir/$box/gobgpd.log" 2>&1 &
  echo $! >"$dir/$box/gobgpd.pid"
  for i in $(seq 100); do
    gobgp --target "unix://$dir/$box/gobgp.sock" global >/dev/null 2>&1 && return 0
    kill -0 "$(cat "$dir/$box/gobgpd.pid")" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$dir/$box/gobgpd.log" >&2
  die "gobgpd of box $box did not come up"
}

up() {
  local name=$1 dir=${2:-${TMPDIR:-/tmp}/bgp-lab-$1} box v4 i
  [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
  command -v bird >/dev/null && command -v gobgpd >/dev/null || die "bird2 and gobgpd missing: scripts/install-deps.sh"
  ip netns list | grep -qw "^$name-rtr" && die "lab $name already up (scripts/bgp-lab.sh down $name)"
  mkdir -p /run/bgp-lab "$dir/a" "$dir/b"
  dir=$(cd "$dir" && pwd)
  echo "$dir" >"/run/bgp-lab/$name"
  # From here any failure (set -e or die) takes down what was made.
  trap 'echo "bgp-lab: up failed, cleaning up" >&2; down "$name"' EXIT

  ip netns add "$name-rtr"
  ip netns add "$name-a"
  ip netns add "$name-b"
  ip -n "$name-rtr" link add br0 type bridge
  ip -n "$name-rtr" addr add "$RTR_V4/24" dev br0
  ip -n "$name-rtr" addr add fd00:b6b::1/64 dev br0 nodad
  for box in a b; do
    [ "$box" = a ] && v4=$A_V4 || v4=$B_V4
    ip -n "$name-rtr" link add "v$box" type veth peer name eth0 netns "$name-$box"
    ip -n "$name-rtr" link set "v$box" master br0 up
    ip -n "$name-$box" addr add "$v4/24" dev eth0
    ip -n "$name-$box" addr add "fd00:b6b::${v4##*.}/64" dev eth0 nodad
    ip -n "$name-$box" link set lo up
    ip -n "$name-$box" link set eth0 up
  done
  ip -n "$name-rtr" link set lo up
  ip -n "$name-rtr" link set br0 up

  render "$here/bgp-lab/bird.conf.in" "$dir/bird.conf" "$dir"
  ip netns exec "$name-rtr" bird -c "$dir/bird.conf" -s "$dir/bird.ctl" -P "$dir/bird.pid"
  for i in $(seq 50); do birdc -s "$dir/bird.ctl" show status >/dev/null 2>&1 && break; sleep 0.1; done
  birdc -s "$dir/bird.ctl" show status >/dev/null || die "BIRD did not come up (see $dir/bird.log)"

  render "$here/bgp-lab/gobgpd.toml.in" "$dir/a/gobgpd.toml" "$dir" "$A_V4"
  render "$here/bgp-lab/gobgpd.toml.in" "$dir/b/gobgpd.toml" "$dir" "$B_V4"
  start_speaker "$name" a
  start_speaker "$name" b
  trap - EXIT
  echo "DIR=$dir"
  echo "BIRD_CTL=$dir/bird.ctl"
  echo "A_API=$dir/a/gobgp.sock"
  echo "B_API=$dir/b/gobgp.sock"
  echo "NS_RTR=$name-rtr"
  echo "NS_A=$name-a"
  echo "NS_B=$name-b"
}

down() {
  local name=$1 dir ns
  dir=$(state_dir "$name")
  kill_pidfile "$dir/a/gobgpd.pid"
  kill_pidfile "$dir/b/gobgpd.pid"
  kill_pidfile "$dir/bird.pid"
  for ns in "$name-a" "$name-b" "$name-rtr"; do
    ip netns del "$ns" 2>/dev/null || true
  done
  case "$dir" in */bgp-lab-*|*/bgp-lab) rm -rf "$dir" ;; *) rm -f "$dir"/bird.* ;; esac
  rm -f "/run/bgp-lab/$name"
}

# Both sessions Established, as BIRD sees them.
established() {
  local out
  out=$(birdc -s "$(state_dir "$1")/bird.ctl" show protocols 2>/dev/null) || return 1
  echo "$out" | grep -E '^box_a .*Established' >/dev/null && echo "$out" | grep -E '^box_b .*Established' >/dev/null
}

wait_up() {
  local name=$1 secs=${2:-30} i
  for i in $(seq $((secs * 10))); do established "$name" && return 0; sleep 0.1; done
  status "$name" >&2 || true
  die "sessions of lab $name not Established after ${secs}s"
}

status() {
  local name=$1 dir
  dir=$(state_dir "$name")
  [ -d "$dir" ] || die "no lab $name"
  echo "lab $name in $dir"
  ip netns list | grep "^$name-" || true
  birdc -s "$dir/bird.ctl" show protocols || true
  for box in a b; do
    echo "box $box:"
    gobgp --target "unix://$dir/$box/gobgp.sock" neighbor || true
  done
}

cmd=${1:-}
name=${2:-}
[ -n "$cmd" ] && [ -n "$name" ] || { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 2; }
case "$name" in *[!a-z0-9]*) die "NAME: lower-case letters and digits only" ;; esac
[ "${#name}" -le 20 ] || die "NAME too long"
case "$cmd" in
  up) up "$name" "${3:-}" ;;
  down) down "$name" ;;
  status) status "$name" ;;
  dir) state_dir "$name" ;;
  wait) wait_up "$name" "${3:-30}" ;;
  stop-speaker) kill_pidfile "$(state_dir "$name")/${3:?a or b}/gobgpd.pid" "${4:-TERM}" ;;
  start-speaker) start_speaker "$name" "${3:?a or b}" ;;
  birdc) shift 2; exec birdc -s "$(state_dir "$name")/bird.ctl" "$@" ;;
  gobgp) box=${3:?a or b}; shift 3; exec gobgp --target "unix://$(state_dir "$name")/$box/gobgp.sock" "$@" ;;
  *) die "unknown command $cmd" ;;
esac
