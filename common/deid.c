/* FNM_CASEFOLD and strcasestr(3) are GNU extensions (glibc, musl). */
#define _GNU_SOURCE
#define MLK_REC_INLINE          /* rec_raw, rec_type inline: see record.h */
#include "deid.h"

#include <ctype.h>
#include <fnmatch.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "ehr.h"
#include "pmap.h"
#include "record.h"
#include "scrub.h"
#include "xalloc.h"
#include "banned.h"

enum rkind { RK_FHIR = 0, RK_FLAT, RK_HL7 };

/* A field path seen in records: a node of a trie kept in a hash table. */
struct pnode {
	uint32_t parent;
	uint32_t depth;
	char *key;
	size_t klen;
	int rule;                /* best path rule, -1 none */
	int resolved;
	int label;               /* 0 unknown, 1 none, 2 name, 3 address */
	int notid;               /* 0 unknown, 1 may hold an id, 2 a code */
	unsigned long long dropped;
	/* Records repeat their layout: the child met first under this node
	 * and the sibling met after this one, last time (index + 1, 0
	 * none).  A hint is only a guess, checked before it is used. */
	uint32_t first_hint, next_hint;
};

struct ptab {
	struct pnode *v;
	size_t n, alloc;
	uint32_t *slot;          /* node index + 1, 0 empty */
	size_t nslot;
};

struct frame {
	uint32_t node;
	int ftype;
};

/* Recently seen values and their tokens: ids repeat (a patient's id in
 * every record of theirs), and a lookup is cheaper than an HMAC. */
#define TCACHE 1024
#define TCACHE_MAX 64
/* Patients recur (every record of theirs names them) among ids that do
 * not (an encounter's): their tokens and offsets have a cache of their
 * own, which the one-off ids do not evict. */
#define PCACHE 16384
struct tcache {
	uint8_t len;             /* 0 empty */
	char v[TCACHE_MAX];
	char tok[DEID_TOKEN_LEN + 1];
	int shift_ok;
	int shift;
};

struct tls {
	struct deid *d;
	struct tcache *tc;
	struct tcache *pc;       /* patients, PCACHE entries */
	struct mlk_error err;    /* of the last rec_parse */
	struct rec r;
	struct crypto_hmac *mac;
	struct scrub *sc;
	struct ptab pt;
	struct frame stack[REC_MAX_DEPTH + 4];
	struct buf tmp, tmp2, out;
	enum rkind kind;
	int collect;             /* gather known identifiers, no output */
	int scan;                /* ...into pout->aux (patient scan) */
	int have_patient;
	int shift;               /* this record's patient offset, days */
	char ptoken[DEID_TOKEN_LEN + 1];
	struct pmap_out *pout;   /* for vault entries */
	uint32_t *drops;         /* this record's dropped paths */
	size_t nd, dalloc;
	/* Scrubbed text waits for the record's identifiers: a placeholder
	 * "" at pos in the output, filled in when the walk is done. */
	struct defer { size_t pos; int v; } *dv;
	size_t ndv, dvalloc;
	/* The record's identifiers, for the scrubber. */
	struct known { int v; const char *kind; } *kv;
	size_t nkv, kvalloc;
	size_t vault_mark;
	struct deid_counts c;
};

struct deid {
	const struct deid_params *p;
	const struct profile *prof;
	struct crypto_hmac *mac; /* keyed with the project key */
	int has_scrub;
	int has_encrypt;
	int has_shift;           /* a dateshift rule: patients need offsets */
	size_t *type_rules;      /* the datatype and value rules */
	size_t ntype;
	size_t *value_rules;     /* the value rules alone */
	size_t nvalue;
	size_t *pflen;           /* lengths of the patient fields */
	/* Patient scan: identifiers of each patient (by token), from the
	 * records that describe patients, for the scrubber. */
	struct pknown { char token[DEID_TOKEN_LEN + 1]; struct buf vals; }
		*pk;
	size_t npk, pkslots;
	size_t pk_bytes;
	int pk_full, scanned;
	const struct deid_sink *sink;
	pthread_mutex_t lock;
	struct deid_counts c;
	/* dropped-field counts merged from threads */
	char **dpath;
	unsigned long long *dcount;
	size_t nd, dalloc;
	char deid_json[1024];
};

static void pk_add_known(struct tls *t);
static void tls_release(struct tls *t);

/* ------------------------------------------------------------------ */
/* Keys and tokens                                                     */

static void project_key(const uint8_t key[MLK_KEY_LEN], const char *label,
			const char *project, uint8_t out[MLK_KEY_LEN])
{
	struct mlk_error e = MLK_ERROR_INIT;
	struct crypto_hmac *h = crypto_hmac_new(key, &e);
	if (!h)
		xmalloc((size_t)-1);   /* only allocation can fail */
	crypto_hmac2(h, label, strlen(label) + 1, project, strlen(project),
		     out);
	crypto_hmac_free(h);
}

void deid_vault_key(const uint8_t key[MLK_KEY_LEN], const char *project,
		    uint8_t out[MLK_KEY_LEN])
{
	project_key(key, "mlk-deid vault", project, out);
}

static void token_of(struct crypto_hmac *h, const char *v, size_t n,
		     char out[DEID_TOKEN_LEN + 1])
{
	uint8_t md[SHA256_LEN];
	crypto_hmac2(h, "t", 2, v, n, md);
	md[6] = (uint8_t)((md[6] & 0x0f) | 0x80);   /* version 8 */
	md[8] = (uint8_t)((md[8] & 0x3f) | 0x80);   /* RFC 9562 variant */
	static const char hx[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hx[md[i] >> 4];
		out[o++] = hx[md[i] & 15];
	}
	out[o] = '\0';
	crypto_wipe(md, sizeof md);
}

static struct tcache *cache_slot(struct tcache *tc, size_t size,
				 const char *v, size_t n)
{
	if (n == 0 || n > TCACHE_MAX)
		return NULL;
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)v[i]) * 0x100000001b3ULL;
	return &tc[h & (size - 1)];
}

static struct tcache *tcache_slot(struct tls *t, const char *v, size_t n)
{
	return cache_slot(t->tc, TCACHE, v, n);
}

static int cache_has(const struct tcache *c, const char *v, size_t n)
{
	return c && c->len == n && !memcmp(c->v, v, n);
}

/* Remember v's token (shift unknown) in slot c unless it is there. */
static void cache_put(struct tcache *c, const char *v, size_t n,
		      const char *tok)
{
	if (!c || cache_has(c, v, n))
		return;
	c->len = (uint8_t)n;
	memcpy(c->v, v, n);
	memcpy(c->tok, tok, DEID_TOKEN_LEN + 1);
	c->shift_ok = 0;
}

/* token_of under the thread's key, through the cache. */
static void tok_cached(struct tls *t, const char *v, size_t n,
		       char out[DEID_TOKEN_LEN + 1])
{
	struct tcache *c = tcache_slot(t, v, n);
	if (c && c->len == n && !memcmp(c->v, v, n)) {
		memcpy(out, c->tok, DEID_TOKEN_LEN + 1);
		return;
	}
	token_of(t->mac, v, n, out);
	if (c) {
		c->len = (uint8_t)n;
		memcpy(c->v, v, n);
		memcpy(c->tok, out, DEID_TOKEN_LEN + 1);
		c->shift_ok = 0;
	}
}

void deid_token(struct deid *d, const char *v, size_t n,
		char out[DEID_TOKEN_LEN + 1])
{
	token_of(d->mac, v, n, out);
}

static uint64_t mac64(struct crypto_hmac *h, const char *label,
		      const char *v, size_t n)
{
	uint8_t md[SHA256_LEN];
	crypto_hmac2(h, label, strlen(label) + 1, v, n, md);
	uint64_t x = 0;
	for (int i = 0; i < 8; i++)
		x = x << 8 | md[i];
	return x;
}

/* A patient's offset in days: in [-span, span], never 0. */
static int shift_of(struct crypto_hmac *h, int span, const char *pid,
		    size_t n)
{
	uint64_t x = mac64(h, "shift", pid, n);
	int off = (int)(x % (uint64_t)(2 * span)) - span;
	return off >= 0 ? off + 1 : off;
}

int deid_shift_days(struct deid *d, const char *pid, size_t n)
{
	return shift_of(d->mac, d->prof->shift_days, pid, n);
}

struct deid_keys {
	struct crypto_hmac *mac;
	int span;
};

struct deid_keys *deid_keys_new(const struct deid *d)
{
	struct deid_keys *k = xcalloc(1, sizeof *k);
	k->mac = crypto_hmac_dup(d->mac);
	k->span = d->prof->shift_days;
	return k;
}

void deid_keys_free(struct deid_keys *k)
{
	if (!k)
		return;
	crypto_hmac_free(k->mac);
	free(k);
}

void deid_keys_token(struct deid_keys *k, const char *v, size_t n,
		     char out[DEID_TOKEN_LEN + 1])
{
	token_of(k->mac, v, n, out);
}

int deid_keys_shift(struct deid_keys *k, const char *pid, size_t n)
{
	return shift_of(k->mac, k->span, pid, n);
}

/* ------------------------------------------------------------------ */
/* Dates                                                               */

static int dig(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return 0;
	return 1;
}

static int num(const char *p, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (p[i] - '0');
	return v;
}

/*
 * A date: ISO 8601 as FHIR writes it (YYYY, YYYY-MM, YYYY-MM-DD, then
 * Thh:mm[:ss[.f]][Z|+hh:mm]), or with hl7 set, HL7 DTM (YYYY[MM[DD[HHMM
 * [SS[.S]]]]][+ZZZZ]).  Returns the precision (1 year, 2 month, 3 day) and
 * where the part after the date starts; 0 when not a date.
 */
static int parse_date(const char *p, size_t n, int hl7, int *y, int *m,
		      int *d, size_t *rest)
{
	if (n < 4 || !dig(p, 4))
		return 0;
	*y = num(p, 4);
	*m = 1;
	*d = 1;
	int prec = 1;
	size_t o = 4;
	if (!hl7) {
		if (o < n && p[o] == '-') {
			if (n < 7 || !dig(p + 5, 2))
				return 0;
			*m = num(p + 5, 2);
			prec = 2;
			o = 7;
			if (o < n && p[o] == '-') {
				if (n < 10 || !dig(p + 8, 2))
					return 0;
				*d = num(p + 8, 2);
				prec = 3;
				o = 10;
				if (o < n && p[o] != 'T')
					return 0;
				if (o < n && (n < 16 || !dig(p + 11, 2) ||
					      p[13] != ':' || !dig(p + 14, 2)))
					return 0;
			} else if (o < n) {
				return 0;
			}
		} else if (o < n) {
			return 0;
		}
	} else {
		if (n >= 6 && dig(p + 4, 2)) {
			*m = num(p + 4, 2);
			prec = 2;
			o = 6;
			if (n >= 8 && dig(p + 6, 2)) {
				*d = num(p + 6, 2);
				prec = 3;
				o = 8;
			}
		}
		for (size_t i = o; i < n; i++)
			if (!isdigit((unsigned char)p[i]) && p[i] != '.' &&
			    p[i] != '+' && p[i] != '-')
				return 0;
	}
	if (*m < 1 || *m > 12 || *d < 1 || *d > 31)
		return 0;
	*rest = o;
	return prec;
}

/* Days since 1970-01-01 of a civil date, and back (H. Hinnant). */
static long days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	long era = (y >= 0 ? y : y - 399) / 400;
	long yoe = y - era * 400;
	long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(long z, int *y, int *m, int *d)
{
	z += 719468;
	long era = (z >= 0 ? z : z - 146096) / 146097;
	long doe = z - era * 146097;
	long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long yy = yoe + era * 400;
	long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	long mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yy + (*m <= 2));
}

/* ------------------------------------------------------------------ */
/* The path cache                                                      */

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
	return h;
}

static void ptab_init(struct ptab *t)
{
	memset(t, 0, sizeof *t);
	/* Three roots: FHIR, flat, HL7. */
	for (int i = 0; i < 3; i++) {
		XGROW(t->v, t->alloc, t->n + 1);
		struct pnode *nd = &t->v[t->n++];
		memset(nd, 0, sizeof *nd);
		nd->parent = UINT32_MAX;
		nd->rule = -1;
		nd->resolved = 1;
	}
	t->nslot = 1024;
	t->slot = xcalloc(t->nslot, sizeof *t->slot);
}

static void ptab_release(struct ptab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].key);
	free(t->v);
	free(t->slot);
}

static uint64_t phash(uint32_t parent, const char *k, size_t n)
{
	return fnv(0xcbf29ce484222325ULL ^ parent, k, n);
}

static void ptab_rehash(struct ptab *t)
{
	free(t->slot);
	t->nslot *= 2;
	t->slot = xcalloc(t->nslot, sizeof *t->slot);
	for (size_t i = 3; i < t->n; i++) {
		const struct pnode *nd = &t->v[i];
		size_t s = phash(nd->parent, nd->key, nd->klen) &
			   (t->nslot - 1);
		while (t->slot[s])
			s = (s + 1) & (t->nslot - 1);
		t->slot[s] = (uint32_t)i + 1;
	}
}

/* The node of key k under parent; UINT32_MAX when the cache is full. */
static uint32_t ptab_child(struct ptab *t, uint32_t parent, const char *k,
			   size_t n)
{
	size_t s = phash(parent, k, n) & (t->nslot - 1);
	while (t->slot[s]) {
		const struct pnode *nd = &t->v[t->slot[s] - 1];
		if (nd->parent == parent && nd->klen == n &&
		    !memcmp(nd->key, k, n))
			return t->slot[s] - 1;
		s = (s + 1) & (t->nslot - 1);
	}
	if (t->n >= DEID_MAX_PATHS)
		return UINT32_MAX;
	XGROW(t->v, t->alloc, t->n + 1);
	struct pnode *nd = &t->v[t->n];
	memset(nd, 0, sizeof *nd);
	nd->parent = parent;
	nd->depth = t->v[parent].depth + 1;
	nd->key = xstrndup(k, n);
	nd->klen = n;
	nd->rule = -1;
	t->slot[s] = (uint32_t)t->n + 1;
	t->n++;
	if (t->n * 2 > t->nslot)
		ptab_rehash(t);
	return (uint32_t)t->n - 1;
}

/* ------------------------------------------------------------------ */
/* Rule matching                                                       */

static int seg_match(const char *pat, const char *key, int icase)
{
	if (!strcmp(pat, "*"))
		return 1;
	if (strpbrk(pat, "*?["))
		return fnmatch(pat, key, icase ? FNM_CASEFOLD : 0) == 0;
	return icase ? !strcasecmp(pat, key) : !strcmp(pat, key);
}

static int path_match(char *const *pat, size_t np, const char *const *key,
		      size_t nk, int icase)
{
	if (!np)
		return nk == 0;
	if (!strcmp(pat[0], "**")) {
		for (size_t i = 0; i <= nk; i++)
			if (path_match(pat + 1, np - 1, key + i, nk - i, icase))
				return 1;
		return 0;
	}
	return nk && seg_match(pat[0], key[0], icase) &&
	       path_match(pat + 1, np - 1, key + 1, nk - 1, icase);
}

static int kind_has(enum rkind k, enum sel_kind s)
{
	switch (k) {
	case RK_FHIR: return s == SEL_FHIR;
	case RK_FLAT: return s == SEL_FIELD;
	case RK_HL7: return s == SEL_FIELD || s == SEL_HL7;
	}
	return 0;
}

/* The best path rule for node id's path. */
static int best_path_rule(const struct profile *pf, const struct ptab *t,
			  uint32_t id, enum rkind kind)
{
	const char *keys[REC_MAX_DEPTH + 4];
	size_t depth = t->v[id].depth;
	if (depth > REC_MAX_DEPTH)
		return -1;
	uint32_t x = id;
	for (size_t i = depth; i-- > 0;) {
		keys[i] = t->v[x].key;
		x = t->v[x].parent;
	}
	int best = -1, bs = -1;
	for (size_t i = 0; i < pf->nrules; i++) {
		const struct prule *r = &pf->rules[i];
		if (!kind_has(kind, r->kind) || r->ftype || r->vkind)
			continue;
		if (r->score < bs)
			continue;
		if (path_match(r->seg, r->nseg, keys, depth,
			       r->kind == SEL_FIELD))
			best = (int)i, bs = r->score;
	}
	return best;
}

static int node_rule(struct tls *t, uint32_t id)
{
	struct pnode *nd = &t->pt.v[id];
	if (!nd->resolved) {
		nd->rule = best_path_rule(t->d->prof, &t->pt, id, t->kind);
		nd->resolved = 1;
	}
	return nd->rule;
}

/* FHIR datatypes by shape: the member names an object has. */
static int ftype_of(const struct rec *r, int obj)
{
	int has_family = 0, has_line = 0, has_system = 0, has_value = 0;
	int has_code = 0, has_ref = 0, has_div = 0, has_ctype = 0;
	int has_url = 0, has_valx = 0, has_author = 0, has_text = 0;
	int contact_sys = 0, has_display = 0;
	const int *sk = r->skip;
	for (int k = obj + 1; k < sk[obj]; k = sk[k + 1]) {
		size_t n;
		const char *p = rec_raw(r, k, &n);
#define K(s) (n == sizeof(s) - 1 && !memcmp(p, s, n))
		if (K("family") || K("given"))
			has_family = 1;
		else if (K("line") || K("city") || K("postalCode") ||
			 K("district"))
			has_line = 1;
		else if (K("system")) {
			has_system = 1;
			size_t vn;
			const char *v = rec_raw(r, k + 1, &vn);
			static const char *const cs[] = { "phone", "fax",
				"email", "pager", "url", "sms", "other" };
			for (size_t i = 0; i < 7; i++)
				if (strlen(cs[i]) == vn && !memcmp(cs[i], v, vn))
					contact_sys = 1;
		} else if (K("value"))
			has_value = rec_type(r, k + 1) == REC_STRING;
		else if (K("code"))
			has_code = 1;
		else if (K("reference"))
			has_ref = 1;
		else if (K("display"))
			has_display = 1;
		else if (K("div"))
			has_div = 1;
		else if (K("contentType") || K("data"))
			has_ctype = 1;
		else if (K("url"))
			has_url = 1;
		else if (n > 5 && !memcmp(p, "value", 5))
			has_valx = 1;
		else if (K("authorString") || K("authorReference"))
			has_author = 1;
		else if (K("text"))
			has_text = rec_type(r, k + 1) == REC_STRING;
#undef K
	}
	if (has_family)
		return FT_HUMANNAME;
	if (has_line)
		return FT_ADDRESS;
	if (has_system && contact_sys && has_value)
		return FT_CONTACTPOINT;
	/* A Coding has a display too, but also a code or a system. */
	if (has_ref || (has_display && !has_code && !has_system))
		return FT_REFERENCE;
	if (has_div)
		return FT_NARRATIVE;
	if (has_ctype)
		return FT_ATTACHMENT;
	if (has_url && (has_valx || !has_value))
		return FT_EXTENSION;
	if (has_author || (has_text && !has_code && !has_system))
		return has_author ? FT_ANNOTATION : FT_NONE;
	if (has_value && !has_code)
		return FT_IDENTIFIER;
	return FT_NONE;
}

static int is_email(const char *p, size_t n)
{
	const char *at = memchr(p, '@', n);
	if (!at || at == p || memchr(p, ' ', n))
		return 0;
	return memchr(at, '.', n - (size_t)(at - p)) != NULL;
}

static int is_ssn(const char *p, size_t n)
{
	return n == 11 && dig(p, 3) && p[3] == '-' && dig(p + 4, 2) &&
	       p[6] == '-' && dig(p + 7, 4);
}

static int is_phone(const char *p, size_t n)
{
	int d = 0;
	for (size_t i = 0; i < n; i++) {
		if (isdigit((unsigned char)p[i]))
			d++;
		else if (!strchr(" ()-.+x", p[i]))
			return 0;
	}
	return d >= 10 && d <= 15 && n >= 12;
}

static int vkind_match(int vk, const char *p, size_t n)
{
	int y, m, d;
	size_t rest;
	switch (vk) {
	case VK_DATE:
		return n >= 7 && parse_date(p, n, 0, &y, &m, &d, &rest) >= 2;
	case VK_EMAIL: return is_email(p, n);
	case VK_SSN: return is_ssn(p, n);
	case VK_PHONE: return is_phone(p, n);
	}
	return 0;
}

/*
 * The best datatype or value rule for the node on top of the stack (sp),
 * whose value is token v; -1 none.
 */
static int best_type_rule(struct tls *t, size_t sp, int v)
{
	const struct profile *pf = t->d->prof;
	const struct rec *r = &t->r;
	int best = -1, bs = -1;
	int vt = rec_type(r, v);
	const size_t *list = t->kind == RK_FHIR ? t->d->type_rules
						: t->d->value_rules;
	size_t nl = t->kind == RK_FHIR ? t->d->ntype : t->d->nvalue;
	for (size_t ti = 0; ti < nl; ti++) {
		size_t i = list[ti];
		const struct prule *ru = &pf->rules[i];
		if (ru->vkind && vt != REC_STRING)
			continue;
		if (ru->ftype && t->kind != RK_FHIR)
			continue;
		if (ru->score < bs)
			continue;
		if (ru->vkind) {
			if (vt != REC_STRING)
				continue;
			size_t n;
			const char *p = rec_raw(r, v, &n);
			if (vkind_match(ru->vkind, p, n))
				best = (int)i, bs = ru->score;
			continue;
		}
		if (!ru->ftype || t->kind != RK_FHIR)
			continue;
		size_t l = ru->nseg - 1;
		if (l >= sp)
			continue;
		if (t->stack[sp - l].ftype != ru->ftype)
			continue;
		int ok = 1;
		for (size_t j = 0; ok && j < l; j++) {
			const struct pnode *nd =
				&t->pt.v[t->stack[sp - l + 1 + j].node];
			ok = nd->key && seg_match(ru->seg[1 + j], nd->key, 0);
		}
		if (ok)
			best = (int)i, bs = ru->score;
	}
	return best;
}

/* ------------------------------------------------------------------ */
/* Methods on values                                                   */

static void add_str(struct buf *o, const char *p, size_t n)
{
	buf_add_json_str(o, p, n);
}

/* The decoded string (or the raw number) of leaf v: the record's own
 * bytes when there is nothing to decode, else a copy in t->tmp.  Valid
 * until the next call; not NUL-terminated. */
static const char *leaf_text(struct tls *t, int v, size_t *n)
{
	size_t rn;
	const char *p = rec_raw(&t->r, v, &rn);
	if (!t->r.has_escape || rec_type(&t->r, v) != REC_STRING ||
	    !memchr(p, '\\', rn)) {
		*n = rn;
		return p;
	}
	buf_reset(&t->tmp);
	rec_str(&t->r, v, &t->tmp);
	*n = t->tmp.len;
	return t->tmp.data ? t->tmp.data : "";
}

static void do_token(struct tls *t, const char *p, size_t n, struct buf *o)
{
	char tok[DEID_TOKEN_LEN + 1];
	tok_cached(t, p, n, tok);
	buf_addch(o, '"');
	buf_add(o, tok, DEID_TOKEN_LEN);
	buf_addch(o, '"');
	t->c.tokens++;
}

static int upper_alpha(const char *p, size_t n)
{
	if (!n || !isupper((unsigned char)p[0]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalpha((unsigned char)p[i]))
			return 0;
	return 1;
}

/*
 * A reference keeps its shape, with the id replaced by the id's token:
 * "Patient/123" -> "Patient/<tok>", "http://x/fhir/Patient/123/_history/2"
 * -> "Patient/<tok>", "urn:uuid:X" -> "urn:uuid:<tok>",
 * "Practitioner?identifier=sys|123" -> "Practitioner?identifier=sys|<tok>",
 * "#contained" as is; anything else becomes a token.
 */
static void do_reference(struct tls *t, const char *p, size_t n,
			 struct buf *o)
{
	char tok[DEID_TOKEN_LEN + 1];
	struct buf *b = &t->tmp2;
	buf_reset(b);
	if (n && p[0] == '#') {
		buf_add(b, p, n);
	} else if (n > 9 && !memcmp(p, "urn:uuid:", 9)) {
		tok_cached(t, p + 9, n - 9, tok);
		buf_addstr(b, "urn:uuid:");
		buf_addstr(b, tok);
	} else if (memchr(p, '?', n)) {
		const char *q = memchr(p, '?', n);
		const char *bar = memchr(q, '|', n - (size_t)(q - p));
		const char *eq = memchr(q, '=', n - (size_t)(q - p));
		const char *cut = bar ? bar + 1 : eq ? eq + 1 : q + 1;
		tok_cached(t, cut, n - (size_t)(cut - p), tok);
		buf_add(b, p, (size_t)(cut - p));
		buf_addstr(b, tok);
	} else {
		/* Find "Type/id" as the last such pair, skipping _history. */
		size_t end = n;
		const char *h = NULL;
		for (size_t i = 0; i + 10 <= n; i++)
			if (!memcmp(p + i, "/_history/", 10))
				h = p + i;
		if (h)
			end = (size_t)(h - p);
		const char *slash = NULL;
		for (size_t i = end; i-- > 0;)
			if (p[i] == '/') {
				slash = p + i;
				break;
			}
		const char *ts = NULL;
		if (slash) {
			ts = slash;
			while (ts > p && ts[-1] != '/')
				ts--;
		}
		if (slash && slash + 1 < p + end &&
		    upper_alpha(ts, (size_t)(slash - ts))) {
			tok_cached(t, slash + 1,
				 end - (size_t)(slash + 1 - p), tok);
			buf_add(b, ts, (size_t)(slash - ts) + 1);
			buf_addstr(b, tok);
		} else {
			tok_cached(t, p, n, tok);
			buf_addstr(b, tok);
		}
	}
	add_str(o, b->data, b->len);
	t->c.tokens++;
}

static int looks_like_reference(const char *p, size_t n)
{
	if (n > 9 && !memcmp(p, "urn:uuid:", 9))
		return 1;
	const char *s = memchr(p, '/', n);
	if (s && upper_alpha(p, (size_t)(s - p)))
		return 1;
	const char *q = memchr(p, '?', n);
	return q && upper_alpha(p, (size_t)(q - p));
}

static void do_year(struct tls *t, const struct prule *ru, const char *p,
		    size_t n, int hl7, struct buf *o)
{
	int y, m, d;
	size_t rest;
	if (!parse_date(p, n, hl7, &y, &m, &d, &rest) &&
	    !parse_date(p, n, !hl7, &y, &m, &d, &rest)) {
		t->c.dropped_values++;
		return;   /* not a date: nothing of it is safe to keep */
	}
	if (ru->max_age && t->d->p->ref_year - y > ru->max_age)
		y = t->d->p->ref_year - ru->max_age - 1;
	char yb[16];
	int k = snprintf(yb, sizeof yb, "%04d", y);
	if (ru->to == GEN_MONTH && !ru->max_age) {
		k = hl7 ? snprintf(yb, sizeof yb, "%04d%02d", y, m)
			: snprintf(yb, sizeof yb, "%04d-%02d", y, m);
	}
	add_str(o, yb, (size_t)k);
}

static void do_shift(struct tls *t, const char *p, size_t n, int hl7,
		     struct buf *o)
{
	int y, m, d;
	size_t rest;
	int prec = parse_date(p, n, hl7, &y, &m, &d, &rest);
	if (!prec) {
		hl7 = !hl7;
		prec = parse_date(p, n, hl7, &y, &m, &d, &rest);
	}
	if (!prec) {
		t->c.dropped_values++;
		return;
	}
	if (!t->have_patient) {
		/* No patient, no offset: only the year is safe to keep. */
		char yb[8];
		int k = snprintf(yb, sizeof yb, "%04d", y);
		add_str(o, yb, (size_t)k);
		t->c.no_patient++;
		return;
	}
	/* Partial dates move by their middle, and keep their precision. */
	if (prec == 1)
		m = 7;
	if (prec <= 2)
		d = 15;
	long z = days_from_civil(y, m, d) + t->shift;
	civil_from_days(z, &y, &m, &d);
	char db[32];
	int k;
	if (prec == 1)
		k = snprintf(db, sizeof db, "%04d", y);
	else if (prec == 2)
		k = hl7 ? snprintf(db, sizeof db, "%04d%02d", y, m)
			: snprintf(db, sizeof db, "%04d-%02d", y, m);
	else
		k = hl7 ? snprintf(db, sizeof db, "%04d%02d%02d", y, m, d)
			: snprintf(db, sizeof db, "%04d-%02d-%02d", y, m, d);
	struct buf *b = &t->tmp2;
	buf_reset(b);
	buf_add(b, db, (size_t)k);
	buf_add(b, p + rest, n - rest);
	add_str(o, b->data, b->len);
	t->c.shifted++;
}

static void do_zip3(struct tls *t, const char *p, size_t n, struct buf *o)
{
	if (n < 5 || !dig(p, 5) || (n > 5 && !(n == 10 && p[5] == '-' &&
					      dig(p + 6, 4)))) {
		t->c.dropped_values++;
		return;
	}
	char z[4] = { p[0], p[1], p[2], 0 };
	if (t->d->prof->zip3_restricted[num(p, 3)])
		memcpy(z, "000", 3);
	add_str(o, z, 3);
}

static int parse_num(const char *p, size_t n, double *v)
{
	char nb[64];
	if (!n || n >= sizeof nb)
		return 0;
	memcpy(nb, p, n);
	nb[n] = '\0';
	char *end;
	*v = strtod(nb, &end);
	return *end == '\0' && isfinite(*v) &&
	       (isdigit((unsigned char)nb[0]) || nb[0] == '-' || nb[0] == '.');
}

static void add_number(struct buf *o, double v, int decimals, int quoted)
{
	char nb[64];
	int k = decimals >= 0 ? snprintf(nb, sizeof nb, "%.*f", decimals, v)
			      : snprintf(nb, sizeof nb, "%.15g", v);
	if (!strcmp(nb, "-0"))
		k = snprintf(nb, sizeof nb, "0");
	if (quoted)
		add_str(o, nb, (size_t)k);
	else
		buf_add(o, nb, (size_t)k);
}

static int decimals_of(const char *p, size_t n)
{
	const char *dot = memchr(p, '.', n);
	if (!dot)
		return 0;
	int k = 0;
	for (const char *q = dot + 1; q < p + n && isdigit((unsigned char)*q);
	     q++)
		k++;
	return k;
}

static void do_generalize(struct tls *t, const struct prule *ru, int v,
			  struct buf *o)
{
	size_t n;
	const char *p = leaf_text(t, v, &n);
	int quoted = rec_type(&t->r, v) == REC_STRING;
	double x;
	switch (ru->to) {
	case GEN_YEAR:
	case GEN_MONTH:
		do_year(t, ru, p, n, t->kind == RK_HL7, o);
		return;
	case GEN_ZIP3:
		do_zip3(t, p, n, o);
		return;
	case GEN_AGE:
		if (!parse_num(p, n, &x)) {
			t->c.dropped_values++;
			return;
		}
		if (x > ru->max_age) {
			if (quoted) {
				char ab[16];
				int k = snprintf(ab, sizeof ab, "%d+",
						 ru->max_age + 1);
				add_str(o, ab, (size_t)k);
			} else {
				add_number(o, ru->max_age + 1, 0, 0);
			}
		} else {
			add_number(o, x, decimals_of(p, n), quoted);
		}
		return;
	case GEN_AGE_BAND:
	case GEN_BUCKET: {
		if (!parse_num(p, n, &x)) {
			t->c.dropped_values++;
			return;
		}
		double lo = floor(x / ru->width) * ru->width;
		char bb[96];
		int k;
		if (ru->to == GEN_AGE_BAND && x > ru->max_age)
			k = snprintf(bb, sizeof bb, "%d+", ru->max_age + 1);
		else if (ru->to == GEN_AGE_BAND)
			k = snprintf(bb, sizeof bb, "%.15g-%.15g", lo,
				     lo + ru->width - 1);
		else {
			add_number(o, lo, -1, quoted);
			return;
		}
		add_str(o, bb, (size_t)k);
		return;
	}
	}
}

static void do_mask(struct tls *t, const struct prule *ru, int v,
		    struct buf *o)
{
	size_t n;
	const char *p = leaf_text(t, v, &n);
	/* Count code points so that multi-byte letters mask as one. */
	size_t cps = 0;
	for (size_t i = 0; i < n; i++)
		cps += ((unsigned char)p[i] & 0xc0) != 0x80;
	struct buf *b = &t->tmp2;
	buf_reset(b);
	size_t cp = 0;
	for (size_t i = 0; i < n; i++) {
		int lead = ((unsigned char)p[i] & 0xc0) != 0x80;
		if (lead)
			cp++;
		int keep = (ru->keep_first && cp <= (size_t)ru->keep_first) ||
			   (ru->keep_last && cp + ru->keep_last > cps);
		if (keep)
			buf_addch(b, p[i]);
		else if (lead)
			buf_addch(b, ru->mask_char);
	}
	add_str(o, b->data ? b->data : "", b->len);
}

static void do_perturb(struct tls *t, const struct prule *ru, int v,
		       uint32_t node, struct buf *o)
{
	size_t n;
	const char *p = leaf_text(t, v, &n);
	double x;
	if (!parse_num(p, n, &x)) {
		t->c.dropped_values++;
		return;
	}
	/* Seeded noise: the same value of the same patient and field moves
	 * the same way in every run with the same key, project and seed. */
	struct buf *b = &t->tmp2;
	buf_reset(b);
	buf_addf(b, "%llu", (unsigned long long)t->d->p->seed);
	buf_addch(b, '\0');
	buf_addstr(b, t->have_patient ? t->ptoken : "");
	buf_addch(b, '\0');
	buf_addf(b, "%u", node);
	buf_addch(b, '\0');
	buf_add(b, p, n);
	uint64_t h = mac64(t->mac, "perturb", b->data, b->len);
	double u = (double)(h >> 11) / 9007199254740992.0 * 2 - 1;
	double span = ru->noise + ru->relative * fabs(x);
	int dec = ru->precision >= 0 ? ru->precision : decimals_of(p, n);
	add_number(o, x + u * span, dec,
		   rec_type(&t->r, v) == REC_STRING);
}

static int numeric_text(const char *p, size_t n)
{
	double x;
	return parse_num(p, n, &x);
}

static void do_scrub(struct tls *t, int v, struct buf *o)
{
	size_t n;
	const char *p = leaf_text(t, v, &n);
	if (rec_type(&t->r, v) != REC_STRING) {
		buf_add(o, p, n);
		return;
	}
	struct buf *b = &t->tmp2;
	buf_reset(b);
	if (scrub_text(t->sc, p, n, b))
		t->c.scrubbed++;
	add_str(o, b->data ? b->data : "", b->len);
}

/* The type of OBX-5 from OBX-2 in the same segment, for scrub. */
static int obx_numeric(struct tls *t, size_t sp)
{
	if (t->kind != RK_HL7 || sp < 2)
		return 0;
	const struct pnode *seg = &t->pt.v[t->stack[sp - 1].node];
	const struct pnode *f = &t->pt.v[t->stack[sp].node];
	if (strcmp(seg->key, "OBX") || strcmp(f->key, "5"))
		return 0;
	return t->stack[sp].ftype;   /* set by the walk, see below */
}

/* Apply leaf method ru to value token v, appending to o. */
static void apply_leaf(struct tls *t, const struct prule *ru, int v,
		       uint32_t node, size_t sp, struct buf *o)
{
	const struct rec *r = &t->r;
	size_t rn;
	const char *raw = rec_raw(r, v, &rn);
	int vt = rec_type(r, v);
	if (vt == REC_PRIMITIVE && (raw[0] == 'n' || raw[0] == 't' ||
				    raw[0] == 'f')) {
		/* null, true, false carry nothing to hide */
		if (ru->method != DM_REDACT)
			buf_add(o, raw, rn);
		return;
	}
	switch (ru->method) {
	case DM_DROP:
	case DM_REDACT:
		return;
	case DM_KEEP:
		if (vt == REC_STRING) {
			buf_grow(o, rn + 2);
			char *w = o->data + o->len;
			*w = '"';
			memcpy(w + 1, raw, rn);
			w[rn + 1] = '"';
			o->len += rn + 2;
			o->data[o->len] = '\0';
		} else {
			buf_add(o, raw, rn);
		}
		return;
	case DM_MASK:
		do_mask(t, ru, v, o);
		return;
	case DM_PSEUDO:
	case DM_ENCRYPT: {
		size_t n;
		const char *p = leaf_text(t, v, &n);
		char tok[DEID_TOKEN_LEN + 1];
		if (t->kind == RK_FHIR && looks_like_reference(p, n))
			do_reference(t, p, n, o);
		else
			do_token(t, p, n, o);
		if (ru->method == DM_ENCRYPT && t->pout) {
			/* token, then the original, for the vault */
			tok_cached(t, p, n, tok);
			struct buf *a = &t->pout->aux;
			uint32_t len = (uint32_t)n;
			buf_add(a, tok, DEID_TOKEN_LEN);
			buf_add(a, &len, sizeof len);
			buf_add(a, p, n);
		}
		return;
	}
	case DM_DATESHIFT: {
		size_t n;
		const char *p = leaf_text(t, v, &n);
		do_shift(t, p, n, t->kind == RK_HL7, o);
		return;
	}
	case DM_GENERALIZE:
		do_generalize(t, ru, v, o);
		return;
	case DM_SUBST:
		add_str(o, ru->with, strlen(ru->with));
		return;
	case DM_PERTURB:
		do_perturb(t, ru, v, node, o);
		return;
	case DM_SCRUB: {
		int obx = obx_numeric(t, sp);
		size_t n;
		const char *p = leaf_text(t, v, &n);
		if (obx == 1 || (vt == REC_STRING && numeric_text(p, n) &&
				 n < 6)) {
			buf_add(o, raw - (vt == REC_STRING),
				rn + 2 * (vt == REC_STRING));
			return;
		}
		if (obx == 2) {
			do_year(t, ru, p, n, 1, o);
			return;
		}
		if (t->d->has_scrub) {
			/* Drop placeholders that a truncation took back. */
			while (t->ndv && t->dv[t->ndv - 1].pos >= o->len)
				t->ndv--;
			XGROW(t->dv, t->dvalloc, t->ndv + 1);
			t->dv[t->ndv++] = (struct defer){ o->len, v };
			buf_add(o, "\"\"", 2);
			return;
		}
		do_scrub(t, v, o);
		return;
	}
	}
}

/* ------------------------------------------------------------------ */
/* The walk                                                            */

static void collect_known(struct tls *t, const struct prule *ru, int v,
			  size_t sp)
{
	if (!ru || rec_type(&t->r, v) != REC_STRING)
		return;
	if (ru->method != DM_REDACT && ru->method != DM_PSEUDO &&
	    ru->method != DM_ENCRYPT && ru->method != DM_MASK)
		return;
	/* Codes, systems and titles are not identifiers: "MR" (a type
	 * code) must not turn every "Mr." of a note into a label. */
	struct pnode *leaf = &t->pt.v[t->stack[sp].node];
	if (!leaf->notid) {
		static const char *const not_ids[] = {
			"system", "code", "use", "url", "version", "unit",
			"status", "prefix", "suffix", "type", "rank",
		};
		leaf->notid = 1;
		for (size_t i = 0; leaf->key &&
		     i < sizeof not_ids / sizeof *not_ids; i++)
			if (!strcmp(leaf->key, not_ids[i]))
				leaf->notid = 2;
	}
	if (leaf->notid == 2)
		return;
	size_t n;
	const char *p = leaf_text(t, v, &n);
	if (n < 2 || n > 256 || looks_like_reference(p, n))
		return;
	/* What the scrubber's detectors find anyway (e-mail, any run of
	 * five digits, a phone or SSN) need not be known. */
	if (memchr(p, '@', n))
		return;
	/* 1 a digit, 2 what a phone number has besides, 0 the rest */
	static const unsigned char cls[256] = {
		['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
		['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
		[' '] = 2, ['('] = 2, [')'] = 2, ['-'] = 2, ['.'] = 2,
		['+'] = 2,
	};
	size_t run = 0, digits = 0, other = 0;
	for (size_t i = 0; i < n && run < 5; i++) {
		unsigned c = cls[(unsigned char)p[i]];
		if (c == 1)
			run++, digits++;
		else
			run = 0, other += c == 0;
	}
	if (run >= 5 || (!other && digits >= 7))
		return;
	if (n <= 3) {
		size_t up = 0;
		for (size_t i = 0; i < n; i++)
			up += p[i] >= 'A' && p[i] <= 'Z';
		if (up == n)
			return;
	}
	const char *kind = "ID";
	for (size_t i = 1; i <= sp; i++) {
		struct pnode *nd = &t->pt.v[t->stack[i].node];
		if (!nd->label)
			nd->label = !nd->key ? 1 : strcasestr(nd->key, "name")
				    ? 2 : strcasestr(nd->key, "addr") ? 3 : 1;
		if (t->stack[i].ftype == FT_HUMANNAME || nd->label == 2)
			kind = "NAME";
		else if (t->stack[i].ftype == FT_ADDRESS || nd->label == 3)
			kind = "ADDRESS";
	}
	if (t->kind == RK_HL7 && sp >= 2) {
		const struct pnode *seg = &t->pt.v[t->stack[1].node];
		const struct pnode *f = &t->pt.v[t->stack[2].node];
		if (seg->key && f->key &&
		    ((!strcmp(seg->key, "PID") && (!strcmp(f->key, "5") ||
						   !strcmp(f->key, "6") ||
						   !strcmp(f->key, "9"))) ||
		     (!strcmp(seg->key, "NK1") && !strcmp(f->key, "2"))))
			kind = "NAME";
	}
	if (!t->scan) {
		/* Only a record with text to scrub needs them: noted now,
		 * handed to the scrubber at the end of the walk. */
		XGROW(t->kv, t->kvalloc, t->nkv + 1);
		t->kv[t->nkv++] = (struct known){ v, kind };
		return;
	}
	if (t->scan) {
		/* pass 1: kind letter, length, bytes; see scan_map() */
		struct buf *a = &t->pout->aux;
		uint32_t len = (uint32_t)n;
		buf_addch(a, kind[0]);
		buf_add(a, &len, sizeof len);
		buf_add(a, p, n);
		return;
	}
	scrub_add_known(t->sc, p, n, kind);
}

static void note_dropped(struct tls *t, uint32_t node)
{
	XGROW(t->drops, t->dalloc, t->nd + 1);
	t->drops[t->nd++] = node;
}

/*
 * Write value v (at path node `node`, stack depth sp) under the rule in
 * force; returns 1 when something was written.  inh is the rule inherited
 * from the parent (NULL: dropped unless named, or kept with pass_through).
 */
static int walk(struct tls *t, int v, uint32_t node, size_t sp,
		const struct prule *inh, int inh_named, struct buf *o);

static int walk_object(struct tls *t, int v, uint32_t node, size_t sp,
		       const struct prule *eff, int named, struct buf *o)
{
	const struct rec *r = &t->r;
	const int *sk = r->skip;
	size_t mark = o->len;
	int any = 0;
	uint32_t prev = UINT32_MAX;
	uint32_t hint = t->pt.v[node].first_hint;
	buf_addch(o, '{');
	for (int k = v + 1; k < sk[v]; k = sk[k + 1]) {
		size_t kn;
		const char *kp = rec_raw(r, k, &kn);
		/* _mlk is the envelope, written by the caller */
		if (sp == 0 && kn == 4 && !memcmp(kp, "_mlk", 4))
			continue;
		if (sp >= REC_MAX_DEPTH)
			continue;
		struct buf kb = BUF_INIT;
		const char *name = kp;
		size_t nn = kn;
		if (r->has_escape && memchr(kp, '\\', kn)) {
			rec_str(r, k, &kb);
			name = kb.data;
			nn = kb.len;
		}
		uint32_t child = UINT32_MAX;
		if (hint) {
			const struct pnode *h = &t->pt.v[hint - 1];
			if (h->parent == node && h->klen == nn &&
			    !memcmp(h->key, name, nn))
				child = hint - 1;
		}
		if (child == UINT32_MAX)
			child = ptab_child(&t->pt, node, name, nn);
		buf_release(&kb);
		if (child == UINT32_MAX) {
			/* The path cache is full: fail closed. */
			t->c.dropped_values++;
			hint = 0;
			continue;
		}
		if (prev == UINT32_MAX)
			t->pt.v[node].first_hint = child + 1;
		else
			t->pt.v[prev].next_hint = child + 1;
		prev = child;
		hint = t->pt.v[child].next_hint;
		size_t before = o->len;
		/* ,"key": in one go */
		buf_grow(o, kn + 4);
		char *w = o->data + o->len;
		if (any)
			*w++ = ',';
		*w++ = '"';
		memcpy(w, kp, kn);
		w += kn;
		*w++ = '"';
		*w++ = ':';
		*w = '\0';
		o->len = (size_t)(w - o->data);
		t->stack[sp + 1].node = child;
		if (walk(t, k + 1, child, sp + 1, eff, named, o))
			any = 1;
		else
			buf_truncate(o, before);
	}
	buf_addch(o, '}');
	if (!any) {
		buf_truncate(o, mark);
		return 0;
	}
	return 1;
}

static int walk(struct tls *t, int v, uint32_t node, size_t sp,
		const struct prule *inh, int inh_named, struct buf *o)
{
	const struct rec *r = &t->r;
	const struct profile *pf = t->d->prof;
	int vt = rec_type(r, v);
	if (vt == REC_ARRAY) {
		/* Arrays are transparent: each item is the field again. */
		const int *sk = r->skip;
		size_t mark = o->len;
		int any = 0;
		buf_addch(o, '[');
		for (int k = v + 1; k < sk[v]; k = sk[k]) {
			size_t before = o->len;
			if (any)
				buf_addch(o, ',');
			if (walk(t, k, node, sp, inh, inh_named, o))
				any = 1;
			else
				buf_truncate(o, before);
		}
		buf_addch(o, ']');
		if (!any)
			buf_truncate(o, mark);
		return any;
	}
	t->stack[sp].ftype = vt == REC_OBJECT && t->kind == RK_FHIR
			     ? ftype_of(r, v) : FT_NONE;
	/* The path decides first; a kept field then meets the datatype
	 * and value rules. */
	const struct prule *eff = inh;
	int named = inh_named;
	int pr = node_rule(t, node);
	/* HL7: a rule for component 1 names a field that has no others. */
	if (pr < 0 && t->kind == RK_HL7 && vt != REC_OBJECT && sp >= 2 &&
	    sp <= 3) {
		uint32_t c1 = ptab_child(&t->pt, node, "1", 1);
		if (c1 != UINT32_MAX)
			pr = node_rule(t, c1);
	}
	if (pr >= 0) {
		eff = &pf->rules[pr];
		named = 1;
	}
	if (!eff || eff->method == DM_KEEP) {
		int tr = best_type_rule(t, sp, v);
		if (tr >= 0 && (eff || pf->pass_through)) {
			eff = &pf->rules[tr];
			named = 1;
		} else if (tr >= 0 && pf->rules[tr].method != DM_KEEP) {
			/* Not let in by a path, but the profile knows the
			 * datatype: dropped without a report. */
			if (t->d->has_scrub && vt == REC_OBJECT) {
				int was = t->collect;
				size_t dmark = t->nd;
				t->collect = 2;
				walk_object(t, v, node, sp, &pf->rules[tr], 1,
					    &t->out);
				buf_reset(&t->out);
				t->collect = was;
				t->nd = dmark;
			} else if (t->d->has_scrub) {
				collect_known(t, &pf->rules[tr], v, sp);
			}
			return 0;
		}
	}
	static const struct prule keep = { .method = DM_KEEP };
	if (!eff && pf->pass_through)
		eff = &keep;
	/* OBX-5: the value type in OBX-2 decides how to scrub. */
	if (eff && eff->method == DM_SCRUB && t->kind == RK_HL7 && sp == 2) {
		t->stack[sp].ftype = 0;
		const struct pnode *seg = &t->pt.v[t->stack[1].node];
		const struct pnode *f = &t->pt.v[node];
		if (!strcmp(seg->key, "OBX") && !strcmp(f->key, "5")) {
			int parent = -1;
			/* the segment object holding this field */
			for (int k = v - 1; k > 0; k--)
				if (r->skip[k] > v &&
				    rec_type(r, k) == REC_OBJECT) {
					parent = k;
					break;
				}
			int t2 = parent >= 0 ? rec_get(r, parent, "2") : -1;
			size_t n2 = 0;
			const char *vt2 = t2 >= 0 ? rec_raw(r, t2, &n2) : "";
			if ((n2 == 2 && (!memcmp(vt2, "NM", 2) ||
					 !memcmp(vt2, "SN", 2) ||
					 !memcmp(vt2, "NR", 2) ||
					 !memcmp(vt2, "CE", 2) ||
					 !memcmp(vt2, "CQ", 2))) ||
			    (n2 == 3 && (!memcmp(vt2, "CWE", 3) ||
					 !memcmp(vt2, "CNE", 3))))
				t->stack[sp].ftype = 1;
			else if ((n2 == 2 && (!memcmp(vt2, "DT", 2) ||
					      !memcmp(vt2, "TS", 2))) ||
				 (n2 == 3 && !memcmp(vt2, "DTM", 3)))
				t->stack[sp].ftype = 2;
		}
	}
	if (vt == REC_OBJECT) {
		if (eff && eff->method == DM_SCRUB && t->stack[sp].ftype) {
			static const struct prule k2 = { .method = DM_KEEP };
			eff = &k2;
		}
		size_t dmark = t->nd;
		int w = walk_object(t, v, node, sp, eff, named, o);
		if (!w && !eff && !t->collect && t->nd > dmark) {
			/* Only the top of a wholly dropped subtree is
			 * reported, not each of its leaves (and not at all
			 * when rules named every part of it). */
			t->nd = dmark;
			note_dropped(t, node);
		}
		return w;
	}
	if (t->collect) {
		collect_known(t, eff, v, sp);
		return 0;
	}
	if (t->d->has_scrub)
		collect_known(t, eff, v, sp);
	if (!eff) {
		note_dropped(t, node);
		return 0;
	}
	size_t before = o->len;
	apply_leaf(t, eff, v, node, sp, o);
	return o->len > before;
}

/* ------------------------------------------------------------------ */
/* Records                                                             */

static int raw_is(const struct rec *r, int i, const char *s)
{
	size_t n;
	if (i < 0 || rec_type(r, i) != REC_STRING)
		return 0;
	const char *p = rec_raw(r, i, &n);
	return n == strlen(s) && !memcmp(p, s, n);
}

/* The top-level members the kind and envelope depend on, found in one
 * pass, each the first of its name (as rec_get finds it); -1 absent. */
struct top {
	int mlk, rt, msh;
};

static struct top top_members(const struct rec *r)
{
	struct top tp = { -1, -1, -1 };
	const int *sk = r->skip;
	for (int k = 1; k < sk[0]; k = sk[k + 1]) {
		size_t n;
		const char *p = rec_raw(r, k, &n);
		if (r->has_escape) {
			if (tp.mlk < 0 && rec_key_eq(r, k, "_mlk"))
				tp.mlk = k + 1;
			else if (tp.rt < 0 && rec_key_eq(r, k, "resourceType"))
				tp.rt = k + 1;
			else if (tp.msh < 0 && rec_key_eq(r, k, "MSH"))
				tp.msh = k + 1;
		} else if (n == 4 && tp.mlk < 0 && !memcmp(p, "_mlk", 4)) {
			tp.mlk = k + 1;
		} else if (n == 12 && tp.rt < 0 &&
			   !memcmp(p, "resourceType", 12)) {
			tp.rt = k + 1;
		} else if (n == 3 && tp.msh < 0 && !memcmp(p, "MSH", 3)) {
			tp.msh = k + 1;
		}
	}
	return tp;
}

/* 1: a DICOM object's record, 2: a genomics object's (of any type: those
 * objdeid cannot write are left out there), 0: neither. */
static int object_type(const struct rec *r, int m)
{
	if (raw_is(r, rec_get(r, m, "type"), "dicom"))
		return 1;
	if (raw_is(r, rec_get(r, m, "kind"), "genomics"))
		return 2;
	return 0;
}

/* A genomics record's labels, copied as they are, and its patient column
 * (the first of patient_id, patient, subject_id, person_id that is a
 * string) as the token the patient's EHR records get (see deid.h). */
static void keep_labels(struct tls *t, const struct rec *r, struct buf *o)
{
	static const char *const k[] = { "project", "assay",
		"pipeline_version" };
	for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
		int v = rec_get(r, 0, k[i]);
		if (v < 0)
			continue;
		if (o->len && o->data[o->len - 1] != '{')
			buf_addch(o, ',');
		buf_addch(o, '"');
		buf_addstr(o, k[i]);
		buf_add(o, "\":", 2);
		rec_write(r, v, o);
	}
	static const char *const pc[] = { "patient_id", "patient",
		"subject_id", "person_id" };
	for (size_t i = 0; i < sizeof pc / sizeof *pc; i++) {
		int v = rec_get(r, 0, pc[i]);
		if (v < 0 || rec_type(r, v) != REC_STRING)
			continue;
		struct buf id = BUF_INIT;
		rec_str(r, v, &id);
		char tok[DEID_TOKEN_LEN + 1];
		token_of(t->mac, id.data ? id.data : "", id.len, tok);
		if (id.data)
			crypto_wipe(id.data, id.len);
		buf_release(&id);
		if (o->len && o->data[o->len - 1] != '{')
			buf_addch(o, ',');
		buf_addch(o, '"');
		buf_addstr(o, pc[i]);
		buf_add(o, "\":\"", 3);
		buf_addstr(o, tok);
		buf_addch(o, '"');
		break;
	}
}

static enum rkind record_kind(const struct rec *r, int m, int rt, int msh)
{
	int ty = m > 0 ? rec_get(r, m, "type") : -1;
	if (ty > 0 && rec_type(r, ty) == REC_STRING) {
		size_t n;
		const char *p = rec_raw(r, ty, &n);
		if (n > 5 && !memcmp(p, "fhir:", 5))
			return RK_FHIR;
		if (n > 6 && !memcmp(p, "hl7v2:", 6))
			return RK_HL7;
		return RK_FLAT;
	}
	if (rt > 0 && rec_type(r, rt) == REC_STRING)
		return RK_FHIR;
	if (msh > 0 && rec_type(r, msh) == REC_ARRAY)
		return RK_HL7;
	return RK_FLAT;
}


/* The patient's id as the source has it, in out; 0 when none. */
static int ref_id(const struct rec *r, int i, struct buf *out)
{
	if (i < 0 || rec_type(r, i) != REC_STRING)
		return 0;
	buf_reset(out);
	rec_str(r, i, out);
	return ehr_patient_ref(out) && out->len > 0;
}

static int value_text(const struct rec *r, int i, struct buf *out)
{
	buf_reset(out);
	if (i < 0)
		return 0;
	int ty = rec_type(r, i);
	if (ty == REC_STRING) {
		rec_str(r, i, out);
	} else if (ty == REC_PRIMITIVE) {
		size_t n;
		const char *p = rec_raw(r, i, &n);
		if (n && (p[0] == '-' || isdigit((unsigned char)p[0])))
			buf_add(out, p, n);
	} else if (ty == REC_OBJECT) {
		return value_text(r, rec_get(r, i, "1"), out);
	} else if (ty == REC_ARRAY && rec_size(r, i) > 0) {
		return value_text(r, i + 1, out);
	}
	return out->len > 0;
}

static int find_patient(struct tls *t, int m, struct buf *out)
{
	const struct rec *r = &t->r;
	const struct profile *pf = t->d->prof;
	int pm = m > 0 ? rec_get(r, m, "patient") : -1;
	if (pm > 0 && value_text(r, pm, out))
		return 1;
	switch (t->kind) {
	case RK_FHIR: {
		int rt = rec_get(r, 0, "resourceType");
		if (raw_is(r, rt, "Patient"))
			return value_text(r, rec_get(r, 0, "id"), out);
		static const char *const refs[] = {
			"subject.reference", "patient.reference",
			"beneficiary.reference", "individual.reference",
		};
		for (size_t i = 0; i < 4; i++)
			if (ref_id(r, rec_path(r, 0, refs[i]), out))
				return 1;
		return 0;
	}
	case RK_HL7: {
		int pid = rec_get(r, 0, "PID");
		if (pid < 0 || rec_type(r, pid) != REC_ARRAY ||
		    rec_size(r, pid) < 1)
			return 0;
		int seg = pid + 1;
		return value_text(r, rec_get(r, seg, "3"), out);
	}
	case RK_FLAT: {
		int ty = m > 0 ? rec_get(r, m, "type") : -1;
		const int *sk = r->skip;
		if (raw_is(r, ty, "csv:patients")) {
			for (int k = 1; k < sk[0]; k = sk[k + 1])
				if (raw_is(r, k, "Id"))
					return value_text(r, k + 1, out);
		}
		/* The first of the profile's patient fields that the record
		 * has, in the profile's order. */
		size_t best = pf->npatient_fields;
		int bk = -1;
		for (int k = 1; k < sk[0]; k = sk[k + 1]) {
			size_t n;
			const char *p = rec_raw(r, k, &n);
			for (size_t f = 0; f < best; f++) {
				const char *want = pf->patient_fields[f];
				if (n == t->d->pflen[f] &&
				    !strncasecmp(p, want, n) &&
				    rec_type(r, k + 1) != REC_OBJECT) {
					best = f;
					bk = k;
					break;
				}
			}
		}
		if (bk < 0)
			return 0;
		if (value_text(r, bk + 1, out))
			return 1;
		/* the best one was empty: try the others in order */
		for (size_t f = best + 1; f < pf->npatient_fields; f++)
			for (int k = 1; k < sk[0]; k = sk[k + 1]) {
				size_t n;
				const char *p = rec_raw(r, k, &n);
				if (n == t->d->pflen[f] &&
				    !strncasecmp(p, pf->patient_fields[f], n) &&
				    value_text(r, k + 1, out))
					return 1;
			}
		return 0;
	}
	}
	return 0;
}

/* The envelope: _mlk as it came, without where the raw copy lives and the
 * source's path, with patient and deid set. */
static void write_envelope(struct tls *t, int m, struct buf *o)
{
	const struct rec *r = &t->r;
	const int *sk = r->skip;
	const struct deid *d = t->d;
	buf_add(o, "\"_mlk\":{", 8);
	int any = 0;
	if (m > 0 && rec_type(r, m) == REC_OBJECT) {
		for (int k = m + 1; k < sk[m]; k = sk[k + 1]) {
			if (raw_is(r, k, "partition") || raw_is(r, k, "deid") ||
			    raw_is(r, k, "patient"))
				continue;
			if (any)
				buf_addch(o, ',');
			any = 1;
			if (raw_is(r, k, "src") && !d->prof->keep_source_path &&
			    rec_type(r, k + 1) == REC_OBJECT) {
				buf_add(o, "\"src\":{", 7);
				int a2 = 0;
				for (int j = k + 2; j < sk[k + 1];
				     j = sk[j + 1]) {
					if (raw_is(r, j, "path"))
						continue;
					if (a2)
						buf_addch(o, ',');
					a2 = 1;
					rec_write(r, j, o);
					buf_addch(o, ':');
					rec_write(r, j + 1, o);
				}
				buf_addch(o, '}');
				continue;
			}
			rec_write(r, k, o);
			buf_addch(o, ':');
			rec_write(r, k + 1, o);
		}
	} else {
		buf_add(o, "\"v\":1", 5);
		any = 1;
	}
	if (t->have_patient) {
		if (any)
			buf_addch(o, ',');
		buf_add(o, "\"patient\":\"", 11);
		buf_add(o, t->ptoken, DEID_TOKEN_LEN);
		buf_addch(o, '"');
		any = 1;
	}
	if (any)
		buf_addch(o, ',');
	buf_addstr(o, d->deid_json);
	buf_addch(o, '}');
}

/*
 * Whether the record's identifiers must go to the scrubber: only when a
 * word of one of them may be a word of a text to scrub (see
 * scrub_probe_known), which most records' notes do not have.  With
 * patients' identifiers from the scan, always.
 */
static int known_needed(struct tls *t)
{
	if (t->have_patient && t->d->npk)
		return 1;
	if (!t->nkv)
		return 0;
	scrub_probe_reset(t->sc);
	for (size_t i = 0; i < t->ndv; i++) {
		size_t n;
		const char *p = leaf_text(t, t->dv[i].v, &n);
		scrub_probe_text(t->sc, p, n);
	}
	for (size_t i = 0; i < t->nkv; i++) {
		size_t n;
		const char *p = leaf_text(t, t->kv[i].v, &n);
		if (scrub_probe_known(t->sc, p, n))
			return 1;
	}
	return 0;
}

static void map(void *ctx, void *tl, const char *line, size_t len,
		long long lineno, unsigned long long offset,
		struct pmap_out *out)
{
	struct deid *d = ctx;
	struct tls *t = tl;
	/* rec_parse fills it on failure: no 1 KiB to clear per line */
	struct mlk_error *e = &t->err;
	if (rec_parse(&t->r, line, len, e) != MLK_OK) {
		pmap_add_reject(out, NULL, 0, e->msg, lineno, offset);
		t->c.rejected++;
		return;
	}
	const struct rec *r = &t->r;
	struct top tp = top_members(r);
	int m = tp.mlk;
	t->kind = record_kind(r, m, tp.rt, tp.msh);
	t->pout = d->has_encrypt ? out : NULL;
	size_t aux_off = out->aux.len;
	buf_reset(&t->tmp2);
	t->have_patient = find_patient(t, m, &t->tmp2);
	if (t->have_patient) {
		/* the raw id is PHI: it lives only in tmp2, reset below */
		const char *pv = t->tmp2.data;
		size_t pn = t->tmp2.len;
		struct tcache *c = cache_slot(t->pc, PCACHE, pv, pn);
		if (cache_has(c, pv, pn)) {
			memcpy(t->ptoken, c->tok, DEID_TOKEN_LEN + 1);
		} else {
			token_of(t->mac, pv, pn, t->ptoken);
			cache_put(c, pv, pn, t->ptoken);
		}
		/* the walk meets the id again, through the field cache */
		cache_put(tcache_slot(t, pv, pn), pv, pn, t->ptoken);
		/* Only a dateshift rule reads the offset: no HMAC without. */
		if (!d->has_shift) {
			t->shift = 0;
		} else if (c && c->shift_ok) {
			t->shift = c->shift;   /* c holds pv: see above */
		} else {
			t->shift = shift_of(t->mac, d->prof->shift_days, pv,
					    pn);
			if (c) {
				c->shift = t->shift;
				c->shift_ok = 1;
			}
		}
		crypto_wipe(t->tmp2.data, t->tmp2.len);
	}
	uint32_t root = (uint32_t)t->kind;
	uint32_t start = root;
	if (t->kind == RK_FHIR) {
		int rt = rec_get(r, 0, "resourceType");
		size_t n = 0;
		const char *p = rt > 0 && rec_type(r, rt) == REC_STRING
				? rec_raw(r, rt, &n) : "";
		start = ptab_child(&t->pt, root, p, n);
		if (start == UINT32_MAX)
			start = root;
	}
	t->stack[0].node = start;
	t->stack[0].ftype = FT_NONE;
	t->nd = 0;
	struct buf *o = &out->data;
	size_t off0 = o->len;
	t->ndv = 0;
	t->nkv = 0;
	int ob = d->p->objects_rebuilt && m > 0
		 ? object_type(r, m) : 0;
	if (ob) {
		/* its fields come from the de-identified object */
		buf_addch(o, '{');
		if (ob == 2)
			keep_labels(t, r, o);
	} else if (!walk_object(t, 0, start, 0, NULL, 0, o))
		buf_addch(o, '{');
	else
		buf_truncate(o, o->len - 1);   /* reopen: the envelope */
	if (t->ndv) {
		scrub_clear_known(t->sc);
		if (t->have_patient && d->npk)
			pk_add_known(t);
		int need = known_needed(t);
		for (size_t i = 0; i < t->nkv; i++) {
			size_t n;
			const char *p = need ? leaf_text(t, t->kv[i].v, &n) : "";
			if (need)
				scrub_add_known(t->sc, p, n, t->kv[i].kind);
			else
				scrub_add_kind(t->sc, t->kv[i].kind);
		}
		/* Now that every identifier of the record is known, the
		 * text: splice it in where the placeholders are. */
		struct buf *w = &t->out;
		buf_reset(w);
		size_t at = off0, first = 0;
		for (size_t i = 0; i < t->ndv; i++) {
			size_t pos = t->dv[i].pos;
			if (pos < at || pos + 2 > o->len ||
			    memcmp(o->data + pos, "\"\"", 2))
				continue;
			if (!w->len && at == off0)
				first = pos;    /* bytes before stay put */
			else
				buf_add(w, o->data + at, pos - at);
			do_scrub(t, t->dv[i].v, w);
			at = pos + 2;
		}
		if (at != off0) {
			buf_add(w, o->data + at, o->len - at);
			buf_truncate(o, first);
			buf_add(o, w->data, w->len);
		}
		buf_reset(w);
	}
	if (o->len > off0 + 1)
		buf_addch(o, ',');
	write_envelope(t, m, o);
	buf_add(o, "}\n", 2);
	/* each path once per record */
	for (size_t i = 0; i < t->nd; i++) {
		struct pnode *nd = &t->pt.v[t->drops[i]];
		if (nd->resolved != 2) {
			nd->dropped++;
			nd->resolved = 2;
		}
	}
	for (size_t i = 0; i < t->nd; i++)
		t->pt.v[t->drops[i]].resolved = 1;
	pmap_add_record(out, off0, aux_off, lineno, 0);
	t->c.records++;
}

/* ------------------------------------------------------------------ */
/* Patient scan: pass 1 over a file                                    */

static int describes_patient(const struct tls *t, int m)
{
	const struct rec *r = &t->r;
	switch (t->kind) {
	case RK_FHIR: {
		int rt = rec_get(r, 0, "resourceType");
		return raw_is(r, rt, "Patient") || raw_is(r, rt, "RelatedPerson");
	}
	case RK_FLAT:
		return m > 0 && raw_is(r, rec_get(r, m, "type"), "csv:patients");
	case RK_HL7:
		return 1;
	}
	return 0;
}

static uint32_t start_node(struct tls *t)
{
	const struct rec *r = &t->r;
	uint32_t root = (uint32_t)t->kind;
	if (t->kind != RK_FHIR)
		return root;
	int rt = rec_get(r, 0, "resourceType");
	size_t n = 0;
	const char *p = rt > 0 && rec_type(r, rt) == REC_STRING
			? rec_raw(r, rt, &n) : "";
	uint32_t start = ptab_child(&t->pt, root, p, n);
	return start == UINT32_MAX ? root : start;
}

static void scan_map(void *ctx, void *tl, const char *line, size_t len,
		     long long lineno, unsigned long long offset,
		     struct pmap_out *out)
{
	struct tls *t = tl;
	(void)ctx;
	(void)offset;
	/* Most lines describe no patient: look before parsing.  A FHIR
	 * resource names its type first, mlk-ingest's records name theirs
	 * in the envelope, which comes last. */
	static const char rt[] = "{\"resourceType\":\"";
	size_t rl = sizeof rt - 1;
	size_t tail = len > 512 ? len - 512 : 0;
	int maybe = len > rl + 7 && !memcmp(line, rt, rl) &&
		    (!memcmp(line + rl, "Patient\"", 8) ||
		     (len > rl + 14 && !memcmp(line + rl, "RelatedPerson\"",
					       14)));
	maybe |= len > 18 && !memcmp(line, "{\"message_type\":", 16);
	for (const char *q = line + tail, *end = line + len; !maybe && q;) {
		q = memmem(q, (size_t)(end - q), "\"type\":\"", 8);
		if (!q)
			break;
		q += 8;
		size_t left = (size_t)(end - q);
		maybe = (left > 13 && !memcmp(q, "fhir:Patient\"", 13)) ||
			(left > 19 && !memcmp(q, "fhir:RelatedPerson\"", 19)) ||
			(left > 13 && !memcmp(q, "csv:patients\"", 13)) ||
			(left > 6 && !memcmp(q, "hl7v2:", 6));
	}
	if (!maybe)
		return;
	if (rec_parse(&t->r, line, len, &t->err) != MLK_OK)
		return;
	struct top tp = top_members(&t->r);
	int m = tp.mlk;
	t->kind = record_kind(&t->r, m, tp.rt, tp.msh);
	if (!describes_patient(t, m))
		return;
	buf_reset(&t->tmp2);
	if (!find_patient(t, m, &t->tmp2))
		return;
	char tok[DEID_TOKEN_LEN + 1];
	token_of(t->mac, t->tmp2.data, t->tmp2.len, tok);
	crypto_wipe(t->tmp2.data, t->tmp2.len);
	size_t off = out->data.len, aux_off = out->aux.len;
	buf_add(&out->data, tok, DEID_TOKEN_LEN);
	uint32_t start = start_node(t);
	t->stack[0].node = start;
	t->stack[0].ftype = FT_NONE;
	t->pout = out;
	t->collect = t->scan = 1;
	t->nd = 0;
	walk_object(t, 0, start, 0, NULL, 0, &t->out);
	buf_reset(&t->out);
	t->collect = t->scan = 0;
	t->nd = 0;
	pmap_add_record(out, off, aux_off, lineno, 0);
}

static struct pknown *pk_find(const struct deid *d, const char *tok)
{
	if (!d->pkslots)
		return NULL;
	size_t sl = fnv(0xcbf29ce484222325ULL, tok, DEID_TOKEN_LEN) &
		    (d->pkslots - 1);
	while (d->pk[sl].token[0]) {
		if (!memcmp(d->pk[sl].token, tok, DEID_TOKEN_LEN))
			return &d->pk[sl];
		sl = (sl + 1) & (d->pkslots - 1);
	}
	return &d->pk[sl];
}

static void pk_grow(struct deid *d)
{
	struct pknown *old = d->pk;
	size_t on = d->pkslots;
	d->pkslots = on ? on * 2 : 1024;
	d->pk = xcalloc(d->pkslots, sizeof *d->pk);
	for (size_t i = 0; i < on; i++)
		if (old[i].token[0])
			*pk_find(d, old[i].token) = old[i];
	free(old);
}

/* Has the patient's list this (kind, value) entry already? */
static int pk_has(const struct buf *b, const char *ent, size_t n)
{
	size_t p = 0;
	while (p + 5 <= b->len) {
		uint32_t len;
		memcpy(&len, b->data + p + 1, 4);
		if (len + 5 == n && !memcmp(b->data + p, ent, n))
			return 1;
		p += 5 + len;
	}
	return 0;
}

#define PK_MAX_BYTES ((size_t)64 << 20)

static int scan_reduce(void *ctx, const struct pmap_out *out)
{
	struct deid *d = ctx;
	for (size_t i = 0; i < out->n; i++) {
		const struct pmap_item *it = &out->items[i];
		if (it->kind != PMAP_RECORD || it->len != DEID_TOKEN_LEN)
			continue;
		if ((d->npk + 1) * 2 > d->pkslots)
			pk_grow(d);
		char tok[DEID_TOKEN_LEN + 1];
		memcpy(tok, out->data.data + it->off, DEID_TOKEN_LEN);
		tok[DEID_TOKEN_LEN] = '\0';
		struct pknown *k = pk_find(d, tok);
		if (!k->token[0]) {
			memcpy(k->token, tok, sizeof tok);
			buf_init(&k->vals);
			d->npk++;
		}
		const char *a = out->aux.data + it->aux_off;
		size_t p = 0;
		while (p + 5 <= it->aux_len) {
			uint32_t len;
			memcpy(&len, a + p + 1, 4);
			if (d->pk_bytes + len + 5 > PK_MAX_BYTES) {
				d->pk_full = 1;
				break;
			}
			if (!pk_has(&k->vals, a + p, 5 + len)) {
				buf_add(&k->vals, a + p, 5 + len);
				d->pk_bytes += 5 + len;
			}
			p += 5 + len;
		}
	}
	return 0;
}

static void pk_add_known(struct tls *t)
{
	const struct pknown *k = pk_find(t->d, t->ptoken);
	if (!k || !k->token[0])
		return;
	size_t p = 0;
	while (p + 5 <= k->vals.len) {
		uint32_t len;
		memcpy(&len, k->vals.data + p + 1, 4);
		char c = k->vals.data[p];
		scrub_add_known(t->sc, k->vals.data + p + 5, len,
				c == 'N' ? "NAME" : c == 'A' ? "ADDRESS" : "ID");
		p += 5 + len;
	}
}

/* ------------------------------------------------------------------ */
/* Threads and the run                                                 */

static void *tls_new(void *ctx)
{
	struct deid *d = ctx;
	struct tls *t = xcalloc(1, sizeof *t);
	t->d = d;
	rec_init(&t->r);
	t->mac = crypto_hmac_dup(d->mac);
	t->tc = xcalloc(TCACHE, sizeof *t->tc);
	t->pc = xcalloc(PCACHE, sizeof *t->pc);
	t->sc = scrub_new(SCRUB_ALL);
	ptab_init(&t->pt);
	return t;
}

static void path_name(const struct ptab *pt, uint32_t id, struct buf *b)
{
	const char *keys[REC_MAX_DEPTH + 4];
	size_t depth = 0;
	uint32_t x = id;
	while (x != UINT32_MAX && x >= 3 && depth < REC_MAX_DEPTH + 4) {
		keys[depth++] = pt->v[x].key;
		x = pt->v[x].parent;
	}
	uint32_t root = x;
	for (size_t i = depth; i-- > 0;) {
		size_t pos = depth - 1 - i;
		if (pos == 0)
			;
		else if (root == RK_HL7 && pos == 1)
			buf_addch(b, '-');
		else
			buf_addch(b, '.');
		buf_addstr(b, keys[i]);
	}
}

static void merge_dropped(struct deid *d, const char *path,
			  unsigned long long n)
{
	for (size_t i = 0; i < d->nd; i++)
		if (!strcmp(d->dpath[i], path)) {
			d->dcount[i] += n;
			return;
		}
	if (d->nd == d->dalloc) {
		d->dalloc = d->dalloc ? 2 * d->dalloc : 64;
		d->dpath = xrealloc(d->dpath, d->dalloc * sizeof *d->dpath);
		d->dcount = xrealloc(d->dcount, d->dalloc * sizeof *d->dcount);
	}
	d->dpath[d->nd] = xstrdup(path);
	d->dcount[d->nd++] = n;
}

static void add_counts(struct deid_counts *a, const struct deid_counts *b)
{
	a->records += b->records;
	a->rejected += b->rejected;
	a->no_patient += b->no_patient;
	a->scrubbed += b->scrubbed;
	a->tokens += b->tokens;
	a->shifted += b->shifted;
	a->dropped_values += b->dropped_values;
}

static void tls_free(void *ctx, void *tl)
{
	struct deid *d = ctx;
	struct tls *t = tl;
	pthread_mutex_lock(&d->lock);
	add_counts(&d->c, &t->c);
	struct buf b = BUF_INIT;
	for (size_t i = 3; i < t->pt.n; i++) {
		if (!t->pt.v[i].dropped)
			continue;
		buf_reset(&b);
		path_name(&t->pt, (uint32_t)i, &b);
		merge_dropped(d, b.data, t->pt.v[i].dropped);
	}
	buf_release(&b);
	pthread_mutex_unlock(&d->lock);
	tls_release(t);
}

static void tls_release(struct tls *t)
{
	rec_release(&t->r);
	crypto_hmac_free(t->mac);
	scrub_free(t->sc);
	ptab_release(&t->pt);
	buf_release(&t->tmp);
	buf_release(&t->tmp2);
	buf_release(&t->out);
	free(t->drops);
	free(t->dv);
	free(t->kv);
	/* the cache holds ids as they came: wipe them */
	crypto_wipe(t->tc, TCACHE * sizeof *t->tc);
	free(t->tc);
	crypto_wipe(t->pc, PCACHE * sizeof *t->pc);
	free(t->pc);
	free(t);
}

static void tls_free_quiet(void *ctx, void *tl)
{
	(void)ctx;
	tls_release(tl);
}

static int reduce(void *ctx, const struct pmap_out *out)
{
	struct deid *d = ctx;
	const struct deid_sink *s = d->sink;
	size_t run_off = 0, run_len = 0;
	for (size_t i = 0; i < out->n; i++) {
		const struct pmap_item *it = &out->items[i];
		if (it->kind == PMAP_REJECT) {
			if (run_len && s->write(s->ctx, out->data.data +
						run_off, run_len))
				return MLK_SYSTEM;
			run_len = 0;
			if (!d->c.first_reject_line)
				d->c.first_reject_line = it->line;
			struct buf why = BUF_INIT;
			buf_add(&why, out->aux.data + it->aux_off,
				it->aux_len);
			s->reject(s->ctx, it->line, why.data);
			buf_release(&why);
			continue;
		}
		if (d->has_encrypt && s->vault) {
			/* token, length, value, one after another */
			size_t end = it->aux_off + it->aux_len;
			const char *a = out->aux.data;
			size_t p = it->aux_off;
			while (p + DEID_TOKEN_LEN + 4 <= end) {
				uint32_t len;
				memcpy(&len, a + p + DEID_TOKEN_LEN, 4);
				char tok[DEID_TOKEN_LEN + 1];
				memcpy(tok, a + p, DEID_TOKEN_LEN);
				tok[DEID_TOKEN_LEN] = '\0';
				if (s->vault(s->ctx, tok,
					     a + p + DEID_TOKEN_LEN + 4, len))
					return MLK_SYSTEM;
				p += DEID_TOKEN_LEN + 4 + len;
			}
		}
		if (!run_len)
			run_off = it->off;
		run_len = it->off + it->len - run_off;
	}
	if (run_len && s->write(s->ctx, out->data.data + run_off, run_len))
		return MLK_SYSTEM;
	return 0;
}

struct deid *deid_new(const struct deid_params *p,
		      const uint8_t key[MLK_KEY_LEN], struct mlk_error *e)
{
	struct deid *d = xcalloc(1, sizeof *d);
	d->p = p;
	d->prof = p->prof;
	uint8_t pk[MLK_KEY_LEN];
	project_key(key, "mlk-deid project", p->project, pk);
	d->mac = crypto_hmac_new(pk, e);
	crypto_wipe(pk, sizeof pk);
	if (!d->mac) {
		free(d);
		return NULL;
	}
	pthread_mutex_init(&d->lock, NULL);
	d->type_rules = xcalloc(d->prof->nrules + 1, sizeof *d->type_rules);
	d->pflen = xcalloc(d->prof->npatient_fields + 1, sizeof *d->pflen);
	for (size_t i = 0; i < d->prof->npatient_fields; i++)
		d->pflen[i] = strlen(d->prof->patient_fields[i]);
	d->value_rules = xcalloc(d->prof->nrules + 1,
				 sizeof *d->value_rules);
	for (size_t i = 0; i < d->prof->nrules; i++) {
		if (d->prof->rules[i].ftype || d->prof->rules[i].vkind)
			d->type_rules[d->ntype++] = i;
		if (d->prof->rules[i].vkind)
			d->value_rules[d->nvalue++] = i;
		if (d->prof->rules[i].method == DM_SCRUB)
			d->has_scrub = 1;
		if (d->prof->rules[i].method == DM_DATESHIFT)
			d->has_shift = 1;
		if (d->prof->rules[i].method == DM_ENCRYPT)
			d->has_encrypt = p->vault;
	}
	struct buf b = BUF_INIT;
	buf_addstr(&b, "\"deid\":{\"profile\":");
	buf_add_json_cstr(&b, d->prof->name);
	buf_addf(&b, ",\"profile_sha256\":\"%s\",\"key_id\":", d->prof->sha256);
	buf_add_json_cstr(&b, p->key_id ? p->key_id : "");
	buf_addstr(&b, ",\"project\":");
	buf_add_json_cstr(&b, p->project);
	buf_addch(&b, '}');
	if (b.len >= sizeof d->deid_json) {
		buf_release(&b);
		crypto_hmac_free(d->mac);
		free(d);
		mlk_error_set(e, MLK_USAGE, NULL, 0, "project or profile name "
			      "too long");
		return NULL;
	}
	memcpy(d->deid_json, b.data, b.len + 1);
	buf_release(&b);
	return d;
}

void deid_free(struct deid *d)
{
	if (!d)
		return;
	crypto_hmac_free(d->mac);
	free(d->type_rules);
	free(d->value_rules);
	free(d->pflen);
	for (size_t i = 0; i < d->pkslots; i++)
		if (d->pk[i].token[0])
			buf_release(&d->pk[i].vals);
	free(d->pk);
	pthread_mutex_destroy(&d->lock);
	for (size_t i = 0; i < d->nd; i++)
		free(d->dpath[i]);
	free(d->dpath);
	free(d->dcount);
	free(d);
}

const struct deid_counts *deid_counts(const struct deid *d)
{
	return &d->c;
}

static ssize_t read_fd(void *ctx, void *p, size_t n)
{
	return lr_read_fd(ctx, p, n);
}

enum mlk_status deid_run(struct deid *d, int fd, int threads,
			 const struct deid_sink *sink, struct mlk_error *e)
{
	d->sink = sink;
	struct stat st;
	if (d->has_scrub && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    lseek(fd, 0, SEEK_CUR) == 0) {
		/* A file can be read twice: first the patients, so that their
		 * names are scrubbed from every record of theirs. */
		struct pmap_ops scan = { d, tls_new, tls_free_quiet, scan_map,
					 scan_reduce };
		enum mlk_status ss = pmap_run(read_fd, &fd, threads,
					      (size_t)64 << 20, &scan, e);
		if (ss != MLK_OK)
			return ss;
		if (lseek(fd, 0, SEEK_SET) != 0)
			return mlk_error_errno(e, NULL, "cannot read input "
					       "again");
		d->scanned = 1;
	}
	struct pmap_ops ops = { d, tls_new, tls_free, map, reduce };
	return pmap_run(read_fd, &fd, threads, (size_t)64 << 20, &ops, e);
}

struct dsort {
	const char *path;
	unsigned long long n;
};

static int dcmp(const void *a, const void *b)
{
	return strcmp(((const struct dsort *)a)->path,
		      ((const struct dsort *)b)->path);
}

void deid_dropped(const struct deid *d,
		  void (*cb)(void *ctx, const char *path,
			     unsigned long long n),
		  void *ctx)
{
	if (!d->nd)
		return;
	struct dsort *v = xcalloc(d->nd, sizeof *v);
	for (size_t i = 0; i < d->nd; i++)
		v[i] = (struct dsort){ d->dpath[i], d->dcount[i] };
	qsort(v, d->nd, sizeof *v, dcmp);
	for (size_t i = 0; i < d->nd; i++)
		cb(ctx, v[i].path, v[i].n);
	free(v);
}
