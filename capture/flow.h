/* flow.h - per-flow accumulators and the CSV row of one finished flow.
 *
 * A profile (meter.h) is a set of quirk switches; each switch reproduces one documented
 * behaviour of a CICFlowMeter version (../shared/docs/flow-features.md section 8).
 */
#ifndef NS_FLOW_H
#define NS_FLOW_H

#include <stddef.h>
#include <stdint.h>

#include "parse.h"

struct ns_quirks {
    /* flow life cycle */
    int close_on_first_fin;    /* cic2017: a FIN packet is added, then the flow ends */
    int rst_ignored;           /* cic2017: RST does not end a flow */
    int min_packets;           /* flows with fewer packets are not written (cic2017: 2) */
    int absorb_until_syn;      /* engelen: a closed flow absorbs packets until any new SYN */
    double linger_s;           /* clean: a closed flow absorbs packets this long (new SYN ends it) */
    int java_key;              /* cic2017: key orders addresses as Java signed bytes, direction by
                                  source address only, equal addresses -> one flow per direction */
    int swap_synack;           /* a flow opened by SYN+ACK is forward from the client */
    int clamp_time;            /* out-of-order packets count as arriving at the flow's last time */
    int proto_zero_other;      /* cic2017: non-TCP/UDP packets get protocol 0 */
    int count_padding;         /* cic2017: payload = captured bytes after L4 header (padding too) */
    /* features */
    int first_packet_flags;    /* cic2017: flag counts, Fwd PSH/URG from the first packet only */
    int permute_flags;         /* cic2017: flag columns in Java HashMap order */
    int double_first_len;      /* cic2017: first packet twice in packet-length stats/avg size */
    int integer_down_up;       /* cic2017: Down/Up Ratio by integer division */
    int last_bwd_window;       /* cic2017, engelen data: Init_Win_bytes_backward = last bwd window */
    int act_data_skip_first;   /* cic2017: act_data_pkt_fwd excludes the first packet */
    int idle_skip_fin;         /* cic2017: no Active/Idle update on FIN packets */
    int bulk;                  /* compute bulk features (cic2017: always 0) */
    int subflow_mode;          /* totals / n: 0 n=1 (cic2017), 1 n=packets (engelen data), 2 n=1+gaps */
    int rate_sentinel;         /* zero duration: 0 Infinity/NaN (cic2017), 1 -1 (engelen), 2 omit->0 */
    int no_window_value;       /* Init_Win when there is no window: -1 or 0 */
};

void ns_quirks_for_profile(int profile, struct ns_quirks *q);

/* Exact running statistics of integers: the sum of squares has 128 bits (two words, so the
 * struct needs no 16-byte alignment: 48 bytes), the variance is exact until the last division. */
struct ns_stat {
    uint64_t n;
    int64_t lo, hi, sum;
    uint64_t sq_lo, sq_hi;
};

struct ns_bulk {
    uint64_t count, packets, bytes, duration_us;
    uint64_t cand_start, cand_last, cand_packets, cand_bytes;
};

/* What ns_flow_add reads of a packet: a flow's first packet is kept in this form until a
 * second one comes (see ns_flow.deferred). */
struct ns_first_packet {
    uint32_t payload_len, payload_caplen;
    int32_t window;
    uint16_t l4_hdr_len;
    uint8_t tcp_flags;
    uint8_t fwd;
};

/* One flow's accumulated state (hash chaining and LRU links live in flowtable.c).
 *
 * Most flows of a flood or a scan have one packet.  Their accumulators (from fwd_last_us on, ten
 * cache lines) are not written at all: the flow keeps its packet in `first` and `deferred` is set;
 * a second packet, or the row, first replays that packet into freshly set accumulators (the row
 * into a copy on the stack), which gives exactly the state of adding it at once.  A one-packet
 * flow then costs three cache lines instead of twelve, both when it starts and when it ends. */
struct ns_flow {
    /* identity and life cycle: always set */
    uint8_t src[16], dst[16];
    uint16_t sport, dport;
    uint8_t proto, ip_version;
    uint8_t fin_fwd, fin_bwd;
    int8_t second_fin_fwd;     /* -1 none, else direction of the FIN that completed the pair */
    uint8_t closed;
    uint8_t deferred;          /* 1: one packet so far, in `first`; the accumulators are not set */
    uint64_t start_us, last_us, closed_us;
    struct ns_first_packet first;
    /* accumulators */
    int64_t fwd_last_us, bwd_last_us; /* -1: none yet */
    struct ns_stat fwd_len, bwd_len, all_len, flow_iat, fwd_iat, bwd_iat, active, idle;
    uint64_t active_start, active_end;
    uint32_t flags[8];         /* FIN SYN RST PSH ACK URG CWR ECE */
    uint32_t fwd_psh, bwd_psh, fwd_urg, bwd_urg;
    uint64_t fwd_hdr, bwd_hdr;
    int32_t fwd_min_hdr;       /* -1: none */
    int32_t init_win_fwd, init_win_bwd;
    uint32_t act_data_fwd;
    uint32_t gaps;             /* gaps > 1 s between consecutive packets */
    struct ns_bulk bulk_fwd, bulk_bwd;
};

/* Start a flow from its first packet (identity and times only; ns_flow_add keeps the packet);
 * fwd_is_src says whether the packet's source is the flow's source (0 when a SYN+ACK opened it). */
void ns_flow_start(struct ns_flow *f, const struct ns_packet *p, int fwd_is_src,
                   const struct ns_quirks *q);

/* Add a packet (the first one too, right after ns_flow_start). */
void ns_flow_add(struct ns_flow *f, const struct ns_packet *p, int fwd, int first,
                 const struct ns_quirks *q, uint64_t activity_us);

/* Payload length the profile counts for a packet. */
uint32_t ns_payload(const struct ns_packet *p, const struct ns_quirks *q);

/* Total packets of a flow. */
static inline uint64_t ns_flow_packets(const struct ns_flow *f)
{
    return f->deferred ? 1 : f->fwd_len.n + f->bwd_len.n;
}

/* The most bytes a row can take: 86 numeric fields of at most 23 bytes (",-1.23456789012345e-308"),
 * four IPv6 addresses of at most 45 and the start time: under 2,300; rounded up. */
#define NS_ROW_BOUND 4096

/* The features text of the last one-packet flow formatted, and its packet: the next one with an
 * equal packet gets the same text.  One per (quirks, dup_fwd_header); zero it to start. */
struct ns_row_memo {
    int valid;
    struct ns_first_packet first;
    size_t len;
    char text[NS_ROW_BOUND];
};

/* Format the CSV row (no newline) into buf.  Returns its length, or -1 if size is below
 * NS_ROW_BOUND.  memo: NULL, or the caller's ns_row_memo for this q and dup_fwd_header. */
int ns_flow_format(const struct ns_flow *f, const struct ns_quirks *q, int dup_fwd_header,
                   struct ns_row_memo *memo, char *buf, size_t size);

#endif
