#!/usr/bin/env bash
# Runs pipeline bench binaries in alternation and prints the median
# cycles/packet of each (traffic, loop) row per binary, side by side, with
# each binary's ratio to the first. The VM this project is measured on
# drifts by up to ±30 % over minutes: alternating the binaries round by
# round and taking medians is what makes two builds comparable.
#
#   scripts/bench-ab.sh ROUNDS "BENCH ARGS" NAME=BINARY...
#
# Each BINARY is a pipeline bench built at one commit and copied aside:
#   cargo bench --features bench --bench pipeline --no-run
#   cp "$(ls -t target/release/deps/pipeline-* | grep -v '\.d$' | head -1)" /tmp/pipeline-base
# e.g. scripts/bench-ab.sh 5 "--bans 1000000 --only ban_host --repeat 1" base=/tmp/pipeline-base new=/tmp/pipeline-new
set -euo pipefail
if [ $# -lt 3 ]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
rounds=$1 args=$2
shift 2
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
for r in $(seq 1 "$rounds"); do
    for named in "$@"; do
        name=${named%%=*} bin=${named#*=}
        eval "\"$bin\" $args" 2>&1 | grep -E '^\| (same|new|many)' | sed "s/^/$name /" | tee -a "$rows" >&2
    done
done
python3 - "$rows" "$@" <<'PY'
import statistics, sys
rows, names = sys.argv[1], [a.split("=", 1)[0] for a in sys.argv[2:]]
cycles = {}
for line in open(rows):
    name, rest = line.split(" ", 1)
    f = [c.strip() for c in rest.strip().strip("|").split("|")]
    cycles.setdefault((f[0], f[1], f[2]), {}).setdefault(name, []).append(float(f[4]))
print("| traffic | loop | worker | " + " | ".join(names) + " | " + " | ".join(f"{n} ÷ {names[0]}" for n in names[1:]) + " | runs |")
print("|---|---|---:|" + "---:|" * (2 * len(names) - 1) + "---:|")
for (traffic, loop, worker), by in cycles.items():
    med = [statistics.median(by[n]) if n in by else float("nan") for n in names]
    ratios = [f"{m / med[0]:.2f}" for m in med[1:]]
    print(f"| {traffic} | {loop} | {worker} | " + " | ".join(f"{m:.0f}" for m in med) + " | " + " | ".join(ratios) + f" | {max(len(v) for v in by.values())} |")
PY
