"""LLMNR (RFC 4795) on UDP 5355, IPv4 224.0.0.252 and IPv6 ff02::1:3 (Debian's python3, stdlib only).

llmnr.py respond NAME,NAME,...     answer A/AAAA queries for these names with this host's addresses
llmnr.py query NAME [TYPE]         one query the way Windows sends it (multicast), wait 1 s for answers
"""

import random
import socket
import struct
import sys
import time

GROUP4, GROUP6, PORT = "224.0.0.252", "ff02::1:3", 5355


def encode_name(name):
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


def parse_question(data):
    i, labels = 12, []
    while data[i]:
        labels.append(data[i + 1 : i + 1 + data[i]].decode(errors="replace"))
        i += 1 + data[i]
    qtype, qclass = struct.unpack("!HH", data[i + 1 : i + 5])
    return ".".join(labels), qtype, data[12 : i + 5]


def own_addresses():
    out = []
    for family, probe in ((socket.AF_INET, "10.98.0.1"), (socket.AF_INET6, "fd00:98::1")):
        s = socket.socket(family, socket.SOCK_DGRAM)
        try:
            s.connect((probe, 9))
            out.append((family, s.getsockname()[0]))
        except OSError:
            pass
        s.close()
    return out


def respond(names):
    names = {n.lower() for n in names.split(",")}
    addrs = own_addresses()
    s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s4.bind(("", PORT))
    s4.setsockopt(
        socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(GROUP4) + socket.inet_aton("0.0.0.0")
    )
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s6.bind(("::", PORT))
    ifindex = socket.if_nametoindex("eth0")
    s6.setsockopt(
        socket.IPPROTO_IPV6,
        socket.IPV6_JOIN_GROUP,
        socket.inet_pton(socket.AF_INET6, GROUP6) + struct.pack("@I", ifindex),
    )
    import select

    while True:
        for sock in select.select([s4, s6], [], [])[0]:
            data, peer = sock.recvfrom(2048)
            if len(data) < 17 or data[2] & 0x80:
                continue
            name, qtype, question = parse_question(data)
            if name.lower() not in names:
                continue  # LLMNR responders stay silent for names that are not theirs
            want = socket.AF_INET if qtype == 1 else socket.AF_INET6 if qtype == 28 else None
            answers = [a for f, a in addrs if f == want]
            rr = b"".join(
                b"\xc0\x0c"
                + struct.pack("!HHIH", qtype, 1, 30, 4 if want == socket.AF_INET else 16)
                + socket.inet_pton(want, a)
                for a in answers
            )
            header = data[:2] + struct.pack("!HHHHH", 0x8000, 1, len(answers), 0, 0)
            sock.sendto(header + question + rr, peer)


def query(name, qtype="A"):
    code = {"A": 1, "AAAA": 28}[qtype]
    msg = (
        struct.pack("!HHHHHH", random.getrandbits(16), 0, 1, 0, 0, 0)
        + encode_name(name)
        + struct.pack("!HH", code, 1)
    )
    family, group = (socket.AF_INET6, GROUP6) if random.random() < 0.4 else (socket.AF_INET, GROUP4)
    s = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        s.sendto(msg, (group, PORT))
    else:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
        s.sendto(msg, (group, PORT, 0, socket.if_nametoindex("eth0")))
    s.settimeout(1.0)
    end = time.monotonic() + 1.0
    answers = 0
    while time.monotonic() < end:
        try:
            s.recvfrom(2048)
            answers += 1
        except OSError:
            break
    print(f"{name} {qtype}: {answers} answer(s)")


if __name__ == "__main__":
    if sys.argv[1] == "respond":
        respond(sys.argv[2])
    else:
        query(sys.argv[2], *(sys.argv[3:4] or ["A"]))
