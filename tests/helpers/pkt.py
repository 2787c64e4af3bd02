#!/usr/bin/env python3
"""Raw-frame helper for Switchyard's integration tests, run inside a pod namespace.

  pkt.py send IFACE HEX [HEX...]        send each frame as-is on IFACE
  pkt.py sniff IFACE TAG MARKER SECS    print 'GOT <hex>' for every UDP/IPv4 or
                                        IPv6 frame that contains TAG, until a frame containing MARKER
                                        arrives (then print 'DONE') or SECS pass
  pkt.py capture IFACE SECS             print 'GOT <hex>' for every frame IFACE
                                        receives, until killed or SECS pass
"""
import socket, sys, time

ETH_P_ALL = 0x0003

def raw(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    return s

def send(iface, frames):
    s = raw(iface)
    for h in frames:
        s.send(bytes.fromhex(h))

def sniff(iface, tag, marker, secs):
    s = raw(iface)
    s.settimeout(0.2)
    print("READY", flush=True)
    deadline = time.time() + secs
    while time.time() < deadline:
        try:
            data, addr = s.recvfrom(65535)
        except socket.timeout:
            continue
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        if marker in data:
            print("DONE", flush=True)
            return
        # Test tags travel in UDP/IPv4 frames (ICMP errors quoting them are
        # ignored) and in any IPv6 frame.
        udp4 = len(data) > 23 and data[12:14] == b"\x08\x00" and data[23] == 17
        ip6 = data[12:14] == b"\x86\xdd"
        if (udp4 or ip6) and tag in data:
            print("GOT " + data.hex(), flush=True)
    print("TIMEOUT", flush=True)

def capture(iface, secs):
    s = raw(iface)
    s.settimeout(0.5)
    print("READY", flush=True)
    deadline = time.time() + secs
    while time.time() < deadline:
        try:
            data, addr = s.recvfrom(65535)
        except socket.timeout:
            continue
        if addr[2] != socket.PACKET_OUTGOING:
            print("GOT " + data.hex(), flush=True)

if __name__ == "__main__":
    if sys.argv[1] == "send":
        send(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "capture":
        capture(sys.argv[2], float(sys.argv[3]))
    elif sys.argv[1] == "sniff":
        sniff(sys.argv[2], sys.argv[3].encode(), sys.argv[4].encode(), float(sys.argv[5]))
    else:
        sys.exit("usage: pkt.py send|sniff ...")
