#!/usr/bin/python3
"""Bulk transfers of random bytes for the benign scenarios.

raw: both ends send their own amount of os.urandom() bytes at once, in writes
of random size, half-close, and read until the other side's EOF: a stream with
no structure at all (the worst case for an entropy-only detector).
tls: the same over TLS 1.3 (client sends, then server answers); the amounts
ride inside the encrypted stream, so nothing but TLS is visible.
http: GET /<n> answers n random bytes, PUT stores nothing (a local web server
for the proxies to fetch through).

  bulk.py serve raw|tls|http BIND PORT DOWN_BYTES [CERT KEY]
  bulk.py send raw|tls HOST PORT UP_BYTES DOWN_BYTES
"""
import os
import random
import socket
import ssl
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def send_random(sock, n):
    while n > 0:
        k = min(n, random.randint(1024, 65536))
        sock.sendall(os.urandom(k))
        n -= k


def recv_exactly(sock, n):
    got = 0
    while got < n:
        b = sock.recv(min(65536, n - got))
        if not b:
            break
        got += len(b)
    return got


def recv_all(sock):
    got = 0
    while True:
        b = sock.recv(65536)
        if not b:
            return got
        got += len(b)


def raw_pair(sock, n):
    t = threading.Thread(target=lambda: (send_random(sock, n), sock.shutdown(socket.SHUT_WR)))
    t.start()
    got = recv_all(sock)
    t.join()
    sock.close()
    return got


class Http(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        n = int(self.path.strip("/") or 0)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        send_random(self.connection, n)

    def do_PUT(self):
        n = int(self.headers.get("Content-Length", 0))
        recv_exactly(self.connection, n)
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def serve(kind, bind, port, down, cert=None, key=None):
    if kind == "http":
        srv = ThreadingHTTPServer
        srv.address_family = family(bind)
        srv((bind, port), Http).serve_forever()
        return
    ls = socket.socket(family(bind), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((bind, port))
    ls.listen(16)
    ctx = None
    if kind == "tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)

    def one(c):
        try:
            if ctx:
                c = ctx.wrap_socket(c, server_side=True)
                up, dn = struct.unpack("!QQ", c.recv(16))
                recv_exactly(c, up)
                send_random(c, dn)
                c.unwrap()
                c.close()
            else:
                raw_pair(c, down)
        except (OSError, ssl.SSLError) as e:
            print("server:", e, flush=True)

    while True:
        c, _ = ls.accept()
        threading.Thread(target=one, args=(c,), daemon=True).start()


def send(kind, host, port, up, down):
    s = socket.create_connection((host, port))
    if kind == "tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname="lab.example")
        s.sendall(struct.pack("!QQ", up, down))
        send_random(s, up)
        got = recv_exactly(s, down)
        try:
            s.unwrap()
        except (OSError, ssl.SSLError):
            pass
        s.close()
    else:
        got = raw_pair(s, up)
    print("sent %d, received %d" % (up, got), flush=True)
    if got != down:
        sys.exit("short transfer: %d of %d" % (got, down))


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) >= 5 and a[0] == "serve":
        serve(a[1], a[2], int(a[3]), int(a[4]), *a[5:7])
    elif len(a) == 6 and a[0] == "send":
        send(a[1], a[2], int(a[3]), int(a[4]), int(a[5]))
    else:
        sys.exit(__doc__)
