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
#include <stddef.h>
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

__attribute__((always_inline)) static inline void stat_add(struct ns_stat *s, int64_t x)
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
    memset(f, 0, offsetof(struct ns_flow, fwd_last_us)); /* the accumulators wait (deferred) */
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
    f->start_us = f->last_us = p->ts_us;
    f->deferred = 1;
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

static void add_packet(struct ns_flow *f, const struct ns_packet *p, int fwd, int first,
                       const struct ns_quirks *q, uint64_t activity_us);

/* Set the accumulators and add the deferred first packet to them. */
static void undefer(struct ns_flow *f, const struct ns_quirks *q)
{
    memset(&f->fwd_last_us, 0, sizeof *f - offsetof(struct ns_flow, fwd_last_us));
    f->active_start = f->active_end = f->start_us;
    f->fwd_last_us = f->bwd_last_us = -1;
    f->fwd_min_hdr = -1;
    f->init_win_fwd = f->init_win_bwd = q->no_window_value;
    struct ns_packet p;
    memset(&p, 0, sizeof p);
    p.ts_us = f->start_us;
    p.payload_len = f->first.payload_len;
    p.payload_caplen = f->first.payload_caplen;
    p.window = f->first.window;
    p.l4_hdr_len = f->first.l4_hdr_len;
    p.tcp_flags = f->first.tcp_flags;
    f->deferred = 0;
    add_packet(f, &p, f->first.fwd, 1, q, 0); /* the activity timeout plays no part for a first packet */
}

void ns_flow_add(struct ns_flow *f, const struct ns_packet *p, int fwd, int first,
                 const struct ns_quirks *q, uint64_t activity_us)
{
    if (first) { /* kept as it is: most flows get no second packet */
        f->first = (struct ns_first_packet){.payload_len = p->payload_len,
                                            .payload_caplen = p->payload_caplen,
                                            .window = p->window,
                                            .l4_hdr_len = p->l4_hdr_len,
                                            .tcp_flags = p->tcp_flags,
                                            .fwd = (uint8_t)(fwd != 0)};
        return;
    }
    if (f->deferred)
        undefer(f, q);
    add_packet(f, p, fwd, 0, q, activity_us);
}

static void add_packet(struct ns_flow *f, const struct ns_packet *p, int fwd, int first,
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
    if (count_flags) /* the set bits only: usually none (UDP) or one or two */
        for (unsigned rest = flags; rest; rest &= rest - 1)
            f->flags[__builtin_ctz(rest)]++;
}

/* Formatting a row, without printf on the hot path (formatting is most of the meter's time on
 * flow-heavy traffic).  The buffer is checked once for NS_ROW_BOUND bytes, the most any row can
 * take, and every field is then written through a cursor: no per-field bounds check, no length
 * bookkeeping, no call per field. */
#define HOT_INLINE __attribute__((always_inline)) static inline

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
HOT_INLINE int decimal_digits(uint64_t v)
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
    if (v < 100) {
        memcpy(p, digit_pairs + 2 * v, 2);
        return p + 2;
    }
    char *end = p + decimal_digits(v), *q = end;
    while (v > UINT32_MAX) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        q -= 2;
        memcpy(q, digit_pairs + 2 * r, 2);
    }
    uint32_t w = (uint32_t)v; /* the rest in 32-bit arithmetic: a cheaper division by 100 */
    while (w >= 100) {
        unsigned r = w % 100;
        w /= 100;
        q -= 2;
        memcpy(q, digit_pairs + 2 * r, 2);
    }
    if (w >= 10)
        memcpy(q - 2, digit_pairs + 2 * w, 2);
    else
        q[-1] = (char)('0' + w);
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

/* ",v" */
HOT_INLINE char *put_u(char *p, uint64_t v)
{
    *p++ = ',';
    return u64_text(p, v);
}

HOT_INLINE char *put_i(char *p, int64_t v)
{
    *p++ = ',';
    return i64_text(p, v);
}

/* Exactly 8 digits of v < 10^8, leading zeros kept. */
HOT_INLINE void eight_digits(char *p, uint32_t v)
{
    uint32_t hi = v / 10000, lo = v % 10000;
    memcpy(p, digit_pairs + 2 * (hi / 100), 2);
    memcpy(p + 2, digit_pairs + 2 * (hi % 100), 2);
    memcpy(p + 4, digit_pairs + 2 * (lo / 100), 2);
    memcpy(p + 6, digit_pairs + 2 * (lo % 100), 2);
}

static const double pow10_tab[17] = {1e0, 1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7, 1e8,
                                     1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16};

/* ",v" for a double that is not a whole number below 1e15: about 16 significant digits (relative
 * error < 1e-15) in a form Python's float() reads: fixed notation in [1e-4, 1e15), %.15g
 * elsewhere, NaN, Infinity, -Infinity. */
static char *put_f_slow(char *p, double v)
{
    *p++ = ',';
    double a = fabs(v);
    if (isnan(v)) {
        memcpy(p, "NaN", 3);
        return p + 3;
    }
    if (isinf(v)) {
        if (v > 0) {
            memcpy(p, "Infinity", 8);
            return p + 8;
        }
        memcpy(p, "-Infinity", 9);
        return p + 9;
    }
    if (a >= 1e-4 && a < 1e15) {
        uint64_t ip = (uint64_t)a;
        double frac = a - (double)ip; /* exact: same binade or below */
        int digits = ip ? decimal_digits(ip) : 0;
        int d = digits >= 15 ? 1 : 16 - digits;
        uint64_t unit = pow10_u64[d];
        /* llround(x) for 0 <= x < 1e16, without the call: x - trunc(x) is exact (and 0 once x is
         * 2^52 or more, where every double is whole), so ties round away from zero as there */
        double x = frac * pow10_tab[d];
        uint64_t scaled = (uint64_t)x;
        scaled += x - (double)scaled >= 0.5;
        if (scaled >= unit) {
            ip++;
            scaled -= unit;
        }
        if (v < 0)
            *p++ = '-';
        p = u64_text(p, ip);
        if (scaled) {
            *p++ = '.';
            /* the d digits with leading zeros, as the first d of 16 (scaled < 10^d) */
            uint64_t all = scaled * pow10_u64[16 - d];
            eight_digits(p, (uint32_t)(all / 100000000));
            eight_digits(p + 8, (uint32_t)(all % 100000000));
            char *end = p + d;
            while (end[-1] == '0')
                end--;
            p = end;
        }
        return p;
    }
    return p + snprintf(p, 32, "%.15g", v);
}

/* The common case inline: whole numbers below 1e15 (most features of most flows, often 0) as
 * integers (a < 1e15 is false for NaN and infinities, so the cast is defined); the rest out of
 * line. */
HOT_INLINE char *put_f(char *p, double v)
{
    if (fabs(v) < 1e15 && (double)(int64_t)v == v) {
        *p++ = ',';
        return i64_text(p, (int64_t)v);
    }
    return put_f_slow(p, v);
}

/* ",mean,std" of s, as put_f(stat_mean), put_f(stat_std) would write them, with the cases of
 * zero, one and equal values (most flows are short) taken without a division. */
HOT_INLINE char *put_mean_std(char *p, const struct ns_stat *s)
{
    if (s->n == 0) {
        memcpy(p, ",0,0", 4);
        return p + 4;
    }
    int64_t sum = s->sum;
    if (s->n == 1 && sum > -1000000000000000LL && sum < 1000000000000000LL) {
        p = put_i(p, sum); /* sum / 1: exact, whole and below 1e15 */
    } else {
        p = put_f(p, stat_mean(s));
        /* equal values: the exact variance is 0 (not so the long double one of huge sums) */
        if (s->n >= 2 && s->hi == s->lo && ((s->sq_hi >> 32) | (s->n >> 30)) == 0) {
            memcpy(p, ",0", 2);
            return p + 2;
        }
        if (s->n >= 2)
            return put_f(p, stat_std(s));
    }
    memcpy(p, ",0", 2);
    return p + 2;
}

/* ",total,mean,std,max,min" (total only if with_total) */
HOT_INLINE char *put_stat4(char *p, const struct ns_stat *s, int with_total)
{
    if (s->n == 0) {
        if (with_total) {
            memcpy(p, ",0,0,0,0,0", 10);
            return p + 10;
        }
        memcpy(p, ",0,0,0,0", 8);
        return p + 8;
    }
    if (with_total)
        p = put_i(p, s->sum);
    p = put_mean_std(p, s);
    p = put_i(p, s->hi);
    return put_i(p, s->lo);
}

/* ",max,min,mean,std" of a packet-length statistic; [*mean, *mean_end) is the mean's text. */
HOT_INLINE char *put_len_stat(char *p, const struct ns_stat *s, char **mean, char **mean_end)
{
    p = put_i(p, s->n ? s->hi : 0);
    p = put_i(p, s->n ? s->lo : 0);
    *mean = p;
    p = put_f(p, stat_mean(s));
    *mean_end = p;
    return put_f(p, stat_std(s));
}

static const char octet_names[256][4] = {
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17",
    "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31", "32", "33",
    "34", "35", "36", "37", "38", "39", "40", "41", "42", "43", "44", "45", "46", "47", "48", "49",
    "50", "51", "52", "53", "54", "55", "56", "57", "58", "59", "60", "61", "62", "63", "64", "65",
    "66", "67", "68", "69", "70", "71", "72", "73", "74", "75", "76", "77", "78", "79", "80", "81",
    "82", "83", "84", "85", "86", "87", "88", "89", "90", "91", "92", "93", "94", "95", "96", "97",
    "98", "99", "100", "101", "102", "103", "104", "105", "106", "107", "108", "109", "110", "111",
    "112", "113", "114", "115", "116", "117", "118", "119", "120", "121", "122", "123", "124", "125",
    "126", "127", "128", "129", "130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
    "140", "141", "142", "143", "144", "145", "146", "147", "148", "149", "150", "151", "152", "153",
    "154", "155", "156", "157", "158", "159", "160", "161", "162", "163", "164", "165", "166", "167",
    "168", "169", "170", "171", "172", "173", "174", "175", "176", "177", "178", "179", "180", "181",
    "182", "183", "184", "185", "186", "187", "188", "189", "190", "191", "192", "193", "194", "195",
    "196", "197", "198", "199", "200", "201", "202", "203", "204", "205", "206", "207", "208", "209",
    "210", "211", "212", "213", "214", "215", "216", "217", "218", "219", "220", "221", "222", "223",
    "224", "225", "226", "227", "228", "229", "230", "231", "232", "233", "234", "235", "236", "237",
    "238", "239", "240", "241", "242", "243", "244", "245", "246", "247", "248", "249", "250", "251",
    "252", "253", "254", "255"};

/* One octet of an IPv4 address: its 4 table bytes are stored (the ones after the digits are
 * overwritten by what follows), the cursor moves by its length. */
HOT_INLINE char *octet_text(char *p, unsigned v)
{
    memcpy(p, octet_names[v], 4);
    return p + 1 + (v >= 10) + (v >= 100);
}

/* The text of an address at p (no separator); returns its end. */
static char *addr_text(char *p, const uint8_t *a, int v6)
{
    if (!v6) {
        p = octet_text(p, a[0]);
        *p++ = '.';
        p = octet_text(p, a[1]);
        *p++ = '.';
        p = octet_text(p, a[2]);
        *p++ = '.';
        return octet_text(p, a[3]);
    }
    char buf[INET6_ADDRSTRLEN];
    if (!inet_ntop(AF_INET6, a, buf, sizeof buf))
        return p;
    size_t n = strlen(buf);
    memcpy(p, buf, n);
    return p + n;
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
    memcpy(p, digit_pairs + 2 * (v % 100), 2);
    return p + 2;
}

/* ",YYYY-MM-DD HH:MM:SS." of a second since 1970, UTC; returns its length. */
static size_t second_text(char *buf, uint64_t secs)
{
    char *q = buf;
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
    return (size_t)(q - buf);
}

/* ",YYYY-MM-DD HH:MM:SS.ffffff", UTC.  Rows come out roughly in time order, so the text of the
 * last second is kept and reused (per thread: the formatter stays reentrant). */
static char *put_time(char *p, uint64_t us)
{
    static _Thread_local uint64_t cached_secs = UINT64_MAX;
    static _Thread_local char cached[32];
    static _Thread_local size_t cached_len;
    uint64_t secs = us / 1000000;
    if (secs != cached_secs) {
        cached_len = second_text(cached, secs);
        cached_secs = secs;
    }
    memcpy(p, cached, 32);
    p += cached_len;
    unsigned frac = (unsigned)(us % 1000000);
    memcpy(p, digit_pairs + 2 * (frac / 10000), 2);
    memcpy(p + 2, digit_pairs + 2 * (frac / 100 % 100), 2);
    memcpy(p + 4, digit_pairs + 2 * (frac % 100), 2);
    return p + 6;
}

static uint64_t subflow(uint64_t total, uint64_t n, const struct ns_quirks *q)
{
    if (q->subflow_mode == 0)
        return total;
    return n ? total / n : 0;
}

HOT_INLINE char *put_bulk(char *p, const struct ns_bulk *b)
{
    if (b->count == 0 && b->duration_us == 0) {
        memcpy(p, ",0,0,0", 6);
        return p + 6;
    }
    p = put_u(p, b->count ? b->bytes / b->count : 0);
    p = put_u(p, b->count ? b->packets / b->count : 0);
    return put_u(p, b->duration_us ? (uint64_t)((double)b->bytes / ((double)b->duration_us / 1e6)) : 0);
}

/* Copy the text [from, to), at most N bytes, to p: N bytes go through a local copy (a fixed
 * size is a few moves, not a call; the bytes past the text are overwritten by what follows). */
#define PUT_COPY(N)                                                                                \
    HOT_INLINE char *put_copy##N(char *p, const char *from, const char *to)                        \
    {                                                                                              \
        char t[N];                                                                                 \
        memcpy(t, from, N);                                                                        \
        memcpy(p, t, N);                                                                           \
        return p + (to - from);                                                                    \
    }
PUT_COPY(16) /* an IPv4 address: at most 15 bytes */
PUT_COPY(32) /* a numeric field: at most 23 */
PUT_COPY(48) /* an IPv6 address: at most 45 */

HOT_INLINE char *put_addr_copy(char *p, const char *from, const char *to, int v6)
{
    return v6 ? put_copy48(p, from, to) : put_copy16(p, from, to);
}

/* "Flow ID" to "Timestamp": who and when. */
static char *put_identity(char *p, const struct ns_flow *f)
{
    int v6 = f->ip_version == 6;
    /* each address formatted once, copied to its second place */
    char *src = p;
    p = addr_text(p, f->src, v6);
    char *src_end = p;
    *p++ = '-';
    char *dst = p;
    p = addr_text(p, f->dst, v6);
    char *dst_end = p;
    *p++ = '-';
    p = u64_text(p, f->sport);
    *p++ = '-';
    p = u64_text(p, f->dport);
    *p++ = '-';
    p = u64_text(p, f->proto);
    *p++ = ',';
    p = put_addr_copy(p, src, src_end, v6);
    p = put_u(p, f->sport);
    *p++ = ',';
    p = put_addr_copy(p, dst, dst_end, v6);
    p = put_u(p, f->dport);
    p = put_u(p, f->proto);
    return put_time(p, f->start_us);
}

static char *put_features(char *p, const struct ns_flow *f, const struct ns_quirks *q, int dup_fwd_header);

int ns_flow_format(const struct ns_flow *f, const struct ns_quirks *q, int dup_fwd_header,
                   struct ns_row_memo *memo, char *buf, size_t size)
{
    if (size < NS_ROW_BOUND)
        return -1;
    char *p = put_identity(buf, f);
    if (!f->deferred)
        return (int)(put_features(p, f, q, dup_fwd_header) - buf);
    /* One packet: the features are a function of that packet alone (and of the profile), and the
     * one-packet flows of a flood or a scan mostly repeat the last one's. */
    if (memo && memo->valid && memcmp(&memo->first, &f->first, sizeof f->first) == 0) {
        memcpy(p, memo->text, memo->len);
        return (int)(p - buf) + (int)memo->len;
    }
    struct ns_flow whole; /* its accumulators, made on the stack */
    memcpy(&whole, f, offsetof(struct ns_flow, fwd_last_us));
    undefer(&whole, q);
    char *end = put_features(p, &whole, q, dup_fwd_header);
    if (memo) {
        memo->valid = 1;
        memo->first = f->first;
        memo->len = (size_t)(end - p);
        memcpy(memo->text, p, memo->len);
    }
    return (int)(end - buf);
}

/* "Flow Duration" to the end. */
static char *put_features(char *p, const struct ns_flow *f, const struct ns_quirks *q, int dup_fwd_header)
{
    int64_t duration = (int64_t)f->last_us - (int64_t)f->start_us;
    uint64_t n_fwd = f->fwd_len.n, n_bwd = f->bwd_len.n, n_all = n_fwd + n_bwd;
    double seconds = (double)duration / 1e6;
    int64_t bytes = (int64_t)(f->fwd_len.sum + f->bwd_len.sum);
    p = put_i(p, duration);
    p = put_u(p, n_fwd);
    p = put_u(p, n_bwd);
    p = put_i(p, (int64_t)f->fwd_len.sum);
    p = put_i(p, (int64_t)f->bwd_len.sum);
    /* the means appear again as the average segment sizes: formatted once */
    char *fwd_mean, *fwd_mean_end, *bwd_mean, *bwd_mean_end;
    p = put_len_stat(p, &f->fwd_len, &fwd_mean, &fwd_mean_end);
    p = put_len_stat(p, &f->bwd_len, &bwd_mean, &bwd_mean_end);
    if (duration != 0) {
        p = put_f(p, (double)bytes / seconds);
        p = put_f(p, (double)n_all / seconds);
    } else if (q->rate_sentinel == 0) {
        p = put_f(p, bytes > 0 ? INFINITY : NAN);
        p = put_f(p, INFINITY);
    } else {
        double v = q->rate_sentinel == 1 ? -1.0 : 0.0;
        p = put_f(p, v);
        p = put_f(p, v);
    }
    p = put_stat4(p, &f->flow_iat, 0);
    p = put_stat4(p, &f->fwd_iat, 1);
    p = put_stat4(p, &f->bwd_iat, 1);
    p = put_u(p, f->fwd_psh);
    p = put_u(p, f->bwd_psh);
    p = put_u(p, f->fwd_urg);
    p = put_u(p, f->bwd_urg);
    p = put_u(p, f->fwd_hdr);
    p = put_u(p, f->bwd_hdr);
    if (duration > 0) {
        p = put_f(p, (double)n_fwd / seconds);
        p = put_f(p, (double)n_bwd / seconds);
    } else {
        memcpy(p, ",0,0", 4);
        p += 4;
    }
    p = put_i(p, f->all_len.n ? f->all_len.lo : 0);
    p = put_i(p, f->all_len.n ? f->all_len.hi : 0);
    p = put_f(p, stat_mean(&f->all_len));
    p = put_f(p, stat_std(&f->all_len));
    p = put_f(p, stat_var(&f->all_len));
    /* FIN SYN RST PSH ACK URG CWE(=CWR) ECE; cic2017 wrote them in Java HashMap order */
    static const int header_order[8] = {0, 1, 2, 3, 4, 5, 7, 6};
    static const int hashmap_order[8] = {2, 3, 6, 1, 4, 0, 5, 7};
    const int *order = q->permute_flags ? hashmap_order : header_order;
    for (int i = 0; i < 8; i++)
        p = put_u(p, f->flags[order[i]]);
    if (n_fwd == 0)
        p = put_f(p, 0.0);
    else if (q->integer_down_up)
        p = put_f(p, (double)(n_bwd / n_fwd));
    else
        p = put_f(p, (double)n_bwd / (double)n_fwd);
    p = put_f(p, n_all ? (double)f->all_len.sum / (double)n_all : 0.0);
    p = put_copy32(p, fwd_mean, fwd_mean_end);
    p = put_copy32(p, bwd_mean, bwd_mean_end);
    if (dup_fwd_header)
        p = put_u(p, f->fwd_hdr);
    if (q->bulk) {
        p = put_bulk(p, &f->bulk_fwd);
        p = put_bulk(p, &f->bulk_bwd);
    } else {
        memcpy(p, ",0,0,0,0,0,0", 12);
        p += 12;
    }
    /* engelen: the published corrected rows divide by the flow's packet count (their subflow
     * counter advances on every packet); clean: 1 + gaps longer than 1 s */
    uint64_t sub_n = q->subflow_mode == 1 ? n_all : 1 + (uint64_t)f->gaps;
    p = put_u(p, subflow(n_fwd, sub_n, q));
    p = put_u(p, subflow((uint64_t)f->fwd_len.sum, sub_n, q));
    p = put_u(p, subflow(n_bwd, sub_n, q));
    p = put_u(p, subflow((uint64_t)f->bwd_len.sum, sub_n, q));
    p = put_i(p, f->init_win_fwd);
    p = put_i(p, f->init_win_bwd);
    p = put_u(p, f->act_data_fwd);
    p = put_i(p, f->fwd_min_hdr < 0 ? 0 : f->fwd_min_hdr);
    p = put_stat4(p, &f->active, 0);
    return put_stat4(p, &f->idle, 0);
}
