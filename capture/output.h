/* output.h - the CSV sink (stdout or a file, optional rotation) and the final statistics. */
#ifndef NS_OUTPUT_H
#define NS_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct ns_output {
    FILE *fp;
    const char *path;       /* NULL: stdout */
    const char *header;     /* NULL: no header */
    int line_buffered;      /* live capture: every flow visible as it ends */
    uint64_t rotate_bytes;  /* 0: no size rotation */
    double rotate_secs;     /* 0: no time rotation */
    uint64_t written;       /* bytes in the current file */
    double opened_at;       /* monotonic seconds when the current file was opened */
    unsigned sequence;      /* 0: FILE, n: FILE.n */
    int failed;             /* a write failed (reported once) */
};

/* Open the first file (or stdout).  Returns 0, or -1 with a message on stderr. */
int ns_output_open(struct ns_output *o);

/* Write one CSV line (a newline is added), rotating first when a limit is reached. */
void ns_output_line(struct ns_output *o, const char *line, size_t len);

/* Flush and close; returns -1 if any write failed. */
int ns_output_close(struct ns_output *o);

/* Final statistics, as the JSON object of the contract (one line, no trailing newline). */
struct ns_run_stats {
    uint64_t packets, parsed, skipped[32], skipped_total;
    uint64_t flows_emitted, flows_evicted, flows_below_min, max_active_flows, bytes_per_flow;
    uint64_t kernel_drops;
    const char *profile;
    int link_type;
};
void ns_stats_json(FILE *fp, const struct ns_run_stats *s);

#endif
