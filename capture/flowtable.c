/* flowtable.c - the flow engine: a growing hash table of bidirectional flows with an LRU list.
 *
 * Entries live in one pool addressed by 32-bit indices (stable across growth); buckets chain
 * entries by index.  The LRU list is ordered by last packet, so idle flows expire from its head
 * and, when --max-flows is reached, the least recently seen flow is emitted early (evicted).
 */
#include <stdlib.h>
#include <string.h>

#include "flow.h"
#include "meter.h"

#define NIL UINT32_MAX
#define ROW_MAX 8192

struct ns_key {
    uint8_t a[16], b[16];
    uint16_t pa, pb;
    uint8_t proto, ip_version;
    uint8_t pad_[2];
};

struct entry {
    struct ns_flow flow;
    struct ns_key key;
    uint64_t hash;
    uint32_t hnext, prev, next; /* bucket chain, LRU links; hnext doubles as free-list link */
};

struct ns_meter {
    struct ns_meter_config cfg;
    struct ns_quirks q;
    uint64_t timeout_us, activity_us, linger_us;
    ns_emit_fn emit;
    void *ctx;
    struct entry *pool;
    uint32_t capacity, free_head, used_top;
    uint32_t *buckets;
    uint32_t nbuckets; /* power of two */
    uint32_t lru_head, lru_tail;
    struct ns_meter_stats stats;
    char row[ROW_MAX];
};

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t key_hash(const struct ns_key *k)
{
    uint64_t w[5], h = 0x9e3779b97f4a7c15ULL;
    memcpy(w, k, sizeof w);
    for (int i = 0; i < 5; i++)
        h = mix64(h ^ w[i]) + (uint64_t)i;
    return h;
}

_Static_assert(sizeof(struct ns_key) == 40, "ns_key is hashed as five 64-bit words");

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
        int c = memcmp(p->src, p->dst, 16);
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

static int grow_buckets(struct ns_meter *m)
{
    uint32_t n = m->nbuckets * 2;
    uint32_t *b = malloc(sizeof *b * n);
    if (!b)
        return -1;
    for (uint32_t i = 0; i < n; i++)
        b[i] = NIL;
    for (uint32_t i = m->lru_head; i != NIL; i = m->pool[i].next) {
        uint32_t slot = (uint32_t)(m->pool[i].hash & (n - 1));
        m->pool[i].hnext = b[slot];
        b[slot] = i;
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
    return 0;
}

static uint32_t alloc_entry(struct ns_meter *m)
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
        struct entry *p = realloc(m->pool, sizeof *p * cap);
        if (!p)
            return NIL;
        m->pool = p;
        m->capacity = (uint32_t)cap;
    }
    return m->used_top++;
}

static uint32_t lookup(const struct ns_meter *m, const struct ns_key *k, uint64_t h)
{
    for (uint32_t i = m->buckets[h & (m->nbuckets - 1)]; i != NIL; i = m->pool[i].hnext)
        if (m->pool[i].hash == h && memcmp(&m->pool[i].key, k, sizeof *k) == 0)
            return i;
    return NIL;
}

/* Write the flow's row (if it has enough packets), unlink and free the entry. */
static void finish(struct ns_meter *m, uint32_t i, int evicted)
{
    struct entry *e = &m->pool[i];
    if (ns_flow_packets(&e->flow) >= (uint64_t)m->q.min_packets) {
        int n = ns_flow_format(&e->flow, &m->q, m->cfg.cic2017_header, m->row, sizeof m->row);
        if (n > 0) {
            m->emit(m->ctx, m->row, (size_t)n);
            m->stats.flows_emitted++;
            m->stats.flows_evicted += (uint64_t)evicted;
        }
    } else {
        m->stats.flows_below_min++;
    }
    uint32_t *link = &m->buckets[e->hash & (m->nbuckets - 1)];
    while (*link != i)
        link = &m->pool[*link].hnext;
    *link = e->hnext;
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
    m->emit = emit;
    m->ctx = ctx;
    m->capacity = 1024;
    m->nbuckets = 2048;
    m->pool = malloc(sizeof *m->pool * m->capacity);
    m->buckets = malloc(sizeof *m->buckets * m->nbuckets);
    if (!m->pool || !m->buckets) {
        ns_meter_free(m);
        return NULL;
    }
    for (uint32_t i = 0; i < m->nbuckets; i++)
        m->buckets[i] = NIL;
    m->free_head = m->lru_head = m->lru_tail = NIL;
    return m;
}

void ns_meter_free(struct ns_meter *m)
{
    if (!m)
        return;
    free(m->pool);
    free(m->buckets);
    free(m);
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
}

void ns_meter_flush(struct ns_meter *m)
{
    while (m->lru_head != NIL)
        finish(m, m->lru_head, 0);
}

void ns_meter_get_stats(const struct ns_meter *m, struct ns_meter_stats *out)
{
    *out = m->stats;
    /* an entry plus its share of the bucket array at the current table size */
    out->bytes_per_flow = sizeof(struct entry) +
                          (uint64_t)m->nbuckets * sizeof(uint32_t) / (m->capacity ? m->capacity : 1);
}

static int is_forward(const struct ns_meter *m, const struct ns_flow *f, const struct ns_packet *p)
{
    if (m->q.java_key)
        return memcmp(p->src, f->src, 16) == 0;
    return memcmp(p->src, f->src, 16) == 0 && p->sport == f->sport;
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

void ns_meter_packet(struct ns_meter *m, const struct ns_packet *pkt)
{
    struct ns_key k;
    make_key(m, pkt, &k);
    uint64_t h = key_hash(&k);
    ns_meter_tick(m, pkt->ts_us);
    uint32_t i = lookup(m, &k, h);
    int inherit = 0, fwd_is_src = 1;
    struct ns_flow parent;
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
            parent = *f;
            finish(m, i, 0);
            i = NIL;
        }
    }
    int first = i == NIL;
    if (first) {
        if (m->stats.active_flows >= m->cfg.max_flows && m->lru_head != NIL)
            finish(m, m->lru_head, 1);
        if ((uint64_t)(m->stats.active_flows + 1) * 4 > (uint64_t)m->nbuckets * 3)
            grow_buckets(m); /* on failure the chains just get longer */
        i = alloc_entry(m);
        if (i == NIL) {
            m->stats.flows_dropped_nomem++;
            return;
        }
        struct entry *e = &m->pool[i];
        e->key = k;
        e->hash = h;
        uint32_t slot = (uint32_t)(h & (m->nbuckets - 1));
        e->hnext = m->buckets[slot];
        m->buckets[slot] = i;
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
