/*
 * nfkit native store: the per-source part of a summary, kept in C across lanes.
 *
 * Included by _scan.c (one library, one translation unit). Lanes (scanner_t) move their
 * per-source tables here (nfs_store_add) instead of into Python dicts, so a lane can empty its
 * tables often without a Python loop over every (source, key) pair; Python turns the store
 * into SourceStats and activity arrays once, at the end (nfs_store_take).
 *
 * Per source (numbered by its address text, as the summary writes it):
 *   - packets, error (see Summary.floor), first and last time;
 *   - counters: sorted entries ``key id << 40 | count``; a key id stands for one
 *     (field, text) pair that Python numbers (origin "upstream", port "tcp/22", ...);
 *   - activity: sorted distinct keys (slot << 44 | destination << 18 | port), in 32 bits
 *     while the source's slot, destination and port numbers are small enough (narrow()).
 * Past a limit the least busy sources are dropped as Summary.bound() drops them
 * (nfs_store_bound); the numbers of the others then change (``epoch``), and each lane looks
 * its sources up again by their text.
 */

#define COUNT_BITS 40
#define COUNT_MAX ((1ull << COUNT_BITS) - 1)
#define KEY_LIMIT (1u << 24)

typedef struct {
    uint64_t *e; /* activity of a narrow vector: uint32_t items (see narrow()) */
    uint32_t n;
    uint32_t cap : 31;
    uint32_t wide : 1; /* activity only: 64-bit keys */
} vec_t;
#define VEC_LIMIT (1u << 31)

typedef struct {
    strtab_t addrs; /* address text -> number */
    size_t cap;
    uint64_t *packets, *error;
    double *first, *last;
    vec_t *counts, *act;
    uint64_t floor, dropped, epoch;
} store_t;

void *nfs_store_new(void) { return calloc(1, sizeof(store_t)); }

static void store_empty(store_t *st) {
    for (size_t i = 0; i < st->addrs.n; i++) {
        free(st->counts[i].e);
        free(st->act[i].e);
    }
    strtab_free(&st->addrs);
    free(st->packets);
    free(st->error);
    free(st->first);
    free(st->last);
    free(st->counts);
    free(st->act);
    st->packets = st->error = NULL;
    st->first = st->last = NULL;
    st->counts = st->act = NULL;
    st->cap = 0;
    st->epoch++;
}

void nfs_store_free(void *p) {
    store_t *st = p;
    if (!st) return;
    store_empty(st);
    free(st);
}

/* The number of address ``p[0:n]``, added (with error = floor) if new; NONE: no memory. */
static uint32_t store_id(store_t *st, const char *p, size_t n) {
    size_t before = st->addrs.n;
    uint32_t id = strtab_id(&st->addrs, p, n);
    if (id == NONE || st->addrs.n == before) return id;
    if (id >= st->cap) {
        size_t cap = st->cap, c;
        c = cap; if (grow((void **)&st->packets, &c, id + 1, sizeof *st->packets)) goto fail;
        c = cap; if (grow((void **)&st->error, &c, id + 1, sizeof *st->error)) goto fail;
        c = cap; if (grow((void **)&st->first, &c, id + 1, sizeof *st->first)) goto fail;
        c = cap; if (grow((void **)&st->last, &c, id + 1, sizeof *st->last)) goto fail;
        c = cap; if (grow((void **)&st->counts, &c, id + 1, sizeof *st->counts)) goto fail;
        c = cap; if (grow((void **)&st->act, &c, id + 1, sizeof *st->act)) goto fail;
        st->cap = c;
    }
    st->packets[id] = 0;
    st->error[id] = st->floor;
    st->first[id] = st->last[id] = NAN;
    memset(&st->counts[id], 0, sizeof st->counts[id]);
    memset(&st->act[id], 0, sizeof st->act[id]);
    return id;
fail:
    st->addrs.n = before; /* forget it again: its arrays could not grow */
    strtab_rehash(&st->addrs, st->addrs.mask + 1);
    return NONE;
}

/* Merge sorted ``add`` (n entries, each key at most once) into ``v``, in place from the back
 * (no second buffer): counters when ``sum`` (equal keys add up; -2 past COUNT_MAX), else
 * distinct keys. */
static int vec_merge(vec_t *v, const uint64_t *add, size_t n, int sum) {
    if (!n) return 0;
    size_t total = (size_t)v->n + n;
    if (total >= VEC_LIMIT) return -1;
    if (total > v->cap) { /* room for a few more flushes: fewer moves */
        size_t cap = total + total / 8 + 4;
        if (cap >= VEC_LIMIT) cap = total;
        uint64_t *e = realloc(v->e, cap * sizeof *e);
        if (!e) return -1;
        v->e = e;
        v->cap = (uint32_t)cap;
    }
    uint64_t *e = v->e;
    size_t i = v->n, j = n, k = total; /* write below k, read below i and j */
    while (i && j) {
        uint64_t a = e[i - 1], b = add[j - 1];
        uint64_t ka = sum ? a >> COUNT_BITS : a, kb = sum ? b >> COUNT_BITS : b;
        if (ka > kb) {
            e[--k] = a;
            i--;
        } else if (kb > ka) {
            e[--k] = b;
            j--;
        } else {
            if (sum) {
                uint64_t c = (a & COUNT_MAX) + (b & COUNT_MAX);
                if (c > COUNT_MAX) return -2;
                e[--k] = ka << COUNT_BITS | c;
            } else {
                e[--k] = a;
            }
            i--;
            j--;
        }
    }
    while (j) e[--k] = add[--j];
    /* what is left of the old entries (i of them) already sits at e[0:i]; the rest at e[k:] */
    if (k > i) memmove(e + i, e + k, (total - k) * sizeof *e);
    v->n = (uint32_t)(i + total - k);
    return 0;
}

/* Activity keys of 32 bits: slot number < 2**14, destination < 2**6, port < 2**12, in the
 * same order as the 64-bit keys. A source's keys stay narrow until one does not fit. */
static inline int fits(uint64_t k) {
    return (k >> K_SLOT_SHIFT) < (1u << 14) && ((k >> K_DST_SHIFT) & K_DST_MASK) < (1u << 6) &&
           (k & K_PORT_MASK) < (1u << 12);
}

static inline uint32_t narrow(uint64_t k) {
    return (uint32_t)((k >> K_SLOT_SHIFT) << 18 | ((k >> K_DST_SHIFT) & K_DST_MASK) << 12 |
                      (k & K_PORT_MASK));
}

static inline uint64_t widen(uint32_t x) {
    return (uint64_t)(x >> 18) << K_SLOT_SHIFT | (uint64_t)((x >> 12) & 63) << K_DST_SHIFT |
           (x & 4095);
}

/* Turn a narrow activity vector into 64-bit keys. */
static int act_widen(vec_t *v) {
    uint64_t *w = malloc((v->n ? v->n : 1) * sizeof *w);
    if (!w) return -1;
    const uint32_t *x = (const uint32_t *)v->e;
    for (size_t i = 0; i < v->n; i++) w[i] = widen(x[i]);
    free(v->e);
    v->e = w;
    v->cap = v->n;
    v->wide = 1;
    return 0;
}

/* Merge sorted distinct keys ``add`` into activity vector ``v`` (narrow while they fit). */
static int act_merge(vec_t *v, const uint64_t *add, size_t n) {
    if (!n) return 0;
    if (!v->wide) {
        for (size_t j = 0; j < n; j++) {
            if (!fits(add[j])) {
                if (act_widen(v)) return -1;
                break;
            }
        }
    }
    if (v->wide) return vec_merge(v, add, n, 0);
    size_t total = (size_t)v->n + n;
    if (total >= VEC_LIMIT) return -1;
    if (total > v->cap) {
        size_t cap = total + total / 8 + 4;
        if (cap >= VEC_LIMIT) cap = total;
        uint32_t *e = realloc(v->e, cap * sizeof *e);
        if (!e) return -1;
        v->e = (uint64_t *)e;
        v->cap = (uint32_t)cap;
    }
    uint32_t *e = (uint32_t *)v->e;
    size_t i = v->n, j = n, k = total;
    while (i && j) {
        uint32_t a = e[i - 1], b = narrow(add[j - 1]);
        if (a > b) {
            e[--k] = a;
            i--;
        } else if (b > a) {
            e[--k] = b;
            j--;
        } else {
            e[--k] = a;
            i--;
            j--;
        }
    }
    while (j) e[--k] = narrow(add[--j]);
    if (k > i) memmove(e + i, e + k, (total - k) * sizeof *e);
    v->n = (uint32_t)(i + total - k);
    return 0;
}

/* Sort ``e[0:n]`` by key and add up the counts of equal keys (counters) or drop repeats;
 * returns the new length, or -2 when a count passes COUNT_MAX. */
static int64_t squash(uint64_t *e, size_t n, int sum) {
    if (n <= 1) return (int64_t)n;
    if (n <= 32) { /* the usual group: a few entries */
        for (size_t i = 1; i < n; i++) {
            uint64_t x = e[i];
            size_t j = i;
            for (; j && e[j - 1] > x; j--) e[j] = e[j - 1];
            e[j] = x;
        }
    } else {
        qsort(e, n, sizeof *e, cmp_u64);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && (sum ? e[k - 1] >> COUNT_BITS == e[i] >> COUNT_BITS : e[k - 1] == e[i])) {
            if (sum) {
                uint64_t c = (e[k - 1] & COUNT_MAX) + (e[i] & COUNT_MAX);
                if (c > COUNT_MAX) return -2;
                e[k - 1] = (e[k - 1] >> COUNT_BITS) << COUNT_BITS | c;
            }
            continue;
        }
        e[k++] = e[i];
    }
    return (int64_t)k;
}

/* Per lane source number: its store number (NONE until looked up), valid for one epoch. */
static int lane_gids(store_t *st, scanner_t *s) {
    strtab_t *sr = &s->tabs[T_SRC];
    if (s->gid_epoch != st->epoch || s->gidlen > sr->n) s->gidlen = 0;
    s->gid_epoch = st->epoch;
    if (grow((void **)&s->gid, &s->gidcap, sr->n, sizeof *s->gid)) return -1;
    for (size_t i = s->gidlen; i < sr->n; i++) s->gid[i] = NONE;
    s->gidlen = sr->n;
    return 0;
}

static uint32_t lane_gid(store_t *st, scanner_t *s, uint32_t src) {
    if (s->gid[src] == NONE && src < s->nnorm)
        s->gid[src] = store_id(st, s->narena + s->noffs[src], s->nlens[src]);
    return s->gid[src];
}

/* The distinct (head, hops, origin, kind of source) of the lane's ttl table, with one source
 * of each: ``out`` gets (ttl key without its source << 2 | kind, source) pairs. Python says
 * which contradiction each stands for (nfs_store_add). Returns how many, -1 without memory. */
int64_t nfs_combos(void *sp, const int8_t *kinds, uint64_t *out, int64_t cap) {
    scanner_t *s = sp;
    map_t *ttl = &s->maps[M_TTL];
    map_t seen = {0};
    int64_t k = 0;
    for (size_t i = 0; ttl->e && i <= ttl->mask; i++) {
        if (!ttl->e[i].n) continue;
        uint64_t key = ttl->e[i].k, src = key >> 25;
        uint64_t combo = (key & ((1u << 25) - 1)) << 2 | (uint64_t)(kinds[src] & 3);
        if (map_find(&seen, combo)) continue;
        if (map_add(&seen, combo, 1)) {
            free(seen.e);
            return -1;
        }
        if (k < cap) {
            out[2 * k] = combo;
            out[2 * k + 1] = src;
        }
        k++;
    }
    free(seen.e);
    return k;
}

typedef struct {
    uint32_t gid;
    uint64_t e;
} gentry_t;

/* Entries grouped by store number (counting sort): ``at[g]..at[g+1]`` are g's. */
static int group(gentry_t *in, size_t n, size_t ngids, uint64_t **out, size_t **at) {
    size_t *a = calloc(ngids + 1, sizeof *a);
    uint64_t *o = malloc((n ? n : 1) * sizeof *o);
    if (!a || !o) {
        free(a);
        free(o);
        return -1;
    }
    for (size_t i = 0; i < n; i++) a[in[i].gid + 1]++;
    for (size_t g = 0; g < ngids; g++) a[g + 1] += a[g];
    for (size_t i = 0; i < n; i++) o[a[in[i].gid]++] = in[i].e;
    for (size_t g = ngids; g > 0; g--) a[g] = a[g - 1];
    a[0] = 0;
    *out = o;
    *at = a;
    return 0;
}

/* Fold each group into the store's vectors (counters when ``sum``, else activity). */
static int fold(store_t *st, gentry_t *in, size_t n, int sum) {
    uint64_t *e;
    size_t *at, ngids = st->addrs.n;
    if (group(in, n, ngids, &e, &at)) return -1;
    int rc = 0;
    for (size_t g = 0; g < ngids && !rc; g++) {
        size_t a = at[g], b = at[g + 1];
        if (a == b) continue;
        int64_t m = squash(e + a, b - a, sum);
        if (m < 0) {
            rc = (int)m;
            break;
        }
        rc = sum ? vec_merge(&st->counts[g], e + a, (size_t)m, 1)
                 : act_merge(&st->act[g], e + a, (size_t)m);
    }
    free(e);
    free(at);
    return rc;
}

static int add_counts(store_t *st, scanner_t *s, const int8_t *kinds, const uint32_t *head_mac,
                      const uint32_t *head_prefix, const uint32_t *origins,
                      const uint64_t *combos, const uint32_t *combo_ids, int64_t ncombos,
                      const uint32_t *port_proto, const uint32_t *port_key);
static int add_activity(store_t *st, scanner_t *s);

/* Move the lane's per-source tables into the store: with ``what`` 1 the counters (ttl,
 * ports) and times, with 2 the activity keys, with 3 both. Python
 * numbers the keys: per head its MAC (NONE: none) and prefix, per origin code, per port
 * number its protocol and port key (NONE: not a port), per combo (nfs_combos, pairs) its
 * contradiction (NONE: none). ``kinds``: per lane source, as for nfs_combos. Returns 0, -1
 * without memory, -2 when a count would pass 2**40 - 1; after an error the store and the
 * lane hold part of the counts only (Python gives up the summary). */
int nfs_store_add(void *stp, void *sp, const int8_t *kinds, const uint32_t *head_mac,
                  const uint32_t *head_prefix, const uint32_t *origins,
                  const uint64_t *combos, const uint32_t *combo_ids, int64_t ncombos,
                  const uint32_t *port_proto, const uint32_t *port_key, int what) {
    store_t *st = stp;
    scanner_t *s = sp;
    if (lane_gids(st, s)) return -1;
    if (what & 1) {
        int rc = add_counts(st, s, kinds, head_mac, head_prefix, origins, combos, combo_ids,
                            ncombos, port_proto, port_key);
        if (rc) return rc;
    }
    return what & 2 ? add_activity(st, s) : 0;
}

static int add_counts(store_t *st, scanner_t *s, const int8_t *kinds, const uint32_t *head_mac,
                      const uint32_t *head_prefix, const uint32_t *origins,
                      const uint64_t *combos, const uint32_t *combo_ids, int64_t ncombos,
                      const uint32_t *port_proto, const uint32_t *port_key) {
    map_t *ttl = &s->maps[M_TTL], *ports = &s->maps[M_PORTS];
    map_t contra = {0};
    for (int64_t i = 0; i < ncombos; i++)
        if (map_add(&contra, combos[2 * i], (uint64_t)combo_ids[i] + 1)) {
            free(contra.e);
            return -1;
        }
    size_t most = 4 * ttl->len + 2 * ports->len;
    gentry_t *in = malloc((most ? most : 1) * sizeof *in);
    if (!in) {
        free(contra.e);
        return -1;
    }
    size_t n = 0;
    int rc = 0;
#define PUT(g, key, count) (in[n].gid = (g), in[n].e = (uint64_t)(key) << COUNT_BITS | (count), n++)
    for (size_t i = 0; ttl->e && i <= ttl->mask && !rc; i++) {
        if (!ttl->e[i].n) continue;
        uint64_t key = ttl->e[i].k, count = ttl->e[i].n;
        uint32_t src = (uint32_t)(key >> 25), head = (uint32_t)(key >> 5) & (ID_LIMIT - 1);
        uint32_t g = lane_gid(st, s, src);
        if (g == NONE || count > COUNT_MAX) {
            rc = g == NONE ? -1 : -2;
            break;
        }
        if (st->packets[g] + count > COUNT_MAX) {
            rc = -2;
            break;
        }
        st->packets[g] += count;
        PUT(g, origins[key & 7], count);
        if (head_mac[head] != NONE) PUT(g, head_mac[head], count);
        PUT(g, head_prefix[head], count);
        ent_t *c = map_find(&contra, (key & ((1u << 25) - 1)) << 2 | (uint64_t)(kinds[src] & 3));
        if (c && c->n - 1 != NONE) PUT(g, (uint32_t)(c->n - 1), count);
    }
    for (size_t i = 0; ports->e && i <= ports->mask && !rc; i++) {
        if (!ports->e[i].n) continue;
        uint64_t key = ports->e[i].k, count = ports->e[i].n;
        uint32_t src = (uint32_t)(key >> 20), port = (uint32_t)key & (ID_LIMIT - 1);
        uint32_t g = lane_gid(st, s, src);
        if (g == NONE) {
            rc = -1;
            break;
        }
        PUT(g, port_proto[port], count);
        if (port_key[port] != NONE) PUT(g, port_key[port], count);
    }
#undef PUT
    free(contra.e);
    if (!rc) rc = fold(st, in, n, 1);
    free(in);
    if (rc) return rc;
    map_clear(ttl);
    map_clear(ports);
    /* times */
    for (size_t i = 0; i < s->ntouched; i++) {
        uint32_t src = s->touched[i], g = lane_gid(st, s, src);
        if (g == NONE) return -1;
        if (isnan(st->first[g]) || s->lo[src] < st->first[g]) st->first[g] = s->lo[src];
        if (isnan(st->last[g]) || s->hi[src] > st->last[g]) st->last[g] = s->hi[src];
        s->lo[src] = s->hi[src] = NAN;
    }
    s->ntouched = 0;
    return 0;
}

static int add_activity(store_t *st, scanner_t *s) {
    int rc = 0;
    if (s->nact) {
        gentry_t *rows = malloc(s->nact * sizeof *rows);
        if (!rows) return -1;
        for (size_t i = 0; i < s->nact; i++) {
            rows[i].gid = lane_gid(st, s, s->act_src[i]);
            rows[i].e = s->act[i];
            if (rows[i].gid == NONE) {
                free(rows);
                return -1;
            }
        }
        rc = fold(st, rows, s->nact, 0);
        free(rows);
        if (rc) return rc;
        s->nact = 0;
        if (s->actcap > (1u << 20)) { /* kept up to 12 MiB: the next rows fill it again */
            free(s->act);
            free(s->act_src);
            s->act = NULL;
            s->act_src = NULL;
            s->actcap = s->actsrccap = 0;
        }
    }
    return 0;
}

typedef struct {
    uint64_t weight;
    const char *p;
    uint32_t n, gid;
} rank_t;

static int cmp_rank(const void *x, const void *y) {
    const rank_t *a = x, *b = y;
    if (a->weight != b->weight) return a->weight > b->weight ? -1 : 1;
    int c = memcmp(a->p, b->p, a->n < b->n ? a->n : b->n);
    return c ? c : (a->n > b->n) - (a->n < b->n);
}

/* Past ``limit`` and a half sources, keep the ``limit`` with the highest packets + error (ties:
 * the smaller address text) and drop the others, as Summary.bound() does; the kept ones are
 * numbered anew (a new epoch). Returns how many were dropped, -1 without memory. */
int64_t nfs_store_bound(void *stp, int64_t limit) {
    store_t *st = stp;
    size_t n = st->addrs.n;
    if (limit < 0 || n <= (size_t)limit + (size_t)limit / 2) return 0;
    rank_t *r = malloc(n * sizeof *r);
    strtab_t kept = {0};
    if (!r) return -1;
    for (size_t i = 0; i < n; i++) {
        r[i].weight = st->packets[i] + st->error[i];
        r[i].p = st->addrs.arena + st->addrs.offs[i];
        r[i].n = st->addrs.lens[i];
        r[i].gid = (uint32_t)i;
    }
    qsort(r, n, sizeof *r, cmp_rank);
    size_t keep = (size_t)limit;
    /* the kept ones, in their old order */
    uint8_t *alive = calloc(n, 1);
    if (!alive) {
        free(r);
        return -1;
    }
    for (size_t i = 0; i < keep; i++) alive[r[i].gid] = 1;
    for (size_t i = 0; i < n; i++) {
        if (alive[i] && strtab_id(&kept, st->addrs.arena + st->addrs.offs[i],
                                  st->addrs.lens[i]) == NONE) {
            free(r);
            free(alive);
            strtab_free(&kept);
            return -1;
        }
    }
    for (size_t i = keep; i < n; i++) {
        uint32_t g = r[i].gid;
        if (r[i].weight > st->floor) st->floor = r[i].weight;
        free(st->counts[g].e);
        free(st->act[g].e);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!alive[i]) continue;
        st->packets[k] = st->packets[i];
        st->error[k] = st->error[i];
        st->first[k] = st->first[i];
        st->last[k] = st->last[i];
        st->counts[k] = st->counts[i];
        st->act[k] = st->act[i];
        k++;
    }
    st->dropped += n - keep;
    strtab_free(&st->addrs);
    st->addrs = kept;
    st->epoch++;
    free(r);
    free(alive);
    return (int64_t)(n - keep);
}

/* Sizes: sources, counter entries, activity keys, floor, dropped. */
void nfs_store_sizes(void *stp, int64_t *out) {
    store_t *st = stp;
    int64_t counts = 0, act = 0;
    for (size_t i = 0; i < st->addrs.n; i++) {
        counts += st->counts[i].n;
        act += st->act[i].n;
    }
    out[0] = (int64_t)st->addrs.n;
    out[1] = counts;
    out[2] = act;
    out[3] = (int64_t)st->floor;
    out[4] = (int64_t)st->dropped;
}

/* What sources ``from`` to ``from + n`` need of ``take``'s buffers: text bytes, counter entries,
 * activity keys. */
void nfs_store_need(void *stp, int64_t from, int64_t n, int64_t *out) {
    store_t *st = stp;
    out[0] = out[1] = out[2] = 0;
    for (int64_t i = from; i < from + n && (size_t)i < st->addrs.n; i++) {
        out[0] += st->addrs.lens[i];
        out[1] += st->counts[i].n;
        out[2] += st->act[i].n;
    }
}

/* Copy sources ``from`` to ``from + n`` out and free their vectors: per source its text
 * length, packets, error, first, last, number of counter entries and of activity keys; the
 * texts, entries and keys one after another. Call nfs_store_reset when all are taken. */
void nfs_store_take(void *stp, int64_t from, int64_t n, char *text, int64_t *lens,
                    int64_t *packets, int64_t *errors, double *first, double *last,
                    uint64_t *counts, int64_t *ncounts, uint64_t *act, int64_t *nact) {
    store_t *st = stp;
    for (int64_t i = from, j = 0; i < from + n && (size_t)i < st->addrs.n; i++, j++) {
        memcpy(text, st->addrs.arena + st->addrs.offs[i], st->addrs.lens[i]);
        text += st->addrs.lens[i];
        lens[j] = st->addrs.lens[i];
        packets[j] = (int64_t)st->packets[i];
        errors[j] = (int64_t)st->error[i];
        first[j] = st->first[i];
        last[j] = st->last[i];
        vec_t *c = &st->counts[i], *a = &st->act[i];
        memcpy(counts, c->e, c->n * sizeof *counts);
        counts += c->n;
        ncounts[j] = c->n;
        if (a->wide) {
            memcpy(act, a->e, a->n * sizeof *act);
        } else {
            for (size_t k = 0; k < a->n; k++) act[k] = widen(((const uint32_t *)a->e)[k]);
        }
        act += a->n;
        nact[j] = a->n;
        free(c->e);
        free(a->e);
        memset(c, 0, sizeof *c);
        memset(a, 0, sizeof *a);
    }
}

/* Forget every source, the floor and the count of dropped ones (after they are all taken). */
void nfs_store_reset(void *stp) {
    store_t *st = stp;
    store_empty(st);
    st->floor = st->dropped = 0;
}

/* The text of lane source ``from`` on as the summary writes it (the store's key). */
int nfs_norms(void *sp, int64_t from, int64_t n, const char *texts, const int64_t *lens) {
    scanner_t *s = sp;
    if ((size_t)from != s->nnorm) return -3; /* told out of order */
    for (int64_t i = 0; i < n; i++) {
        size_t len = (size_t)lens[i];
        if (grow((void **)&s->narena, &s->nacap, s->nalen + len, 1) ||
            grow((void **)&s->noffs, &s->nncap, s->nnorm + 1, sizeof *s->noffs))
            return -1;
        size_t c = s->nlcap;
        if (grow((void **)&s->nlens, &c, s->nnorm + 1, sizeof *s->nlens)) return -1;
        s->nlcap = c;
        memcpy(s->narena + s->nalen, texts, len);
        s->noffs[s->nnorm] = s->nalen;
        s->nlens[s->nnorm] = (uint32_t)len;
        s->nalen += len;
        s->nnorm++;
        texts += len;
    }
    return 0;
}

/* The text nfs_norms gave source ``i``, into ``out``; returns its length (-1: no such source or
 * ``cap`` too small). */
int64_t nfs_norm(void *sp, int64_t i, char *out, int64_t cap) {
    scanner_t *s = sp;
    if (i < 0 || (size_t)i >= s->nnorm || s->nlens[i] > cap) return -1;
    memcpy(out, s->narena + s->noffs[i], s->nlens[i]);
    return s->nlens[i];
}
