#!/usr/bin/python3
"""A minimal BEP 3 HTTP tracker for the capture lab.

It lives on a host whose traffic the capture filter drops, so the recorded
peers look as if they found each other by means an observer cannot see.
Answers are compact (BEP 23): `peers` for IPv4 and `peers6` (BEP 7) for IPv6,
with the address the announce came from (the lab has no NAT) and the port the
client reported. Every announce is appended to the log as one line
`<info_hash hex> <ip> <port> <event>` so the lab script can wait for it.
"""
import ipaddress
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SWARMS = {}  # info_hash -> {(ip, port): last_seen}
LOCK = threading.Lock()
LOG = None


def bencode(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, dict):
        out = b"d"
        for k in sorted(v):
            out += bencode(k) + bencode(v[k])
        return out + b"e"
    raise TypeError(type(v))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def fail(self, why):
        self.reply({"failure reason": why})

    def reply(self, d):
        body = bencode(d)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlsplit(self.path)
        if not url.path.endswith("/announce"):
            self.send_error(404)
            return
        q = parse_qs(url.query, encoding="latin-1")
        try:
            ih = q["info_hash"][0].encode("latin-1")
            port = int(q["port"][0])
        except (KeyError, ValueError):
            self.fail("bad announce")
            return
        if len(ih) != 20 or not 0 < port < 65536:
            self.fail("bad announce")
            return
        ip = ipaddress.ip_address(self.client_address[0].split("%")[0])
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        event = q.get("event", ["-"])[0] or "-"
        me = (ip, port)
        with LOCK:
            swarm = SWARMS.setdefault(ih, {})
            if event == "stopped":
                swarm.pop(me, None)
            else:
                swarm[me] = time.time()
            others = [p for p in swarm if p != me]
        LOG.write("%s %s %d %s\n" % (ih.hex(), ip, port, event))
        LOG.flush()
        v4 = b"".join(p[0].packed + p[1].to_bytes(2, "big") for p in others if p[0].version == 4)
        v6 = b"".join(p[0].packed + p[1].to_bytes(2, "big") for p in others if p[0].version == 6)
        self.reply({"interval": 15, "min interval": 5, "complete": 0, "incomplete": len(swarm),
                    "peers": v4, "peers6": v6})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, handler):
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        super().__init__(addr, handler)


def main():
    global LOG
    if len(sys.argv) != 4:
        sys.exit("usage: tracker.py BIND_IP PORT LOGFILE")
    LOG = open(sys.argv[3], "a")
    Server((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()


if __name__ == "__main__":
    main()
