#!/usr/bin/env bash
# btblocker analyze vs nDPI's ndpiReader (Debian package libndpi-bin). CPU time
# (user + sys) throughout, so a shared machine does not skew the ratios.
#
#   scripts/bench-vs-ndpi.sh [CAPTURE] [CORE]         looped mode (default data/demo.pcap, core 1)
#   scripts/bench-vs-ndpi.sh --folder [COPIES] [CORE] folder mode (default 8 copies, core 1)
#
# BIN=path picks the btblocker binary (default target/release/btblocker);
# BASE=path adds a second btblocker (e.g. a build of an older commit), run
# interleaved with BIN, REPEAT times (default 3), and prints BIN/BASE ratios.
# NDPI=no (looped mode) skips ndpiReader: a BIN vs BASE run only.
#
# Looped mode: the same capture looped to >= 10^7 packets, each tool pinned to
# one core, two figures for each:
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
#
# Folder mode: what analyze users run, a folder of many small captures: every
# capture of ../shared/corpus (or CORPUS=dir) COPIES times, by symlinks in a
# temp dir. ndpiReader -i FILE file by file on one core, against one
# `btblocker analyze --json` over the whole folder, also on one core
# (RAYON_NUM_THREADS=1, pinned): files per second of CPU time, per core.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-target/release/btblocker}
base=${BASE:-}
repeat=${REPEAT:-3}
command -v ndpiReader >/dev/null || { echo "ndpiReader missing: apt-get install libndpi-bin" >&2; exit 1; }
[ -x "$bin" ] || cargo build --release
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"

# Runs "$@" pinned to $core; prints CPU seconds (user + sys) and wall seconds.
cpu_time() {
  local TIMEFORMAT='%U %S %R'
  local t
  t=$( { time taskset -c "$core" "$@" >/tmp/bench-vs-ndpi.out 2>/tmp/bench-vs-ndpi.err; } 2>&1 )
  awk '{printf "%.3f %.3f\n", $1 + $2, $3}' <<<"$t"
}

if [ "${1:-}" = --folder ]; then
  copies=${2:-8}
  core=${3:-1}
  corpus=${CORPUS:-../shared/corpus}
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  mapfile -t captures < <(find "$corpus" -type f \( -name '*.pcap' -o -name '*.pcapng' \) | sort)
  for c in $(seq "$copies"); do
    for f in "${captures[@]}"; do
      ln -s "$(realpath "$f")" "$dir/$c-$(basename "$f")"
    done
  done
  files=$(( ${#captures[@]} * copies ))
  echo "folder: ${#captures[@]} captures of $corpus x $copies = $files files, $(du -shL "$dir" | cut -f1); core $core"
  ndpi_all() { for f in "$dir"/*; do ndpiReader -q -i "$f" >/dev/null 2>&1 || true; done; }
  report() { # name cpu wall
    awk -v n="$1" -v c="$2" -v w="$3" -v f="$files" \
      'BEGIN {printf "%-40s %8.3f s CPU %8.3f s wall %8.1f files/s per core\n", n, c, w, f / c}'
  }
  read -r ncpu nwall < <(cpu_time bash -c "$(declare -f ndpi_all); dir=$dir; ndpi_all")
  report "ndpiReader -i FILE, file by file" "$ncpu" "$nwall"
  for r in $(seq "$repeat"); do
    read -r lcpu lwall < <(RAYON_NUM_THREADS=1 cpu_time "$bin" analyze --json "$dir"/*)
    report "$bin analyze --json (1 core) #$r" "$lcpu" "$lwall"
    awk -v n="$ncpu" -v l="$lcpu" 'BEGIN {printf "  btblocker / ndpiReader per core: %.1fx\n", n / l}'
    if [ -n "$base" ]; then
      read -r bcpu bwall < <(RAYON_NUM_THREADS=1 cpu_time "$base" analyze --json "$dir"/*)
      report "$base analyze --json (1 core) #$r" "$bcpu" "$bwall"
      awk -v b="$bcpu" -v l="$lcpu" 'BEGIN {printf "  CPU time new / base: %.3f\n", l / b}'
    fi
  done
  exit 0
fi

capture=${1:-data/demo.pcap}
core=${2:-1}
packets=$("$bin" analyze --json "$capture" | grep -o '"packets":[0-9]*' | head -1 | cut -d: -f2)
loops=$(( (10000000 + packets - 1) / packets ))
echo "capture $capture: $packets packets x $loops loops = $((packets * loops)) packets, core $core"

report() { # name cpu wall
  awk -v n="$1" -v c="$2" -v w="$3" -v p="$((packets * loops))" \
    'BEGIN {printf "%-40s %10.3f s CPU %10.3f s wall %14.0f packets/s per core\n", n, c, w, p / c}'
}

ncpu=0 nproc_s=0
if [ "${NDPI:-yes}" != no ]; then
  read -r ncpu nwall < <(cpu_time ndpiReader -i "$capture" -l "$loops")
  report "ndpiReader -l $loops, total" "$ncpu" "$nwall"
  # Per loop: packets / (K pps) = seconds of packet processing.
  nproc_s=$(awk -v p="$packets" '/nDPI throughput:/ {s += p / ($3 * ($4 == "M" ? 1e6 : 1e3))} END {printf "%.3f", s}' /tmp/bench-vs-ndpi.out)
  report "ndpiReader, processing only" "$nproc_s" "$nproc_s"
fi

for r in $(seq "$([ -n "$base" ] && echo "$repeat" || echo 1)"); do
  for b in "$bin" ${base:+"$base"}; do
    read -r lcpu lwall < <(RAYON_NUM_THREADS=1 cpu_time "$b" analyze --json --loops "$loops" "$capture")
    report "$b --loops $loops, total" "$lcpu" "$lwall"
    own=$(sed -n 's/.* in \([0-9.]*\) s: .*/\1/p' /tmp/bench-vs-ndpi.err)
    report "$b, processing only" "$own" "$own"
    [ "$ncpu" = 0 ] || awk -v n="$ncpu" -v l="$lcpu" -v np="$nproc_s" -v lp="$own" \
      'BEGIN {printf "  btblocker / ndpiReader: %.1fx (total CPU), %.1fx (processing only)\n", n / l, np / lp}'
    if [ "$b" = "$bin" ]; then
      newcpu=$lcpu newown=$own
    else
      awk -v n="$newcpu" -v b="$lcpu" -v no="$newown" -v bo="$own" \
        'BEGIN {printf "  CPU time new / base: %.3f (total), %.3f (processing only)\n", n / b, no / bo}'
    fi
  done
done
