#!/usr/bin/env python3
"""Records what a Jac Cloud server does to a WebSocket client that never
answers its pings: every frame it sends (with the time since the upgrade)
until it closes the TCP connection.

Plain sockets (standard library only), so that nothing answers a ping behind
the recorder's back. Usage:

    keepalive_timeout.py HOST:PORT OUT.json

(`shared/jacref/start.sh PORT DIR` starts the real server; its defaults,
uvicorn's, are a ping every 20 s and a 20 s pong timeout: about 40 s.)
"""

import base64
import json
import os
import socket
import struct
import sys
import time

OPCODES = {0x1: "text", 0x2: "binary", 0x8: "close", 0x9: "ping", 0xA: "pong"}


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    out = sys.argv[2]
    sock = socket.create_connection((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /websocket HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += read_exact(sock, 1)
    status = head.split(b"\r\n", 1)[0].decode()
    start = time.monotonic()
    frames = []
    sock.settimeout(120)
    while True:
        try:
            b0, b1 = read_exact(sock, 2)
        except (EOFError, ConnectionResetError):
            frames.append({"t": round(time.monotonic() - start), "event": "tcp closed"})
            break
        opcode = b0 & 0x0F
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", read_exact(sock, 2))
        elif length == 127:
            (length,) = struct.unpack("!Q", read_exact(sock, 8))
        payload = read_exact(sock, length)
        frame = {"t": round(time.monotonic() - start), "opcode": OPCODES.get(opcode, opcode)}
        if opcode == 0x1:
            frame["payload"] = json.loads(payload)
        elif opcode == 0x8:
            frame["code"] = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            frame["reason"] = payload[2:].decode()
        else:
            frame["payload_len"] = len(payload)
        frames.append(frame)
    with open(out, "w") as f:
        json.dump({"upgrade": status, "frames": frames}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
