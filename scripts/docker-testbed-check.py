#!/usr/bin/env python3
"""Checks a docker testbed run (scripts/docker-testbed.sh) exactly, as
tests/virtio.rs does in-process: prints each check and exits 1 on any mismatch.

  docker-testbed-check.py wait-metrics PORT RESULTS
      poll http://127.0.0.1:PORT/metrics until btblocker's port counters equal
      the generator's (RESULTS/generator/replay.json), at most 30 s; save the
      last scrape as RESULTS/metrics.txt
  docker-testbed-check.py check RESULTS BANS_JSON PCAP...
      BANS_JSON: `btblocker analyze --json PCAP...` output (one object per file)

Standard library only: the pcap/pcapng reader and the Ethernet/VLAN/IP parse
below are what the checks need, nothing more.
"""
import ipaddress
import json
import struct
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

MAX_FRAME = 1518  # replay skips longer frames (src/tools/replay/plan.rs)
DLT_EN10MB = 1
failures = 0


def check(ok, what):
    global failures
    print(f"  [{'ok' if ok else 'FAIL'}] {what}")
    if not ok:
        failures += 1


# ---- captures -------------------------------------------------------------

def frames(path):
    """(link type, bytes) of every frame of a pcap or pcapng file."""
    data = Path(path).read_bytes()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = "<" if magic[0] in (0xD4, 0x4D) else ">"
        dlt = struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF
        off = 24
        while off + 16 <= len(data):
            incl = struct.unpack(e + "I", data[off + 8:off + 12])[0]
            yield dlt, data[off + 16:off + 16 + incl]
            off += 16 + incl
        return
    if magic == b"\x0a\x0d\x0d\x0a":
        e, off, links = "<", 0, []
        while off + 12 <= len(data):
            btype = struct.unpack(e + "I", data[off:off + 4])[0]
            if btype == 0x0A0D0D0A:  # section header: byte order, new interfaces
                e = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
                links = []
            blen = struct.unpack(e + "I", data[off + 4:off + 8])[0]
            if blen < 12:
                raise ValueError(f"{path}: bad pcapng block length {blen} at {off}")
            body = data[off + 8:off + blen - 4]
            if btype == 1:  # interface description
                links.append(struct.unpack(e + "H", body[:2])[0])
            elif btype == 6:  # enhanced packet
                iface, _, _, caplen, _ = struct.unpack(e + "IIIII", body[:20])
                yield links[iface], body[20:20 + caplen]
            elif btype == 3:  # simple packet
                orig = struct.unpack(e + "I", body[:4])[0]
                yield links[0], body[4:4 + min(orig, len(body) - 4)]
            off += blen
        return
    raise ValueError(f"{path}: neither pcap nor pcapng")


def sent_frames(pcaps):
    """The frames replay sends in one pass: every Ethernet frame, none empty or oversize."""
    out = []
    for p in pcaps:
        for dlt, f in frames(p):
            if dlt != DLT_EN10MB:
                raise ValueError(f"{p}: link type {dlt}; replay sends Ethernet only")
            if 0 < len(f) <= MAX_FRAME:
                out.append(f)
    return out


def parse(frame):
    """(src, dst, flow key or None) of an IPv4/IPv6 frame (802.1Q/QinQ tags
    skipped), or None. The flow key, for TCP/UDP right after the IP header:
    (proto, frozenset of both (address, port) ends), as analyze's flows."""
    off, etype = 14, frame[12:14]
    while etype in (b"\x81\x00", b"\x88\xa8") and len(frame) >= off + 4:
        etype, off = frame[off + 2:off + 4], off + 4
    ip = frame[off:]
    if etype == b"\x08\x00" and len(ip) >= 20 and ip[0] >> 4 == 4:
        src, dst = ipaddress.ip_address(ip[12:16]), ipaddress.ip_address(ip[16:20])
        proto, l4, first = ip[9], ip[(ip[0] & 15) * 4:], struct.unpack(">H", ip[6:8])[0] & 0x1FFF == 0
    elif etype == b"\x86\xdd" and len(ip) >= 40 and ip[0] >> 4 == 6:
        src, dst = ipaddress.ip_address(ip[8:24]), ipaddress.ip_address(ip[24:40])
        proto, l4, first = ip[6], ip[40:], True
    else:
        return None
    key = None
    if first and proto in (6, 17) and len(l4) >= 4:
        sport, dport = struct.unpack(">HH", l4[:4])
        key = ("tcp" if proto == 6 else "udp", frozenset(((src, sport), (dst, dport))))
    return src, dst, key


def is_blocked(frame, banned, bt_flows):
    """Whether btblocker may drop this frame: a banned host's, or in a flow
    judged BitTorrent (whose hosts may be unbannable: loopback, multicast)."""
    p = parse(frame)
    return p is not None and (p[0] in banned or p[1] in banned or p[2] in bt_flows)


def touches(frame, banned):
    p = parse(frame)
    return p is not None and (p[0] in banned or p[1] in banned)


# ---- btblocker's outputs --------------------------------------------------

def live_bans(journal):
    """Replays the ban journal (src/ban/journal.rs) into the live set."""
    live = set()
    for line in Path(journal).read_text().splitlines():
        rec = json.loads(line)
        if rec["op"] == "add":
            live.add(ipaddress.ip_address(rec["ip"]))
        elif rec["op"] == "del":
            live.discard(ipaddress.ip_address(rec["ip"]))
        elif rec["op"] == "flush":
            live.clear()
    return live


def metric(body, name, port=None):
    for line in body.splitlines():
        if not line.startswith(name) or line[len(name):len(name) + 1] not in ("{", " "):
            continue
        if port is not None and f'port="{port}"' not in line:
            continue
        return int(float(line.rsplit(" ", 1)[1]))
    return None


# The generator's barrier frames (src/tools/replay/barrier.rs: 60 bytes, EtherType
# 0x88b5) pass through btblocker like any frame and are counted there too.
BARRIER_BYTES = 60


def on_wire(side, way):
    """(packets, bytes) the generator sent ("sent") or received ("received")
    on one side, its barrier frames included."""
    barriers = side["barriers_sent" if way == "sent" else "barriers_received"]
    return side[way]["packets"] + barriers, side[way]["bytes"] + BARRIER_BYTES * barriers


def metrics_wanted(rs):
    return [
        ("btblocker_rx_packets_total", "inside", on_wire(rs["inside"], "sent")[0]),
        ("btblocker_rx_packets_total", "outside", on_wire(rs["outside"], "sent")[0]),
        ("btblocker_tx_packets_total", "inside", on_wire(rs["inside"], "received")[0]),
        ("btblocker_tx_packets_total", "outside", on_wire(rs["outside"], "received")[0]),
        ("btblocker_rx_bytes_total", "inside", on_wire(rs["inside"], "sent")[1]),
        ("btblocker_rx_bytes_total", "outside", on_wire(rs["outside"], "sent")[1]),
    ]


def wait_metrics(port, results):
    rs = json.loads((results / "generator/replay.json").read_text())
    want = metrics_wanted(rs)
    body, deadline = "", time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                body = r.read().decode()
        except OSError:
            body = ""
        if all(metric(body, n, p) == v for n, p, v in want):
            break
        time.sleep(0.2)
    (results / "metrics.txt").write_text(body)


def run_checks(results, bans_json, pcaps):
    rs = json.loads((results / "generator/replay.json").read_text())
    run = json.loads((results / "btblocker/run.json").read_text())
    body = (results / "metrics.txt").read_text()
    expected, bt_flows = set(), set()
    for line in Path(bans_json).read_text().splitlines():
        report = json.loads(line)
        expected |= {ipaddress.ip_address(h) for h in report["banned_hosts"]}
        bt_flows |= {(f["proto"], frozenset(((ipaddress.ip_address(f["src"]), f["sport"]),
                                             (ipaddress.ip_address(f["dst"]), f["dport"]))))
                     for f in report["flows"] if f["verdict"] == "bittorrent"}
    sent = sent_frames(pcaps)

    print(f"generator: {len(pcaps)} captures, {len(sent)} frames a pass, "
          f"{len(rs['passes'])} passes; analyze names {len(expected)} hosts to ban")
    check(len(rs["passes"]) == 2, "the generator ran 2 passes")
    check(rs["capture_packets"] == len(sent),
          f"generator's frames per pass = frames in the captures ({rs['capture_packets']} vs {len(sent)})")

    print("btblocker's summary (run.json) vs the generator's (replay.json):")
    ports = {p["name"]: p for p in run["ports"]}
    for side in ("inside", "outside"):
        p, g = ports[side], rs[side]
        (sp, sb), (rp, rb) = on_wire(g, "sent"), on_wire(g, "received")
        check((p["rx_packets"], p["rx_bytes"]) == (sp, sb),
              f"{side}: btblocker received {p['rx_packets']} pkts / {p['rx_bytes']} B = "
              f"generator sent {sp} / {sb} ({g['barriers_sent']} barrier frames included)")
        check((p["tx_packets"], p["tx_bytes"]) == (rp, rb),
              f"{side}: btblocker sent {p['tx_packets']} pkts / {p['tx_bytes']} B = "
              f"generator received {rp} / {rb} ({g['barriers_received']} barrier frames included)")
        check(p["tx_failed"] == 0, f"{side}: tx_failed {p['tx_failed']} = 0")

    print("btblocker's /metrics vs the generator's counts:")
    for n, p, v in metrics_wanted(rs):
        got = metric(body, n, p)
        check(got == v, f'{n}{{port="{p}"}} {got} = {v}')

    print("bans:")
    live = live_bans(results / "btblocker/bans.jsonl")
    # With `target: both` both ends of a detected flow are banned. Once a
    # subscriber is banned its packets are dropped before inspection, so a
    # remote peer seen only after that is never judged: which peers get banned
    # depends on when the ban reached the worker. What holds whatever the
    # timing: no host analyze does not name, and every BitTorrent flow has a
    # banned end.
    check(live <= expected,
          f"every ban is a host analyze names ({len(live)} live of {len(expected)}"
          + (f"; not named: {sorted(map(str, live - expected))}" if not live <= expected else "")
          + ")")
    unenforced = [f for f in bt_flows if not any(ip in live for ip, _ in f[1])]
    check(not unenforced, f"every BitTorrent flow analyze finds has a banned end "
          f"({len(bt_flows) - len(unenforced)} of {len(bt_flows)})")
    if live != expected:
        print(f"  [info] not banned (only seen after their subscriber's ban): "
              f"{sorted(map(str, expected - live))}")
    active = metric(body, "btblocker_bans_active")
    check(active == len(live), f"btblocker_bans_active {active} = {len(live)} in the journal")

    print("what came back, per pass (both ports):")
    back = {}
    for side in ("inside", "outside"):
        got = [f for _, f in frames(results / f"generator/{side}-rx.pcap")]
        n1 = rs["passes"][0][side]["received"]["packets"]
        n2 = rs["passes"][1][side]["received"]["packets"]
        check(len(got) == n1 + n2, f"{side}-rx.pcap: {len(got)} frames = {n1} + {n2} received in passes 1 + 2")
        back[side] = (got[:n1], got[n1:])
    # Benign: neither end banned, not in a flow analyze judges BitTorrent.
    benign = Counter(f for f in sent if not is_blocked(f, expected, bt_flows))
    banned_sent = sum(1 for f in sent if touches(f, live))
    check(banned_sent > 0, f"the mix has traffic of banned hosts ({banned_sent} frames a pass)")
    for i in (0, 1):
        got = back["inside"][i] + back["outside"][i]
        got_benign = Counter(f for f in got if not is_blocked(f, expected, bt_flows))
        missing = sum((benign - got_benign).values())
        extra = sum((got_benign - benign).values())
        check(missing == 0 and extra == 0,
              f"pass {i + 1}: all {sum(benign.values())} benign frames came back byte-identical "
              f"({missing} missing, {extra} not sent)")
        leaked = sum(1 for f in got if touches(f, live))
        if i == 1:
            check(len(got) == sum(benign.values()),
                  f"pass 2: {len(got)} frames came back = the {sum(benign.values())} benign ones, nothing else")
            check(leaked == 0, f"pass 2: {leaked} frames of banned hosts forwarded = 0")
        else:
            print(f"  [info] pass 1: {leaked} of {banned_sent} frames of banned hosts forwarded "
                  "before their ban reached the worker")


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "wait-metrics":
        wait_metrics(int(sys.argv[2]), Path(sys.argv[3]))
        return 0
    if len(sys.argv) >= 5 and sys.argv[1] == "check":
        run_checks(Path(sys.argv[2]), sys.argv[3], sys.argv[4:])
        print("docker testbed: " + ("PASS" if failures == 0 else f"FAIL ({failures} checks failed)"))
        return 0 if failures == 0 else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
