#!/usr/bin/python3
"""Random ping-pong: the adversarial benign case for an MSE detector.

MSE's opening is, by construction, four random-looking flights: the initiator's
96-608 bytes (DH key + up to 512 pad), the responder's 96-608, the initiator's
next 56-700 (hash, VC, crypto_provide, pad C, IA), the responder's 14-600 (VC,
crypto_select, pad D). This protocol has exactly that shape and nothing else:
each flow is
  client U[96,608] random bytes -> server U[96,608] -> client U[56,700]
  -> server U[14,600] -> K = U[1,6] lockstep rounds of U[1,1400] bytes each way
and then the client half-closes. It carries no DH value, no hash and no VC: a
detector that bans it is judging lengths and entropy alone.

Each write is a single send() with TCP_NODELAY and fits one 1500-byte frame, so
each flight is one segment on the wire; a side answers as soon as it has read
anything, so a split flight can only add a turn, never stall the flow.

  pingpong.py serve BIND PORT
  pingpong.py send HOST PORT FLOWS
"""
import os
import random
import socket
import sys
import threading

# (lo, hi) of the client's and the server's opening flights, in turn order.
CLIENT_FLIGHTS = [(96, 608), (56, 700)]
SERVER_FLIGHTS = [(96, 608), (14, 600)]
ROUND = (1, 1400)
ROUNDS = (1, 6)


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def flight(sock, lo_hi):
    sock.sendall(os.urandom(random.randint(*lo_hi)))


def serve_one(c):
    try:
        c.settimeout(10)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        turn = 0
        while c.recv(65536):
            flight(c, SERVER_FLIGHTS[turn] if turn < len(SERVER_FLIGHTS) else ROUND)
            turn += 1
    except OSError as e:
        print("server:", e, flush=True)
    finally:
        c.close()


def serve(bind, port):
    ls = socket.socket(family(bind), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((bind, port))
    ls.listen(64)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve_one, args=(c,), daemon=True).start()


def one_flow(host, port):
    s = socket.create_connection((host, port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    turns = CLIENT_FLIGHTS + [ROUND] * random.randint(*ROUNDS)
    for lo_hi in turns:
        flight(s, lo_hi)
        if not s.recv(65536):
            raise OSError("server closed early")
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    s.close()
    return len(turns)


def send(host, port, flows):
    turns = sum(one_flow(host, port) for _ in range(flows))
    print("%d flows, %d client turns" % (flows, turns), flush=True)


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "serve":
        serve(a[1], int(a[2]))
    elif len(a) == 4 and a[0] == "send":
        send(a[1], int(a[2]), int(a[3]))
    else:
        sys.exit(__doc__)
