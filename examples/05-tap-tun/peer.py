#!/usr/bin/env python3
"""A user-space "host" behind a tap or tun device (scenario 5).

Attaches to an existing device through /dev/net/tun (TUNSETIFF), prints one JSON line
per frame/packet the kernel sends to the interface, and answers as host ADDRESS: ARP
requests (tap) and ICMP echo requests (tap and tun). What it writes appears as received
on the interface, so `ping ADDRESS` from the kernel side gets replies.

    peer.py DEVICE tap|tun ADDRESS [SECONDS]
"""
import fcntl
import json
import os
import select
import socket
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_TAP, IFF_NO_PI = 0x0001, 0x0002, 0x1000
PEER_MAC = bytes.fromhex("020000c0ffee")


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_reply(packet: bytes, me: bytes):
    """The IPv4 ICMP echo reply to `packet`, or None when it is not a request for me."""
    if len(packet) < 28 or packet[0] >> 4 != 4 or packet[9] != 1 or packet[16:20] != me:
        return None
    ihl = (packet[0] & 0x0F) * 4
    icmp = bytearray(packet[ihl:])
    if icmp[0] != 8:
        return None
    icmp[0] = 0
    icmp[2:4] = b"\0\0"
    icmp[2:4] = struct.pack("!H", checksum(bytes(icmp)))
    header = bytearray(packet[:ihl])
    header[12:16], header[16:20] = packet[16:20], packet[12:16]
    header[8] = 64
    header[10:12] = b"\0\0"
    header[10:12] = struct.pack("!H", checksum(bytes(header)))
    return bytes(header) + bytes(icmp)


def main() -> int:
    device, mode, address = sys.argv[1], sys.argv[2], sys.argv[3]
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 30.0
    me = socket.inet_aton(address)
    fd = os.open("/dev/net/tun", os.O_RDWR)
    flags = (IFF_TAP if mode == "tap" else IFF_TUN) | IFF_NO_PI
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", device.encode(), flags))
    print(json.dumps({"attached": device, "mode": mode}), flush=True)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([fd], [], [], left)[0]:
            break
        data = os.read(fd, 65536)
        if mode == "tun":
            seen = {"kind": "ip", "version": data[0] >> 4, "length": len(data)}
            if data[0] >> 4 == 4:
                seen.update(src=socket.inet_ntoa(data[12:16]), dst=socket.inet_ntoa(data[16:20]), proto=data[9])
            reply = echo_reply(data, me)
        else:
            ethertype = struct.unpack("!H", data[12:14])[0]
            seen = {"kind": "ethernet", "ethertype": f"0x{ethertype:04x}", "src": data[6:12].hex(":"), "length": len(data)}
            reply = None
            if ethertype == 0x0806 and data[20:22] == b"\0\1" and data[38:42] == me:
                seen["arp_request_for"] = address
                arp = data[14:20] + b"\0\2" + PEER_MAC + me + data[22:28] + data[28:32]
                reply = data[6:12] + PEER_MAC + b"\x08\x06" + arp
            elif ethertype == 0x0800:
                seen.update(src_ip=socket.inet_ntoa(data[26:30]), dst_ip=socket.inet_ntoa(data[30:34]))
                ip_reply = echo_reply(data[14:], me)
                if ip_reply:
                    reply = data[6:12] + PEER_MAC + b"\x08\x00" + ip_reply
        if reply:
            os.write(fd, reply)
            seen["answered"] = True
        print(json.dumps(seen), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
