#!/usr/bin/python3
"""Rewrite the generated file table of tests/data/lab/MANIFEST.md (between the
`<!-- files:begin -->` and `<!-- files:end -->` markers) from the pcaps
themselves (capinfos) and truth.tsv, so the figures always match the files."""
import csv
import os
import subprocess
import sys

out = sys.argv[1]
truth = {}
tsv = os.path.join(out, "truth.tsv")
if os.path.exists(tsv):
    with open(tsv) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            truth.setdefault(row["file"], []).append(row)


def capinfo(path):
    res = subprocess.run(["capinfos", "-M", "-c", "-u", "-s", "-T", "-r", path],
                         capture_output=True, text=True, check=True).stdout.strip().split("\t")
    # -T -r: name, packets, size, duration
    return res


def conversations(path, proto):
    res = subprocess.run(["tshark", "-r", path, "-q", "-z", "conv," + proto],
                         capture_output=True, text=True, check=True).stdout
    return sum("<->" in line for line in res.splitlines())


lines = ["| file | packets | bytes | duration (s) | TCP flows | UDP flows | sha256 (first 16) |",
         "|---|---|---|---|---|---|---|"]
hosts = []
for name in sorted(os.listdir(out)):
    if not name.endswith(".pcap"):
        continue
    path = os.path.join(out, name)
    f = capinfo(path)
    sha = subprocess.run(["sha256sum", path], capture_output=True, text=True).stdout[:16]
    lines.append("| %s | %s | %s | %.1f | %d | %d | %s |" % (name, f[1], f[2], float(f[3]), conversations(path, "tcp"),
                                                          conversations(path, "udp"), sha))
    hosts.append("")
    hosts.append("`%s`:" % name)
    hosts.append("")
    for r in truth.get(name, []):
        hosts.append("- %s `%s`: %s" % (r["label"], r["address"], r["role"]))
block = "\n".join(lines + hosts)

man = os.path.join(out, "MANIFEST.md")
text = open(man).read() if os.path.exists(man) else "# Capture lab\n\n<!-- files:begin -->\n<!-- files:end -->\n"
head, rest = text.split("<!-- files:begin -->", 1)
_, tail = rest.split("<!-- files:end -->", 1)
with open(man, "w") as f:
    f.write(head + "<!-- files:begin -->\n" + block + "\n<!-- files:end -->" + tail)
