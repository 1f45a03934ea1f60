/* parse.c - layered frame decoder: link layer, IPv4/IPv6, TCP/UDP/other.
 * Every read is preceded by a bounds check against caplen. */
#include "parse.h"

#include <string.h>

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86DD
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88A8
#define ETHERTYPE_QINQ_OLD 0x9100
#define MAX_VLAN_TAGS 4
#define MAX_IPV6_EXT 8

static const char *const verdict_names[NS_VERDICT_COUNT] = {
    "ok",          "unsupported_dlt", "truncated_l2", "not_ip",       "truncated_ip",
    "bad_ip",      "fragment",        "ipv6_ext",     "truncated_l4", "bad_l4",
};

const char *ns_verdict_name(int verdict)
{
    if (verdict < 0 || verdict >= NS_VERDICT_COUNT)
        return "unknown";
    return verdict_names[verdict];
}

int ns_dlt_supported(int dlt)
{
    switch (dlt) {
    case NS_DLT_NULL: case NS_DLT_EN10MB: case NS_DLT_RAW: case NS_DLT_RAW_ALT:
    case NS_DLT_LOOP: case NS_DLT_LINUX_SLL: case NS_DLT_IPV4: case NS_DLT_IPV6:
    case NS_DLT_LINUX_SLL2:
        return 1;
    default:
        return 0;
    }
}

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

/* ---- layer 4 --------------------------------------------------------------------------- */

/* l4 points at the L4 header; cap = captured bytes from there; avail = bytes of the IP payload
 * according to the IP header (may exceed cap when the capture was cut by the snaplen). */
static int parse_l4(const uint8_t *l4, uint32_t cap, uint32_t avail, struct ns_packet *out)
{
    uint32_t hdr = 0;
    switch (out->proto) {
    case 6: /* TCP */
        if (cap < 20 || avail < 20)
            return NS_SKIP_TRUNCATED_L4;
        hdr = (uint32_t)(l4[12] >> 4) * 4u;
        if (hdr < 20 || hdr > avail)
            return NS_SKIP_BAD_L4;
        out->sport = rd16(l4);
        out->dport = rd16(l4 + 2);
        out->tcp_flags = l4[13];
        out->window = rd16(l4 + 14);
        out->has_ports = 1;
        break;
    case 17: /* UDP */
        if (cap < 8 || avail < 8)
            return NS_SKIP_TRUNCATED_L4;
        hdr = 8;
        out->sport = rd16(l4);
        out->dport = rd16(l4 + 2);
        out->has_ports = 1;
        break;
    case 1:  /* ICMP */
    case 58: /* ICMPv6 */
        if (cap >= 2) {
            out->icmp_type = l4[0];
            out->icmp_code = l4[1];
        }
        hdr = 0;
        break;
    default:
        hdr = 0;
        break;
    }
    out->l4_hdr_len = (uint16_t)hdr;
    out->payload_len = avail - hdr;
    out->payload_caplen = cap > hdr ? cap - hdr : 0;
    return NS_OK;
}

/* ---- layer 3 --------------------------------------------------------------------------- */

static int parse_ipv4(const uint8_t *ip, uint32_t cap, uint32_t wire, struct ns_packet *out)
{
    if (cap < 20)
        return NS_SKIP_TRUNCATED_IP;
    if ((ip[0] >> 4) != 4)
        return NS_SKIP_BAD_IP;
    uint32_t ihl = (uint32_t)(ip[0] & 0x0f) * 4u;
    if (ihl < 20)
        return NS_SKIP_BAD_IP;
    if (cap < ihl)
        return NS_SKIP_TRUNCATED_IP;
    uint32_t tot = rd16(ip + 2);
    /* TSO/offloaded frames carry total length 0: fall back to the length on the wire. */
    if (tot == 0)
        tot = wire;
    if (tot > wire)
        tot = wire; /* never trust a length beyond the frame */
    if (tot < ihl)
        return NS_SKIP_BAD_IP;
    out->ip_version = 4;
    memcpy(out->src, ip + 12, 4);
    memcpy(out->dst, ip + 16, 4);
    out->proto = ip[9];
    out->ip_len = tot;
    uint16_t frag = rd16(ip + 6);
    if ((frag & 0x2000) || (frag & 0x1fff))
        return NS_SKIP_FRAGMENT;
    /* Bytes captured of this IP packet: Ethernet padding beyond tot is still captured and is
     * what payload_caplen (the CICFlowMeter/jnetpcap 1.3 notion) includes. */
    return parse_l4(ip + ihl, cap - ihl, tot - ihl, out);
}

static int is_ipv6_ext(uint8_t nh)
{
    return nh == 0 || nh == 43 || nh == 60 || nh == 51 || nh == 135 || nh == 139 || nh == 140 ||
           nh == 44;
}

static int parse_ipv6(const uint8_t *ip, uint32_t cap, uint32_t wire, struct ns_packet *out)
{
    if (cap < 40)
        return NS_SKIP_TRUNCATED_IP;
    if ((ip[0] >> 4) != 6)
        return NS_SKIP_BAD_IP;
    uint32_t plen = rd16(ip + 4);
    if (plen == 0 || plen + 40 > wire) /* jumbogram / TSO / bogus: use what the wire says */
        plen = wire - 40;
    out->ip_version = 6;
    memcpy(out->src, ip + 8, 16);
    memcpy(out->dst, ip + 24, 16);
    out->ip_len = plen + 40;
    uint8_t nh = ip[6];
    uint32_t off = 40;
    for (int i = 0; is_ipv6_ext(nh); i++) {
        if (i >= MAX_IPV6_EXT)
            return NS_SKIP_IPV6_EXT;
        if (nh == 44) {
            out->proto = nh;
            return NS_SKIP_FRAGMENT;
        }
        if (off + 8 > cap || off + 8 > plen + 40)
            return NS_SKIP_IPV6_EXT;
        uint32_t len = nh == 51 ? ((uint32_t)ip[off + 1] + 2u) * 4u : ((uint32_t)ip[off + 1] + 1u) * 8u;
        nh = ip[off];
        off += len;
        if (off > plen + 40)
            return NS_SKIP_IPV6_EXT;
    }
    out->proto = nh;
    uint32_t l4cap = cap > off ? cap - off : 0;
    return parse_l4(l4cap ? ip + off : ip, l4cap, plen + 40 - off, out);
}

/* Dispatch on the first nibble (raw IP link types). */
static int parse_ip_any(const uint8_t *ip, uint32_t cap, uint32_t wire, struct ns_packet *out)
{
    if (cap < 1)
        return NS_SKIP_TRUNCATED_IP;
    switch (ip[0] >> 4) {
    case 4: return parse_ipv4(ip, cap, wire, out);
    case 6: return parse_ipv6(ip, cap, wire, out);
    default: return NS_SKIP_NOT_IP;
    }
}

static int parse_ethertype(uint16_t et, const uint8_t *data, uint32_t off, uint32_t caplen,
                           uint32_t wirelen, struct ns_packet *out)
{
    if (off > wirelen)
        return NS_SKIP_TRUNCATED_L2;
    out->l3_offset = off;
    uint32_t cap = caplen - off, wire = wirelen - off;
    if (et == ETHERTYPE_IPV4)
        return parse_ipv4(data + off, cap, wire, out);
    if (et == ETHERTYPE_IPV6)
        return parse_ipv6(data + off, cap, wire, out);
    return NS_SKIP_NOT_IP;
}

/* ---- layer 2 --------------------------------------------------------------------------- */

int ns_parse_packet(int dlt, const uint8_t *data, uint32_t caplen, uint32_t wirelen,
                    struct ns_packet *out)
{
    uint64_t ts = out->ts_us;
    memset(out, 0, sizeof *out);
    out->ts_us = ts;
    out->window = -1;
    out->caplen = caplen;
    if (wirelen < caplen)
        wirelen = caplen; /* a corrupt record header must not make lengths underflow */
    out->wirelen = wirelen;
    if (data == NULL)
        caplen = 0;

    switch (dlt) {
    case NS_DLT_EN10MB: {
        if (caplen < 14)
            return NS_SKIP_TRUNCATED_L2;
        uint32_t off = 12;
        uint16_t et = rd16(data + off);
        int tags = 0;
        while (et == ETHERTYPE_VLAN || et == ETHERTYPE_QINQ || et == ETHERTYPE_QINQ_OLD) {
            if (tags >= MAX_VLAN_TAGS || caplen < off + 8)
                return NS_SKIP_TRUNCATED_L2;
            if (tags == 0)
                out->vlan_id = rd16(data + off + 2) & 0x0fff;
            tags++;
            off += 4;
            et = rd16(data + off);
        }
        out->vlan_depth = (uint8_t)tags;
        return parse_ethertype(et, data, off + 2, caplen, wirelen, out);
    }
    case NS_DLT_LINUX_SLL:
        if (caplen < 16)
            return NS_SKIP_TRUNCATED_L2;
        return parse_ethertype(rd16(data + 14), data, 16, caplen, wirelen, out);
    case NS_DLT_LINUX_SLL2:
        if (caplen < 20)
            return NS_SKIP_TRUNCATED_L2;
        return parse_ethertype(rd16(data), data, 20, caplen, wirelen, out);
    case NS_DLT_RAW:
    case NS_DLT_RAW_ALT:
        out->l3_offset = 0;
        return parse_ip_any(data, caplen, wirelen, out);
    case NS_DLT_IPV4:
        out->l3_offset = 0;
        return parse_ipv4(data, caplen, wirelen, out);
    case NS_DLT_IPV6:
        out->l3_offset = 0;
        return parse_ipv6(data, caplen, wirelen, out);
    case NS_DLT_NULL:
    case NS_DLT_LOOP: {
        if (caplen < 4)
            return NS_SKIP_TRUNCATED_L2;
        uint32_t be = ((uint32_t)data[0] << 24) | ((uint32_t)data[1] << 16) |
                      ((uint32_t)data[2] << 8) | data[3];
        uint32_t le = ((uint32_t)data[3] << 24) | ((uint32_t)data[2] << 16) |
                      ((uint32_t)data[1] << 8) | data[0];
        /* DLT_NULL is in the capturing host's byte order: accept either. */
        uint32_t fam = dlt == NS_DLT_LOOP ? be : (be < 256 ? be : le);
        out->l3_offset = 4;
        if (fam == 2)
            return parse_ipv4(data + 4, caplen - 4, wirelen - 4, out);
        if (fam == 10 || fam == 24 || fam == 28 || fam == 30)
            return parse_ipv6(data + 4, caplen - 4, wirelen - 4, out);
        return NS_SKIP_NOT_IP;
    }
    default:
        return NS_SKIP_UNSUPPORTED_DLT;
    }
}
