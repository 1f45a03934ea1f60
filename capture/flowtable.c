/* flowtable.c - the flow engine: a growing hash table of bidirectional flows with an LRU list.
 *
 * Entries live in one pool addressed by 32-bit indices (stable across growth).  The index is an
 * open-addressing table (linear probing, load <= 1/2, backward-shift deletion) of 64-bit slots:
 * 32 bits of the key's hash, which also give the home slot, and the entry index, so probing
 * touches no entry until a hash matches.  The LRU list is ordered by last packet, so idle flows
 * expire from its head and, when --max-flows is reached, the least recently seen flow is emitted
 * early (evicted).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mremap(), even when make's CFLAGS are overridden */
#endif
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "flow.h"
#include "meter.h"

#define NIL UINT32_MAX
#define MIN_CAPACITY 1024u /* entries of the pool at start and after a shrink */
#define MIN_SLOTS 2048u    /* its index */
#define SHRINK_MIN_CAPACITY 65536u /* see compact_into() */
#define SHRINK_FACTOR 32u
#define MAX_HOLD_TIMEOUTS 16u /* see release() */
#define ROW_MAX 8192

struct ns_key {
    uint8_t a[16], b[16];
    uint16_t pa, pb;
    uint8_t proto, ip_version;
    uint8_t pad_[2];
};

struct entry {
    struct ns_key key;
    uint32_t tag;               /* high half of the key's hash */
    uint32_t hnext, prev, next; /* free-list link, LRU links */
    struct ns_flow flow;
};

#define EMPTY UINT64_MAX
#define SLOT(tag, idx) (((uint64_t)(tag) << 32) | (idx))
#define SLOT_TAG(s) ((uint32_t)((s) >> 32))
#define SLOT_IDX(s) ((uint32_t)(s))

struct ns_meter {
    struct ns_meter_config cfg;
    struct ns_quirks q;
    uint64_t timeout_us, activity_us, linger_us;
    ns_emit_fn emit;
    void *ctx;
    struct entry *pool;
    uint32_t capacity, free_head, used_top;
    uint64_t *slots;
    uint32_t nslots; /* power of two */
    uint32_t lru_head, lru_tail;
    uint64_t hash_state[4];  /* SipHash state after the run's key */
    uint64_t oversized_since_us; /* packet time since when the table is far too big, 0: it is not */
    int compacted;               /* ... and it has been compacted since */
    uint64_t release_hold_us;    /* how long it must stay far too big before its memory goes back */
    uint64_t released_at_us;     /* packet time of the last release (0: none pending) */
    uint32_t released_from;      /* capacity before that release */
    struct ns_meter_stats stats;
    struct ns_row_memo row_memo;
    char row[ROW_MAX];
};

/* SipHash-1-3 of the key under the run's secret 128-bit key: which flows share a probe
 * run cannot be predicted from outside, so crafted traffic cannot pile flows into one run (a fixed
 * hash let it: every lookup then walks the whole run).  v[] is the state after keying. */
#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND(v0, v1, v2, v3)                                                                   \
    do {                                                                                           \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                                  \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                                     \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                                     \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                                  \
    } while (0)

#ifdef NS_BENCH_FIXED_HASH
/* Benchmark build only (make build/flowmeter-fixedhash): the former unkeyed hash, to show what the
 * keyed one costs.  Never in the meter: crafted traffic can collide it at will. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static uint64_t key_hash(const uint64_t v[4], const struct ns_key *k)
{
    (void)v;
    uint64_t w[5], h = 0x9e3779b97f4a7c15ULL;
    memcpy(w, k, sizeof w);
    for (int i = 0; i < 5; i++)
        h = mix64(h ^ w[i]) + (uint64_t)i;
    return h;
}
#else
/* An IPv4 key is hashed packed into two words (both addresses, then ports, protocol and version):
 * 3 compression rounds instead of 5 for the common case.  The version is in the message, so the
 * packed and the full form never meet; equal keys still decide a match (key_eq). */
static uint64_t key_hash(const uint64_t v[4], const struct ns_key *k)
{
    uint64_t w[5];
    int words;
    if (k->ip_version == 4) {
        uint32_t a, b;
        memcpy(&a, k->a, 4);
        memcpy(&b, k->b, 4);
        w[0] = (uint64_t)a | (uint64_t)b << 32;
        w[1] = (uint64_t)k->pa | (uint64_t)k->pb << 16 | (uint64_t)k->proto << 32 | (uint64_t)4 << 40;
        words = 2;
    } else {
        memcpy(w, k, sizeof w);
        words = 5;
    }
    uint64_t v0 = v[0], v1 = v[1], v2 = v[2], v3 = v[3];
    for (int i = 0; i < words; i++) {
        v3 ^= w[i];
        SIPROUND(v0, v1, v2, v3);
        v0 ^= w[i];
    }
    const uint64_t last = (uint64_t)(8 * words) << 56; /* length byte, no tail: whole words */
    v3 ^= last;
    SIPROUND(v0, v1, v2, v3);
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}
#endif

static void hash_init(uint64_t v[4], const uint64_t key[2])
{
    v[0] = key[0] ^ 0x736f6d6570736575ULL;
    v[1] = key[1] ^ 0x646f72616e646f6dULL;
    v[2] = key[0] ^ 0x6c7967656e657261ULL;
    v[3] = key[1] ^ 0x7465646279746573ULL;
}

/* The run's secret key: the kernel's random bytes (a weaker mix of clock and addresses if the
 * call fails, which it does not on Linux >= 3.17). */
static void random_key(uint64_t key[2])
{
    if (getrandom(key, 2 * sizeof key[0], 0) == (ssize_t)(2 * sizeof key[0]))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    key[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)key;
    key[1] = (uint64_t)ts.tv_sec * 0xc4ceb9fe1a85ec53ULL ^ (uint64_t)getpid();
}

_Static_assert(sizeof(struct ns_key) == 40, "ns_key is hashed as five 64-bit words");

/* 16-byte addresses: equality and memcmp order, without a libc call per packet. */
static int addr_eq(const uint8_t *x, const uint8_t *y)
{
    uint64_t a[2], b[2];
    memcpy(a, x, 16);
    memcpy(b, y, 16);
    return ((a[0] ^ b[0]) | (a[1] ^ b[1])) == 0;
}

static int addr_cmp(const uint8_t *x, const uint8_t *y)
{
    uint64_t a[2], b[2];
    memcpy(a, x, 16);
    memcpy(b, y, 16);
    for (int i = 0; i < 2; i++) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint64_t u = __builtin_bswap64(a[i]), v = __builtin_bswap64(b[i]);
#else
        uint64_t u = a[i], v = b[i];
#endif
        if (u != v)
            return u < v ? -1 : 1;
    }
    return 0;
}

/* Java compares addresses as signed bytes (cic2017 key order). */
static int java_cmp(const uint8_t *x, const uint8_t *y)
{
    for (int i = 0; i < 16; i++)
        if (x[i] != y[i])
            return (int8_t)x[i] < (int8_t)y[i] ? -1 : 1;
    return 0;
}

static void make_key(const struct ns_meter *m, const struct ns_packet *p, struct ns_key *k)
{
    memset(k, 0, sizeof *k);
    k->ip_version = p->ip_version;
    k->proto = (m->q.proto_zero_other && p->proto != 6 && p->proto != 17) ? 0 : p->proto;
    int swap;
    if (m->q.java_key) {
        /* ports follow their address; equal addresses keep packet order (one flow per direction) */
        swap = java_cmp(p->src, p->dst) > 0;
    } else {
        int c = addr_cmp(p->src, p->dst);
        swap = c > 0 || (c == 0 && p->sport > p->dport);
    }
    memcpy(k->a, swap ? p->dst : p->src, 16);
    memcpy(k->b, swap ? p->src : p->dst, 16);
    k->pa = swap ? p->dport : p->sport;
    k->pb = swap ? p->sport : p->dport;
}

static void lru_unlink(struct ns_meter *m, uint32_t i)
{
    struct entry *e = &m->pool[i];
    if (e->prev != NIL)
        m->pool[e->prev].next = e->next;
    else
        m->lru_head = e->next;
    if (e->next != NIL)
        m->pool[e->next].prev = e->prev;
    else
        m->lru_tail = e->prev;
    e->prev = e->next = NIL;
}

static void lru_append(struct ns_meter *m, uint32_t i)
{
    struct entry *e = &m->pool[i];
    e->prev = m->lru_tail;
    e->next = NIL;
    if (m->lru_tail != NIL)
        m->pool[m->lru_tail].next = i;
    else
        m->lru_head = i;
    m->lru_tail = i;
}

/* Table memory.  In the optimised build it comes straight from the kernel: it grows by remapping
 * (no copy), asks for transparent huge pages (a flood that grows the table to 100 MB takes ~50
 * page faults instead of ~25,000) and goes back to the kernel at once when freed.  Sanitizer
 * builds use malloc, so AddressSanitizer still guards every entry. */
#if defined(__SANITIZE_ADDRESS__)
#define NS_TABLE_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define NS_TABLE_MALLOC 1
#endif
#endif

#ifdef NS_TABLE_MALLOC
static void *big_alloc(size_t bytes) { return malloc(bytes); }
static void *big_resize(void *p, size_t old, size_t bytes)
{
    (void)old;
    return realloc(p, bytes);
}
static void big_free(void *p, size_t bytes)
{
    (void)bytes;
    free(p);
}
#else
static void *big_alloc(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, bytes, MADV_HUGEPAGE); /* a hint: ignored where huge pages are off */
    return p;
}

static void *big_resize(void *p, size_t old, size_t bytes)
{
    void *q = mremap(p, old, bytes, MREMAP_MAYMOVE);
    if (q == MAP_FAILED)
        return NULL;
    madvise(q, bytes, MADV_HUGEPAGE);
    return q;
}

static void big_free(void *p, size_t bytes)
{
    if (p)
        munmap(p, bytes);
}
#endif

static uint64_t table_bytes(const struct ns_meter *m)
{
    return (uint64_t)m->capacity * sizeof(struct entry) + (uint64_t)m->nslots * sizeof(uint64_t);
}

/* After the table grew: remember its largest size. */
static void note_size(struct ns_meter *m)
{
    uint64_t b = table_bytes(m);
    if (b > m->stats.table_peak_bytes)
        m->stats.table_peak_bytes = b;
}

static void slot_insert(uint64_t *slots, uint32_t mask, uint32_t tag, uint32_t idx)
{
    uint32_t i = tag & mask;
    while (slots[i] != EMPTY)
        i = (i + 1) & mask;
    slots[i] = SLOT(tag, idx);
}

static int grow_slots(struct ns_meter *m)
{
    if (m->nslots > UINT32_MAX / 2)
        return -1;
    uint32_t n = m->nslots * 2;
    uint64_t *b = big_alloc(sizeof *b * n);
    if (!b)
        return -1;
    for (uint32_t i = 0; i < n; i++)
        b[i] = EMPTY;
    /* from the old index, not the entries: a sequential read instead of a cache miss per flow */
    for (uint32_t i = 0; i < m->nslots; i++)
        if (m->slots[i] != EMPTY)
            slot_insert(b, n - 1, SLOT_TAG(m->slots[i]), SLOT_IDX(m->slots[i]));
    big_free(m->slots, sizeof *m->slots * m->nslots);
    m->slots = b;
    m->nslots = n;
    note_size(m);
    return 0;
}

/* Remove entry idx from the index, shifting later members of its probe run back. */
static void slot_remove(struct ns_meter *m, uint32_t tag, uint32_t idx)
{
    uint32_t mask = m->nslots - 1, i = tag & mask;
    while (m->slots[i] != SLOT(tag, idx))
        i = (i + 1) & mask;
    for (;;) {
        m->slots[i] = EMPTY;
        uint32_t k = i;
        for (;;) {
            k = (k + 1) & mask;
            if (m->slots[k] == EMPTY)
                return;
            uint32_t home = SLOT_TAG(m->slots[k]) & mask;
            /* the entry stays if its home lies cyclically in (i, k] */
            if (i <= k ? (i < home && home <= k) : (i < home || home <= k))
                continue;
            break;
        }
        m->slots[i] = m->slots[k];
        i = k;
    }
}

/* The table had to grow: if that undoes a recent release, wait longer before the next one. */
static void note_regrowth(struct ns_meter *m, uint64_t now_us)
{
    if (m->released_at_us == 0 || m->capacity < m->released_from / 2)
        return;
    uint64_t since = now_us > m->released_at_us ? now_us - m->released_at_us : 0;
    if (since < 4 * m->release_hold_us && m->release_hold_us < MAX_HOLD_TIMEOUTS * m->timeout_us)
        m->release_hold_us *= 2;
    m->released_at_us = 0;
}

static uint32_t alloc_entry(struct ns_meter *m, uint64_t now_us)
{
    if (m->free_head != NIL) {
        uint32_t i = m->free_head;
        m->free_head = m->pool[i].hnext;
        return i;
    }
    if (m->used_top == m->capacity) {
        uint64_t cap = (uint64_t)m->capacity * 2;
        if (cap > NIL - 1)
            return NIL;
        struct entry *p = big_resize(m->pool, sizeof *p * m->capacity, sizeof *p * cap);
        if (!p)
            return NIL;
        m->pool = p;
        m->capacity = (uint32_t)cap;
        note_size(m);
        note_regrowth(m, now_us);
    }
    return m->used_top++;
}

static int key_eq(const struct ns_key *x, const struct ns_key *y)
{
    uint64_t a[5], b[5];
    memcpy(a, x, sizeof a);
    memcpy(b, y, sizeof b);
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4])) == 0;
}

static uint32_t lookup(struct ns_meter *m, const struct ns_key *k, uint32_t tag)
{
    uint32_t mask = m->nslots - 1, found = NIL, probes = 1;
    for (uint32_t i = tag & mask;; i = (i + 1) & mask, probes++) {
        uint64_t s = m->slots[i];
        if (s == EMPTY)
            break;
        if (SLOT_TAG(s) == tag && key_eq(&m->pool[SLOT_IDX(s)].key, k)) {
            found = SLOT_IDX(s);
            break;
        }
    }
    if (probes > m->stats.hash_probe_max)
        m->stats.hash_probe_max = probes;
    return found;
}

/* Write the flow's row (if it has enough packets), unlink and free the entry. */
static void finish(struct ns_meter *m, uint32_t i, int evicted)
{
    struct entry *e = &m->pool[i];
    __builtin_prefetch(&m->slots[e->tag & (m->nslots - 1)], 1); /* for slot_remove, after the row */
    if (ns_flow_packets(&e->flow) >= (uint64_t)m->q.min_packets) {
        char *row = m->cfg.row_space ? m->cfg.row_space(m->ctx, NS_ROW_BOUND) : NULL;
        size_t size = NS_ROW_BOUND;
        if (!row) {
            row = m->row;
            size = sizeof m->row;
        }
        int n = ns_flow_format(&e->flow, &m->q, m->cfg.cic2017_header, &m->row_memo, row, size);
        if (n > 0) {
            m->emit(m->ctx, row, (size_t)n);
            m->stats.flows_emitted++;
            m->stats.flows_evicted += (uint64_t)evicted;
        } else {
            m->stats.flows_unformatted++;
        }
    } else {
        m->stats.flows_below_min++;
    }
    slot_remove(m, e->tag, i);
    lru_unlink(m, i);
    e->hnext = m->free_head;
    m->free_head = i;
    m->stats.active_flows--;
}

struct ns_meter *ns_meter_new(const struct ns_meter_config *cfg, ns_emit_fn emit, void *ctx)
{
    struct ns_meter *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cfg = *cfg;
    if (m->cfg.max_flows == 0)
        m->cfg.max_flows = 2000000;
    ns_quirks_for_profile(cfg->profile, &m->q);
    m->timeout_us = (uint64_t)(cfg->flow_timeout_s * 1e6 + 0.5);
    m->activity_us = (uint64_t)(cfg->activity_timeout_s * 1e6 + 0.5);
    m->linger_us = (uint64_t)(m->q.linger_s * 1e6 + 0.5);
    m->release_hold_us = m->timeout_us ? m->timeout_us : 1;
    m->emit = emit;
    m->ctx = ctx;
    uint64_t key[2] = {cfg->hash_key[0], cfg->hash_key[1]};
    if (!cfg->fixed_hash_key)
        random_key(key);
    hash_init(m->hash_state, key);
    m->capacity = MIN_CAPACITY;
    m->nslots = MIN_SLOTS;
    m->pool = big_alloc(sizeof *m->pool * m->capacity);
    m->slots = big_alloc(sizeof *m->slots * m->nslots);
    if (!m->pool || !m->slots) {
        ns_meter_free(m);
        return NULL;
    }
    for (uint32_t i = 0; i < m->nslots; i++)
        m->slots[i] = EMPTY;
    m->free_head = m->lru_head = m->lru_tail = NIL;
    note_size(m);
    return m;
}

void ns_meter_free(struct ns_meter *m)
{
    if (!m)
        return;
    big_free(m->pool, sizeof *m->pool * m->capacity);
    big_free(m->slots, sizeof *m->slots * m->nslots);
    free(m);
}

/* After a flood.  A large table (SHRINK_MIN_CAPACITY entries, ~50 MB, or more) with fewer than
 * 1/SHRINK_FACTOR of its entries in use for a whole flow timeout is compacted: its live entries move,
 * in LRU order, to the front of the pool and the index is rebuilt.  New flows then take fresh entries
 * in arrival order, so expiring them (oldest first) reads memory in order; a pool left fragmented
 * by the flood costs ~30% more time on the next one.  The memory itself goes back to the kernel
 * once the table has stayed that empty for release_hold: one flow timeout at first.  A release
 * that proves wasted (the table grows back to half the released size within 4 holds: floods
 * that come back, e.g. a scan every few minutes) doubles the hold, up to MAX_HOLD_TIMEOUTS flow
 * timeouts, so a periodic flood does not pay for fresh, zeroed pages every time; the memory goes
 * back once the floods stop for that long. */

/* Move the live entries to the front of the pool in LRU order, rebuild the index (nslots slots,
 * allocated by the caller or the current one).  Returns -1, changing nothing, without memory. */
static int compact_into(struct ns_meter *m, uint64_t *slots, uint32_t nslots)
{
    uint32_t active = (uint32_t)m->stats.active_flows;
    struct entry *live = malloc(sizeof *live * (active ? active : 1));
    if (!live)
        return -1;
    uint32_t j = 0;
    for (uint32_t i = m->lru_head; i != NIL; i = m->pool[i].next)
        live[j++] = m->pool[i];
    for (uint32_t i = 0; i < nslots; i++)
        slots[i] = EMPTY;
    for (uint32_t k = 0; k < j; k++) {
        m->pool[k] = live[k];
        m->pool[k].prev = k ? k - 1 : NIL;
        m->pool[k].next = k + 1 < j ? k + 1 : NIL;
        slot_insert(slots, nslots - 1, m->pool[k].tag, k);
    }
    free(live);
    if (slots != m->slots) {
        big_free(m->slots, sizeof *m->slots * m->nslots);
        m->slots = slots;
        m->nslots = nslots;
    }
    m->used_top = j;
    m->free_head = NIL;
    m->lru_head = j ? 0 : NIL;
    m->lru_tail = j ? j - 1 : NIL;
    return 0;
}

/* Compact into a pool and an index sized for the live flows and give the rest back. */
static void release(struct ns_meter *m, uint64_t now_us)
{
    uint32_t active = (uint32_t)m->stats.active_flows, cap = MIN_CAPACITY, nslots = MIN_SLOTS;
    while (cap < (uint64_t)active * 2)
        cap *= 2;
    while ((uint64_t)nslots < ((uint64_t)active + 1) * 2)
        nslots *= 2;
    uint64_t *slots = big_alloc(sizeof *slots * nslots);
    if (!slots || compact_into(m, slots, nslots) != 0) { /* no memory to move into: keep the table */
        big_free(slots, sizeof *slots * nslots);
        return;
    }
    struct entry *pool = big_resize(m->pool, sizeof *pool * m->capacity, sizeof *pool * cap);
    if (pool) { /* shrinking keeps the front, where the live entries now are */
        m->released_from = m->capacity;
        m->released_at_us = now_us;
        m->pool = pool;
        m->capacity = cap;
    }
}

/* Expire flows idle longer than the flow timeout (oldest first). */
void ns_meter_tick(struct ns_meter *m, uint64_t now_us)
{
    while (m->lru_head != NIL) {
        const struct ns_flow *f = &m->pool[m->lru_head].flow;
        if (now_us <= f->last_us || now_us - f->last_us <= m->timeout_us)
            break;
        finish(m, m->lru_head, 0);
    }
    if (m->capacity >= SHRINK_MIN_CAPACITY && m->stats.active_flows < m->capacity / SHRINK_FACTOR) {
        if (m->oversized_since_us == 0 || now_us < m->oversized_since_us) {
            m->oversized_since_us = now_us;
            m->compacted = 0;
        } else if (now_us - m->oversized_since_us >= m->release_hold_us) { /* the floods are over */
            release(m, now_us);
            m->oversized_since_us = 0;
        } else if (!m->compacted && now_us - m->oversized_since_us >= m->timeout_us) {
            compact_into(m, m->slots, m->nslots); /* this flood is over, not pausing */
            m->compacted = 1;
        }
    } else {
        m->oversized_since_us = 0;
    }
    if (m->lru_head != NIL) { /* the next packet's tick looks at it again */
        __builtin_prefetch(&m->pool[m->lru_head].key);
        __builtin_prefetch(&m->pool[m->lru_head].flow.last_us);
    }
}

void ns_meter_flush(struct ns_meter *m)
{
    while (m->lru_head != NIL)
        finish(m, m->lru_head, 0);
}

void ns_meter_get_stats(const struct ns_meter *m, struct ns_meter_stats *out)
{
    *out = m->stats;
    out->table_bytes = table_bytes(m);
    /* an entry plus its share of the index at the current table size */
    out->bytes_per_flow = sizeof(struct entry) +
                          (uint64_t)m->nslots * sizeof(uint64_t) / (m->capacity ? m->capacity : 1);
}

static int is_forward(const struct ns_meter *m, const struct ns_flow *f, const struct ns_packet *p)
{
    if (m->q.java_key)
        return addr_eq(p->src, f->src);
    return addr_eq(p->src, f->src) && p->sport == f->sport;
}

/* TCP teardown (engelen/clean): RST, or FIN both ways and the ACK of the second FIN. */
static void tcp_state(struct ns_flow *f, const struct ns_packet *p, int fwd)
{
    uint8_t fl = p->tcp_flags;
    if (fl & NS_TH_RST) {
        f->closed = 1;
        f->closed_us = f->last_us;
        return;
    }
    if (f->second_fin_fwd >= 0 && (fl & NS_TH_ACK) && fwd != f->second_fin_fwd) {
        f->closed = 1;
        f->closed_us = f->last_us;
        return;
    }
    if (fl & NS_TH_FIN) {
        if (fwd)
            f->fin_fwd = 1;
        else
            f->fin_bwd = 1;
        if (f->fin_fwd && f->fin_bwd && f->second_fin_fwd < 0)
            f->second_fin_fwd = (int8_t)fwd;
    }
}

static int ends_after_close(const struct ns_meter *m, const struct ns_flow *f, const struct ns_packet *p,
                            uint64_t ts)
{
    int syn = (p->tcp_flags & NS_TH_SYN) != 0;
    if (m->q.absorb_until_syn)
        return syn;
    return (syn && !(p->tcp_flags & NS_TH_ACK)) || ts - f->closed_us > m->linger_us;
}

static uint32_t key_tag(const struct ns_meter *m, const struct ns_key *k)
{
    return (uint32_t)(key_hash(m->hash_state, k) >> 32);
}

/* One packet whose key and tag are known. */
/* ns_meter_tick before every packet, inline when it has nothing to do (the usual case): the oldest
 * flow has not expired and the table is not far too big. */
static inline void tick(struct ns_meter *m, uint64_t now_us)
{
    int expired = 0;
    if (m->lru_head != NIL) {
        uint64_t last = m->pool[m->lru_head].flow.last_us;
        expired = now_us > last && now_us - last > m->timeout_us;
    }
    if (expired || m->oversized_since_us != 0 ||
        (m->capacity >= SHRINK_MIN_CAPACITY && m->stats.active_flows < m->capacity / SHRINK_FACTOR))
        ns_meter_tick(m, now_us);
}

static void packet_keyed(struct ns_meter *m, const struct ns_packet *pkt, const struct ns_key *key,
                         uint32_t tag)
{
    const struct ns_key k = *key;
    tick(m, pkt->ts_us);
    uint32_t i = lookup(m, &k, tag);
    int inherit = 0, fwd_is_src = 1;
    struct {
        uint8_t src[16], dst[16];
        uint16_t sport, dport;
    } parent = {{0}, {0}, 0, 0}; /* the ended flow's direction, for an active-timeout successor */
    if (i != NIL) {
        struct ns_flow *f = &m->pool[i].flow;
        uint64_t ts = pkt->ts_us > f->last_us ? pkt->ts_us : f->last_us;
        int end = 0;
        if (!m->q.java_key && ts - f->last_us > m->timeout_us) {
            end = 1; /* idle: a fresh flow */
        } else if (pkt->ts_us > f->start_us && pkt->ts_us - f->start_us > m->timeout_us) {
            end = inherit = 1; /* active timeout: same conversation, same direction */
        } else if (f->closed && ends_after_close(m, f, pkt, ts)) {
            end = 1;
        }
        if (end) {
            if (inherit) {
                memcpy(parent.src, f->src, 16);
                memcpy(parent.dst, f->dst, 16);
                parent.sport = f->sport;
                parent.dport = f->dport;
            }
            finish(m, i, 0);
            i = NIL;
        }
    }
    int first = i == NIL;
    if (first) {
        if (m->stats.active_flows >= m->cfg.max_flows && m->lru_head != NIL)
            finish(m, m->lru_head, 1);
        /* load at most 1/2; if the index cannot grow, it can still fill up to 3/4 */
        if ((uint64_t)(m->stats.active_flows + 1) * 2 > m->nslots && grow_slots(m) != 0 &&
            (uint64_t)(m->stats.active_flows + 1) * 4 > (uint64_t)m->nslots * 3) {
            m->stats.flows_dropped_nomem++;
            return;
        }
        i = alloc_entry(m, pkt->ts_us);
        if (i == NIL) {
            m->stats.flows_dropped_nomem++;
            return;
        }
        struct entry *e = &m->pool[i];
        e->key = k;
        e->tag = tag;
        slot_insert(m->slots, m->nslots - 1, tag, i);
        e->prev = e->next = NIL;
        lru_append(m, i);
        if (!inherit && m->q.swap_synack && pkt->proto == 6 &&
            (pkt->tcp_flags & (NS_TH_SYN | NS_TH_ACK)) == (NS_TH_SYN | NS_TH_ACK))
            fwd_is_src = 0; /* SYN+ACK seen first: the client is forward */
        ns_flow_start(&e->flow, pkt, fwd_is_src, &m->q);
        if (inherit) {
            memcpy(e->flow.src, parent.src, 16);
            memcpy(e->flow.dst, parent.dst, 16);
            e->flow.sport = parent.sport;
            e->flow.dport = parent.dport;
        }
        if (++m->stats.active_flows > m->stats.max_active_flows)
            m->stats.max_active_flows = m->stats.active_flows;
    } else {
        lru_unlink(m, i);
        lru_append(m, i);
    }
    struct ns_flow *f = &m->pool[i].flow;
    /* cic2017: the first packet is forward by construction, even when the flow inherited a
     * direction; later ones by source address */
    int fwd = (first && m->q.java_key) ? 1 : is_forward(m, f, pkt);
    ns_flow_add(f, pkt, fwd, first, &m->q, m->activity_us);
    if (m->q.close_on_first_fin) {
        if (!first && (pkt->tcp_flags & NS_TH_FIN))
            finish(m, i, 0);
    } else if (pkt->proto == 6 && !f->closed) {
        tcp_state(f, pkt, fwd);
    }
}

void ns_meter_packet(struct ns_meter *m, const struct ns_packet *pkt)
{
    struct ns_key k;
    make_key(m, pkt, &k);
    uint32_t tag = key_tag(m, &k);
    __builtin_prefetch(&m->slots[tag & (m->nslots - 1)]); /* loads while expired flows are written */
    packet_keyed(m, pkt, &k, tag);
}

/* The index slot of a key is a cache miss on a large table, and so is its entry.  A batch hides
 * both: keys and hashes of all packets first, their home slots prefetched; then while packet i is
 * metered, the slot of packet i + ENTRY_AHEAD is read (already in cache) and its entry prefetched.
 * The packets are still metered one by one in order, so the result is the same as one at a time. */
#define ENTRY_AHEAD 4

static void prefetch_entry(const struct ns_meter *m, uint32_t tag)
{
    uint64_t s = m->slots[tag & (m->nslots - 1)];
    if (s != EMPTY && SLOT_TAG(s) == tag) {
        const struct entry *e = &m->pool[SLOT_IDX(s)];
        __builtin_prefetch(&e->key);
        __builtin_prefetch(&e->flow.start_us, 1);
    }
}

void ns_meter_packets(struct ns_meter *m, const struct ns_packet *pkts, size_t n)
{
    struct ns_key keys[NS_METER_BATCH];
    uint32_t tags[NS_METER_BATCH];
    while (n > 0) {
        size_t b = n < NS_METER_BATCH ? n : NS_METER_BATCH;
        for (size_t i = 0; i < b; i++) {
            make_key(m, &pkts[i], &keys[i]);
            tags[i] = key_tag(m, &keys[i]);
            __builtin_prefetch(&m->slots[tags[i] & (m->nslots - 1)]);
        }
        for (size_t i = 0; i < b && i < ENTRY_AHEAD; i++)
            prefetch_entry(m, tags[i]);
        for (size_t i = 0; i < b; i++) {
            if (i + ENTRY_AHEAD < b)
                prefetch_entry(m, tags[i + ENTRY_AHEAD]);
            packet_keyed(m, &pkts[i], &keys[i], tags[i]);
        }
        pkts += b;
        n -= b;
    }
}
