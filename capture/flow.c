/* flow.c - per-flow accumulators and the CSV row of one flow, for every profile.
 *
 * Semantics: ../shared/docs/flow-features.md (sections 5-8).  Statistics are exact integer sums
 * (64-bit sums, 128-bit sums of squares), so means/variances match an exact reference to the last
 * bit of the division.  Rows are formatted by hand (no printf per field): formatting is most of
 * the meter's time on flow-heavy traffic.
 */
#include "flow.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "meter.h"

void ns_quirks_for_profile(int profile, struct ns_quirks *q)
{
    memset(q, 0, sizeof *q);
    q->min_packets = 1;
    q->no_window_value = -1;
    if (profile == NS_PROFILE_CIC2017) {
        q->close_on_first_fin = q->rst_ignored = 1;
        q->min_packets = 2;
        q->java_key = q->proto_zero_other = q->count_padding = 1;
        q->first_packet_flags = q->permute_flags = q->double_first_len = 1;
        q->integer_down_up = q->last_bwd_window = q->act_data_skip_first = q->idle_skip_fin = 1;
        q->subflow_mode = 0;
        q->rate_sentinel = 0;
        return;
    }
    q->swap_synack = q->clamp_time = q->bulk = 1;
    if (profile == NS_PROFILE_ENGELEN) {
        q->absorb_until_syn = 1;
        q->last_bwd_window = 1; /* the published corrected CSVs predate the first-window fix */
        q->subflow_mode = 1;
        q->rate_sentinel = 1;
        return;
    }
    q->linger_s = 1.0;
    q->subflow_mode = 2;
    q->rate_sentinel = 2;
}

static void stat_add(struct ns_stat *s, int64_t x)
{
    if (s->n == 0 || x < s->lo)
        s->lo = x;
    if (s->n == 0 || x > s->hi)
        s->hi = x;
    s->n++;
    s->sum += x;
    unsigned __int128 sq = (unsigned __int128)s->sq_hi << 64 | s->sq_lo;
    sq += (unsigned __int128)((__int128)x * x);
    s->sq_lo = (uint64_t)sq;
    s->sq_hi = (uint64_t)(sq >> 64);
}

static double stat_mean(const struct ns_stat *s) { return s->n ? (double)s->sum / (double)s->n : 0.0; }

/* Sample variance (n-1); 0 below two values. */
static double stat_var(const struct ns_stat *s)
{
    if (s->n < 2)
        return 0.0;
    unsigned __int128 squares = (unsigned __int128)s->sq_hi << 64 | s->sq_lo;
    if ((s->sq_hi >> 32) != 0 || (s->n >> 30) != 0) {
        /* n * squares could leave 128 bits (timestamps decades apart): long double instead */
        long double n = (long double)s->n, sum = (long double)s->sum;
        long double v = ((long double)squares - sum * sum / n) / (n - 1);
        return v > 0 ? (double)v : 0.0;
    }
    __int128 n = (__int128)s->n;
    __int128 num = n * (__int128)squares - (__int128)s->sum * s->sum;
    return (double)((long double)num / ((long double)n * (long double)(n - 1)));
}

static double stat_std(const struct ns_stat *s) { return sqrt(stat_var(s)); }

uint32_t ns_payload(const struct ns_packet *p, const struct ns_quirks *q)
{
    return q->count_padding ? p->payload_caplen : p->payload_len;
}

void ns_flow_start(struct ns_flow *f, const struct ns_packet *p, int fwd_is_src,
                   const struct ns_quirks *q)
{
    memset(f, 0, sizeof *f);
    if (fwd_is_src) {
        memcpy(f->src, p->src, 16);
        memcpy(f->dst, p->dst, 16);
        f->sport = p->sport;
        f->dport = p->dport;
    } else {
        memcpy(f->src, p->dst, 16);
        memcpy(f->dst, p->src, 16);
        f->sport = p->dport;
        f->dport = p->sport;
    }
    f->proto = (q->proto_zero_other && p->proto != 6 && p->proto != 17) ? 0 : p->proto;
    f->ip_version = p->ip_version;
    f->second_fin_fwd = -1;
    f->start_us = f->last_us = f->active_start = f->active_end = p->ts_us;
    f->fwd_last_us = f->bwd_last_us = -1;
    f->fwd_min_hdr = -1;
    f->init_win_fwd = f->init_win_bwd = q->no_window_value;
}

/* Bulk transfer detection for one direction (section 7): payload packets no more than 1 s apart,
 * a bulk once 4 of them are in a row; a packet of the other direction restarts the candidate. */
static void bulk_add(struct ns_bulk *b, const struct ns_bulk *other, uint64_t ts, uint32_t len)
{
    if (other->cand_last > b->cand_start)
        b->cand_start = 0;
    if (len == 0)
        return;
    if (b->cand_start == 0 || ts - b->cand_last > 1000000) {
        b->cand_start = b->cand_last = ts;
        b->cand_packets = 1;
        b->cand_bytes = len;
        return;
    }
    b->cand_packets++;
    b->cand_bytes += len;
    if (b->cand_packets == 4) {
        b->count++;
        b->packets += 4;
        b->bytes += b->cand_bytes;
        b->duration_us += ts - b->cand_start;
    } else if (b->cand_packets > 4) {
        b->packets++;
        b->bytes += len;
        b->duration_us += ts - b->cand_last;
    }
    b->cand_last = ts;
}

static int32_t window_of(const struct ns_packet *p, const struct ns_quirks *q)
{
    return p->window < 0 ? q->no_window_value : p->window;
}

void ns_flow_add(struct ns_flow *f, const struct ns_packet *p, int fwd, int first,
                 const struct ns_quirks *q, uint64_t activity_us)
{
    int64_t ts = (int64_t)p->ts_us;
    if (q->clamp_time && ts < (int64_t)f->last_us)
        ts = (int64_t)f->last_us; /* out of order: counts as arriving now (no negative IAT) */
    uint8_t flags = p->tcp_flags;
    uint32_t len = ns_payload(p, q);
    if (!first) {
        int64_t gap = ts - (int64_t)f->last_us;
        stat_add(&f->flow_iat, gap);
        if (gap > 1000000)
            f->gaps++;
        if (!(q->idle_skip_fin && (flags & NS_TH_FIN))) {
            if (ts - (int64_t)f->active_end > (int64_t)activity_us) {
                if (f->active_end > f->active_start)
                    stat_add(&f->active, (int64_t)(f->active_end - f->active_start));
                stat_add(&f->idle, ts - (int64_t)f->active_end);
                f->active_start = f->active_end = (uint64_t)ts;
            } else {
                f->active_end = (uint64_t)ts;
            }
        }
    }
    f->last_us = (uint64_t)ts;
    stat_add(&f->all_len, len);
    if (first && q->double_first_len)
        stat_add(&f->all_len, len);
    int count_flags = !q->first_packet_flags || first;
    if (fwd) {
        stat_add(&f->fwd_len, len);
        if (f->fwd_last_us >= 0)
            stat_add(&f->fwd_iat, ts - f->fwd_last_us);
        f->fwd_last_us = ts;
        if (count_flags) {
            f->fwd_psh += !!(flags & NS_TH_PSH);
            f->fwd_urg += !!(flags & NS_TH_URG);
        }
        f->fwd_hdr += p->l4_hdr_len;
        if (f->fwd_min_hdr < 0 || p->l4_hdr_len < f->fwd_min_hdr)
            f->fwd_min_hdr = p->l4_hdr_len;
        if (len >= 1 && !(first && q->act_data_skip_first))
            f->act_data_fwd++;
        if (f->fwd_len.n == 1)
            f->init_win_fwd = window_of(p, q);
        if (q->bulk)
            bulk_add(&f->bulk_fwd, &f->bulk_bwd, (uint64_t)ts, len);
    } else {
        stat_add(&f->bwd_len, len);
        if (f->bwd_last_us >= 0)
            stat_add(&f->bwd_iat, ts - f->bwd_last_us);
        f->bwd_last_us = ts;
        if (!q->first_packet_flags) {
            f->bwd_psh += !!(flags & NS_TH_PSH);
            f->bwd_urg += !!(flags & NS_TH_URG);
        }
        f->bwd_hdr += p->l4_hdr_len;
        if (f->bwd_len.n == 1 || q->last_bwd_window)
            f->init_win_bwd = window_of(p, q);
        if (q->bulk)
            bulk_add(&f->bulk_bwd, &f->bulk_fwd, (uint64_t)ts, len);
    }
    if (count_flags)
        for (int bit = 0; bit < 8; bit++)
            f->flags[bit] += (flags >> bit) & 1;
}

/* Appending formatted fields to a bounded buffer, without printf on the hot path (formatting
 * is most of the meter's time).  A field is written only if FIELD_MAX bytes remain. */
#define FIELD_MAX 64
/* The per-field writers are small and called ~80 times a row: inlined, the row costs ~8% fewer
 * instructions (the compiler left them out of line). */
#define HOT_INLINE __attribute__((always_inline)) static inline

struct out {
    char *buf;
    size_t size, len;
    int overflow;
};

HOT_INLINE char *room(struct out *o)
{
    if (o->overflow || o->size - o->len < FIELD_MAX) {
        o->overflow = 1;
        return NULL;
    }
    return o->buf + o->len;
}

static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                     "25262728293031323334353637383940414243444546474849"
                                     "50515253545556575859606162636465666768697071727374"
                                     "75767778798081828384858687888990919293949596979899";

static const uint64_t pow10_u64[20] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL,
    1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
    100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
    1000000000000000000ULL, 10000000000000000000ULL};

/* Number of decimal digits of v: log10 from the bit length (1233/4096 ~ log10 2), then one
 * comparison, instead of a division per digit. */
static int decimal_digits(uint64_t v)
{
    int t = ((64 - __builtin_clzll(v | 1)) * 1233) >> 12;
    t += v >= pow10_u64[t];
    return t ? t : 1;
}

/* Decimal digits of v, written two at a time from the right. */
HOT_INLINE char *u64_text(char *p, uint64_t v)
{
    if (v < 10) { /* most counters of a short flow */
        *p = (char)('0' + v);
        return p + 1;
    }
    char *end = p + decimal_digits(v), *q = end;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        q -= 2;
        q[0] = digit_pairs[2 * r];
        q[1] = digit_pairs[2 * r + 1];
    }
    if (v >= 10) {
        q[-2] = digit_pairs[2 * v];
        q[-1] = digit_pairs[2 * v + 1];
    } else {
        q[-1] = (char)('0' + v);
    }
    return end;
}

HOT_INLINE char *i64_text(char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return u64_text(p, (uint64_t)0 - (uint64_t)v);
    }
    return u64_text(p, (uint64_t)v);
}

static void put_str(struct out *o, const char *s)
{
    char *p = room(o);
    if (!p)
        return;
    size_t n = strlen(s);
    if (n >= FIELD_MAX) {
        o->overflow = 1;
        return;
    }
    memcpy(p, s, n);
    o->len += n;
}

HOT_INLINE void put_sep_u(struct out *o, char sep, uint64_t v)
{
    char *p = room(o);
    if (!p)
        return;
    *p++ = sep;
    o->len = (size_t)(u64_text(p, v) - o->buf);
}

HOT_INLINE void put_u(struct out *o, uint64_t v) { put_sep_u(o, ',', v); }

HOT_INLINE void put_i(struct out *o, int64_t v)
{
    char *p = room(o);
    if (!p)
        return;
    *p++ = ',';
    o->len = (size_t)(i64_text(p, v) - o->buf);
}

static const double pow10_tab[17] = {1e0, 1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7, 1e8,
                                     1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16};

/* A double to about 16 significant digits (relative error < 1e-15) in a form Python's float()
 * reads: integers without a point, fixed notation in [1e-4, 1e15), %.15g elsewhere. */
static void put_f_slow(struct out *o, double v)
{
    char *p = room(o);
    if (!p)
        return;
    char *start = p;
    *p++ = ',';
    double a = fabs(v);
    /* most values are whole numbers (often 0): tested first, by a round trip through an integer
     * (cheaper than floor(); a < 1e15 is false for NaN and infinities, so the cast is defined) */
    if (a < 1e15 && (double)(int64_t)v == v) {
        p = i64_text(p, (int64_t)v);
    } else if (isnan(v)) {
        memcpy(p, "NaN", 3);
        p += 3;
    } else if (isinf(v)) {
        const char *t = v > 0 ? "Infinity" : "-Infinity";
        size_t n = strlen(t);
        memcpy(p, t, n);
        p += n;
    } else if (a >= 1e-4 && a < 1e15) {
        uint64_t ip = (uint64_t)a;
        double frac = a - (double)ip; /* exact: same binade or below */
        int digits = 0;
        while (digits < 16 && (double)ip >= pow10_tab[digits])
            digits++;
        int d = digits >= 15 ? 1 : 16 - digits;
        uint64_t unit = (uint64_t)pow10_tab[d];
        uint64_t scaled = (uint64_t)llround(frac * pow10_tab[d]);
        if (scaled >= unit) {
            ip++;
            scaled -= unit;
        }
        if (v < 0)
            *p++ = '-';
        p = u64_text(p, ip);
        if (scaled) {
            *p++ = '.';
            char *end = p + d, *q = end;
            while (q - p >= 2) { /* d digits with leading zeros, two at a time */
                unsigned r = (unsigned)(scaled % 100);
                scaled /= 100;
                q -= 2;
                q[0] = digit_pairs[2 * r];
                q[1] = digit_pairs[2 * r + 1];
            }
            if (q > p)
                q[-1] = (char)('0' + scaled % 10);
            while (end[-1] == '0')
                end--;
            p = end;
        }
    } else {
        p += snprintf(p, FIELD_MAX - 1, "%.15g", v);
    }
    o->len += (size_t)(p - start);
}

/* The common case inline: whole numbers (most features of most flows, often 0); the rest, with
 * the same result for them, out of line. */
HOT_INLINE void put_f(struct out *o, double v)
{
    char *p = room(o);
    if (!p)
        return;
    if (fabs(v) < 1e15 && (double)(int64_t)v == v) {
        *p++ = ',';
        o->len = (size_t)(i64_text(p, (int64_t)v) - o->buf);
        return;
    }
    put_f_slow(o, v);
}

static void put_stat4(struct out *o, const struct ns_stat *s, int with_total)
{
    if (with_total)
        put_i(o, (int64_t)s->sum);
    put_f(o, stat_mean(s));
    put_f(o, stat_std(s));
    put_i(o, s->n ? s->hi : 0);
    put_i(o, s->n ? s->lo : 0);
}

/* The text of an address into buf (INET6_ADDRSTRLEN bytes, no separator); returns its length.
 * A row has each address twice (Flow ID and its own column): formatted once, copied twice. */
static size_t addr_text(char *buf, const uint8_t *a, int v6)
{
    if (!v6) {
        char *q = buf;
        for (int i = 0; i < 4; i++) {
            if (i)
                *q++ = '.';
            q = u64_text(q, a[i]);
        }
        return (size_t)(q - buf);
    }
    if (!inet_ntop(AF_INET6, a, buf, INET6_ADDRSTRLEN)) {
        buf[0] = '\0';
        return 0;
    }
    return strlen(buf);
}

/* n bytes of text (n < FIELD_MAX). */
static void put_mem(struct out *o, const char *s, size_t n)
{
    char *p = room(o);
    if (!p)
        return;
    memcpy(p, s, n);
    o->len += n;
}

/* Proleptic Gregorian date of a day count since 1970-01-01 (inverse of days-from-civil, with
 * 400-year eras of 146097 days starting on March 1st). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static char *two(char *p, unsigned v)
{
    *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

/* ",YYYY-MM-DD HH:MM:SS.ffffff", UTC */
static void put_time(struct out *o, uint64_t us)
{
    char *p = room(o);
    if (!p)
        return;
    char *q = p;
    uint64_t secs = us / 1000000;
    int64_t y;
    unsigned mo, d;
    civil_from_days((int64_t)(secs / 86400), &y, &mo, &d);
    unsigned sod = (unsigned)(secs % 86400);
    *q++ = ',';
    q = i64_text(q, y); /* packet times are after 1970: always four digits or more */
    *q++ = '-';
    q = two(q, mo);
    *q++ = '-';
    q = two(q, d);
    *q++ = ' ';
    q = two(q, sod / 3600);
    *q++ = ':';
    q = two(q, sod / 60 % 60);
    *q++ = ':';
    q = two(q, sod % 60);
    *q++ = '.';
    unsigned frac = (unsigned)(us % 1000000);
    for (int i = 5; i >= 0; i--) {
        q[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    o->len += (size_t)(q + 6 - p);
}

static uint64_t subflow(uint64_t total, const struct ns_flow *f, const struct ns_quirks *q)
{
    if (q->subflow_mode == 0)
        return total;
    /* engelen: the published corrected rows divide by the flow's packet count (their subflow
     * counter advances on every packet); clean: 1 + gaps longer than 1 s */
    uint64_t n = q->subflow_mode == 1 ? ns_flow_packets(f) : 1 + (uint64_t)f->gaps;
    return n ? total / n : 0;
}

static void put_bulk(struct out *o, const struct ns_bulk *b)
{
    put_u(o, b->count ? b->bytes / b->count : 0);
    put_u(o, b->count ? b->packets / b->count : 0);
    put_u(o, b->duration_us ? (uint64_t)((double)b->bytes / ((double)b->duration_us / 1e6)) : 0);
}

int ns_flow_format(const struct ns_flow *f, const struct ns_quirks *q, int dup_fwd_header,
                   char *buf, size_t size)
{
    struct out o = {buf, size, 0, 0};
    int v6 = f->ip_version == 6;
    char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
    size_t src_len = addr_text(src, f->src, v6), dst_len = addr_text(dst, f->dst, v6);
    /* identifiers */
    put_mem(&o, src, src_len);
    put_str(&o, "-");
    put_mem(&o, dst, dst_len);
    put_sep_u(&o, '-', f->sport);
    put_sep_u(&o, '-', f->dport);
    put_sep_u(&o, '-', f->proto);
    put_str(&o, ",");
    put_mem(&o, src, src_len);
    put_u(&o, f->sport);
    put_str(&o, ",");
    put_mem(&o, dst, dst_len);
    put_u(&o, f->dport);
    put_u(&o, f->proto);
    put_time(&o, f->start_us);

    int64_t duration = (int64_t)f->last_us - (int64_t)f->start_us;
    uint64_t n_fwd = f->fwd_len.n, n_bwd = f->bwd_len.n, n_all = n_fwd + n_bwd;
    double seconds = (double)duration / 1e6;
    int64_t bytes = (int64_t)(f->fwd_len.sum + f->bwd_len.sum);
    put_i(&o, duration);
    put_u(&o, n_fwd);
    put_u(&o, n_bwd);
    put_i(&o, (int64_t)f->fwd_len.sum);
    put_i(&o, (int64_t)f->bwd_len.sum);
    put_i(&o, f->fwd_len.n ? f->fwd_len.hi : 0);
    put_i(&o, f->fwd_len.n ? f->fwd_len.lo : 0);
    put_f(&o, stat_mean(&f->fwd_len));
    put_f(&o, stat_std(&f->fwd_len));
    put_i(&o, f->bwd_len.n ? f->bwd_len.hi : 0);
    put_i(&o, f->bwd_len.n ? f->bwd_len.lo : 0);
    put_f(&o, stat_mean(&f->bwd_len));
    put_f(&o, stat_std(&f->bwd_len));
    if (duration != 0) {
        put_f(&o, (double)bytes / seconds);
        put_f(&o, (double)n_all / seconds);
    } else if (q->rate_sentinel == 0) {
        put_f(&o, bytes > 0 ? INFINITY : NAN);
        put_f(&o, INFINITY);
    } else {
        double v = q->rate_sentinel == 1 ? -1.0 : 0.0;
        put_f(&o, v);
        put_f(&o, v);
    }
    put_stat4(&o, &f->flow_iat, 0);
    put_stat4(&o, &f->fwd_iat, 1);
    put_stat4(&o, &f->bwd_iat, 1);
    put_u(&o, f->fwd_psh);
    put_u(&o, f->bwd_psh);
    put_u(&o, f->fwd_urg);
    put_u(&o, f->bwd_urg);
    put_u(&o, f->fwd_hdr);
    put_u(&o, f->bwd_hdr);
    put_f(&o, duration > 0 ? (double)n_fwd / seconds : 0.0);
    put_f(&o, duration > 0 ? (double)n_bwd / seconds : 0.0);
    put_i(&o, f->all_len.n ? f->all_len.lo : 0);
    put_i(&o, f->all_len.n ? f->all_len.hi : 0);
    put_f(&o, stat_mean(&f->all_len));
    put_f(&o, stat_std(&f->all_len));
    put_f(&o, stat_var(&f->all_len));
    /* FIN SYN RST PSH ACK URG CWE(=CWR) ECE; cic2017 wrote them in Java HashMap order */
    static const int header_order[8] = {0, 1, 2, 3, 4, 5, 7, 6};
    static const int hashmap_order[8] = {2, 3, 6, 1, 4, 0, 5, 7};
    const int *order = q->permute_flags ? hashmap_order : header_order;
    for (int i = 0; i < 8; i++)
        put_u(&o, f->flags[order[i]]);
    if (n_fwd == 0)
        put_f(&o, 0.0);
    else if (q->integer_down_up)
        put_f(&o, (double)(n_bwd / n_fwd));
    else
        put_f(&o, (double)n_bwd / (double)n_fwd);
    put_f(&o, n_all ? (double)f->all_len.sum / (double)n_all : 0.0);
    put_f(&o, stat_mean(&f->fwd_len));
    put_f(&o, stat_mean(&f->bwd_len));
    if (dup_fwd_header)
        put_u(&o, f->fwd_hdr);
    if (q->bulk) {
        put_bulk(&o, &f->bulk_fwd);
        put_bulk(&o, &f->bulk_bwd);
    } else {
        put_str(&o, ",0,0,0,0,0,0");
    }
    put_u(&o, subflow(n_fwd, f, q));
    put_u(&o, subflow((uint64_t)f->fwd_len.sum, f, q));
    put_u(&o, subflow(n_bwd, f, q));
    put_u(&o, subflow((uint64_t)f->bwd_len.sum, f, q));
    put_i(&o, f->init_win_fwd);
    put_i(&o, f->init_win_bwd);
    put_u(&o, f->act_data_fwd);
    put_i(&o, f->fwd_min_hdr < 0 ? 0 : f->fwd_min_hdr);
    put_f(&o, stat_mean(&f->active));
    put_f(&o, stat_std(&f->active));
    put_i(&o, f->active.n ? f->active.hi : 0);
    put_i(&o, f->active.n ? f->active.lo : 0);
    put_f(&o, stat_mean(&f->idle));
    put_f(&o, stat_std(&f->idle));
    put_i(&o, f->idle.n ? f->idle.hi : 0);
    put_i(&o, f->idle.n ? f->idle.lo : 0);
    return o.overflow ? -1 : (int)o.len;
}
