/* output.h - the CSV sink (stdout or a file, optional rotation) and the statistics line.
 *
 * Rows are collected in a buffer and written with write(2) in whole-buffer chunks, retried after
 * a signal and after a short write, so a row is never torn by SIGTERM.  Every row handed to the
 * sink ends up counted exactly once: written, or lost to a write error.
 */
#ifndef NS_OUTPUT_H
#define NS_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

struct ns_output {
    int fd;                 /* -1: not open */
    const char *path;       /* NULL: stdout */
    const char *header;     /* NULL: no header */
    int prompt;             /* not a regular file (pipe, terminal): the caller flushes every round */
    uint64_t rotate_bytes;  /* 0: no size rotation */
    double rotate_secs;     /* 0: no time rotation */
    uint64_t written;       /* bytes in the current file, buffered ones included */
    double opened_at;       /* monotonic seconds when the current file was opened */
    unsigned sequence;      /* 0: FILE, n: FILE.n */
    int failed;             /* a write or an open failed (reported once); later rows are lost */
    char *buf;
    size_t used, cap;
    uint64_t buf_rows;      /* rows in buf */
    uint64_t rows_written;  /* rows whole in the output */
    uint64_t rows_lost;     /* rows handed over but not written (write error, failed rotation) */
};

/* Open the first file (or stdout) and write the header.  Returns 0, or -1 with a message. */
int ns_output_open(struct ns_output *o);

/* Add one CSV line (a newline is added), rotating first when a limit is reached.  Returns 0, or
 * -1 when the output has failed (the row is counted in rows_lost).  A line formatted in place at
 * the pointer ns_output_row_space returned is not copied. */
int ns_output_line(struct ns_output *o, const char *line, size_t len);

/* Room for the next row, at least size bytes plus its newline, at the end of the buffer (written
 * out first if needed), or NULL (the output has failed or is closed: format elsewhere, the row
 * is then counted as lost by ns_output_line).  Nothing is added until ns_output_line. */
char *ns_output_row_space(struct ns_output *o, size_t size);

/* Write the buffered rows.  Returns 0, or -1 (message on stderr once, rows counted as lost). */
int ns_output_flush(struct ns_output *o);

/* Flush and close; returns -1 if anything failed. */
int ns_output_close(struct ns_output *o);

/* Write all of buf to fd, retrying after EINTR and short writes.  Returns 0, or -1 with errno;
 * *done (if not NULL) gets the bytes written either way. */
int ns_write_all(int fd, const char *buf, size_t len, size_t *done);

/* The run's statistics (the JSON object of the contract, see ns_stats_format). */
struct ns_run_stats {
    uint64_t packets, parsed, skipped[32], skipped_total;
    uint64_t flows_emitted;       /* rows written */
    uint64_t flows_unwritten;     /* rows lost to a write error or a failed rotation */
    uint64_t flows_unformatted;   /* rows that could not be formatted */
    uint64_t flows_dropped_nomem; /* packets that found no memory for a new flow */
    uint64_t flows_evicted, flows_below_min, active_flows, max_active_flows, bytes_per_flow;
    uint64_t table_bytes, table_peak_bytes, hash_probe_max;
    uint64_t kernel_drops;
    int input_ended_early;        /* the capture file is damaged or cut */
    int64_t bytes_not_read;       /* of the capture after the damage; -1 unknown */
    int64_t packets_not_read;     /* records found in that rest; -1 unknown */
    const char *profile;
    int link_type;
    int final;                    /* -1: no "final" key (no --stats-interval), else 0/1 */
};

/* Format the statistics as one JSON object (no newline) into buf.  Returns the length (truncated
 * output never happens with the sizes used: the caller passes at least 4096 bytes). */
int ns_stats_format(char *buf, size_t size, const struct ns_run_stats *s);

#endif
