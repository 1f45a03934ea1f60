"""Multicast on the catalogue's link (Debian's python3, stdlib only).

mcast.py send GROUP PORT INTERVAL       a stream of small datagrams to a group (a ticker, a camera's announce)
mcast.py recv GROUP PORT SECONDS        join the group (an IGMP report), listen, leave (an IGMP leave)
mcast.py ssdp-respond                   answer SSDP M-SEARCH on 239.255.255.250:1900 (a media server)
mcast.py ssdp-search                    one M-SEARCH, collect answers for 2 s
"""

import socket
import struct
import sys
import time

SSDP = ("239.255.255.250", 1900)


def _sender():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    return s


def _member(group, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", port))
    s.setsockopt(
        socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton("0.0.0.0")
    )
    return s


def send(group, port, interval):
    s, seq = _sender(), 0
    while True:
        s.sendto(
            struct.pack("!IQ", seq, time.time_ns()) + b"quote:CAT=%d.%02d;" % (100 + seq % 7, seq % 100) * 4,
            (group, int(port)),
        )
        seq += 1
        time.sleep(float(interval))


def recv(group, port, seconds):
    s = _member(group, int(port))
    s.settimeout(0.5)
    end, n = time.monotonic() + float(seconds), 0
    while time.monotonic() < end:
        try:
            s.recv(2048)
            n += 1
        except OSError:
            pass
    s.setsockopt(
        socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton("0.0.0.0")
    )
    print(f"received {n} datagrams")


def ssdp_respond():
    s = _member(*SSDP)
    while True:
        data, peer = s.recvfrom(2048)
        if data.startswith(b"M-SEARCH"):
            reply = (
                b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nST: upnp:rootdevice\r\n"
                b"USN: uuid:cat-media-1::upnp:rootdevice\r\nLOCATION: http://10.98.0.10:8200/rootDesc.xml\r\n"
                b"SERVER: Linux/6 UPnP/1.0 catmedia/1.0\r\n\r\n"
            )
            s.sendto(reply, peer)  # from port 1900, as real responders do


def ssdp_search():
    s = _sender()
    s.sendto(
        b'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\n'
        b"ST: ssdp:all\r\n\r\n",
        SSDP,
    )
    s.settimeout(2)
    try:
        print(s.recv(2048).split(b"\r\n")[0].decode())
    except OSError:
        print("no answer")


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    {"send": send, "recv": recv, "ssdp-respond": ssdp_respond, "ssdp-search": ssdp_search}[mode](*args)
