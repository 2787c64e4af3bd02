#!/usr/bin/env python3
"""Service helper for Switchyard's load-balancer and NAT tests, run in a pod.

  svc.py serve tcp|udp PORT NAME   answer every line (TCP) or datagram (UDP)
                                   with "NAME PEER_IP PEER_PORT"
  svc.py connect IP PORT N [SPORT] N TCP connections one after the other, one
                                   request each; prints each answer or "ERR <why>";
                                   from source port SPORT when given
  svc.py hold IP PORT              one TCP connection; one request now and one
                                   per line on stdin, printing each answer
                                   (or "ERR <why>"); ends at EOF
  svc.py udp IP PORT N             N datagrams from fresh sockets; prints
                                   "FROM <ip>:<port> <answer>" or "ERR <why>"
  svc.py udpbig IP PORT SIZE       one SIZE-byte datagram (fragmented past the
                                   MTU); the server answers as large, with
                                   "got=<bytes it received>"; prints the answer's
                                   first line and "len=<bytes of the answer>"

Both families: servers listen on IPv4 and IPv6 (one dual-stack socket, or
IPv4 alone where the pod has no IPv6) and print peers without the ::ffff:
prefix; clients use the family of the address they are given.
"""
import socket, sys, threading

TIMEOUT = 3.0


def listener(kind, port):
    """A socket of `kind` bound to `port` on both families if it can be."""
    try:
        s = socket.socket(socket.AF_INET6, kind)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::", port))
        return s
    except OSError:
        s = socket.socket(socket.AF_INET, kind)
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        return s


def peer_ip(peer):
    ip = peer[0]
    return ip[7:] if ip.startswith("::ffff:") else ip


def client(ip, kind):
    """A socket of `kind` for talking to `ip`, and its wildcard address."""
    if ":" in ip:
        return socket.socket(socket.AF_INET6, kind), "::"
    return socket.socket(socket.AF_INET, kind), "0.0.0.0"


def serve(proto, port, name):
    if proto == "udp":
        s = listener(socket.SOCK_DGRAM, port)
        while True:
            data, peer = s.recvfrom(65535)
            answer = f"{name} {peer_ip(peer)} {peer[1]}"
            if len(data) > 1000:
                # A large datagram gets as large an answer (both fragmented),
                # saying how much arrived.
                answer = (answer + f" got={len(data)}\n").encode().ljust(len(data), b".")
            else:
                answer = (answer + "\n").encode()
            s.sendto(answer, peer)
    s = listener(socket.SOCK_STREAM, port)
    s.listen(128)

    def handle(c, peer):
        with c:
            f = c.makefile("rwb", buffering=0)
            for _ in f:
                f.write(f"{name} {peer_ip(peer)} {peer[1]}\n".encode())

    while True:
        c, peer = s.accept()
        threading.Thread(target=handle, args=(c, peer), daemon=True).start()


def ask(f):
    f.write(b"hello\n")
    line = f.readline()
    if not line:
        raise ConnectionError("closed")
    return line.decode().strip()


def connect(ip, port, n, sport=0):
    for _ in range(n):
        try:
            c, any_addr = client(ip, socket.SOCK_STREAM)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            c.settimeout(TIMEOUT)
            c.bind((any_addr, sport))
            with c:
                c.connect((ip, port))
                print(ask(c.makefile("rwb", buffering=0)), flush=True)
        except OSError as e:
            print(f"ERR {type(e).__name__}", flush=True)


def hold(ip, port):
    try:
        c = socket.create_connection((ip, port), timeout=TIMEOUT)
        f = c.makefile("rwb", buffering=0)
        print(ask(f), flush=True)
    except OSError as e:
        print(f"ERR {type(e).__name__}", flush=True)
        return
    for _ in sys.stdin:
        try:
            print(ask(f), flush=True)
        except OSError as e:
            print(f"ERR {type(e).__name__}", flush=True)


def udp(ip, port, n, size=5):
    for _ in range(n):
        s, _ = client(ip, socket.SOCK_DGRAM)
        s.settimeout(TIMEOUT)
        try:
            s.connect((ip, port))
            s.send(b"hello".ljust(size, b"."))
            data, peer = s.recvfrom(65535)
            line = data.split(b"\n")[0].decode()
            extra = f" len={len(data)}" if size > 1000 else ""
            print(f"FROM {peer_ip(peer)}:{peer[1]} {line}{extra}", flush=True)
        except OSError as e:
            print(f"ERR {type(e).__name__}", flush=True)
        finally:
            s.close()


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "serve":
        serve(args[0], int(args[1]), args[2])
    elif cmd == "connect":
        connect(args[0], int(args[1]), int(args[2]), int(args[3]) if len(args) > 3 else 0)
    elif cmd == "hold":
        hold(args[0], int(args[1]))
    elif cmd == "udp":
        udp(args[0], int(args[1]), int(args[2]))
    elif cmd == "udpbig":
        udp(args[0], int(args[1]), 1, int(args[2]))
    else:
        sys.exit(__doc__)
