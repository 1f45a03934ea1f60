/* meter.h - the flow engine: parsed packets in, finished bidirectional flows (CSV rows) out.
 *
 * Interface between the engine (flowtable.c, flow.c) and the program around it (main.c,
 * output.c).  The engine never does I/O: it hands each finished flow, already formatted as one
 * CSV line, to the emit callback.
 */
#ifndef NS_METER_H
#define NS_METER_H

#include <stddef.h>
#include <stdint.h>

#include "parse.h"

/* Feature semantics, see ../shared/docs/flow-features.md.  Each profile is a set of quirk
 * switches (struct ns_quirks in flow.h); these are the three named sets. */
enum ns_profile { NS_PROFILE_CIC2017 = 0, NS_PROFILE_ENGELEN, NS_PROFILE_CLEAN };

/* Parse "cic2017" | "engelen" | "clean"; returns -1 if unknown. */
int ns_profile_from_name(const char *name);
const char *ns_profile_name(int profile);

/* Number of CSV columns (83, = pipeline/schema.py FLOW_COLUMNS) and their canonical names. */
#define NS_NUM_COLUMNS 83
extern const char *const ns_column_names[NS_NUM_COLUMNS];

/* Write the header line (no trailing newline) into buf: style "canonical" or "cic2017" (exact
 * original TrafficLabelling header without Label: leading spaces, duplicated Fwd Header Length).
 * Returns the length, or -1 if the style is unknown or buf is too small. */
int ns_header_line(const char *style, char *buf, size_t size);

struct ns_meter_config {
    int profile;                 /* enum ns_profile */
    double flow_timeout_s;       /* default 120 */
    double activity_timeout_s;   /* default 5 */
    uint64_t max_flows;          /* concurrent-flow cap; 0 = default (2,000,000) */
    int cic2017_header;          /* 1: emit the duplicated Fwd Header Length column too */
    int fixed_hash_key;          /* 0: the flow hash gets a random key per run (hash flooding);
                                    1: use hash_key (reproducible runs, e.g. fuzzing) */
    uint64_t hash_key[2];
    /* Optional: where to format the next row, at least size bytes (NULL: the meter's own buffer).
     * The row is then handed to emit in place, e.g. at the end of the output buffer, so it is
     * never copied.  Called with emit's ctx. */
    char *(*row_space)(void *ctx, size_t size);
};

/* Called once per finished flow with one CSV line (no newline), len bytes.  Counted in
 * flows_emitted: the caller counts what it could not write. */
typedef void (*ns_emit_fn)(void *ctx, const char *line, size_t len);

struct ns_meter_stats {
    uint64_t flows_emitted, flows_evicted;
    uint64_t active_flows, max_active_flows;
    uint64_t bytes_per_flow;     /* memory per flow entry incl. its share of the hash table */
    uint64_t flows_below_min;    /* flows not written: fewer packets than the profile's minimum */
    uint64_t flows_dropped_nomem;/* packets that found no memory for a new flow */
    uint64_t flows_unformatted;  /* rows that did not fit the row buffer (never expected) */
    uint64_t table_bytes;        /* memory of the flow table now (entry pool + index) */
    uint64_t table_peak_bytes;   /* its largest size so far */
    uint64_t hash_probe_max;     /* longest index probe sequence seen (hash flooding shows here) */
};

struct ns_meter;

/* NULL on allocation failure. */
struct ns_meter *ns_meter_new(const struct ns_meter_config *cfg, ns_emit_fn emit, void *ctx);

/* Add one parsed packet (verdict NS_OK).  Packet times should be non-decreasing; a packet older
 * than its flow's last packet is treated as arriving at that time (IATs never negative). */
void ns_meter_packet(struct ns_meter *m, const struct ns_packet *pkt);

/* The same for n packets in order, faster: the flow-table memory of the next packets is fetched
 * while the current one is metered.  Any n; NS_METER_BATCH at a time is the sweet spot. */
#define NS_METER_BATCH 16
void ns_meter_packets(struct ns_meter *m, const struct ns_packet *pkts, size_t n);

/* Expire flows idle longer than the flow timeout at time now_us (live links going quiet). */
void ns_meter_tick(struct ns_meter *m, uint64_t now_us);

/* Emit every open flow (end of file, SIGINT/SIGTERM). */
void ns_meter_flush(struct ns_meter *m);

void ns_meter_get_stats(const struct ns_meter *m, struct ns_meter_stats *out);
void ns_meter_free(struct ns_meter *m);

#endif
