/*
 * nfkit native scanner: the per-line work of the summary engine, in C.
 *
 * Loaded with ctypes by nfkit/logs/native.py (no Python headers: plain C, so ctypes releases
 * the GIL during every call and two threads scan two byte ranges at once). The Python side
 * (nfkit/logs/nativepath.py) keeps every decision about what a value means; this file only
 *
 *   1. cuts a block of whole lines into the parts a summary needs, accepting only lines of the
 *      strict common shape (a subset of fastpath._pattern(strict=True)); every other line is
 *      handed back whole, for the full parser;
 *   2. numbers the distinct parts (wrapper header, PREFIX IN= OUT= MAC= head, source and
 *      destination address text, port key), so Python reads each distinct value once and
 *      writes back what it means (nfs_set);
 *   3. counts the accepted rows into integer-keyed tables, which Python moves into the summary
 *      or the store (_store.c) when they grow (nfs_take, nfs_store_add).
 *
 * Every function returns a negative number when memory runs out; the scanner stays usable.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX

enum { T_HEADER, T_HEAD, T_SRC, T_DST, T_PORT, N_STRTABS };
enum { M_TTL, M_TIMELINE, M_CLASSES, M_PORTS, M_INVALID, M_PMTUD, N_MAPS, M_ACTIVITY = N_MAPS };
/* findings whose flows the scanner writes: INVALID drops, the ACKs among them, PMTUD hazards */
enum { F_DROPS, F_ACKS, F_PMTUD, N_FINDINGS };
/* status values written by Python */
enum { ST_NEW = 0, ST_OK = 1, ST_REJECT = 2, ST_SKIP = 3 };
/* origin codes (the order of nativepath.ORIGIN_CODES); head x == O_DEPENDS: by the source */
enum { O_UPSTREAM = 0, O_PEER = 1, O_LOCAL = 2, O_FORWARDED = 3, O_UNKNOWN = 4, O_DEPENDS = 5 };

/* ---- growable arrays ------------------------------------------------------------------ */
static int grow(void **data, size_t *cap, size_t need, size_t item) {
    if (need <= *cap) return 0;
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < need) cap2 *= 2;
    void *p = realloc(*data, cap2 * item);
    if (!p) return -1;
    *data = p;
    *cap = cap2;
    return 0;
}

static uint64_t hash_bytes(const char *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    return h;
}

static uint64_t hash_pair(uint64_t a, uint64_t b) {
    uint64_t h = a * 0x9E3779B97F4A7C15ull;
    h ^= (b + 0x632BE59BD9B4E019ull) * 0xff51afd7ed558ccdull;
    h ^= h >> 31;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    return h;
}

/* ---- a table of distinct byte strings, numbered from 0, with what Python said of each ----- */
typedef struct {
    char *arena;
    size_t alen, acap;
    uint64_t *offs, *hashes;
    uint32_t *lens;
    size_t n, cap;
    uint64_t *slots; /* high half: the hash's high half; low half: id + 1, 0 when empty */
    size_t mask;
    /* written by Python (nfs_set) */
    int8_t *status, *x, *y;
    uint64_t *bits;
    double *d;
    /* set here: 1 for an IPv4 address written as Python writes it (source, destination) */
    int8_t *plain;
} strtab_t;

static void strtab_free(strtab_t *t) {
    free(t->arena);
    free(t->offs);
    free(t->hashes);
    free(t->lens);
    free(t->slots);
    free(t->status);
    free(t->x);
    free(t->y);
    free(t->bits);
    free(t->d);
    free(t->plain);
    memset(t, 0, sizeof *t);
}

static int strtab_rehash(strtab_t *t, size_t size) {
    uint64_t *slots = calloc(size, sizeof *slots);
    if (!slots) return -1;
    size_t mask = size - 1;
    for (size_t i = 0; i < t->n; i++) {
        size_t j = t->hashes[i] & mask;
        while (slots[j]) j = (j + 1) & mask;
        slots[j] = (t->hashes[i] & 0xffffffff00000000ull) | ((uint64_t)i + 1);
    }
    free(t->slots);
    t->slots = slots;
    t->mask = mask;
    return 0;
}

/* The number of the string p[0:n], or NONE if the table does not hold it. */
static uint32_t strtab_find(const strtab_t *t, const char *p, size_t n) {
    if (!t->slots) return NONE;
    uint64_t h = hash_bytes(p, n);
    uint64_t tag = h & 0xffffffff00000000ull;
    for (size_t j = h & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
        uint64_t s = t->slots[j];
        if ((s & 0xffffffff00000000ull) != tag) continue;
        size_t i = (uint32_t)s - 1;
        if (t->lens[i] == n && !memcmp(t->arena + t->offs[i], p, n)) return (uint32_t)i;
    }
    return NONE;
}

/* The number of the string p[0:n], added if new; NONE when memory runs out. */
static uint32_t strtab_id(strtab_t *t, const char *p, size_t n) {
    if (!t->slots && strtab_rehash(t, 1024)) return NONE;
    uint64_t h = hash_bytes(p, n);
    size_t j = h & t->mask;
    uint64_t tag = h & 0xffffffff00000000ull;
    for (uint64_t s; (s = t->slots[j]); j = (j + 1) & t->mask) {
        if ((s & 0xffffffff00000000ull) != tag) continue;
        size_t i = (uint32_t)s - 1;
        if (t->lens[i] == n && !memcmp(t->arena + t->offs[i], p, n)) return (uint32_t)i;
    }
    if (t->n + 1 >= NONE) return NONE;
    size_t cap = t->cap;
    if (t->n + 1 > cap) {
        size_t c;
        c = cap; if (grow((void **)&t->offs, &c, t->n + 1, sizeof *t->offs)) return NONE;
        c = cap; if (grow((void **)&t->hashes, &c, t->n + 1, sizeof *t->hashes)) return NONE;
        c = cap; if (grow((void **)&t->lens, &c, t->n + 1, sizeof *t->lens)) return NONE;
        c = cap; if (grow((void **)&t->status, &c, t->n + 1, sizeof *t->status)) return NONE;
        c = cap; if (grow((void **)&t->x, &c, t->n + 1, sizeof *t->x)) return NONE;
        c = cap; if (grow((void **)&t->y, &c, t->n + 1, sizeof *t->y)) return NONE;
        c = cap; if (grow((void **)&t->bits, &c, t->n + 1, sizeof *t->bits)) return NONE;
        c = cap; if (grow((void **)&t->d, &c, t->n + 1, sizeof *t->d)) return NONE;
        c = cap; if (grow((void **)&t->plain, &c, t->n + 1, sizeof *t->plain)) return NONE;
        t->cap = c;
    }
    if (grow((void **)&t->arena, &t->acap, t->alen + n + 1, 1)) return NONE;
    if (2 * (t->n + 1) > t->mask + 1) {
        if (strtab_rehash(t, 2 * (t->mask + 1))) return NONE;
        j = h & t->mask;
        while (t->slots[j]) j = (j + 1) & t->mask;
    }
    size_t i = t->n++;
    memcpy(t->arena + t->alen, p, n);
    t->offs[i] = t->alen;
    t->alen += n;
    t->lens[i] = (uint32_t)n;
    t->hashes[i] = h;
    t->status[i] = ST_NEW;
    t->x[i] = t->y[i] = 0;
    t->bits[i] = 0;
    t->d[i] = NAN;
    t->plain[i] = 0;
    t->slots[j] = tag | ((uint64_t)i + 1);
    return (uint32_t)i;
}

static void strtab_clear(strtab_t *t) {
    t->alen = 0;
    t->n = 0;
    if (t->slots) memset(t->slots, 0, (t->mask + 1) * sizeof *t->slots);
}

/* ---- integer-keyed counters: key -> n (n > 0; 0 marks an empty slot) ---------------------- */
typedef struct {
    uint64_t k, n;
} ent_t;

typedef struct {
    ent_t *e;
    size_t mask, len;
} map_t;

static inline size_t slot_of(uint64_t k, size_t mask) {
    uint64_t h = k * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 29)) & mask;
}

static int map_resize(map_t *m, size_t size) {
    ent_t *e = calloc(size, sizeof *e);
    if (!e) return -1;
    size_t mask = size - 1;
    if (m->e) {
        for (size_t i = 0; i <= m->mask; i++) {
            if (!m->e[i].n) continue;
            size_t j = slot_of(m->e[i].k, mask);
            while (e[j].n) j = (j + 1) & mask;
            e[j] = m->e[i];
        }
        free(m->e);
    }
    m->e = e;
    m->mask = mask;
    return 0;
}

static int map_add(map_t *m, uint64_t k, uint64_t n) {
    if (!m->e && map_resize(m, 1024)) return -1;
    if (10 * (m->len + 1) > 7 * (m->mask + 1) && map_resize(m, 2 * (m->mask + 1))) return -1;
    size_t j = slot_of(k, m->mask);
    for (; m->e[j].n; j = (j + 1) & m->mask) {
        if (m->e[j].k == k) {
            m->e[j].n += n;
            return 0;
        }
    }
    m->e[j].k = k;
    m->e[j].n = n;
    m->len++;
    return 0;
}

static ent_t *map_find(const map_t *m, uint64_t k) {
    if (!m->e) return NULL;
    for (size_t j = slot_of(k, m->mask); m->e[j].n; j = (j + 1) & m->mask)
        if (m->e[j].k == k) return &m->e[j];
    return NULL;
}

static void map_clear(map_t *m) {
    if (m->e && m->mask >= (1u << 20)) { /* very large (16 MiB): give the memory back */
        free(m->e);
        m->e = NULL;
        m->mask = 0;
    } else if (m->e && m->len) {
        memset(m->e, 0, (m->mask + 1) * sizeof *m->e);
    }
    m->len = 0;
}

/* Counter keys: value numbers are below 2**20 (ID_BITS), the scanner's Python side empties
 * the value tables long before (nativepath._VALUE_LIMIT); a line that would need a larger
 * number is left to the full parser. */
#define ID_BITS 20
#define ID_LIMIT (1u << ID_BITS)
/* ttl: source, head, hop class (2 bits), origin (3 bits) */
#define TTL_KEY(src, head, hops, origin) \
    ((uint64_t)(src) << 25 | (uint64_t)(head) << 5 | (uint64_t)(hops) << 3 | (uint64_t)(origin))
/* timeline: slot number (20 bits), head, origin */
#define TIMELINE_KEY(slot, head, origin) \
    ((uint64_t)(slot) << 23 | (uint64_t)(head) << 3 | (uint64_t)(origin))
/* classes: head, origin, port */
#define CLASS_KEY(head, origin, port) \
    ((uint64_t)(head) << 23 | (uint64_t)(origin) << 20 | (uint64_t)(port))
/* ports: source, port */
#define PORT_KEY(src, port) ((uint64_t)(src) << 20 | (uint64_t)(port))

/* ---- rows of one block ---------------------------------------------------------------- */
typedef struct {
    uint32_t id[N_STRTABS]; /* header, head, src, dst, port; id[0] == NONE: not accepted */
    uint32_t ttl;           /* value | 1 << 31 for an IPv6 hop limit */
    uint32_t spt, dpt;      /* TCP ports; dpt NONE when not TCP */
    uint32_t off, len;      /* the line in the block */
    uint32_t flags;         /* 1 ACK, 2 SYN */
    uint32_t kind;          /* 1: an ICMP "fragmentation needed" / "packet too big" */
} row_t;

typedef struct {
    uint32_t head, src, dst, spt, dpt, flags, off, len;
    double time;
} invalid_t;

typedef struct {
    strtab_t tabs[N_STRTABS];
    map_t maps[N_MAPS];
    row_t *rows;
    size_t nrows, rowcap;
    uint32_t *fallback; /* (off, len) pairs */
    size_t nfallback, fallcap;
    invalid_t *invalid, *pmtud;
    size_t ninvalid, invcap, npmtud, pmtudcap;
    /* activity: the source and key of each counted row, de-duplicated when taken */
    uint32_t *act_src;
    uint64_t *act;
    size_t nact, actcap, actsrccap;
    /* per source id: first and last time since the last move into a store */
    double *lo, *hi;
    size_t timecap, timelen;
    uint32_t *touched;
    size_t ntouched, touchcap;
    /* classic syslog headers: the time of second 00 per minute ("Nov 25 04:17:?? host"), the
     * activity bits per slot, the slot length and the "since" cutoff (NaN: none) */
    strtab_t minutes;
    map_t slot_bits;
    int64_t slot_seconds;
    double cutoff;
    /* per finding (F_*): its distinct flows, the smallest ``flow_limit`` kept past twice that
     * many (``capped``); rows later than ``evidence_limit`` are no earlier evidence than what
     * Python keeps */
    strtab_t flows[N_FINDINGS];
    int capped[N_FINDINGS];
    int64_t flow_limit;
    double evidence_limit[N_FINDINGS];
    /* per source number: its text as the summary writes it (nfs_norms) and its number in a
     * store (_store.c), valid while the store's epoch is ``gid_epoch`` */
    char *narena;
    size_t nalen, nacap, nnorm, nncap, nlcap;
    uint64_t *noffs;
    uint32_t *nlens;
    uint32_t *gid;
    size_t gidlen, gidcap;
    uint64_t gid_epoch;
} scanner_t;

/* The interface version: nfkit/logs/native.py refuses a library built from another one (a
 * stale build after this file changed). Raise it with every change of a signature or of what
 * a call means. */
int64_t nfs_abi(void) { return 6; }

void *nfs_new(int64_t slot_seconds, double cutoff) {
    scanner_t *s = calloc(1, sizeof(scanner_t));
    if (s) {
        s->slot_seconds = slot_seconds > 0 ? slot_seconds : 1;
        s->cutoff = cutoff;
        s->flow_limit = 10000;
        for (int i = 0; i < N_FINDINGS; i++) s->evidence_limit[i] = INFINITY;
    }
    return s;
}

void nfs_free(void *p) {
    scanner_t *s = p;
    if (!s) return;
    for (int i = 0; i < N_STRTABS; i++) strtab_free(&s->tabs[i]);
    for (int i = 0; i < N_MAPS; i++) free(s->maps[i].e);
    strtab_free(&s->minutes);
    for (int i = 0; i < N_FINDINGS; i++) strtab_free(&s->flows[i]);
    free(s->slot_bits.e);
    free(s->rows);
    free(s->fallback);
    free(s->invalid);
    free(s->pmtud);
    free(s->lo);
    free(s->hi);
    free(s->touched);
    free(s->act);
    free(s->act_src);
    free(s->narena);
    free(s->noffs);
    free(s->nlens);
    free(s->gid);
    free(s);
}

/* ---- the line shape ------------------------------------------------------------------- */
#define ISDIG(c) ((unsigned)((c) - '0') < 10u)
#define ISUPHEX(c) (ISDIG(c) || ((c) >= 'A' && (c) <= 'F'))
#define ISLOHEX(c) (ISDIG(c) || ((c) >= 'a' && (c) <= 'f'))
#define ISLOWER(c) ((c) >= 'a' && (c) <= 'z')
#define ISALNUM(c) (ISDIG(c) || ISLOWER(c) || ((c) >= 'A' && (c) <= 'Z'))

static inline __attribute__((always_inline)) int lit(const char **p, const char *e,
                                                      const char *s, size_t n) {
    if ((size_t)(e - *p) < n || memcmp(*p, s, n)) return 0;
    *p += n;
    return 1;
}
#define LIT(p, e, s) lit(&(p), (e), (s), sizeof(s) - 1)

/* One or more digits; their value in *v when v is given (at most 9 digits then). */
static inline __attribute__((always_inline)) int digits(const char **p, const char *e,
                                                         uint32_t *v) {
    const char *q = *p;
    uint32_t x = 0;
    while (q < e && ISDIG(*q)) {
        x = x * 10 + (uint32_t)(*q - '0');
        q++;
    }
    if (q == *p) return 0;
    if (v) {
        if (q - *p > 9) return 0;
        *v = x;
    }
    *p = q;
    return 1;
}

static const char *word_end(const char *p, const char *e) {
    const char *q = memchr(p, ' ', (size_t)(e - p));
    return q ? q : e;
}

/* "[ *[0-9]+\.[0-9]+\] " */
static int stamp(const char **p, const char *e) {
    const char *q = *p;
    if (!LIT(q, e, "[")) return 0;
    while (q < e && *q == ' ') q++;
    if (!digits(&q, e, NULL) || !LIT(q, e, ".") || !digits(&q, e, NULL) || !LIT(q, e, "] "))
        return 0;
    *p = q;
    return 1;
}

typedef struct {
    const char *s[N_STRTABS];
    size_t n[N_STRTABS];
    char key[72];
} parts_t;

/* From "LEN=" on: the IP header fields and the protocol part, up to the user/mark tail.
 * ``depth`` 1 is a packet quoted by an ICMP error (checked, not counted). */
static int packet(const char **pp, const char *e, row_t *r, parts_t *parts, int depth) {
    const char *p = *pp;
    uint32_t ttl;
    if (!LIT(p, e, "LEN=") || !digits(&p, e, NULL) || !LIT(p, e, " ")) return 0;
    if (LIT(p, e, "TOS=0x")) {
        if (e - p < 2 || !ISUPHEX(p[0]) || !ISUPHEX(p[1])) return 0;
        p += 2;
        if (!LIT(p, e, " PREC=0x") || e - p < 2 || !ISUPHEX(p[0]) || !ISUPHEX(p[1])) return 0;
        p += 2;
        if (!LIT(p, e, " TTL=") || !digits(&p, e, &ttl) || !LIT(p, e, " ID=") ||
            !digits(&p, e, NULL) || !LIT(p, e, " "))
            return 0;
        LIT(p, e, "CE ");
        LIT(p, e, "DF ");
        LIT(p, e, "MF ");
        if (LIT(p, e, "FRAG:") && !(digits(&p, e, NULL) && LIT(p, e, " "))) return 0;
        r->ttl = ttl;
    } else if (LIT(p, e, "TC=")) {
        if (!digits(&p, e, NULL) || !LIT(p, e, " HOPLIMIT=") || !digits(&p, e, &ttl) ||
            !LIT(p, e, " FLOWLBL=") || !digits(&p, e, NULL) || !LIT(p, e, " "))
            return 0;
        r->ttl = ttl | (1u << 31);
    } else {
        return 0;
    }
    if (!LIT(p, e, "PROTO=")) return 0;
    const char *proto = p;
    while (p < e && ISALNUM(*p)) p++;
    size_t plen = (size_t)(p - proto);
    if (!plen || plen > 32 || p >= e || *p != ' ') return 0;
    p++;
    char *key = parts->key;
    r->dpt = NONE;
    r->spt = 0;
    r->flags = 0;
    r->kind = 0;
    if (plen == 3 && !memcmp(proto, "TCP", 3)) {
        const char *dpt;
        uint32_t v;
        if (!LIT(p, e, "SPT=") || !digits(&p, e, &r->spt) || !LIT(p, e, " DPT=")) return 0;
        dpt = p;
        if (!digits(&p, e, &v)) return 0;
        r->dpt = v;
        key[0] = 't';
        memcpy(key + 1, dpt, (size_t)(p - dpt));
        parts->n[T_PORT] = 1 + (size_t)(p - dpt);
        if (!LIT(p, e, " ")) return 0;
        if (LIT(p, e, "SEQ=") &&
            !(digits(&p, e, NULL) && LIT(p, e, " ACK=") && digits(&p, e, NULL) && LIT(p, e, " ")))
            return 0;
        if (!LIT(p, e, "WINDOW=") || !digits(&p, e, NULL) || !LIT(p, e, " RES=0x") || e - p < 3 ||
            !ISLOHEX(p[0]) || !ISLOHEX(p[1]) || p[2] != ' ')
            return 0;
        p += 3;
        for (;;) {
            if (e - p >= 4 && p[3] == ' ') {
                if (!memcmp(p, "ACK", 3)) r->flags |= 1;
                else if (!memcmp(p, "SYN", 3)) r->flags |= 2;
                else if (memcmp(p, "CWR", 3) && memcmp(p, "ECE", 3) && memcmp(p, "URG", 3) &&
                         memcmp(p, "PSH", 3) && memcmp(p, "RST", 3) && memcmp(p, "FIN", 3))
                    break;
                p += 4;
            } else if (LIT(p, e, "AE ")) {
                continue;
            } else {
                break;
            }
        }
        if (!LIT(p, e, "URGP=") || !digits(&p, e, NULL) || !LIT(p, e, " ")) return 0;
        if (LIT(p, e, "OPT (")) {
            while (p < e && ISUPHEX(*p)) p++;
            if (!LIT(p, e, ") ")) return 0;
        }
    } else if (((plen == 4 && !memcmp(proto, "ICMP", 4)) ||
                (plen == 6 && !memcmp(proto, "ICMPv6", 6))) &&
               e - p >= 5 && !memcmp(p, "TYPE=", 5)) {
        uint32_t type, code;
        p += 5;
        const char *digits_start = p;
        if (!digits(&p, e, &type) || !LIT(p, e, " CODE=") || !digits(&p, e, &code)) return 0;
        (void)digits_start;
        size_t n = (size_t)(p - proto);
        if (n + 1 > sizeof parts->key) return 0;
        key[0] = 'i';
        memcpy(key + 1, proto, n);
        parts->n[T_PORT] = n + 1;
        if (!LIT(p, e, " ")) return 0;
        int error = plen == 4 ? (type == 3 || type == 4 || type == 5 || type == 11 || type == 12)
                              : (type >= 1 && type <= 4);
        if (error) {
            /* an error quoting the packet it is about: "[SRC=... ] ", the MTU for PMTUD */
            row_t quoted;
            parts_t scratch;
            int pmtud = plen == 4 ? (type == 3 && code == 4) : type == 2;
            if (depth || type == 5 || !LIT(p, e, "[SRC=")) return 0;
            p = word_end(p, e);
            if (!LIT(p, e, " DST=")) return 0;
            p = word_end(p, e);
            if (!LIT(p, e, " ") || !packet(&p, e, &quoted, &scratch, 1) || !LIT(p, e, "] "))
                return 0;
            if (pmtud && LIT(p, e, "MTU=") && !(digits(&p, e, NULL) && LIT(p, e, " "))) return 0;
            r->kind = pmtud ? 1 : 0;
        } else if (LIT(p, e, "ID=") &&
                   !(digits(&p, e, NULL) && LIT(p, e, " SEQ=") && digits(&p, e, NULL) &&
                     LIT(p, e, " "))) {
            return 0;
        }
    } else {
        key[0] = 'o';
        memcpy(key + 1, proto, plen);
        parts->n[T_PORT] = 1 + plen;
        if (LIT(p, e, "SPT=")) {
            const char *dpt;
            if (!digits(&p, e, NULL) || !LIT(p, e, " DPT=")) return 0;
            dpt = p;
            if (!digits(&p, e, NULL) || (size_t)(p - dpt) > 20) return 0;
            key[1 + plen] = ' ';
            memcpy(key + 2 + plen, dpt, (size_t)(p - dpt));
            parts->n[T_PORT] = 2 + plen + (size_t)(p - dpt);
            if (!LIT(p, e, " LEN=") || !digits(&p, e, NULL) || !LIT(p, e, " ")) return 0;
        }
    }
    if (parts->n[T_PORT] > sizeof parts->key) return 0;
    *pp = p;
    return 1;
}

/* Cut one line [p, e) (e at its newline); 0 if it is not of the accepted shape. */
static int cut(const char *p, const char *e, row_t *r, parts_t *parts) {
    const char *h = p;
    if (p >= e) return 0;
    if (*p >= 'A' && *p <= 'Z') { /* "Nov 25 04:17:23 host kernel: " */
        if (e - p < 17 || !ISLOWER(p[1]) || !ISLOWER(p[2]) || p[3] != ' ' ||
            !(p[4] == ' ' || ISDIG(p[4])) || !ISDIG(p[5]) || p[6] != ' ' || !ISDIG(p[7]) ||
            !ISDIG(p[8]) || p[9] != ':' || !ISDIG(p[10]) || !ISDIG(p[11]) || p[12] != ':' ||
            !ISDIG(p[13]) || !ISDIG(p[14]) || p[15] != ' ')
            return 0;
        p += 16;
    } else if (ISDIG(*p)) { /* "2026-11-24T10:00:05.1+01:00 host kernel: " */
        static const char shape[] = "dddd-dd-ddTdd:dd:dd";
        if (e - p < 20) return 0;
        for (int i = 0; i < 19; i++) {
            if (shape[i] == 'd' ? !ISDIG(p[i]) : p[i] != shape[i]) return 0;
        }
        p += 19;
        if (LIT(p, e, ".") && !digits(&p, e, NULL)) return 0;
        if (p < e && *p == 'Z') {
            p++;
        } else if (p < e && (*p == '+' || *p == '-')) {
            p++;
            if (e - p < 4 || !ISDIG(p[0]) || !ISDIG(p[1])) return 0;
            p += 2;
            if (*p == ':') p++;
            if (e - p < 2 || !ISDIG(p[0]) || !ISDIG(p[1])) return 0;
            p += 2;
        }
        if (!LIT(p, e, " ")) return 0;
    } else if (*p == '[') { /* dmesg "[  686.000667] ", no wrapper: the header is empty */
        const char *q = p;
        if (!stamp(&q, e)) return 0;
        /* not "host kernel:" or "host name.tag kernel:" after the stamp (another wrapper) */
        const char *w = word_end(q, e);
        for (int i = 0; i < 2 && w < e; i++) {
            if (e - (w + 1) >= 7 && !memcmp(w + 1, "kernel:", 7)) return 0;
            w = word_end(w + 1, e);
        }
        parts->s[T_HEADER] = p;
        parts->n[T_HEADER] = 0;
        goto prefix;
    } else {
        return 0;
    }
    /* the host, then " kernel: " */
    if (p >= e || *p == ' ' || *p == '[') return 0;
    p = word_end(p, e);
    parts->s[T_HEADER] = h;
    parts->n[T_HEADER] = (size_t)(p - h);
    if (!LIT(p, e, " kernel: ")) return 0;
prefix:
    if (p < e && *p == '[' && !stamp(&p, e)) return 0;
    if (p < e && *p == '[') return 0; /* a second stamp or a caller id: full parser */
    /* PREFIX IN= OUT= MAC= */
    const char *head = p;
    const char *eq = memchr(p, '=', (size_t)(e - p));
    if (!eq || eq - p < 2 || eq[-2] != 'I' || eq[-1] != 'N') return 0;
    p = word_end(eq + 1, e);
    if (!LIT(p, e, " OUT=")) return 0;
    p = word_end(p, e);
    if (!LIT(p, e, " ")) return 0;
    if (LIT(p, e, "MAC=")) {
        p = word_end(p, e);
        if (!LIT(p, e, " ")) return 0;
    }
    parts->s[T_HEAD] = head;
    parts->n[T_HEAD] = (size_t)(p - 1 - head);
    if (!LIT(p, e, "SRC=")) return 0;
    parts->s[T_SRC] = p;
    p = word_end(p, e);
    parts->n[T_SRC] = (size_t)(p - parts->s[T_SRC]);
    if (!parts->n[T_SRC] || !LIT(p, e, " DST=")) return 0;
    parts->s[T_DST] = p;
    p = word_end(p, e);
    parts->n[T_DST] = (size_t)(p - parts->s[T_DST]);
    if (!parts->n[T_DST] || !LIT(p, e, " ")) return 0;
    if (!packet(&p, e, r, parts, 0)) return 0;
    if (LIT(p, e, "UID=") &&
        !(digits(&p, e, NULL) && LIT(p, e, " GID=") && digits(&p, e, NULL) && LIT(p, e, " ")))
        return 0;
    if (LIT(p, e, "MARK=0x")) {
        const char *q = p;
        while (p < e && ISLOHEX(*p)) p++;
        if (p == q || !LIT(p, e, " ")) return 0;
    }
    parts->s[T_PORT] = parts->key;
    return p == e;
}

/* An IPv4 address written the one way Python's ipaddress writes it: four decimal parts 0-255
 * without leading zeros. Its value in *out when out is given. */
static int is_plain_ipv4(const char *p, size_t n, uint32_t *out) {
    const char *e = p + n;
    uint32_t address = 0;
    for (int part = 0; part < 4; part++) {
        const char *q = p;
        uint32_t v = 0;
        while (p < e && ISDIG(*p) && p - q < 3) v = v * 10 + (uint32_t)(*p++ - '0');
        if (p == q || v > 255 || (*q == '0' && p - q > 1)) return 0;
        address = address << 8 | v;
        if (part < 3 && !(p < e && *p++ == '.')) return 0;
    }
    if (p != e) return 0;
    if (out) *out = address;
    return 1;
}

static char *put_number(char *o, uint32_t v) {
    char digits_[10];
    int n = 0;
    do digits_[n++] = (char)('0' + v % 10);
    while (v /= 10);
    while (n) *o++ = digits_[--n];
    return o;
}

typedef struct {
    const char *p;
    size_t n;
} text_t;

static int cmp_text(const void *x, const void *y) {
    const text_t *a = x, *b = y;
    int c = memcmp(a->p, b->p, a->n < b->n ? a->n : b->n);
    return c ? c : (a->n > b->n) - (a->n < b->n);
}

/* Keep the ``limit`` smallest flows of ``t`` (in byte order, which is text order here). */
static int cap_flows(strtab_t *t, int64_t limit) {
    size_t n = t->n;
    text_t *order = malloc((n ? n : 1) * sizeof *order);
    strtab_t kept = {0};
    if (!order) return -1;
    for (size_t i = 0; i < n; i++) {
        order[i].p = t->arena + t->offs[i];
        order[i].n = t->lens[i];
    }
    qsort(order, n, sizeof *order, cmp_text);
    for (size_t i = 0; i < n && (int64_t)i < limit; i++) {
        if (strtab_id(&kept, order[i].p, order[i].n) == NONE) {
            free(order);
            strtab_free(&kept);
            return -1;
        }
    }
    free(order);
    strtab_free(t);
    *t = kept;
    return 0;
}

/* One flow of finding ``which``; the smallest are kept past twice the limit. -1: no memory. */
static int add_flow(scanner_t *s, int which, const char *flow, size_t n) {
    strtab_t *f = &s->flows[which];
    if (strtab_id(f, flow, n) == NONE) return -1;
    if ((int64_t)f->n > 2 * s->flow_limit) {
        if (cap_flows(f, s->flow_limit)) return -1;
        s->capped[which] = 1;
    }
    return 0;
}

/* Pass 1: cut and number every line of ``block`` (whole lines, the last ending in a newline).
 * Returns the number of lines, or -1 when memory runs out. */
int64_t nfs_scan(void *sp, const char *block, int64_t size) {
    scanner_t *s = sp;
    const char *p = block, *end = block + size;
    s->nrows = 0;
    if (size < 0 || (uint64_t)size >= NONE) return -1;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        if (grow((void **)&s->rows, &s->rowcap, s->nrows + 1, sizeof *s->rows)) return -1;
        row_t *r = &s->rows[s->nrows++];
        parts_t parts;
        r->off = (uint32_t)(p - block);
        r->len = (uint32_t)(e - p);
        r->id[0] = NONE;
        if (cut(p, e, r, &parts)) {
            for (int t = 0; t < N_STRTABS; t++) {
                r->id[t] = strtab_id(&s->tabs[t], parts.s[t], parts.n[t]);
                if (r->id[t] == NONE) {
                    r->id[0] = NONE;
                    return -1;
                }
                if (r->id[t] >= ID_LIMIT) { /* too many values at once: the full parser */
                    r->id[0] = NONE;
                    break;
                }
                if ((t == T_SRC || t == T_DST) && r->id[t] + 1 == s->tabs[t].n)
                    s->tabs[t].plain[r->id[t]] = is_plain_ipv4(parts.s[t], parts.n[t], NULL);
            }
        }
        p = e + 1;
    }
    return (int64_t)s->nrows;
}

/* The minute of a classic syslog header ("Nov 25 04:17:23 host" -> "Nov 25 04:17:?? host")
 * into ``key`` (at least n bytes) and its second; -1 if it is not one. */
static int minute_of(const char *h, size_t n, char *key) {
    if (n < 17 || n > 512 || h[0] < 'A' || h[0] > 'Z' || h[15] != ' ' || !ISDIG(h[13]) ||
        !ISDIG(h[14]))
        return -1;
    int second = (h[13] - '0') * 10 + (h[14] - '0');
    if (second > 59) return -1;
    memcpy(key, h, n);
    key[13] = key[14] = '?';
    return second;
}

/* Headers ``from`` on not yet read: those of a minute and slot Python has told (nfs_minutes,
 * nfs_slots) get their time, status and slot bits here. */
void nfs_derive(void *sp, int64_t from) {
    scanner_t *s = sp;
    strtab_t *t = &s->tabs[T_HEADER];
    char key[512];
    for (size_t i = (size_t)from; i < t->n; i++) {
        if (t->status[i] != ST_NEW) continue;
        int second = minute_of(t->arena + t->offs[i], t->lens[i], key);
        if (second < 0) continue;
        uint32_t m = strtab_find(&s->minutes, key, t->lens[i]);
        if (m == NONE) continue;
        double time = s->minutes.d[m] + second;
        ent_t *e = map_find(&s->slot_bits, (uint64_t)(int64_t)floor(time / s->slot_seconds));
        if (!e) continue;
        int skip = !isnan(s->cutoff) && time < s->cutoff;
        t->status[i] = skip ? ST_SKIP : ST_OK;
        t->d[i] = time;
        t->bits[i] = skip ? 0 : e->n - 1;
    }
}

/* Python read these headers: ``n`` minute keys, each ended by a newline in ``keys`` (``size``
 * bytes), and the time of their second 00. Returns -1 when memory runs out, -2 on bad keys. */
int nfs_minutes(void *sp, const char *keys, int64_t size, int64_t n, const double *bases) {
    scanner_t *s = sp;
    const char *p = keys, *end = keys + size;
    for (int64_t i = 0; i < n; i++) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) return -2;
        uint32_t m = strtab_id(&s->minutes, p, (size_t)(e - p));
        if (m == NONE) return -1;
        s->minutes.d[m] = bases[i];
        p = e + 1;
    }
    return 0;
}

/* The activity bits of ``n`` slots. Returns -1 when memory runs out. */
int nfs_slots(void *sp, const int64_t *slots, const uint64_t *bits, int64_t n) {
    scanner_t *s = sp;
    for (int64_t i = 0; i < n; i++) {
        ent_t *e = map_find(&s->slot_bits, (uint64_t)slots[i]);
        if (e) e->n = bits[i] + 1;
        else if (map_add(&s->slot_bits, (uint64_t)slots[i], bits[i] + 1)) return -1;
    }
    return 0;
}

/* What the values ``from`` .. ``from + n - 1`` of table ``t`` are set to (NULL: not wanted). */
void nfs_get(void *sp, int t, int64_t from, int64_t n, int8_t *status, uint64_t *bits,
             double *d) {
    scanner_t *s = sp;
    strtab_t *tab = &s->tabs[t];
    for (int64_t i = 0; i < n; i++) {
        size_t j = (size_t)(from + i);
        if (status) status[i] = tab->status[j];
        if (bits) bits[i] = tab->bits[j];
        if (d) d[i] = tab->d[j];
    }
}

/* How many distinct values table ``t`` holds. */
int64_t nfs_count_values(void *sp, int t) {
    scanner_t *s = sp;
    return t >= 0 && t < N_STRTABS ? (int64_t)s->tabs[t].n : -1;
}

/* The values numbered ``from`` on, each followed by a newline, into ``out`` (``cap`` bytes);
 * returns the bytes written, or minus the bytes needed when ``cap`` is too small. */
int64_t nfs_values(void *sp, int t, int64_t from, char *out, int64_t cap) {
    scanner_t *s = sp;
    strtab_t *tab = &s->tabs[t];
    int64_t need = 0;
    for (size_t i = (size_t)from; i < tab->n; i++) need += tab->lens[i] + 1;
    if (need > cap) return -need;
    char *o = out;
    for (size_t i = (size_t)from; i < tab->n; i++) {
        memcpy(o, tab->arena + tab->offs[i], tab->lens[i]);
        o += tab->lens[i];
        *o++ = '\n';
    }
    return need;
}

/* What Python says of the values ``from`` .. ``from + n - 1`` of table ``t`` (NULL: unchanged). */
int nfs_set(void *sp, int t, int64_t from, int64_t n, const int8_t *status, const int8_t *x,
            const int8_t *y, const uint64_t *bits, const double *d) {
    scanner_t *s = sp;
    strtab_t *tab = &s->tabs[t];
    if (from < 0 || n < 0 || (size_t)(from + n) > tab->n) return -1;
    for (int64_t i = 0; i < n; i++) {
        size_t j = (size_t)(from + i);
        if (status) tab->status[j] = status[i];
        if (x) tab->x[j] = x[i];
        if (y) tab->y[j] = y[i];
        if (bits) tab->bits[j] = bits[i];
        if (d) tab->d[j] = d[i];
    }
    return 0;
}

/* Pass 2: count the rows of the last nfs_scan. out[0..4]: counted, skipped (before "since"),
 * left to the full parser (nfs_fallback), INVALID drops and PMTUD errors (nfs_invalid).
 * -1: out of memory. */
int nfs_count(void *sp, int64_t *out) {
    scanner_t *s = sp;
    strtab_t *hd = &s->tabs[T_HEADER], *hx = &s->tabs[T_HEAD], *sr = &s->tabs[T_SRC],
             *ds = &s->tabs[T_DST], *pt = &s->tabs[T_PORT];
    int64_t counted = 0, skipped = 0;
    s->nfallback = 0;
    s->ninvalid = 0;
    s->npmtud = 0;
    if (sr->n > s->timelen) { /* new source numbers: no time yet */
        size_t cap = s->timecap;
        if (grow((void **)&s->lo, &cap, sr->n, sizeof *s->lo)) return -1;
        cap = s->timecap;
        if (grow((void **)&s->hi, &cap, sr->n, sizeof *s->hi)) return -1;
        s->timecap = cap;
        for (size_t i = s->timelen; i < sr->n; i++) s->lo[i] = s->hi[i] = NAN;
        s->timelen = sr->n;
    }
    for (size_t i = 0; i < s->nrows; i++) {
        row_t *r = &s->rows[i];
        uint32_t h = r->id[T_HEADER], x = r->id[T_HEAD], src = r->id[T_SRC], dst = r->id[T_DST],
                 port = r->id[T_PORT];
        if (h == NONE || hd->status[h] == ST_REJECT || hx->status[x] != ST_OK ||
            sr->status[src] != ST_OK || ds->status[dst] != ST_OK || sr->x[src] != ds->x[dst]) {
            if (grow((void **)&s->fallback, &s->fallcap, 2 * s->nfallback + 2,
                     sizeof *s->fallback))
                return -1;
            s->fallback[2 * s->nfallback] = r->off;
            s->fallback[2 * s->nfallback + 1] = r->len;
            s->nfallback++;
            continue;
        }
        if (hd->status[h] == ST_SKIP) {
            skipped++;
            continue;
        }
        counted++;
        int origin = hx->x[x] == O_DEPENDS ? (sr->y[src] ? O_PEER : O_UPSTREAM) : hx->x[x];
        uint64_t o = (uint64_t)origin;
        /* only the hops a TTL means matter: 0 (64, 128, 255), some (other <= 255), unknown */
        double t = hd->d[h];
        if (r->kind) { /* PMTUD: counted in the timeline and per head, not per source */
            if (map_add(&s->maps[M_TIMELINE], TIMELINE_KEY(hd->bits[h] >> 44, x, o), 1) ||
                map_add(&s->maps[M_PMTUD], x, 1))
                return -1;
            if (!(hx->bits[x] & 1)) continue; /* let through: only counted */
            uint32_t flags = 0;
            if (sr->plain[src] && ds->plain[dst]) { /* the flow "src>dst" */
                char flow[40], *f = flow;
                memcpy(f, sr->arena + sr->offs[src], sr->lens[src]);
                f += sr->lens[src];
                *f++ = '>';
                memcpy(f, ds->arena + ds->offs[dst], ds->lens[dst]);
                f += ds->lens[dst];
                if (add_flow(s, F_PMTUD, flow, (size_t)(f - flow))) return -1;
            } else {
                flags |= 4; /* Python writes this flow */
            }
            if ((isnan(t) ? 0.0 : t) <= s->evidence_limit[F_PMTUD]) flags |= 8;
            if (!flags) continue;
            if (grow((void **)&s->pmtud, &s->pmtudcap, s->npmtud + 1, sizeof *s->pmtud))
                return -1;
            invalid_t *v = &s->pmtud[s->npmtud++];
            memset(v, 0, sizeof *v);
            v->flags = flags;
            v->head = x;
            v->src = src;
            v->dst = dst;
            v->off = r->off;
            v->len = r->len;
            v->time = t;
            continue;
        }
        uint32_t ttl = r->ttl & 0x7fffffffu;
        uint64_t hops = ttl > 255 ? 2 : (ttl == 64 || ttl == 128 || ttl == 255) ? 0 : 1;
        if (map_add(&s->maps[M_TTL], TTL_KEY(src, x, hops, o), 1) ||
            map_add(&s->maps[M_TIMELINE], TIMELINE_KEY(hd->bits[h] >> 44, x, o), 1) ||
            map_add(&s->maps[M_CLASSES], CLASS_KEY(x, o, port), 1) ||
            map_add(&s->maps[M_PORTS], PORT_KEY(src, port), 1))
            return -1;
        if (origin != O_LOCAL && !pt->x[port]) {
            if (grow((void **)&s->act, &s->actcap, s->nact + 1, sizeof *s->act) ||
                grow((void **)&s->act_src, &s->actsrccap, s->nact + 1, sizeof *s->act_src))
                return -1;
            s->act_src[s->nact] = src;
            s->act[s->nact] = hd->bits[h] | ds->bits[dst] | pt->bits[port];
            s->nact++;
        }
        if (!isnan(t)) {
            if (isnan(s->lo[src])) { /* untouched since the last take */
                if (grow((void **)&s->touched, &s->touchcap, s->ntouched + 1, sizeof *s->touched))
                    return -1;
                s->touched[s->ntouched++] = src;
                s->lo[src] = s->hi[src] = t;
            } else {
                if (t < s->lo[src]) s->lo[src] = t;
                if (t > s->hi[src]) s->hi[src] = t;
            }
        }
        if (hx->y[x]) { /* an INVALID drop: counted per head, flows written here */
            int ack = r->dpt != NONE && (r->flags & 1) && !(r->flags & 2);
            uint32_t flags = r->flags;
            if (map_add(&s->maps[M_INVALID], (uint64_t)x << 1, 1) ||
                (ack && map_add(&s->maps[M_INVALID], (uint64_t)x << 1 | 1, 1)))
                return -1;
            if (r->dpt != NONE && sr->plain[src] && ds->plain[dst]) {
                char flow[64], *o = flow; /* "src:spt>dst:dpt", at most 53 bytes */
                memcpy(o, sr->arena + sr->offs[src], sr->lens[src]);
                o += sr->lens[src];
                *o++ = ':';
                o = put_number(o, r->spt);
                *o++ = '>';
                memcpy(o, ds->arena + ds->offs[dst], ds->lens[dst]);
                o += ds->lens[dst];
                *o++ = ':';
                o = put_number(o, r->dpt);
                for (int w = F_DROPS; w <= (ack ? F_ACKS : F_DROPS); w++)
                    if (add_flow(s, w, flow, (size_t)(o - flow))) return -1;
            } else if (r->dpt != NONE) {
                flags |= 4; /* Python writes this flow (an address it must write itself) */
            }
            double te = isnan(t) ? 0.0 : t;
            if (te <= s->evidence_limit[F_DROPS] || (ack && te <= s->evidence_limit[F_ACKS]))
                flags |= 8; /* may be among the earliest lines */
            if (!(flags & 12)) continue;
            if (grow((void **)&s->invalid, &s->invcap, s->ninvalid + 1, sizeof *s->invalid))
                return -1;
            invalid_t *v = &s->invalid[s->ninvalid++];
            v->head = x;
            v->src = src;
            v->dst = dst;
            v->spt = r->spt;
            v->dpt = r->dpt;
            v->flags = flags;
            v->off = r->off;
            v->len = r->len;
            v->time = t;
        }
    }
    out[0] = counted;
    out[1] = skipped;
    out[2] = (int64_t)s->nfallback;
    out[3] = (int64_t)s->ninvalid;
    out[4] = (int64_t)s->npmtud;
    return 0;
}

/* The lines of the last nfs_count left to the full parser: (offset, length) pairs. */
void nfs_fallback(void *sp, uint32_t *out) {
    scanner_t *s = sp;
    memcpy(out, s->fallback, 2 * s->nfallback * sizeof *out);
}

/* The INVALID drops (``which`` 0) or PMTUD hazards (1) of the last nfs_count that Python must
 * see (flag 4: a flow it writes; 8: maybe among the earliest lines): 8 numbers each (head,
 * source, destination, TCP source port, TCP destination port or 2**32-1, flags, line offset,
 * line length), and times. */
void nfs_invalid(void *sp, int which, uint32_t *ints, double *times) {
    scanner_t *s = sp;
    size_t n = which ? s->npmtud : s->ninvalid;
    for (size_t i = 0; i < n; i++) {
        invalid_t *v = which ? &s->pmtud[i] : &s->invalid[i];
        uint32_t *o = ints + 8 * i;
        o[0] = v->head;
        o[1] = v->src;
        o[2] = v->dst;
        o[3] = v->spt;
        o[4] = v->dpt;
        o[5] = v->flags;
        o[6] = v->off;
        o[7] = v->len;
        times[i] = v->time;
    }
}

/* Rows later than these times are no evidence (INVALID drops, their ACKs, PMTUD hazards). */
void nfs_evidence_limits(void *sp, double drops, double acks, double pmtud) {
    scanner_t *s = sp;
    s->evidence_limit[F_DROPS] = drops;
    s->evidence_limit[F_ACKS] = acks;
    s->evidence_limit[F_PMTUD] = pmtud;
}

/* Move the flows of finding ``which`` (F_*) out, each followed by a newline; *capped: whether more than the limit were seen. Returns the bytes written, or minus
 * the bytes needed when ``cap`` is too small (nothing moved then). */
int64_t nfs_take_flows(void *sp, int which, char *out, int64_t cap, int *capped) {
    scanner_t *s = sp;
    if (which < 0 || which >= N_FINDINGS) return 0;
    strtab_t *t = &s->flows[which];
    int64_t need = 0;
    for (size_t i = 0; i < t->n; i++) need += t->lens[i] + 1;
    if (need > cap) return -need;
    char *o = out;
    for (size_t i = 0; i < t->n; i++) {
        memcpy(o, t->arena + t->offs[i], t->lens[i]);
        o += t->lens[i];
        *o++ = '\n';
    }
    *capped = s->capped[which];
    s->capped[which] = 0;
    strtab_free(t);
    return need;
}

/* Sizes: the five value tables, the five counter tables, activity pairs, touched sources. */
void nfs_sizes(void *sp, int64_t *out) {
    scanner_t *s = sp;
    for (int i = 0; i < N_STRTABS; i++) out[i] = (int64_t)s->tabs[i].n;
    for (int i = 0; i < N_MAPS; i++) out[N_STRTABS + i] = (int64_t)s->maps[i].len;
    out[N_STRTABS + M_ACTIVITY] = (int64_t)s->nact;
    out[N_STRTABS + M_ACTIVITY + 1] = (int64_t)s->ntouched;
}

/* Move counter table ``m`` out: (key, n) pairs into ``out``; the table is emptied. */
int64_t nfs_take(void *sp, int m, uint64_t *out) {
    scanner_t *s = sp;
    map_t *map = &s->maps[m];
    int64_t k = 0;
    for (size_t i = 0; map->e && i <= map->mask; i++) {
        if (!map->e[i].n) continue;
        out[2 * k] = map->e[i].k;
        out[2 * k + 1] = map->e[i].n;
        k++;
    }
    map_clear(map);
    return k;
}

static int cmp_u64(const void *x, const void *y) {
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* Forget the wrapper headers: no counter key holds their numbers, only the rows of the last
 * block (call between blocks). */
void nfs_clear_headers(void *sp) {
    scanner_t *s = sp;
    strtab_clear(&s->tabs[T_HEADER]);
}

/* Forget every numbered value (call after taking every table: their keys use the numbers). */
void nfs_clear(void *sp) {
    scanner_t *s = sp;
    for (int i = 0; i < N_STRTABS; i++) strtab_clear(&s->tabs[i]);
    for (int i = 0; i < N_MAPS; i++) map_clear(&s->maps[i]);
    strtab_clear(&s->minutes);
    map_clear(&s->slot_bits);
    s->nact = 0;
    for (size_t i = 0; i < s->ntouched; i++) s->lo[s->touched[i]] = s->hi[s->touched[i]] = NAN;
    s->ntouched = 0;
    s->nrows = 0;
    s->nnorm = s->nalen = s->gidlen = 0;
}

/* ---- scans: the densest window per destination and per port ----------------------------- */
/* Activity keys (nfkit.logs.activity): slot number << 44 | destination << 18 | port. */
#define K_SLOT_SHIFT 44
#define K_DST_SHIFT 18
#define K_DST_MASK ((1ull << 26) - 1)
#define K_PORT_MASK ((1ull << 18) - 1)
#define EMPTY UINT64_MAX

typedef struct {
    int64_t slot;
    uint32_t dst, port;
} triple_t;

typedef struct {
    uint64_t *k;
    int64_t *v, *w;
    size_t mask;
} imap_t;

static int imap_init(imap_t *m, size_t n) {
    size_t size = 16;
    while (size < 2 * n) size *= 2;
    m->k = malloc(size * sizeof *m->k);
    m->v = calloc(size, sizeof *m->v);
    m->w = calloc(size, sizeof *m->w);
    m->mask = size - 1;
    if (!m->k || !m->v || !m->w) return -1;
    memset(m->k, 0xff, size * sizeof *m->k);
    return 0;
}

static void imap_free(imap_t *m) {
    free(m->k);
    free(m->v);
    free(m->w);
}

/* The index of key ``k`` (added with value 0 if new; at most n distinct keys are added). */
static size_t imap_at(imap_t *m, uint64_t k) {
    size_t j = hash_pair(k, 0) & m->mask;
    while (m->k[j] != k && m->k[j] != EMPTY) j = (j + 1) & m->mask;
    m->k[j] = k;
    return j;
}


typedef struct {
    int64_t slot, start, end;
} run_t;

static int cmp_run(const void *x, const void *y) {
    const run_t *a = x, *b = y;
    return a->slot < b->slot ? -1 : a->slot > b->slot;
}

/* The keys as (slot, destination, port), in time order. Sorted keys come in runs of one slot
 * number; only the runs need ordering by the slot they stand for. */
/* The counts that grew in this window: a new best (count, window start) where it beats the
 * best so far; their "grown" marks are cleared. */
static void keep_best(imap_t *counts, imap_t *best, const uint32_t *grown, size_t n,
                      int64_t start) {
    for (size_t i = 0; i < n; i++) {
        size_t q = imap_at(counts, grown[i]);
        counts->w[q] = 0;
        size_t b = imap_at(best, grown[i]);
        if (counts->v[q] > best->v[b]) {
            best->v[b] = counts->v[q];
            best->w[b] = start;
        }
    }
}

static int load_triples(const uint64_t *keys, int64_t n, const int64_t *slots, triple_t **out) {
    triple_t *t = malloc((n ? (size_t)n : 1) * sizeof *t);
    run_t *runs = malloc((n ? (size_t)n : 1) * sizeof *runs);
    if (!t || !runs) {
        free(t);
        free(runs);
        return -1;
    }
    int64_t r = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i == 0 || keys[i] >> K_SLOT_SHIFT != keys[i - 1] >> K_SLOT_SHIFT) {
            if (r) runs[r - 1].end = i;
            runs[r].slot = slots[keys[i] >> K_SLOT_SHIFT];
            runs[r].start = i;
            r++;
        }
    }
    if (r) runs[r - 1].end = n;
    int ascending = 1; /* slots numbered in time order (nfkit.logs.parallel sees to it) */
    for (int64_t i = 1; i < r && ascending; i++) ascending = runs[i - 1].slot < runs[i].slot;
    if (!ascending && r > 32) {
        qsort(runs, (size_t)r, sizeof *runs, cmp_run);
    } else if (!ascending) {
        for (int64_t i = 1; i < r; i++) {
            run_t x = runs[i];
            int64_t j = i;
            for (; j > 0 && runs[j - 1].slot > x.slot; j--) runs[j] = runs[j - 1];
            runs[j] = x;
        }
    }
    int64_t k = 0;
    for (int64_t i = 0; i < r; i++) {
        for (int64_t j = runs[i].start; j < runs[i].end; j++, k++) {
            t[k].slot = runs[i].slot;
            t[k].dst = (uint32_t)((keys[j] >> K_DST_SHIFT) & K_DST_MASK);
            t[k].port = (uint32_t)(keys[j] & K_PORT_MASK);
        }
    }
    free(runs);
    *out = t;
    return 0;
}

/* Many sources at once: ``keys[i]`` holds ``lens[i]`` keys of source i. Writes (source index,
 * kind, number, count, start) per found window into ``out`` (``cap`` numbers); returns how
 * many were found, or minus the numbers needed when ``cap`` is too small (-1 when memory runs
 * out: then call again with the same arguments and a smaller batch). */
static int64_t windows(const uint64_t *keys, int64_t n, const int64_t *slots,
                       const uint8_t *is_port, int64_t span, int64_t vmin, int64_t hmin,
                       int64_t *out);

int64_t nfs_windows_many(const uint64_t *const *keys, const int64_t *lens, int64_t sources,
                         const int64_t *slots, const uint8_t *is_port, int64_t span, int64_t vmin,
                         int64_t hmin, int64_t *out, int64_t cap) {
    int64_t most = 0, found = 0;
    for (int64_t i = 0; i < sources; i++)
        if (lens[i] > most) most = lens[i];
    int64_t *one = malloc((size_t)(8 * (most ? most : 1)) * sizeof *one);
    if (!one) return -1;
    int64_t need = 0;
    for (int64_t i = 0; i < sources; i++) {
        /* a window holds at most n (destination, port) pairs: no count can reach the levels */
        if (lens[i] < vmin && lens[i] < hmin) continue;
        int64_t k = windows(keys[i], lens[i], slots, is_port, span, vmin, hmin, one);
        if (k < 0) {
            free(one);
            return -1;
        }
        for (int64_t j = 0; j < k; j++) {
            if (5 * (found + 1) <= cap) {
                out[5 * found] = i;
                memcpy(out + 5 * found + 1, one + 4 * j, 4 * sizeof *out);
            }
            found++;
        }
    }
    need = 5 * found;
    free(one);
    return need > cap ? -need : found;
}

/* For one source's distinct activity ``keys``: per destination, the most distinct ports (of
 * port protocols, ``is_port``) inside one window of ``span`` slots, and per port the most
 * destinations, with the first window start (a slot with activity) that has it. Windows are
 * as findings._best_windows slides them. Writes (kind 0 vertical / 1 horizontal, number,
 * count, start) for the counts of at least ``vmin`` / ``hmin``; returns how many, -1 when
 * memory runs out. ``out`` holds 4 * 2 * n numbers. */
static int64_t windows(const uint64_t *keys, int64_t n, const int64_t *slots,
                       const uint8_t *is_port, int64_t span, int64_t vmin, int64_t hmin,
                       int64_t *out) {
    triple_t *t = NULL;
    imap_t pairs = {0}, hosts = {0}, ports = {0};
    uint32_t *grown_hosts = NULL, *grown_ports = NULL;
    int64_t found = -1;
    if (load_triples(keys, n, slots, &t)) goto done;
    { /* no window holds more pairs than the densest: below both levels, nothing to find */
        int64_t densest = 0, low = 0;
        for (int64_t high = 0; high < n; high++) {
            while (t[high].slot >= t[low].slot + span) low++;
            if (high - low + 1 > densest) densest = high - low + 1;
        }
        if (densest < vmin && densest < hmin) {
            found = 0;
            goto done;
        }
    }
    if (imap_init(&pairs, (size_t)n) || imap_init(&hosts, (size_t)n) ||
        imap_init(&ports, (size_t)n))
        goto done;
    grown_hosts = malloc((n ? (size_t)n : 1) * sizeof *grown_hosts);
    grown_ports = malloc((n ? (size_t)n : 1) * sizeof *grown_ports);
    if (!grown_hosts || !grown_ports) goto done;
    /* hosts.v: distinct ports in the window; hosts.w: best count << 0 ... kept apart below */
    int64_t head = 0, start_at = 0;
    /* best per host / port: count in bv/bw maps */
    imap_t best_h = {0}, best_p = {0};
    if (imap_init(&best_h, (size_t)n) || imap_init(&best_p, (size_t)n)) {
        imap_free(&best_h);
        imap_free(&best_p);
        goto done;
    }
    while (start_at < n) {
        int64_t start = t[start_at].slot;
        size_t ngh = 0, ngp = 0;
        while (head < n && t[head].slot < start + span) {
            triple_t *x = &t[head++];
            size_t j = imap_at(&pairs, ((uint64_t)x->dst << 32) | x->port);
            if (pairs.v[j]++) continue;
            size_t q = imap_at(&ports, x->port);
            if (!ports.w[q]) grown_ports[ngp++] = x->port;
            ports.w[q] = 1;
            ports.v[q]++;
            if (is_port[x->port]) {
                size_t h = imap_at(&hosts, x->dst);
                if (!hosts.w[h]) grown_hosts[ngh++] = x->dst;
                hosts.w[h] = 1;
                hosts.v[h]++;
            }
        }
        keep_best(&hosts, &best_h, grown_hosts, ngh, start);
        keep_best(&ports, &best_p, grown_ports, ngp, start);
        /* the slot at ``start`` leaves */
        int64_t next = start_at;
        while (next < n && t[next].slot == start) {
            triple_t *x = &t[next++];
            size_t j = imap_at(&pairs, ((uint64_t)x->dst << 32) | x->port);
            if (--pairs.v[j]) continue;
            ports.v[imap_at(&ports, x->port)]--;
            if (is_port[x->port]) hosts.v[imap_at(&hosts, x->dst)]--;
        }
        start_at = next;
    }
    found = 0;
    for (size_t j = 0; j <= best_h.mask; j++) {
        if (best_h.k[j] == EMPTY || best_h.v[j] < vmin || !best_h.v[j]) continue;
        out[4 * found] = 0;
        out[4 * found + 1] = (int64_t)best_h.k[j];
        out[4 * found + 2] = best_h.v[j];
        out[4 * found + 3] = best_h.w[j];
        found++;
    }
    for (size_t j = 0; j <= best_p.mask; j++) {
        if (best_p.k[j] == EMPTY || best_p.v[j] < hmin || !best_p.v[j]) continue;
        out[4 * found] = 1;
        out[4 * found + 1] = (int64_t)best_p.k[j];
        out[4 * found + 2] = best_p.v[j];
        out[4 * found + 3] = best_p.w[j];
        found++;
    }
    imap_free(&best_h);
    imap_free(&best_p);
done:
    free(t);
    free(grown_hosts);
    free(grown_ports);
    imap_free(&pairs);
    imap_free(&hosts);
    imap_free(&ports);
    return found;
}

/* The ports on destination ``number`` (``vertical``, port protocols only) or the destinations
 * of port ``number`` that one source touched in the window of ``span`` slots from ``start``:
 * distinct, into ``out`` (n numbers at most); returns how many, -1 when memory runs out. */
int64_t nfs_window_items(const uint64_t *keys, int64_t n, const int64_t *slots,
                         const uint8_t *is_port, int64_t start, int64_t span, int64_t number,
                         int vertical, int64_t *out) {
    imap_t seen = {0};
    if (imap_init(&seen, (size_t)n)) {
        imap_free(&seen);
        return -1;
    }
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t slot = slots[keys[i] >> K_SLOT_SHIFT];
        if (slot < start || slot >= start + span) continue;
        uint64_t dst = (keys[i] >> K_DST_SHIFT) & K_DST_MASK, port = keys[i] & K_PORT_MASK;
        uint64_t item;
        if (vertical && dst == (uint64_t)number && is_port[port]) item = port;
        else if (!vertical && port == (uint64_t)number) item = dst;
        else continue;
        size_t j = hash_pair(item, 0) & seen.mask;
        while (seen.k[j] != item && seen.k[j] != EMPTY) j = (j + 1) & seen.mask;
        if (seen.k[j] == item) continue;
        seen.k[j] = item;
        out[k++] = (int64_t)item;
    }
    imap_free(&seen);
    return k;
}

/* Sort ``keys`` and drop repeats, in place; returns how many distinct keys there are. */
int64_t nfs_sort_unique(uint64_t *keys, int64_t n) {
    if (n <= 1) return n < 0 ? 0 : n;
    qsort(keys, (size_t)n, sizeof *keys, cmp_u64);
    int64_t k = 1;
    for (int64_t i = 1; i < n; i++)
        if (keys[i] != keys[k - 1]) keys[k++] = keys[i];
    return k;
}

/* The values ``from`` on of table ``t`` that are IPv4 addresses written the one way Python's
 * ipaddress writes them (four decimal parts 0-255, no leading zeros): ``ok[i]`` 1 and the
 * address in ``out[i]``; 0 for anything else (Python reads those itself). */
void nfs_ipv4(void *sp, int t, int64_t from, uint32_t *out, int8_t *ok) {
    scanner_t *s = sp;
    strtab_t *tab = &s->tabs[t];
    for (size_t i = (size_t)from; i < tab->n; i++) {
        uint32_t address = 0;
        int good = is_plain_ipv4(tab->arena + tab->offs[i], tab->lens[i], &address);
        out[i - (size_t)from] = good ? address : 0;
        ok[i - (size_t)from] = (int8_t)good;
    }
}

/* Activity keys renumbered by three tables (slot, destination and port number -> the bits of
 * the new numbers), sorted, into ``out``. */
void nfs_renumber(const uint64_t *keys, int64_t n, const uint64_t *slot_map,
                  const uint64_t *dst_map, const uint64_t *port_map, uint64_t *out) {
    for (int64_t i = 0; i < n; i++)
        out[i] = slot_map[keys[i] >> K_SLOT_SHIFT] |
                 dst_map[(keys[i] >> K_DST_SHIFT) & K_DST_MASK] | port_map[keys[i] & K_PORT_MASK];
    qsort(out, (size_t)n, sizeof *out, cmp_u64);
}

#include "_store.c"
