/* output.c - CSV rows to stdout or a rotating file; the statistics JSON object. */
#include "output.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "parse.h"

static double monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_current(struct ns_output *o)
{
    if (!o->path) {
        o->fp = stdout;
    } else {
        char name[4096];
        if (o->sequence == 0)
            snprintf(name, sizeof name, "%s", o->path);
        else
            snprintf(name, sizeof name, "%s.%u", o->path, o->sequence);
        o->fp = fopen(name, "w");
        if (!o->fp) {
            fprintf(stderr, "flowmeter: cannot write %s: %s\n", name, strerror(errno));
            return -1;
        }
    }
    if (o->line_buffered)
        setvbuf(o->fp, NULL, _IOLBF, 0);
    o->written = 0;
    o->opened_at = monotonic();
    if (o->header) {
        int n = fprintf(o->fp, "%s\n", o->header);
        o->written += n > 0 ? (uint64_t)n : 0;
    }
    return 0;
}

int ns_output_open(struct ns_output *o)
{
    o->sequence = 0;
    o->failed = 0;
    return open_current(o);
}

void ns_output_line(struct ns_output *o, const char *line, size_t len)
{
    if (!o->fp)
        return;
    int full = o->rotate_bytes && o->written + len + 1 > o->rotate_bytes;
    int old = o->rotate_secs > 0 && monotonic() - o->opened_at >= o->rotate_secs;
    if (o->path && (full || old) && o->written > 0) {
        if (fclose(o->fp) != 0)
            o->failed = 1;
        o->sequence++;
        if (open_current(o) != 0) {
            o->fp = NULL;
            o->failed = 1;
            return;
        }
    }
    if (fwrite(line, 1, len, o->fp) != len || fputc('\n', o->fp) == EOF) {
        if (!o->failed)
            fprintf(stderr, "flowmeter: write failed: %s\n", strerror(errno));
        o->failed = 1;
    }
    o->written += len + 1;
}

int ns_output_close(struct ns_output *o)
{
    if (o->fp) {
        if (fflush(o->fp) != 0)
            o->failed = 1;
        if (o->fp != stdout && fclose(o->fp) != 0)
            o->failed = 1;
        o->fp = NULL;
    }
    return o->failed ? -1 : 0;
}

void ns_stats_json(FILE *fp, const struct ns_run_stats *s)
{
    fprintf(fp, "{\"packets\": %llu, \"parsed\": %llu, \"skipped\": {", (unsigned long long)s->packets,
            (unsigned long long)s->parsed);
    for (int v = 1; v < NS_VERDICT_COUNT; v++)
        fprintf(fp, "%s\"%s\": %llu", v > 1 ? ", " : "", ns_verdict_name(v), (unsigned long long)s->skipped[v]);
    fprintf(fp,
            "}, \"skipped_total\": %llu, \"flows_emitted\": %llu, \"flows_evicted\": %llu, "
            "\"flows_below_min_packets\": %llu, \"max_active_flows\": %llu, \"bytes_per_flow\": %llu, "
            "\"kernel_drops\": %llu, \"profile\": \"%s\", \"link_type\": %d}",
            (unsigned long long)s->skipped_total, (unsigned long long)s->flows_emitted,
            (unsigned long long)s->flows_evicted, (unsigned long long)s->flows_below_min,
            (unsigned long long)s->max_active_flows, (unsigned long long)s->bytes_per_flow,
            (unsigned long long)s->kernel_drops, s->profile, s->link_type);
}
