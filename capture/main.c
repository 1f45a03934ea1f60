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

#include "meter.h"
#include "output.h"
#include "parse.h"

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
    "  -B MIB                 kernel capture buffer in MiB (live; default 64)\n"
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
    "  -o FILE                write the CSV to FILE (default standard output)\n"
    "  --header H             canonical (default: CICIDS2017 names without spaces, as the training\n"
    "                         code uses) | cic2017 (the exact original header: leading spaces and the\n"
    "                         duplicated Fwd Header Length column) | none\n"
    "  --rotate-size MB       with -o: continue in FILE.1, FILE.2, ... after MB megabytes (e.g. 0.5)\n"
    "  --rotate-time SEC      with -o: start the next file every SEC seconds\n"
    "  --stats-json FILE      write the final statistics as one JSON object\n"
    "  -q                     no statistics line on standard error\n"
    "  -h, --help             this help;  --version  the version\n"
    "\n"
    "Every open flow is written at end of input and on SIGINT/SIGTERM. Statistics: packets read,\n"
    "parsed, skipped by reason, flows emitted/evicted, kernel drops (live).\n"
    "Exit status: 0 ok, 1 runtime error (cannot open input or output), 2 usage error.\n";

enum { OPT_PROFILE = 256, OPT_HEADER, OPT_ROTATE_SIZE, OPT_ROTATE_TIME, OPT_FLOW_TIMEOUT,
       OPT_ACTIVITY_TIMEOUT, OPT_MAX_FLOWS, OPT_STATS_JSON, OPT_VERSION };

struct options {
    const char *file, *iface, *filter, *out, *stats_json, *header;
    int snaplen, promisc, buffer_mib, quiet, profile;
    double flow_timeout, activity_timeout, rotate_secs;
    uint64_t max_flows, rotate_bytes;
};

struct run {
    struct ns_meter *meter;
    struct ns_output out;
    struct ns_run_stats stats;
    int dlt;
    uint64_t last_ts_us;
};

static pcap_t *volatile g_handle;
static volatile sig_atomic_t g_stop;

static _Noreturn void usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "flowmeter: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\ntry 'flowmeter --help'\n");
    exit(2);
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
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    *o = (struct options){.snaplen = 262144, .promisc = 1, .buffer_mib = 64, .header = "canonical",
                          .profile = NS_PROFILE_CLEAN, .flow_timeout = 120, .activity_timeout = 5};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":r:i:f:s:pB:o:qh", longs, NULL)) != -1) {
        switch (c) {
        case 'r': o->file = optarg; break;
        case 'i': o->iface = optarg; break;
        case 'f': o->filter = optarg; break;
        case 's': o->snaplen = (int)parse_count("-s", optarg, 64, 262144); break;
        case 'p': o->promisc = 0; break;
        case 'B': o->buffer_mib = (int)parse_count("-B", optarg, 1, 4096); break;
        case 'o': o->out = optarg; break;
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
    ns_output_line(&((struct run *)ctx)->out, line, len);
}

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *data)
{
    struct run *r = (struct run *)user;
    r->stats.packets++;
    struct ns_packet pkt;
    int verdict = ns_parse_packet(r->dlt, data, h->caplen, h->len, &pkt);
    if (verdict != NS_OK) {
        r->stats.skipped[verdict]++;
        r->stats.skipped_total++;
        return;
    }
    int64_t ts = (int64_t)h->ts.tv_sec * 1000000 + (int64_t)h->ts.tv_usec;
    pkt.ts_us = ts > 0 ? (uint64_t)ts : 0;
    if (pkt.ts_us > r->last_ts_us)
        r->last_ts_us = pkt.ts_us;
    r->stats.parsed++;
    ns_meter_packet(r->meter, &pkt);
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
        p = pcap_open_offline_with_tstamp_precision(o->file, PCAP_TSTAMP_PRECISION_MICRO, err);
        if (!p) {
            fprintf(stderr, "flowmeter: cannot read %s: %s\n", strcmp(o->file, "-") ? o->file : "stdin", err);
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
        pcap_set_buffer_size(p, o->buffer_mib * 1024 * 1024);
        /* no immediate mode: it makes libpcap use one snaplen-sized ring slot per packet (256 slots
         * in 64 MiB), which drops bursts; block mode delivers within the 1 s timeout instead */
        pcap_set_timeout(p, 1000);
        int rc = pcap_activate(p);
        if (rc < 0) {
            fprintf(stderr, "flowmeter: cannot capture on %s: %s\n", o->iface,
                    rc == PCAP_ERROR ? pcap_geterr(p) : pcap_statustostr(rc));
            pcap_close(p);
            return NULL;
        }
        /* non-blocking reads driven by poll(): the loop wakes every second even on a silent link */
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

/* Read until end of file, error or signal.  Returns 0, or 1 on a read error (reported). */
static int capture_loop(pcap_t *p, struct run *r, const struct options *o)
{
    if (o->file) {
        int rc = pcap_loop(p, -1, on_packet, (u_char *)r);
        if (rc == PCAP_ERROR) {
            const char *msg = pcap_geterr(p);
            /* a capture cut short (still being written, copied in part): keep what was read */
            int cut = strstr(msg, "truncated") != NULL;
            fprintf(stderr, "flowmeter: %s%s: %s\n", cut ? "warning: " : "",
                    strcmp(o->file, "-") ? o->file : "stdin", msg);
            return cut ? 0 : 1;
        }
        return 0;
    }
    struct pollfd pfd = {.fd = pcap_get_selectable_fd(p), .events = POLLIN};
    while (!g_stop) {
        if (pfd.fd >= 0 && poll(&pfd, 1, 1000) < 0 && errno != EINTR) {
            fprintf(stderr, "flowmeter: %s: poll: %s\n", o->iface, strerror(errno));
            return 1;
        }
        int rc = pcap_dispatch(p, -1, on_packet, (u_char *)r);
        if (rc == PCAP_ERROR) {
            fprintf(stderr, "flowmeter: %s: %s\n", o->iface, pcap_geterr(p));
            return 1;
        }
        uint64_t now = wall_us();
        ns_meter_tick(r->meter, now > r->last_ts_us ? now : r->last_ts_us);
    }
    /* stopped: the kernel still holds a partly filled block until its 1 s timeout retires it;
     * read it so the packets that arrived before the signal are in the flows */
    for (uint64_t until = wall_us() + 1200000; wall_us() < until;) {
        if (pfd.fd >= 0)
            poll(&pfd, 1, 100);
        if (pcap_dispatch(p, -1, on_packet, (u_char *)r) == PCAP_ERROR)
            break;
    }
    return 0;
}

static void report(const struct run *r, const struct options *o)
{
    if (o->stats_json) {
        FILE *fp = fopen(o->stats_json, "w");
        if (!fp) {
            fprintf(stderr, "flowmeter: cannot write %s: %s\n", o->stats_json, strerror(errno));
        } else {
            ns_stats_json(fp, &r->stats);
            fputc('\n', fp);
            fclose(fp);
        }
    }
    if (!o->quiet) {
        fputs("flowmeter: ", stderr);
        ns_stats_json(stderr, &r->stats);
        fputc('\n', stderr);
    }
}

int main(int argc, char **argv)
{
    struct options o;
    parse_options(argc, argv, &o);

    pcap_t *p = open_input(&o);
    if (!p)
        return 1;

    static struct run r;
    r.dlt = pcap_datalink(p);
    r.stats.profile = ns_profile_name(o.profile);
    r.stats.link_type = r.dlt;
    static char header[8192];
    r.out = (struct ns_output){.path = o.out, .line_buffered = o.iface != NULL,
                               .rotate_bytes = o.rotate_bytes, .rotate_secs = o.rotate_secs};
    if (strcmp(o.header, "none") != 0) {
        if (ns_header_line(o.header, header, sizeof header) < 0) {
            fprintf(stderr, "flowmeter: internal error: header too long\n");
            return 1;
        }
        r.out.header = header;
    }
    struct ns_meter_config cfg = {.profile = o.profile, .flow_timeout_s = o.flow_timeout,
                                  .activity_timeout_s = o.activity_timeout, .max_flows = o.max_flows,
                                  .cic2017_header = strcmp(o.header, "cic2017") == 0};
    r.meter = ns_meter_new(&cfg, emit_row, &r);
    if (!r.meter) {
        fprintf(stderr, "flowmeter: out of memory\n");
        pcap_close(p);
        return 1;
    }
    if (ns_output_open(&r.out) != 0) {
        ns_meter_free(r.meter);
        pcap_close(p);
        return 1;
    }

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    g_handle = p;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int status = capture_loop(p, &r, &o);

    ns_meter_flush(r.meter);
    struct ns_meter_stats ms;
    ns_meter_get_stats(r.meter, &ms);
    r.stats.flows_emitted = ms.flows_emitted;
    r.stats.flows_evicted = ms.flows_evicted;
    r.stats.flows_below_min = ms.flows_below_min;
    r.stats.max_active_flows = ms.max_active_flows;
    r.stats.bytes_per_flow = ms.bytes_per_flow;
    if (o.iface) {
        struct pcap_stat ps;
        if (pcap_stats(p, &ps) == 0)
            r.stats.kernel_drops = (uint64_t)ps.ps_drop + ps.ps_ifdrop;
    }
    g_handle = NULL;
    pcap_close(p);
    ns_meter_free(r.meter);
    if (ns_output_close(&r.out) != 0)
        status = 1;
    report(&r, &o);
    return status;
}
