/* fuzz_meter.c - libFuzzer entry for the whole flow engine: parse -> ns_meter_packet -> tick -> flush.
 *
 * Input: 2 configuration bytes, then records [link byte][time step][caplen, 2 bytes BE][frame].
 *   link byte: bits 0-3 = dlt index (mod the table size); bits 4-6 = cut: only the first
 *         (8 - cut)/8 of the frame is captured, as with a small snaplen (wirelen stays the
 *         frame's length); bit 7 = the wire length claims 1500 bytes more than the frame.
 *   cfg0: profile = cfg0 % 3, flow timeout = (1 + (cfg0 >> 2) % 8) * 0.25 s (small, so flows
 *         expire), activity timeout = a quarter of it, bit 7 = cic2017 header (extra column).
 *   cfg1: max_flows = cfg1 % 32 (0 = the default cap; small caps exercise eviction).
 *   time step: 0..254 ms forward; 255 = one millisecond backwards (out-of-order packet).
 * Checks: every emitted line has exactly the advertised number of fields and no newline or NUL;
 * the stats agree with what was emitted; nothing is left open after the flush.
 * capture/fuzz/seed_corpus.py --meter writes such inputs from real captures. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "meter.h"
#include "parse.h"

static const int dlts[] = {NS_DLT_EN10MB, NS_DLT_LINUX_SLL, NS_DLT_LINUX_SLL2, NS_DLT_RAW,
                           NS_DLT_RAW_ALT, NS_DLT_IPV4,     NS_DLT_IPV6,       NS_DLT_NULL,
                           NS_DLT_LOOP};

struct sink {
    uint64_t lines;
    size_t fields;
};

static void emit(void *ctx, const char *line, size_t len)
{
    struct sink *s = ctx;
    size_t commas = 0;
    for (size_t i = 0; i < len; i++) {
        if (line[i] == '\n' || line[i] == '\r' || line[i] == '\0')
            __builtin_trap();
        commas += line[i] == ',';
    }
    if (commas + 1 != s->fields)
        __builtin_trap();
    s->lines++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct ns_meter_config cfg = {0};
    cfg.profile = data[0] % 3;
    cfg.flow_timeout_s = (1 + (data[0] >> 2) % 8) * 0.25;
    cfg.activity_timeout_s = cfg.flow_timeout_s / 4;
    cfg.cic2017_header = data[0] >> 7;
    cfg.max_flows = data[1] % 32;
    cfg.fixed_hash_key = 1; /* reproducible: a crash replays with the same table layout */
    struct sink sink = {0, NS_NUM_COLUMNS + (size_t)cfg.cic2017_header};
    struct ns_meter *m = ns_meter_new(&cfg, emit, &sink);
    if (m == NULL)
        return 0;

    uint64_t ts = 1500000000000000ull; /* 2017 */
    size_t off = 2;
    unsigned n = 0;
    while (off + 4 <= size) {
        uint8_t link = data[off];
        int dlt = dlts[(link & 0x0f) % (sizeof dlts / sizeof dlts[0])];
        uint8_t step = data[off + 1];
        uint32_t caplen = ((uint32_t)data[off + 2] << 8) | data[off + 3];
        off += 4;
        if (caplen > size - off)
            caplen = (uint32_t)(size - off);
        /* snaplen-cut packets: the parser and the features see wirelen > caplen */
        uint32_t wirelen = caplen + ((link & 0x80) ? 1500u : 0u);
        uint32_t captured = caplen - caplen * ((link >> 4) & 7u) / 8u;
        ts = step == 255 ? ts - 1000 : ts + (uint64_t)step * 1000;
        struct ns_packet p;
        memset(&p, 0, sizeof p);
        p.ts_us = ts;
        if (ns_parse_packet(dlt, data + off, captured, wirelen, &p) == NS_OK)
            ns_meter_packet(m, &p);
        off += caplen;
        if (++n % 16 == 0)
            ns_meter_tick(m, ts);
    }
    ns_meter_flush(m);

    struct ns_meter_stats st;
    ns_meter_get_stats(m, &st);
    if (st.flows_emitted != sink.lines || st.active_flows != 0 ||
        st.flows_evicted > st.flows_emitted ||
        (cfg.max_flows && st.max_active_flows > cfg.max_flows))
        __builtin_trap();
    ns_meter_free(m);
    return 0;
}
