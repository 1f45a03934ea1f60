/* output.c - CSV rows to stdout or a rotating file; the statistics JSON object. */
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "parse.h"

#define BUF_SIZE (256 * 1024)

static double monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int ns_write_all(int fd, const char *buf, size_t len, size_t *done)
{
    size_t off = 0;
    int rc = 0;
    while (off < len) {
        ssize_t n = write(fd, buf + off, len - off);
        if (n < 0) {
            if (errno == EINTR) /* SIGTERM/SIGINT while blocked: finish the write, then stop */
                continue;
            rc = -1;
            break;
        }
        off += (size_t)n;
    }
    if (done)
        *done = off;
    return rc;
}

static const char *display_name(const struct ns_output *o)
{
    return o->path ? o->path : "standard output";
}

/* The first failure is reported; the output is dead from then on. */
static void fail(struct ns_output *o, const char *what, const char *name, int err)
{
    if (!o->failed)
        fprintf(stderr, "flowmeter: %s %s: %s\n", what, name, strerror(err));
    o->failed = 1;
}

static int open_current(struct ns_output *o)
{
    char name[4096];
    if (!o->path) {
        o->fd = STDOUT_FILENO;
        snprintf(name, sizeof name, "standard output");
    } else {
        if (o->sequence == 0)
            snprintf(name, sizeof name, "%s", o->path);
        else
            snprintf(name, sizeof name, "%s.%u", o->path, o->sequence);
        o->fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (o->fd < 0) {
            fail(o, "cannot write", name, errno);
            return -1;
        }
    }
    struct stat st;
    o->prompt = fstat(o->fd, &st) != 0 || !S_ISREG(st.st_mode);
    o->written = 0;
    o->opened_at = monotonic();
    if (o->header) {
        size_t len = strlen(o->header);
        if (ns_write_all(o->fd, o->header, len, NULL) != 0 || ns_write_all(o->fd, "\n", 1, NULL) != 0) {
            fail(o, "write failed on", name, errno);
            return -1;
        }
        o->written = len + 1;
    }
    return 0;
}

int ns_output_open(struct ns_output *o)
{
    o->sequence = 0;
    o->failed = 0;
    o->used = 0;
    o->buf_rows = o->rows_written = o->rows_lost = 0;
    o->cap = BUF_SIZE;
    o->buf = malloc(o->cap);
    if (!o->buf) {
        fprintf(stderr, "flowmeter: out of memory\n");
        o->fd = -1;
        return -1;
    }
    return open_current(o);
}

int ns_output_flush(struct ns_output *o)
{
    if (o->used == 0)
        return o->failed ? -1 : 0;
    size_t done = 0;
    int rc = o->failed ? -1 : ns_write_all(o->fd, o->buf, o->used, &done);
    /* rows whose newline made it out are whole; the rest of the buffer is lost */
    uint64_t whole = 0;
    if (rc == 0) {
        whole = o->buf_rows;
    } else {
        int err = errno;
        for (const char *p = o->buf, *end = o->buf + done; (p = memchr(p, '\n', (size_t)(end - p))); p++)
            whole++;
        fail(o, "write failed on", display_name(o), err);
    }
    o->rows_written += whole;
    o->rows_lost += o->buf_rows - whole;
    o->used = 0;
    o->buf_rows = 0;
    return rc;
}

static void rotate(struct ns_output *o)
{
    ns_output_flush(o);
    if (o->fd >= 0 && o->fd != STDOUT_FILENO && close(o->fd) != 0)
        fail(o, "write failed on", o->path, errno);
    o->fd = -1;
    if (o->failed)
        return;
    o->sequence++;
    open_current(o); /* a failure is reported there and stops the run */
}

int ns_output_line(struct ns_output *o, const char *line, size_t len)
{
    if (o->path && o->written > 0 && !o->failed) {
        int full = o->rotate_bytes && o->written + len + 1 > o->rotate_bytes;
        int old = o->rotate_secs > 0 && monotonic() - o->opened_at >= o->rotate_secs;
        if (full || old)
            rotate(o);
    }
    if (o->failed) {
        o->rows_lost++;
        return -1;
    }
    if (o->used + len + 1 > o->cap) {
        ns_output_flush(o);
        if (len + 1 > o->cap) { /* never with rows of a few hundred bytes; kept correct anyway */
            char *b = realloc(o->buf, len + 1);
            if (!b) {
                o->rows_lost++;
                return -1;
            }
            o->buf = b;
            o->cap = len + 1;
        }
        if (o->failed) {
            o->rows_lost++;
            return -1;
        }
    }
    if (line != o->buf + o->used) /* not in place; or in place, then moved to the front by a rotation */
        memmove(o->buf + o->used, line, len);
    o->buf[o->used + len] = '\n';
    o->used += len + 1;
    o->buf_rows++;
    o->written += len + 1;
    return 0;
}

char *ns_output_row_space(struct ns_output *o, size_t size)
{
    if (!o->buf || o->failed || size + 1 > o->cap)
        return NULL;
    if (o->cap - o->used < size + 1)
        ns_output_flush(o);
    return o->failed ? NULL : o->buf + o->used;
}

int ns_output_close(struct ns_output *o)
{
    ns_output_flush(o);
    if (o->fd >= 0 && o->fd != STDOUT_FILENO && close(o->fd) != 0)
        fail(o, "write failed on", display_name(o), errno);
    o->fd = -1;
    free(o->buf);
    o->buf = NULL;
    return o->failed ? -1 : 0;
}

/* Appends to a fixed buffer; the sizes are checked once at the end. */
struct text {
    char *buf;
    size_t size, len;
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct text *t, const char *fmt, ...)
{
    if (t->len >= t->size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->size - t->len, fmt, ap);
    va_end(ap);
    t->len += n > 0 ? (size_t)n : 0;
}

int ns_stats_format(char *buf, size_t size, const struct ns_run_stats *s)
{
    struct text t = {buf, size, 0};
    add(&t, "{\"packets\": %llu, \"parsed\": %llu, \"skipped\": {", (unsigned long long)s->packets,
        (unsigned long long)s->parsed);
    for (int v = 1; v < NS_VERDICT_COUNT; v++)
        add(&t, "%s\"%s\": %llu", v > 1 ? ", " : "", ns_verdict_name(v), (unsigned long long)s->skipped[v]);
    add(&t,
        "}, \"skipped_total\": %llu, \"flows_emitted\": %llu, \"flows_evicted\": %llu, "
        "\"flows_below_min_packets\": %llu, \"flows_unwritten\": %llu, \"flows_unformatted\": %llu, "
        "\"flows_dropped_nomem\": %llu, \"active_flows\": %llu, \"max_active_flows\": %llu, "
        "\"bytes_per_flow\": %llu, \"table_bytes\": %llu, \"table_peak_bytes\": %llu, "
        "\"hash_probe_max\": %llu, \"kernel_drops\": %llu, \"input_ended_early\": %s, ",
        (unsigned long long)s->skipped_total, (unsigned long long)s->flows_emitted,
        (unsigned long long)s->flows_evicted, (unsigned long long)s->flows_below_min,
        (unsigned long long)s->flows_unwritten, (unsigned long long)s->flows_unformatted,
        (unsigned long long)s->flows_dropped_nomem, (unsigned long long)s->active_flows,
        (unsigned long long)s->max_active_flows, (unsigned long long)s->bytes_per_flow,
        (unsigned long long)s->table_bytes, (unsigned long long)s->table_peak_bytes,
        (unsigned long long)s->hash_probe_max, (unsigned long long)s->kernel_drops,
        s->input_ended_early ? "true" : "false");
    if (s->bytes_not_read >= 0)
        add(&t, "\"bytes_not_read\": %lld, ", (long long)s->bytes_not_read);
    else
        add(&t, "\"bytes_not_read\": null, ");
    if (s->packets_not_read >= 0)
        add(&t, "\"packets_not_read\": %lld, ", (long long)s->packets_not_read);
    else
        add(&t, "\"packets_not_read\": null, ");
    add(&t, "\"profile\": \"%s\", \"link_type\": %d", s->profile, s->link_type);
    if (s->final >= 0)
        add(&t, ", \"final\": %s", s->final ? "true" : "false");
    add(&t, "}");
    return t.len < size ? (int)t.len : -1;
}
