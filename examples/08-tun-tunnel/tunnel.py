#!/usr/bin/env python3
"""One end of a point-to-point IP tunnel over UDP (scenario 5: "two such programs make
a tunnel").

Attaches to an existing TUN device through /dev/net/tun (TUNSETIFF), and carries every
IP packet the kernel sends to the device in one UDP datagram to the peer; every
datagram that comes from the peer is written to the device, where the kernel receives
it as if it had arrived on that interface. Datagrams from anyone else are dropped.
Runs until SIGTERM or SIGINT.

    tunnel.py DEVICE LOCAL_ADDRESS:PORT PEER_ADDRESS:PORT
"""
import fcntl
import os
import selectors
import signal
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
MAX_PACKET = 65535


def endpoint(text: str):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def main() -> int:
    device, local, peer = sys.argv[1], endpoint(sys.argv[2]), endpoint(sys.argv[3])
    tun = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", device.encode(), IFF_TUN | IFF_NO_PI))
    family = socket.AF_INET6 if ":" in local[0] else socket.AF_INET
    udp = socket.socket(family, socket.SOCK_DGRAM)
    udp.bind(local)
    peer_addr = socket.getaddrinfo(peer[0], peer[1], family, socket.SOCK_DGRAM)[0][4]
    print(f"tunnel {device}: {local[0]}:{local[1]} <-> {peer[0]}:{peer[1]}", flush=True)

    running = True

    def stop(_signum, _frame):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sel = selectors.DefaultSelector()
    sel.register(tun, selectors.EVENT_READ, "tun")
    sel.register(udp, selectors.EVENT_READ, "udp")
    counts = {"tun->udp": 0, "udp->tun": 0, "dropped": 0}
    while running:
        try:
            events = sel.select(timeout=1.0)
        except InterruptedError:
            continue
        for key, _ in events:
            if key.data == "tun":
                udp.sendto(os.read(tun, MAX_PACKET), peer_addr)
                counts["tun->udp"] += 1
            else:
                data, sender = udp.recvfrom(MAX_PACKET)
                if sender[:2] != peer_addr[:2]:
                    counts["dropped"] += 1
                    continue
                os.write(tun, data)
                counts["udp->tun"] += 1
    print(f"tunnel {device}: stopping, {counts}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
