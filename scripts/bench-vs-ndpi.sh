#!/usr/bin/env bash
# btblocker analyze vs nDPI's ndpiReader (Debian package libndpi-bin), the same
# capture looped to >= 10^7 packets, each pinned to one core. Packets per second
# of CPU time (user + sys, so a shared machine does not skew the ratio).
#
#   scripts/bench-vs-ndpi.sh [CAPTURE] [CORE]      (default data/demo.pcap, core 1)
#
# Two runs, and two figures for each:
#   ndpiReader -l N       every loop is a fresh run (set-up, re-read, new flows);
#                         "total" is CPU time of the whole process, "processing"
#                         the sum of ndpiReader's own per-loop packet-processing
#                         times (from its "nDPI throughput" lines: no set-up).
#   btblocker --loops N   the capture read once, N passes in memory, the flow
#                         table kept (a flow decided in pass 1 is fast-pathed
#                         after); "total" is CPU time of the whole process,
#                         "processing" its own timing of the passes.
# nDPI re-inspects every flow each loop and we do not: compare with the pipeline
# bench's new-flows figure too (BENCHMARKS.md), where every pass re-creates and
# re-inspects every flow.
set -euo pipefail
cd "$(dirname "$0")/.."
capture=${1:-data/demo.pcap}
core=${2:-1}
bin=target/release/btblocker
command -v ndpiReader >/dev/null || { echo "ndpiReader missing: apt-get install libndpi-bin" >&2; exit 1; }
[ -x "$bin" ] || cargo build --release
packets=$("$bin" analyze --json "$capture" | grep -o '"packets":[0-9]*' | head -1 | cut -d: -f2)
loops=$(( (10000000 + packets - 1) / packets ))
echo "capture $capture: $packets packets x $loops loops = $((packets * loops)) packets, core $core"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"

# Runs "$@" pinned to $core; prints CPU seconds (user + sys) and wall seconds.
cpu_time() {
  local TIMEFORMAT='%U %S %R'
  local t
  t=$( { time taskset -c "$core" "$@" >/tmp/bench-vs-ndpi.out 2>/tmp/bench-vs-ndpi.err; } 2>&1 )
  awk '{printf "%.3f %.3f\n", $1 + $2, $3}' <<<"$t"
}

report() { # name cpu wall
  awk -v n="$1" -v c="$2" -v w="$3" -v p="$((packets * loops))" \
    'BEGIN {printf "%-28s %10.3f s CPU %10.3f s wall %14.0f packets/s per core\n", n, c, w, p / c}'
}

read -r ncpu nwall < <(cpu_time ndpiReader -i "$capture" -l "$loops")
report "ndpiReader -l $loops, total" "$ncpu" "$nwall"
# Per loop: packets / (K pps) = seconds of packet processing.
nproc_s=$(awk -v p="$packets" '/nDPI throughput:/ {s += p / ($3 * ($4 == "M" ? 1e6 : 1e3))} END {printf "%.3f", s}' /tmp/bench-vs-ndpi.out)
report "ndpiReader, processing only" "$nproc_s" "$nproc_s"

read -r lcpu lwall < <(RAYON_NUM_THREADS=1 cpu_time "$bin" analyze --json --loops "$loops" "$capture")
report "btblocker --loops $loops, total" "$lcpu" "$lwall"
own=$(sed -n 's/.* in \([0-9.]*\) s: .*/\1/p' /tmp/bench-vs-ndpi.err)
report "btblocker, processing only" "$own" "$own"

awk -v n="$ncpu" -v l="$lcpu" -v np="$nproc_s" -v lp="$own" \
  'BEGIN {printf "btblocker / ndpiReader: %.1fx (total CPU), %.1fx (processing only)\n", n / l, np / lp}'
