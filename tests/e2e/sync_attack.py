#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Attacks on the sync port of a node, for test_sync_attacks.sh.

  sync_attack.py flood ADDR[,ADDR...] CONNS SECONDS
      keep CONNS connections open to port 4510 of each ADDR, each sending
      one byte every 5 s (a slow handshake), and open a new one as soon as
      the node closes one; prints "connects=N closed=N" at the end
  sync_attack.py relay LISTEN_ADDR TARGET_ADDR
      accept on LISTEN_ADDR:4510 and splice each connection onto
      TARGET_ADDR:4510 (a relay in a partner's place), until killed
  sync_attack.py find PCAP HEX[,HEX...]
      print each HEX (bytes) found in the file, and "magic" if the sync
      HELLO magic is in it
"""
import selectors
import socket
import sys
import threading
import time

PORT = 4510


def flood(addrs, conns, seconds):
    sel = selectors.DefaultSelector()
    stats = {"connects": 0, "closed": 0}
    last_byte = {}

    def open_one(addr):
        try:
            s = socket.create_connection((addr, PORT), timeout=1)
        except OSError:
            return
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, addr)
        last_byte[s] = 0
        stats["connects"] += 1

    for addr in addrs:
        for _ in range(conns):
            open_one(addr)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.1):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                del last_byte[s]
                s.close()
                stats["closed"] += 1
                open_one(key.data)
        now = time.monotonic()
        for s in list(last_byte):
            if now - last_byte[s] >= 5:
                try:
                    s.send(b"S")
                except OSError:
                    pass
                last_byte[s] = now
    print("connects=%d closed=%d" % (stats["connects"], stats["closed"]))


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def relay(listen, target):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((listen, PORT))
    srv.listen(16)
    print("relaying", flush=True)
    while True:
        conn, _ = srv.accept()
        try:
            out = socket.create_connection((target, PORT), timeout=2)
        except OSError:
            conn.close()
            continue
        for a, b in ((conn, out), (out, conn)):
            threading.Thread(target=pump, args=(a, b), daemon=True).start()


def find(path, hexes):
    data = open(path, "rb").read()
    for h in hexes:
        if h and bytes.fromhex(h) in data:
            print(h)
    if b"SASY" in data:
        print("magic")


def main():
    if sys.argv[1] == "flood":
        flood(sys.argv[2].split(","), int(sys.argv[3]), float(sys.argv[4]))
    elif sys.argv[1] == "relay":
        relay(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "find":
        find(sys.argv[2], sys.argv[3].split(","))


if __name__ == "__main__":
    main()
