/* main.c - flowmeter: packets (pcap/pcapng file or live interface) -> CICIDS2017 flow rows.
 *
 * Options and exit codes are documented by --help (and in README.md).  The engine (meter.h)
 * never does I/O; this file owns libpcap, signals, the CSV sink and the statistics.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "meter.h"
#include "output.h"
#include "parse.h"
#include "pcapscan.h"

#define VERSION "0.1.0"

static const char usage_text[] =
    "usage: flowmeter (-r FILE | -i IFACE) [options]\n"
    "\n"
    "Turn packets into bidirectional flows with the CICIDS2017 (CICFlowMeter) features, one CSV\n"
    "row per finished flow.\n"
    "\n"
    "input:\n"
    "  -r FILE                read a pcap or pcapng file; \"-\" reads standard input\n"
    "  -i IFACE               capture live on IFACE (needs CAP_NET_RAW or root)\n"
    "  -f EXPR                BPF filter, e.g. 'tcp or udp' (both modes)\n"
    "  -s SNAPLEN             snapshot length in bytes (live; default 262144)\n"
    "  -p                     do not put the interface into promiscuous mode\n"
    "  -B MIB                 kernel capture buffer in MiB, 1..2047 (live; default 64)\n"
    "  --tick-ms MS           live: idle flows are checked for expiry every MS milliseconds, and a\n"
    "                         packet waits at most MS in the kernel buffer, 1..1000 (default 50)\n"
    "\n"
    "flows and features:\n"
    "  --profile P            cic2017 | engelen | clean (default clean):\n"
    "                         cic2017 = bug-compatible with the tool behind the original CICIDS2017\n"
    "                         CSVs, engelen = the corrected CICFlowMeter behind the corrected release,\n"
    "                         clean = correct semantics (see ../shared/docs/flow-features.md)\n"
    "  --flow-timeout SEC     a flow ends after SEC idle, or SEC after its first packet (default 120)\n"
    "  --activity-timeout SEC silence that separates Active/Idle periods (default 5)\n"
    "  --max-flows N          cap on concurrent flows, i.e. on memory (default 2000000); when full,\n"
    "                         the least recently seen flow is written early and counted as evicted\n"
    "\n"
    "output:\n"
    "  -o FILE                write the CSV to FILE; \"-\" or no -o: standard output\n"
    "  --header H             canonical (default: CICIDS2017 names without spaces, as the training\n"
    "                         code uses) | cic2017 (the exact original header: leading spaces and the\n"
    "                         duplicated Fwd Header Length column) | none\n"
    "  --rotate-size MB       with -o: continue in FILE.1, FILE.2, ... after MB megabytes (e.g. 0.5)\n"
    "  --rotate-time SEC      with -o: start the next file every SEC seconds\n"
    "  --stats-json FILE      write the final statistics as one JSON object\n"
    "  --stats-interval SEC   every SEC seconds write the statistics as one line of JSON to standard\n"
    "                         error with \"final\": false; the last line at exit has \"final\": true\n"
    "  -q                     no statistics line on standard error (without --stats-interval)\n"
    "  -h, --help             this help;  --version  the version\n"
    "\n"
    "Every open flow is written at end of input and on SIGINT/SIGTERM (a normal stop: whole rows,\n"
    "exit 0). Rows go out in blocks; in live mode, and whenever the output is not a regular file\n"
    "(a pipe, a terminal), they are written after every read round: a finished flow reaches the\n"
    "reader at once.\n"
    "Statistics: packets read, parsed, skipped by reason, flows written/evicted/not written, table\n"
    "size, kernel drops (live), whether the input ended early.\n"
    "Exit status: 0 ok (also after SIGINT/SIGTERM); 1 runtime error (cannot open the input, the\n"
    "output or the statistics file, a write failed, the capture failed); 2 usage error; 3 the\n"
    "capture file is damaged or cut: everything before the damage was metered and written, the\n"
    "statistics give input_ended_early, bytes_not_read and packets_not_read.\n";

enum { OPT_PROFILE = 256, OPT_HEADER, OPT_ROTATE_SIZE, OPT_ROTATE_TIME, OPT_FLOW_TIMEOUT,
       OPT_ACTIVITY_TIMEOUT, OPT_MAX_FLOWS, OPT_STATS_JSON, OPT_STATS_INTERVAL, OPT_TICK_MS, OPT_VERSION };

/* Exit statuses (documented in --help and README.md). */
enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_INPUT_ENDED_EARLY = 3 };

/* Offline packets per read round: between rounds the output and the statistics are served. */
#define ROUND_PACKETS 256

struct options {
    const char *file, *iface, *filter, *out, *stats_json, *header;
    int snaplen, promisc, buffer_mib, quiet, profile;
    int tick_ms; /* live: expiry check period and kernel block timeout */
    double flow_timeout, activity_timeout, rotate_secs, stats_interval;
    uint64_t max_flows, rotate_bytes;
};

struct run {
    struct ns_meter *meter;
    struct ns_output out;
    struct ns_run_stats stats;
    pcap_t *handle;
    int dlt;
    uint64_t last_ts_us;
    int classic, swapped, nsec; /* offline classic pcap file: where the read stopped is known */
    uint64_t input_offset;      /* its end of the last record read */
    double next_stats;          /* monotonic time of the next --stats-interval line */
    struct ns_packet batch[NS_METER_BATCH]; /* parsed, not yet metered (see ns_meter_packets) */
    size_t batched;
};

static pcap_t *volatile g_handle;
static volatile sig_atomic_t g_stop;

static _Noreturn void usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "flowmeter: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\ntry 'flowmeter --help'\n");
    exit(EXIT_USAGE);
}

static double parse_seconds(const char *opt, const char *text, int allow_zero)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v < 0 || (!allow_zero && v == 0))
        usage_error(allow_zero ? "%s needs a number >= 0" : "%s needs a number > 0", opt);
    return v;
}

static uint64_t parse_count(const char *opt, const char *text, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    if (text[0] == '-')
        usage_error("%s needs a positive whole number", opt);
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        usage_error("%s needs a positive whole number in range", opt);
    return (uint64_t)v;
}

static void parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longs[] = {
        {"profile", required_argument, NULL, OPT_PROFILE},
        {"header", required_argument, NULL, OPT_HEADER},
        {"rotate-size", required_argument, NULL, OPT_ROTATE_SIZE},
        {"rotate-time", required_argument, NULL, OPT_ROTATE_TIME},
        {"flow-timeout", required_argument, NULL, OPT_FLOW_TIMEOUT},
        {"activity-timeout", required_argument, NULL, OPT_ACTIVITY_TIMEOUT},
        {"max-flows", required_argument, NULL, OPT_MAX_FLOWS},
        {"stats-json", required_argument, NULL, OPT_STATS_JSON},
        {"stats-interval", required_argument, NULL, OPT_STATS_INTERVAL},
        {"tick-ms", required_argument, NULL, OPT_TICK_MS},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    *o = (struct options){.snaplen = 262144, .promisc = 1, .buffer_mib = 64, .header = "canonical",
                          .profile = NS_PROFILE_CLEAN, .flow_timeout = 120, .activity_timeout = 5,
                          .tick_ms = 50};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":r:i:f:s:pB:o:qh", longs, NULL)) != -1) {
        switch (c) {
        case 'r': o->file = optarg; break;
        case 'i': o->iface = optarg; break;
        case 'f': o->filter = optarg; break;
        case 's': o->snaplen = (int)parse_count("-s", optarg, 64, 262144); break;
        case 'p': o->promisc = 0; break;
        /* pcap_set_buffer_size() takes an int of bytes: 2047 MiB is the most it can express */
        case 'B': o->buffer_mib = (int)parse_count("-B", optarg, 1, INT_MAX / (1024 * 1024)); break;
        case 'o': o->out = strcmp(optarg, "-") ? optarg : NULL; break; /* "-": standard output */
        case 'q': o->quiet = 1; break;
        case 'h': fputs(usage_text, stdout); exit(0);
        case OPT_VERSION: printf("flowmeter %s (%s)\n", VERSION, pcap_lib_version()); exit(0);
        case OPT_PROFILE:
            o->profile = ns_profile_from_name(optarg);
            if (o->profile < 0)
                usage_error("unknown --profile '%s' (cic2017, engelen or clean)", optarg);
            break;
        case OPT_HEADER:
            if (strcmp(optarg, "canonical") && strcmp(optarg, "cic2017") && strcmp(optarg, "none"))
                usage_error("unknown --header '%s' (canonical, cic2017 or none)", optarg);
            o->header = optarg;
            break;
        case OPT_ROTATE_SIZE:
            o->rotate_bytes = (uint64_t)(parse_seconds("--rotate-size", optarg, 0) * 1e6);
            break;
        case OPT_ROTATE_TIME: o->rotate_secs = parse_seconds("--rotate-time", optarg, 0); break;
        case OPT_FLOW_TIMEOUT: o->flow_timeout = parse_seconds("--flow-timeout", optarg, 0); break;
        case OPT_ACTIVITY_TIMEOUT:
            o->activity_timeout = parse_seconds("--activity-timeout", optarg, 0);
            break;
        case OPT_MAX_FLOWS: o->max_flows = parse_count("--max-flows", optarg, 1, 1u << 30); break;
        case OPT_STATS_JSON: o->stats_json = optarg; break;
        case OPT_TICK_MS: o->tick_ms = (int)parse_count("--tick-ms", optarg, 1, 1000); break;
        case OPT_STATS_INTERVAL: o->stats_interval = parse_seconds("--stats-interval", optarg, 0 /* > 0 */); break;
        case ':': usage_error("option %s needs a value", argv[optind - 1]);
        default: usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->file == !o->iface)
        usage_error("%s", o->file ? "give -r FILE or -i IFACE, not both" : "give -r FILE or -i IFACE");
    if ((o->rotate_bytes || o->rotate_secs > 0) && !o->out)
        usage_error("%s", "--rotate-size/--rotate-time need -o FILE");
}

static void emit_row(void *ctx, const char *line, size_t len)
{
    struct run *r = (struct run *)ctx;
    /* the output failed (reported): stop reading, the rest of the flows are counted as not written */
    if (ns_output_line(&r->out, line, len) != 0 && r->handle)
        pcap_breakloop(r->handle);
}

/* Rows are formatted straight into the output buffer. */
static char *row_space(void *ctx, size_t size)
{
    return ns_output_row_space(&((struct run *)ctx)->out, size);
}

/* Meter the parsed packets held back for a batch (before anything looks at the flows). */
static void meter_batch(struct run *r)
{
    ns_meter_packets(r->meter, r->batch, r->batched);
    r->batched = 0;
}

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *data)
{
    struct run *r = (struct run *)user;
    r->stats.packets++;
    r->input_offset += 16 + (uint64_t)h->caplen;
    struct ns_packet *pkt = &r->batch[r->batched];
    int verdict = ns_parse_packet(r->dlt, data, h->caplen, h->len, pkt);
    if (verdict != NS_OK) {
        r->stats.skipped[verdict]++;
        r->stats.skipped_total++;
        return;
    }
    int64_t ts = (int64_t)h->ts.tv_sec * 1000000 + (int64_t)h->ts.tv_usec;
    pkt->ts_us = ts > 0 ? (uint64_t)ts : 0;
    if (pkt->ts_us > r->last_ts_us)
        r->last_ts_us = pkt->ts_us;
    r->stats.parsed++;
    if (++r->batched == NS_METER_BATCH)
        meter_batch(r);
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    if (g_handle)
        pcap_breakloop(g_handle);
}

static pcap_t *open_input(const struct options *o)
{
    char err[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p;
    if (o->file) {
        /* the stream is opened here so it can get a 1 MiB buffer: libpcap reads a record at a
         * time, and stdio's default 4 KiB buffer meant a read() per ~15 packets */
        const char *name = strcmp(o->file, "-") ? o->file : "stdin";
        FILE *fp = strcmp(o->file, "-") ? fopen(o->file, "rb") : stdin;
        if (!fp) {
            fprintf(stderr, "flowmeter: cannot read %s: %s\n", name, strerror(errno));
            return NULL;
        }
        static char inbuf[1 << 20];
        setvbuf(fp, inbuf, _IOFBF, sizeof inbuf);
        p = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_MICRO, err);
        if (!p) {
            fprintf(stderr, "flowmeter: cannot read %s: %s\n", name, err);
            if (fp != stdin)
                fclose(fp);
            return NULL;
        }
    } else {
        p = pcap_create(o->iface, err);
        if (!p) {
            fprintf(stderr, "flowmeter: cannot open interface %s: %s\n", o->iface, err);
            return NULL;
        }
        pcap_set_snaplen(p, o->snaplen);
        pcap_set_promisc(p, o->promisc);
        pcap_set_buffer_size(p, o->buffer_mib * 1024 * 1024); /* <= INT_MAX by the option's range */
        /* no immediate mode: it makes libpcap use one snaplen-sized ring slot per packet (256 slots
         * in 64 MiB), which drops bursts; block mode delivers within the block timeout instead (a
         * light link's packets wait at most --tick-ms; a busy one fills blocks before that) */
        pcap_set_timeout(p, o->tick_ms);
        int rc = pcap_activate(p);
        if (rc < 0) {
            fprintf(stderr, "flowmeter: cannot capture on %s: %s\n", o->iface,
                    rc == PCAP_ERROR ? pcap_geterr(p) : pcap_statustostr(rc));
            pcap_close(p);
            return NULL;
        }
        /* non-blocking reads driven by poll(): the loop wakes every --tick-ms even on a silent link */
        if (pcap_setnonblock(p, 1, err) < 0) {
            fprintf(stderr, "flowmeter: %s: %s\n", o->iface, err);
            pcap_close(p);
            return NULL;
        }
    }
    if (!ns_dlt_supported(pcap_datalink(p))) {
        fprintf(stderr, "flowmeter: %s: link type %s (%d) is not supported\n", o->file ? o->file : o->iface,
                pcap_datalink_val_to_name(pcap_datalink(p)) ? pcap_datalink_val_to_name(pcap_datalink(p)) : "?",
                pcap_datalink(p));
        pcap_close(p);
        return NULL;
    }
    if (o->filter) {
        struct bpf_program prog;
        if (pcap_compile(p, &prog, o->filter, 1, PCAP_NETMASK_UNKNOWN) < 0 || pcap_setfilter(p, &prog) < 0) {
            fprintf(stderr, "flowmeter: bad filter '%s': %s\n", o->filter, pcap_geterr(p));
            pcap_close(p);
            return NULL;
        }
        pcap_freecode(&prog);
    }
    return p;
}

static uint64_t wall_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
}

static double monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fill r->stats from the engine, the output and (live) the kernel. */
static void collect(struct run *r, const struct options *o)
{
    struct ns_meter_stats ms;
    ns_meter_get_stats(r->meter, &ms);
    r->stats.flows_emitted = r->out.rows_written;
    r->stats.flows_unwritten = r->out.rows_lost;
    r->stats.flows_unformatted = ms.flows_unformatted;
    r->stats.flows_dropped_nomem = ms.flows_dropped_nomem;
    r->stats.flows_evicted = ms.flows_evicted;
    r->stats.flows_below_min = ms.flows_below_min;
    r->stats.active_flows = ms.active_flows;
    r->stats.max_active_flows = ms.max_active_flows;
    r->stats.bytes_per_flow = ms.bytes_per_flow;
    r->stats.table_bytes = ms.table_bytes;
    r->stats.table_peak_bytes = ms.table_peak_bytes;
    r->stats.hash_probe_max = ms.hash_probe_max;
    struct pcap_stat ps;
    if (o->iface && r->handle && pcap_stats(r->handle, &ps) == 0)
        r->stats.kernel_drops = (uint64_t)ps.ps_drop + ps.ps_ifdrop;
}

/* One line of statistics on stderr, written whole even if a signal arrives meanwhile. */
static void stats_line(const struct run *r, const char *prefix)
{
    char line[8192];
    size_t n = (size_t)snprintf(line, sizeof line, "%s", prefix);
    int len = ns_stats_format(line + n, sizeof line - n - 1, &r->stats);
    if (len < 0)
        return;
    n += (size_t)len;
    line[n++] = '\n';
    ns_write_all(STDERR_FILENO, line, n, NULL);
}

/* Between read rounds: rows out at once when live or to a pipe, the statistics line when due. */
static void after_round(struct run *r, const struct options *o)
{
    meter_batch(r);
    if ((r->out.prompt || o->iface) && r->out.used > 0)
        ns_output_flush(&r->out);
    if (o->stats_interval > 0) {
        double now = monotonic();
        if (now >= r->next_stats) {
            ns_output_flush(&r->out); /* the line counts written rows only */
            collect(r, o);
            r->stats.final = 0;
            stats_line(r, "");
            r->next_stats = now + o->stats_interval;
        }
    }
}

/* Read a file until its end, a damaged record, a signal or an output failure. */
static int read_offline(pcap_t *p, struct run *r, const struct options *o)
{
    for (;;) {
        int rc = pcap_dispatch(p, ROUND_PACKETS, on_packet, (u_char *)r);
        if (rc == 0)
            return EXIT_OK; /* end of file */
        if (rc == PCAP_ERROR && !g_stop) {
            /* any read error after a good open is the file's content: damaged, or cut short */
            const char *name = strcmp(o->file, "-") ? o->file : "stdin";
            fprintf(stderr, "flowmeter: %s: input ended early after %llu packets: %s\n", name,
                    (unsigned long long)r->stats.packets, pcap_geterr(p));
            r->stats.input_ended_early = 1;
            if (r->classic) {
                struct ns_pcap_rest rest;
                ns_pcap_scan_rest(o->file, r->input_offset, r->swapped, r->nsec, &rest);
                r->stats.bytes_not_read = rest.bytes;
                r->stats.packets_not_read = rest.records;
            }
            return EXIT_INPUT_ENDED_EARLY;
        }
        /* PCAP_ERROR with g_stop: a read interrupted by SIGINT/SIGTERM, a normal stop */
        if (rc < 0 || g_stop || r->out.failed)
            return EXIT_OK;
        after_round(r, o);
    }
}

/* Capture until a signal, a capture error or an output failure. */
static int read_live(pcap_t *p, struct run *r, const struct options *o)
{
    struct pollfd pfd = {.fd = pcap_get_selectable_fd(p), .events = POLLIN};
    while (!g_stop && !r->out.failed) {
        /* the wake-up period bounds how late an idle flow is written past its timeout (an idle
         * wake-up costs one empty read and a look at the oldest flow) */
        int wait_ms = o->tick_ms;
        if (o->stats_interval > 0) {
            double left = r->next_stats - monotonic();
            wait_ms = left <= 0 ? 0 : left * 1000 < o->tick_ms ? (int)(left * 1000) + 1 : o->tick_ms;
        }
        if (pfd.fd >= 0 && poll(&pfd, 1, wait_ms) < 0 && errno != EINTR) {
            fprintf(stderr, "flowmeter: %s: poll: %s\n", o->iface, strerror(errno));
            return EXIT_RUNTIME;
        }
        int rc = pcap_dispatch(p, -1, on_packet, (u_char *)r);
        if (rc == PCAP_ERROR) {
            fprintf(stderr, "flowmeter: %s: %s\n", o->iface, pcap_geterr(p));
            return EXIT_RUNTIME;
        }
        meter_batch(r);
        uint64_t now = wall_us();
        ns_meter_tick(r->meter, now > r->last_ts_us ? now : r->last_ts_us);
        after_round(r, o);
    }
    /* stopped: the kernel still holds a partly filled block until its timeout retires it;
     * read it so the packets that arrived before the signal are in the flows */
    uint64_t until = wall_us() + (uint64_t)o->tick_ms * 1000 + 200000;
    while (wall_us() < until && !r->out.failed) {
        if (pfd.fd >= 0)
            poll(&pfd, 1, 100);
        if (pcap_dispatch(p, -1, on_packet, (u_char *)r) == PCAP_ERROR)
            break;
        after_round(r, o);
    }
    return EXIT_OK;
}

/* The final statistics: the --stats-json file and the stderr line.  Returns -1 if the file failed. */
static int report(struct run *r, const struct options *o, FILE *json)
{
    int rc = 0;
    r->stats.final = -1; /* the file has the contract's keys only */
    if (json) {
        char text[8192];
        int n = ns_stats_format(text, sizeof text, &r->stats);
        if (n < 0 || fprintf(json, "%s\n", text) < 0 || fflush(json) != 0 || ferror(json)) {
            fprintf(stderr, "flowmeter: write failed on %s: %s\n", o->stats_json, strerror(errno));
            rc = -1;
        }
        if (fclose(json) != 0 && rc == 0) {
            fprintf(stderr, "flowmeter: write failed on %s: %s\n", o->stats_json, strerror(errno));
            rc = -1;
        }
    }
    /* with --stats-interval the lines are a stream of bare JSON objects for a parent process */
    r->stats.final = o->stats_interval > 0 ? 1 : -1;
    if (o->stats_interval > 0)
        stats_line(r, "");
    else if (!o->quiet)
        stats_line(r, "flowmeter: ");
    return rc;
}

int main(int argc, char **argv)
{
    struct options o;
    parse_options(argc, argv, &o);

    /* opened first: a wrong path must not cost a whole capture */
    FILE *json = NULL;
    if (o.stats_json && !(json = fopen(o.stats_json, "w"))) {
        fprintf(stderr, "flowmeter: cannot write %s: %s\n", o.stats_json, strerror(errno));
        return EXIT_RUNTIME;
    }
    pcap_t *p = open_input(&o);
    if (!p) {
        if (json) { /* nothing was read: no statistics file rather than an empty one */
            fclose(json);
            unlink(o.stats_json);
        }
        return EXIT_RUNTIME;
    }

    static struct run r;
    r.handle = p;
    r.dlt = pcap_datalink(p);
    r.stats.profile = ns_profile_name(o.profile);
    r.stats.link_type = r.dlt;
    r.stats.bytes_not_read = r.stats.packets_not_read = -1;
    r.stats.final = -1;
    if (o.file && strcmp(o.file, "-") != 0 && ns_pcap_is_classic(o.file, &r.swapped, &r.nsec)) {
        r.classic = 1;
        r.input_offset = 24;
    }
    static char header[8192];
    r.out = (struct ns_output){.path = o.out, .rotate_bytes = o.rotate_bytes, .rotate_secs = o.rotate_secs};
    if (strcmp(o.header, "none") != 0) {
        if (ns_header_line(o.header, header, sizeof header) < 0) {
            fprintf(stderr, "flowmeter: internal error: header too long\n");
            return EXIT_RUNTIME;
        }
        r.out.header = header;
    }
    struct ns_meter_config cfg = {.profile = o.profile, .flow_timeout_s = o.flow_timeout,
                                  .activity_timeout_s = o.activity_timeout, .max_flows = o.max_flows,
                                  .cic2017_header = strcmp(o.header, "cic2017") == 0,
                                  .row_space = row_space};
    r.meter = ns_meter_new(&cfg, emit_row, &r);
    if (!r.meter) {
        fprintf(stderr, "flowmeter: out of memory\n");
        pcap_close(p);
        return EXIT_RUNTIME;
    }

    /* no SA_RESTART: a blocked read of a slow stdin returns so the stop is prompt; writes retry
     * after EINTR themselves (ns_write_all), so a signal never tears a row */
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    g_handle = p;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* a reader that went away is a write error (EPIPE) reported like any other, not a silent death */
    signal(SIGPIPE, SIG_IGN);

    int status = EXIT_OK;
    if (ns_output_open(&r.out) == 0) {
        r.next_stats = monotonic() + o.stats_interval;
        status = o.file ? read_offline(p, &r, &o) : read_live(p, &r, &o);
    } else {
        status = EXIT_RUNTIME;
    }
    meter_batch(&r);
    ns_meter_flush(r.meter);
    if (ns_output_close(&r.out) != 0)
        status = EXIT_RUNTIME;
    collect(&r, &o);
    g_handle = NULL;
    pcap_close(p);
    r.handle = NULL;
    ns_meter_free(r.meter);
    if (r.stats.flows_dropped_nomem)
        fprintf(stderr, "flowmeter: warning: %llu packets found no memory for a new flow (flows_dropped_nomem)\n",
                (unsigned long long)r.stats.flows_dropped_nomem);
    if (r.stats.flows_unformatted)
        fprintf(stderr, "flowmeter: warning: %llu rows could not be formatted (flows_unformatted)\n",
                (unsigned long long)r.stats.flows_unformatted);
    if (report(&r, &o, json) != 0)
        status = EXIT_RUNTIME;
    return status;
}
