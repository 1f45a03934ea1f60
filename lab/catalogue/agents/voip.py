"""A VoIP-like call: SIP over UDP 5060 (REGISTER with a digest challenge, INVITE, ACK, BYE) and RTP/RTCP.

Debian's python3, stdlib only.  The media is G.711-sized (160 bytes every 20 ms each way, RTP header,
sequence numbers and timestamps) with an RTCP sender report every 5 s, as a softphone sends.

  voip.py uas HOST PORT                 the PBX: answers every call, echoes the caller's media back
  voip.py uac SERVER PORT SECONDS USER  one call of SECONDS
"""

import os
import random
import socket
import struct
import sys
import threading
import time

FRAME, PTIME = 160, 0.02


def _sip(method_or_status, headers, body=""):
    lines = [
        method_or_status,
        *(f"{k}: {v}" for k, v in headers.items()),
        f"Content-Length: {len(body)}",
        "",
        body,
    ]
    return "\r\n".join(lines).encode()


def _parse(data):
    head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, body


def _sdp(addr, port):
    return (
        f"v=0\r\no=- {random.randint(1, 10**9)} 1 IN IP4 {addr}\r\ns=call\r\nc=IN IP4 {addr}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        "a=ptime:20\r\na=sendrecv\r\n"
    )


def _media_port(body):
    addr, port = "", 0
    for line in body.split("\r\n"):
        if line.startswith("c=IN IP4 "):
            addr = line.split()[-1]
        if line.startswith("m=audio "):
            port = int(line.split()[1])
    return addr, port


def stream(sock, peer, seconds, stop):
    """RTP every 20 ms and RTCP every 5 s to ``peer`` (rtp port, rtcp port + 1)."""
    ssrc, seq, ts = random.getrandbits(32), random.getrandbits(16), random.getrandbits(32)
    rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp.bind((sock.getsockname()[0], sock.getsockname()[1] + 1))
    start = next_tick = time.monotonic()
    sent = 0
    while not stop.is_set() and time.monotonic() - start < seconds:
        sock.sendto(
            struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + os.urandom(FRAME), peer
        )
        seq, ts, sent = seq + 1, ts + FRAME, sent + 1
        if sent % 250 == 1:
            ntp = int((time.time() + 2208988800) * 2**32)
            rtcp.sendto(
                struct.pack("!BBHIQIII", 0x80, 200, 6, ssrc, ntp, ts & 0xFFFFFFFF, sent, sent * FRAME),
                (peer[0], peer[1] + 1),
            )
        next_tick += PTIME
        time.sleep(max(0.0, next_tick - time.monotonic()))
    rtcp.close()


def uas(host, port):
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.bind((host, int(port)))
    calls = {}
    while True:
        data, peer = sip.recvfrom(4096)
        first, h, body = _parse(data)
        if first.startswith("SIP/2.0"):
            continue
        method = first.split()[0]
        base = {
            "Via": h.get("via", ""),
            "From": h.get("from", ""),
            "To": h.get("to", "") + ";tag=pbx1",
            "Call-ID": h.get("call-id", ""),
            "CSeq": h.get("cseq", ""),
        }
        if method == "REGISTER" and "authorization" not in h:
            sip.sendto(
                _sip(
                    "SIP/2.0 401 Unauthorized",
                    {**base, "WWW-Authenticate": f'Digest realm="cat.test", nonce="{os.urandom(8).hex()}"'},
                ),
                peer,
            )
        elif method == "INVITE":
            sip.sendto(_sip("SIP/2.0 100 Trying", base), peer)
            time.sleep(random.uniform(0.2, 1.0))
            sip.sendto(_sip("SIP/2.0 180 Ringing", base), peer)
            rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rtp.bind((host, random.randrange(20000, 30000, 2)))
            stop = threading.Event()
            calls[h.get("call-id")] = stop
            caller = _media_port(body)
            threading.Thread(target=stream, args=(rtp, caller, 3600, stop), daemon=True).start()
            sip.sendto(
                _sip(
                    "SIP/2.0 200 OK",
                    {**base, "Contact": f"<sip:pbx@{host}>", "Content-Type": "application/sdp"},
                    _sdp(host, rtp.getsockname()[1]),
                ),
                peer,
            )
        elif method == "BYE":
            calls.pop(h.get("call-id"), threading.Event()).set()
            sip.sendto(_sip("SIP/2.0 200 OK", base), peer)
        elif method != "ACK":
            sip.sendto(_sip("SIP/2.0 200 OK", base), peer)


def uac(server, port, seconds, user):
    port = int(port)
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.connect((server, port))
    me = sip.getsockname()[0]
    sip.settimeout(5)
    call_id, tag = os.urandom(8).hex(), os.urandom(4).hex()

    def request(method, cseq, extra=None, body=""):
        headers = {
            "Via": f"SIP/2.0/UDP {me}:{sip.getsockname()[1]};branch=z9hG4bK{os.urandom(6).hex()}",
            "Max-Forwards": "70",
            "From": f"<sip:{user}@cat.test>;tag={tag}",
            "To": f"<sip:{user}@cat.test>",
            "Call-ID": call_id,
            "CSeq": f"{cseq} {method}",
            "Contact": f"<sip:{user}@{me}>",
            "User-Agent": "catphone/1.0",
            **(extra or {}),
        }
        sip.send(_sip(f"{method} sip:cat.test SIP/2.0", headers, body))

    def wait_for(code):
        while True:
            first, h, body = _parse(sip.recv(4096))
            if first.split()[1] == code:
                return h, body

    request("REGISTER", 1, {"Expires": "300"})
    wait_for("401")
    request("REGISTER", 2, {"Expires": "300", "Authorization": f'Digest username="{user}", realm="cat.test"'})
    wait_for("200")
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind((me, random.randrange(30000, 40000, 2)))
    request("INVITE", 3, {"Content-Type": "application/sdp"}, _sdp(me, rtp.getsockname()[1]))
    _, body = wait_for("200")
    request("ACK", 3)
    stop = threading.Event()
    stream(rtp, _media_port(body), float(seconds), stop)
    request("BYE", 4)
    wait_for("200")
    print(f"call of {seconds} s done")


if __name__ == "__main__":
    {"uas": uas, "uac": uac}[sys.argv[1]](*sys.argv[2:])
