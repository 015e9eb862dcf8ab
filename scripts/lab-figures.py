#!/usr/bin/env python3
"""Figures for the capture lab (issue 12), from `btblocker analyze --json` and tshark.

Usage: scripts/lab-figures.py [--bin target/release/btblocker] DIR...
For every capture listed in DIR/truth.tsv: hosts banned against the truth (false bans,
misses), and for the BitTorrent scenarios the share of *encrypted peer flows* judged
BitTorrent. An encrypted peer flow is a TCP flow between two `ban` hosts that carries
payload both ways (the MSE exchange began: A1 and B1); flows that only opened and closed,
or carried A1 alone, have nothing to judge. For uTP, every flow. Then the median and p95
of payload packets and payload bytes DPI had seen when it decided each BitTorrent flow.
"""
import argparse, collections, json, os, statistics, subprocess

def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else None

def two_way_tcp(path):
    """{(a, ap, b, bp) normalised: set of directions with payload} from tshark."""
    out = subprocess.run(["tshark", "-r", path, "-Y", "tcp.len>0", "-T", "fields",
                          "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport",
                          "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport"],
                         capture_output=True, text=True).stdout
    flows = collections.defaultdict(set)
    for line in out.splitlines():
        s4, s6, sp, d4, d6, dp = line.split("\t")
        src, dst = (s4 or s6), (d4 or d6)
        key = tuple(sorted([(src, int(sp)), (dst, int(dp))]))
        flows[key].add((src, int(sp)))
    return {k for k, v in flows.items() if len(v) == 2}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/btblocker")
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    for d in a.dirs:
        truth = collections.defaultdict(lambda: (set(), set()))
        for line in open(os.path.join(d, "truth.tsv")).read().splitlines()[1:]:
            c = line.split("\t")
            if len(c) >= 3:
                (truth[c[0]][0] if c[2] == "ban" else truth[c[0]][1]).add(c[1])
        print(f"## {d}")
        print("| file | flows | BitTorrent flows | hosts banned / to ban | false bans | encrypted peer flows judged | payload packets to verdict (median / p95) | payload bytes to verdict (median / p95) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for f in sorted(truth):
            path = os.path.join(d, f)
            rep = json.loads(subprocess.run([a.bin, "analyze", "--json", path],
                                            capture_output=True, text=True).stdout)
            rep = rep[0] if isinstance(rep, list) else rep
            ban, never = truth[f]
            banned = set(rep["banned_hosts"])
            flows = rep["flows"]
            bt = [x for x in flows if x["verdict"] == "bittorrent"]
            judged = "—"
            if ban and f.startswith("enc-"):
                two_way = two_way_tcp(path)
                peer = [x for x in flows
                        if x["src"] in ban and x["dst"] in ban
                        and (x["proto"] == "udp" or
                             tuple(sorted([(x["src"], x["sport"]), (x["dst"], x["dport"])])) in two_way)]
                ok = [x for x in peer if x["verdict"] == "bittorrent"]
                judged = f"{len(ok)}/{len(peer)} ({100 * len(ok) / max(1, len(peer)):.0f} %)"
            until = [x["until_verdict"] for x in bt if x.get("until_verdict")]
            pk = [u["payload_packets"] for u in until]
            by = [u["payload_bytes"] for u in until if u["payload_bytes"]]
            fig = lambda xs: f"{statistics.median(xs):g} / {pct(xs, 0.95)}" if xs else "—"
            print(f"| {f} | {len(flows)} | {len(bt)} | {len(banned & ban)}/{len(ban)} | {len(banned & never) + len(banned - ban - never)} | {judged} | {fig(pk)} | {fig(by)} |")
        print()

if __name__ == "__main__":
    main()
