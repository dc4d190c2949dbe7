"""Packet generators run inside lab namespaces: ``python3 traffic.py ACTION ARGS...``.

Standard library only (it runs under ``ip netns exec``). Raw sockets craft what ordinary
sockets cannot: out-of-window ACKs of a live connection, a spoofed source, ICMP
fragmentation-needed and ICMPv6 packet-too-big about flows conntrack does not know.

Actions::

    serve PORT...                       accept and drain TCP connections (background)
    scan HOST PORT-PORT                 one SYN per port (non-blocking connect, then close)
    connect HOST PORT [SRC]             a TCP connection (from SRC), one line sent
    udp HOST PORT [PORT...]             one datagram per port
    spoof-udp SRC DST PORT              UDP datagram with a forged IPv4 source
    invalid-acks HOST PORT COUNT        connect, then COUNT out-of-window ACKs on that flow
    frag-needed DST INNER_SRC INNER_DST MTU     ICMP 3/4 quoting a TCP packet
    packet-too-big DST INNER_SRC INNER_DST MTU  ICMPv6 type 2 quoting a TCP packet
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
import selectors
import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_header(src: str, dst: str, proto: int, payload_len: int, ttl: int = 64) -> bytes:
    """An IPv4 header with its checksum."""
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + payload_len,
        random.randint(1, 0xFFFF),
        0x4000,
        ttl,
        proto,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:]


def tcp_segment(
    src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int
) -> bytes:
    """A 20-byte TCP header with a valid checksum (IPv4 pseudo-header)."""
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 502, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, 20)
    return header[:16] + struct.pack("!H", checksum(pseudo + header)) + header[18:]


def serve(ports: list[int]) -> None:
    """Accept connections on ``ports`` (IPv4 and IPv6) and drain them, forever."""
    sel = selectors.DefaultSelector()
    for port in ports:
        listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        listener.bind(("::", port))
        listener.listen(64)
        listener.setblocking(False)
        sel.register(listener, selectors.EVENT_READ, "listen")
    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if key.data == "listen":
                conn, _ = sock.accept()
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ, "conn")
            else:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(sock)
                    sock.close()


def scan(host: str, first: int, last: int) -> None:
    """Send one SYN to each port (the socket is closed before any retransmission)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks = []
    for port in range(first, last + 1):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError, OSError):
            sock.connect((host, port))
        socks.append(sock)
    time.sleep(0.3)
    for sock in socks:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


def connect(host: str, port: int, src: str | None) -> None:
    """Open a TCP connection (from ``src`` if given), send a line, close."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if src:
            sock.bind((src, 0))
        sock.settimeout(5)
        sock.connect((host, port))
        sock.sendall(b"SSH-2.0-nfkit-test\r\n")
        time.sleep(0.1)


def udp(host: str, ports: list[int]) -> None:
    """Send one small datagram to each port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        for port in ports:
            sock.sendto(b"nfkit-probe", (host, port))


def spoof_udp(src: str, dst: str, port: int) -> None:
    """One UDP datagram claiming source ``src`` (IPv4, UDP checksum 0)."""
    body = b"spoofed"
    udp_header = struct.pack("!HHHH", 40000, port, 8 + len(body), 0)
    packet = ipv4_header(src, dst, 17, 8 + len(body)) + udp_header + body
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw:
        raw.sendto(packet, (dst, 0))


def invalid_acks(host: str, port: int, count: int) -> None:
    """Open a real connection, then send ``count`` ACKs far outside its window."""
    conn = socket.create_connection((host, port), timeout=5)
    conn.sendall(b"hello\n")
    src, sport = conn.getsockname()[:2]
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw:
        for _ in range(count):
            seq = random.randint(0, 2**32 - 1)
            ack = random.randint(0, 2**32 - 1)
            segment = tcp_segment(src, host, sport, port, seq, ack, 0x10)  # ACK
            raw.sendto(ipv4_header(src, host, 6, len(segment)) + segment, (host, 0))
            time.sleep(0.05)
    time.sleep(0.2)
    conn.close()


def frag_needed(dst: str, inner_src: str, inner_dst: str, mtu: int) -> None:
    """ICMP destination-unreachable / fragmentation-needed about a flow nobody opened."""
    inner_tcp = struct.pack("!HHI", 80, 40123, random.randint(0, 2**32 - 1))
    inner = ipv4_header(inner_src, inner_dst, 6, 1480) + inner_tcp
    header = struct.pack("!BBHHH", 3, 4, 0, 0, mtu)
    message = header + inner
    message = message[:2] + struct.pack("!H", checksum(message)) + message[4:]
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as raw:
        raw.sendto(message, (dst, 0))


def packet_too_big(dst: str, inner_src: str, inner_dst: str, mtu: int) -> None:
    """ICMPv6 packet-too-big about a flow nobody opened (the kernel fills the checksum)."""
    inner_tcp = struct.pack("!HHI", 80, 40123, random.randint(0, 2**32 - 1))
    inner = (
        struct.pack("!IHBB", 6 << 28, 1440, 6, 64)
        + ipaddress.IPv6Address(inner_src).packed
        + ipaddress.IPv6Address(inner_dst).packed
        + inner_tcp
    )
    message = struct.pack("!BBHI", 2, 0, 0, mtu) + inner
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as raw:
        raw.sendto(message, (dst, 0))


def main(argv: list[str]) -> None:
    """Dispatch one action."""
    action, args = argv[0], argv[1:]
    if action == "serve":
        serve([int(p) for p in args])
    elif action == "scan":
        first, last = args[1].split("-")
        scan(args[0], int(first), int(last))
    elif action == "connect":
        connect(args[0], int(args[1]), args[2] if len(args) > 2 else None)
    elif action == "udp":
        udp(args[0], [int(p) for p in args[1:]])
    elif action == "spoof-udp":
        spoof_udp(args[0], args[1], int(args[2]))
    elif action == "invalid-acks":
        invalid_acks(args[0], int(args[1]), int(args[2]))
    elif action == "frag-needed":
        frag_needed(args[0], args[1], args[2], int(args[3]))
    elif action == "packet-too-big":
        packet_too_big(args[0], args[1], args[2], int(args[3]))
    else:
        raise SystemExit(f"unknown action {action!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
