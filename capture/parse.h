/* parse.h - decode one captured frame (link layer -> IPv4/IPv6 -> TCP/UDP/other).
 *
 * Stable interface: the fuzz harness (capture/fuzz/fuzz_parse.c), the flow meter and other
 * engineers' tests rely on it.  ns_parse_packet() never reads past caplen, never allocates and
 * is safe on arbitrary bytes.
 */
#ifndef NS_PARSE_H
#define NS_PARSE_H

#include <stdint.h>

/* Link types accepted by ns_parse_packet (values of libpcap's DLT_* for this platform). */
#define NS_DLT_NULL 0      /* BSD loopback, 4-byte family in the capturing host's byte order */
#define NS_DLT_EN10MB 1    /* Ethernet (+ 802.1Q / 802.1ad / QinQ tags) */
#define NS_DLT_RAW 12      /* raw IP, version from the first nibble (LINKTYPE_RAW 101 maps here) */
#define NS_DLT_RAW_ALT 14  /* DLT_RAW on OpenBSD; accepted too */
#define NS_DLT_LOOP 108    /* OpenBSD loopback, family in network byte order */
#define NS_DLT_LINUX_SLL 113
#define NS_DLT_IPV4 228
#define NS_DLT_IPV6 229
#define NS_DLT_LINUX_SLL2 276

/* Verdict of ns_parse_packet: NS_OK or the reason the frame is skipped. */
enum ns_verdict {
    NS_OK = 0,
    NS_SKIP_UNSUPPORTED_DLT, /* link type not handled */
    NS_SKIP_TRUNCATED_L2,    /* caplen shorter than the link-layer header / VLAN tags */
    NS_SKIP_NOT_IP,          /* ARP, LLDP, MPLS, ... (not IPv4/IPv6) */
    NS_SKIP_TRUNCATED_IP,    /* caplen shorter than the IP header */
    NS_SKIP_BAD_IP,          /* bad version, IHL < 5, total length < header, ... */
    NS_SKIP_FRAGMENT,        /* IPv4/IPv6 fragment (not reassembled) */
    NS_SKIP_IPV6_EXT,        /* IPv6 extension-header chain truncated, malformed or too long */
    NS_SKIP_TRUNCATED_L4,    /* TCP (< 20 bytes) or UDP (< 8 bytes) header not captured */
    NS_SKIP_BAD_L4,          /* TCP data offset < 5 or beyond the IP payload */
    NS_VERDICT_COUNT
};

/* TCP flag bits as in the TCP header byte 13. */
#define NS_TH_FIN 0x01
#define NS_TH_SYN 0x02
#define NS_TH_RST 0x04
#define NS_TH_PSH 0x08
#define NS_TH_ACK 0x10
#define NS_TH_URG 0x20
#define NS_TH_ECE 0x40
#define NS_TH_CWR 0x80

/* One parsed packet.  Addresses are 16 bytes; IPv4 uses the first 4 bytes, the rest zero. */
struct ns_packet {
    uint64_t ts_us;          /* capture time, microseconds since the epoch (set by the caller) */
    uint8_t src[16];         /* source address (network byte order) */
    uint8_t dst[16];         /* destination address */
    uint8_t ip_version;      /* 4 or 6 */
    uint8_t proto;           /* real IP protocol number of the L4 header (after IPv6 ext headers) */
    uint8_t tcp_flags;       /* TCP flags byte (0 unless TCP) */
    uint8_t has_ports;       /* 1 for TCP and UDP (sport/dport valid) */
    uint16_t sport, dport;   /* host byte order; 0 if !has_ports */
    int32_t window;          /* raw TCP window field, -1 if not TCP */
    uint16_t l4_hdr_len;     /* TCP data offset*4 (options included), 8 for UDP, 0 otherwise */
    uint16_t vlan_id;        /* outermost 802.1Q VLAN id, 0 if untagged */
    uint8_t vlan_depth;      /* number of VLAN tags removed */
    uint8_t icmp_type;       /* ICMP/ICMPv6 type and code if captured, else 0 */
    uint8_t icmp_code;
    uint8_t pad_;
    uint32_t payload_len;    /* L4 payload from the IP header lengths (no Ethernet padding) */
    uint32_t payload_caplen; /* caplen - (L2 + L3 + L4 headers), floored at 0 (incl. padding) */
    uint32_t ip_len;         /* IP total length used (header + payload) */
    uint32_t l3_offset;      /* offset of the IP header in the frame */
    uint32_t caplen, wirelen;
};

/* Decode one frame of link type dlt.  Fills *out (fully, also on a skip verdict where it can)
 * and returns an enum ns_verdict.  Reads at most caplen bytes of data. */
int ns_parse_packet(int dlt, const uint8_t *data, uint32_t caplen, uint32_t wirelen,
                    struct ns_packet *out);

/* Short stable name of a verdict ("ok", "truncated_l2", ...), used as --stats-json keys. */
const char *ns_verdict_name(int verdict);

/* 1 if ns_parse_packet handles this link type. */
int ns_dlt_supported(int dlt);

#endif
