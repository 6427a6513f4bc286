#include "sample.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ehr.h"
#include "pmap.h"
#include "record.h"
#include "xalloc.h"
#include "banned.h"

/* Parameters */

enum sample_bins sample_bins_parse(const char *s)
{
	if (!strcmp(s, "month"))
		return BINS_MONTH;
	if (!strcmp(s, "quarter"))
		return BINS_QUARTER;
	if (!strcmp(s, "year"))
		return BINS_YEAR;
	return BINS_NONE;
}

static const char *bins_name(enum sample_bins b)
{
	return b == BINS_MONTH ? "month" : b == BINS_QUARTER ? "quarter"
					 : "year";
}

/* The shortest decimal that reads back as the same double, so that the
 * same parameter always stamps the same bytes. */
static void add_double(struct buf *b, double d)
{
	char t[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(t, sizeof t, "%.*g", prec, d);
		if (strtod(t, NULL) == d)
			break;
	}
	buf_addstr(b, t);
}

static int split_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 32)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

enum mlk_status sample_split_parse(struct sample_params *p, const char *s,
				   struct mlk_error *e)
{
	double sum = 0;
	p->nsplit = 0;
	while (*s) {
		const char *comma = strchr(s, ',');
		size_t n = comma ? (size_t)(comma - s) : strlen(s);
		const char *eq = memchr(s, '=', n);
		if (!eq || !split_name_ok(s, (size_t)(eq - s)))
			return mlk_error_set(e, MLK_USAGE, NULL, 0, "--split "
					     "wants NAME=WEIGHT,... with names "
					     "of a-z 0-9 _ -");
		if (p->nsplit == SAMPLE_MAX_SPLITS)
			return mlk_error_set(e, MLK_USAGE, NULL, 0, "--split: "
					     "at most %d parts",
					     SAMPLE_MAX_SPLITS);
		char *name = xstrndup(s, (size_t)(eq - s));
		for (size_t i = 0; i < p->nsplit; i++)
			if (!strcmp(p->split_name[i], name)) {
				free(name);
				return mlk_error_set(e, MLK_USAGE, NULL, 0,
						     "--split: part named "
						     "twice");
			}
		char *num = xstrndup(eq + 1, n - (size_t)(eq - s) - 1);
		char *end;
		errno = 0;
		double w = strtod(num, &end);
		int bad = !*num || *end || errno || !(w > 0) || w > 1;
		free(num);
		if (bad) {
			free(name);
			return mlk_error_set(e, MLK_USAGE, NULL, 0, "--split: "
					     "weights must be numbers in "
					     "(0, 1]");
		}
		p->split_name[p->nsplit] = name;
		p->split_w[p->nsplit++] = w;
		sum += w;
		s += n + (comma ? 1 : 0);
		if (comma && !*s)
			return mlk_error_set(e, MLK_USAGE, NULL, 0, "--split: "
					     "trailing comma");
	}
	if (!p->nsplit)
		return mlk_error_set(e, MLK_USAGE, NULL, 0, "--split is empty");
	if (fabs(sum - 1.0) > 1e-9)
		return mlk_error_set(e, MLK_USAGE, NULL, 0, "--split: weights "
				     "must add up to 1");
	return MLK_OK;
}

static int is_streaming(const struct sample_params *p)
{
	return !p->per_stratum && !p->min_per_stratum;
}

static void add_str_list(struct buf *b, char **v, size_t n)
{
	buf_addch(b, '[');
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_addch(b, ',');
		buf_add_json_cstr(b, v[i]);
	}
	buf_addch(b, ']');
}

void sample_params_json(const struct sample_params *p, struct buf *b)
{
	buf_addf(b, "{\"seed\":%llu,\"unit\":", (unsigned long long)p->seed);
	buf_add_json_cstr(b, p->unit ? p->unit : "default");
	buf_addstr(b, ",\"method\":");
	buf_addstr(b, p->per_stratum ? "\"per-stratum\"" :
		      p->min_per_stratum ? "\"min-per-stratum\"" :
		      p->has_fraction ? "\"fraction\"" : "\"split\"");
	if (p->has_fraction) {
		buf_addstr(b, ",\"fraction\":");
		add_double(b, p->fraction);
	}
	if (p->per_stratum)
		buf_addf(b, ",\"per_stratum\":%llu", p->per_stratum);
	if (p->min_per_stratum)
		buf_addf(b, ",\"min_per_stratum\":%llu", p->min_per_stratum);
	if (p->nstratify) {
		buf_addstr(b, ",\"stratify\":");
		add_str_list(b, p->stratify, p->nstratify);
	}
	if (p->time_field) {
		buf_addstr(b, ",\"time_field\":");
		buf_add_json_cstr(b, p->time_field);
		buf_addf(b, ",\"time_bins\":\"%s\"", bins_name(p->time_bins));
	}
	if (p->nsplit) {
		buf_addstr(b, ",\"split\":{");
		for (size_t i = 0; i < p->nsplit; i++) {
			if (i)
				buf_addch(b, ',');
			buf_add_json_cstr(b, p->split_name[i]);
			buf_addch(b, ':');
			add_double(b, p->split_w[i]);
		}
		buf_addch(b, '}');
	}
	buf_addstr(b, ",\"key_id\":");
	buf_add_json_cstr(b, p->key_id);
	buf_addch(b, '}');
}

/* The engine's state */

/* A record held in a bottom-k heap: its output line, then its audit
 * values. */
struct held {
	struct held *next;
	size_t len, alen;
	int split;
	char data[];
};

struct unit_ent {
	uint64_t u;
	uint32_t strat;
	size_t pos;              /* in the stratum's heap */
	size_t unitlen;
	struct held *recs;
	char *unit;
};

struct stratum {
	char *key;
	size_t keylen;
	unsigned long long in, out, units;
	struct unit_ent **h;     /* max-heap by (u, unit) */
	size_t n, alloc;
};

struct hval {
	char *key;
	size_t keylen;
	unsigned long long in, out;
};

/* A value histogram of one audit field, capped at SAMPLE_MAX_VALUES. */
struct hist {
	struct hval *v;          /* open addressing */
	size_t cap, n;
	unsigned long long other_in, other_out, in, out;
};

struct sample {
	const struct sample_params *p;
	struct crypto_hmac *tmpl;
	struct buf stamp;        /* "\"sample\":{...}" */
	int streaming, keep_all, need_strata;
	uint64_t thresh;         /* fraction: keep u < thresh */
	uint64_t split_thr[SAMPLE_MAX_SPLITS];
	unsigned long long split_n[SAMPLE_MAX_SPLITS];
	unsigned long long k;    /* bottom-k size */
	/* strata: open addressing of indices + 1 into sv */
	struct stratum **sv;
	size_t nstrata, sv_alloc;
	uint32_t *stab;
	size_t stab_cap;
	/* held units: open addressing */
	struct unit_ent **utab;
	size_t utab_cap, nunits;
	struct hist *hist;
	struct sample_counts c;
	struct sha256_ctx sha;
	int fd;
	const struct sample_sink *sink;
	struct mlk_error *e;
	int out_failed;
};

struct tls {
	struct crypto_hmac *mac;
	struct rec r;
	struct buf unit, strat, audit, tmp;
};

/* Per-record header in the item's aux bytes. */
struct auxhdr {
	uint64_t u;
	uint32_t unitlen, stratlen, auditlen;
	int32_t split;
	int32_t flags;
};
#define AUX_NOUNIT 1

struct sample *sample_new(const struct sample_params *p,
			  const uint8_t key[MLK_KEY_LEN], struct mlk_error *e)
{
	struct sample *s = xcalloc(1, sizeof *s);
	s->p = p;
	s->tmpl = crypto_hmac_new(key, e);
	if (!s->tmpl) {
		sample_free(s);
		return NULL;
	}
	buf_addstr(&s->stamp, "\"sample\":");
	sample_params_json(p, &s->stamp);
	s->streaming = is_streaming(p);
	if (p->has_fraction) {
		if (p->fraction >= 1.0)
			s->keep_all = 1;
		else
			s->thresh = (uint64_t)ldexp(p->fraction, 64);
	}
	s->k = p->per_stratum ? p->per_stratum : p->min_per_stratum;
	s->need_strata = p->nstratify || p->time_field || !s->streaming;
	double cum = 0;
	for (size_t i = 0; i < p->nsplit; i++) {
		cum += p->split_w[i];
		/* The last part takes the rest, so rounding loses nothing. */
		s->split_thr[i] = i + 1 == p->nsplit || cum >= 1.0
				  ? UINT64_MAX : (uint64_t)ldexp(cum, 64);
	}
	if (p->naudit)
		s->hist = xcalloc(p->naudit, sizeof *s->hist);
	s->c.no_unit_line = 0;
	return s;
}

static void hist_release(struct hist *h)
{
	for (size_t i = 0; i < h->cap; i++)
		free(h->v[i].key);
	free(h->v);
}

static void unit_free(struct unit_ent *u)
{
	struct held *r = u->recs;
	while (r) {
		struct held *n = r->next;
		free(r);
		r = n;
	}
	free(u->unit);
	free(u);
}

void sample_free(struct sample *s)
{
	if (!s)
		return;
	crypto_hmac_free(s->tmpl);
	buf_release(&s->stamp);
	for (size_t i = 0; i < s->nstrata; i++) {
		struct stratum *st = s->sv[i];
		for (size_t k = 0; k < st->n; k++)
			unit_free(st->h[k]);
		free(st->h);
		free(st->key);
		free(st);
	}
	free(s->sv);
	free(s->stab);
	free(s->utab);
	if (s->hist) {
		for (size_t i = 0; i < s->p->naudit; i++)
			hist_release(&s->hist[i]);
		free(s->hist);
	}
	free(s);
}

const struct sample_counts *sample_counts(const struct sample *s)
{
	return &s->c;
}

/* Worker side: parse, find the unit, hash, decide, stamp */

static void *tls_new(void *ctx)
{
	struct sample *s = ctx;
	struct tls *t = xcalloc(1, sizeof *t);
	t->mac = crypto_hmac_dup(s->tmpl);
	rec_init(&t->r);
	return t;
}

static void tls_free(void *ctx, void *tl)
{
	struct tls *t = tl;
	(void)ctx;
	crypto_hmac_free(t->mac);
	rec_release(&t->r);
	buf_release(&t->unit);
	buf_release(&t->strat);
	buf_release(&t->audit);
	buf_release(&t->tmp);
	free(t);
}

static int raw_eq(const struct rec *r, int i, const char *s)
{
	size_t n;
	const char *p = rec_raw(r, i, &n);
	if (rec_type(r, i) != REC_STRING)
		return 0;
	if (memchr(p, '\\', n))
		return rec_str_eq(r, i, s);
	return n == strlen(s) && !memcmp(p, s, n);
}

/* A string or number value of token i as the unit; 1 when non-empty. */
static int unit_value(const struct rec *r, int i, struct buf *out)
{
	if (i < 0)
		return 0;
	buf_reset(out);
	int t = rec_type(r, i);
	if (t == REC_STRING) {
		size_t n;
		const char *p = rec_raw(r, i, &n);
		if (memchr(p, '\\', n))
			rec_str(r, i, out);
		else
			buf_add(out, p, n);
	} else if (t == REC_PRIMITIVE) {
		size_t n;
		const char *p = rec_raw(r, i, &n);
		/* null, true and false are no units */
		if (n && (p[0] == '-' || (p[0] >= '0' && p[0] <= '9')))
			buf_add(out, p, n);
	}
	return out->len > 0;
}

/* "Patient/123", ".../Patient/123" and "urn:uuid:X" name 123 and X. */
static int unit_reference(const struct rec *r, int i, struct buf *out)
{
	if (i < 0 || rec_type(r, i) != REC_STRING || !unit_value(r, i, out))
		return 0;
	ehr_patient_ref(out);
	return out->len > 0;
}

static int find_unit(const struct sample *s, const struct rec *r,
		     struct buf *out)
{
	if (s->p->unit)
		return unit_value(r, rec_path(r, 0, s->p->unit), out);
	int m = rec_get(r, 0, "_mlk");
	if (m > 0 && unit_value(r, rec_get(r, m, "patient"), out))
		return 1;
	int rt = rec_get(r, 0, "resourceType");
	if (rt > 0 && raw_eq(r, rt, "Patient") &&
	    unit_value(r, rec_get(r, 0, "id"), out))
		return 1;
	if (unit_reference(r, rec_path(r, 0, "subject.reference"), out))
		return 1;
	if (unit_reference(r, rec_path(r, 0, "patient.reference"), out))
		return 1;
	if (unit_value(r, rec_get(r, 0, "patient_id"), out))
		return 1;
	return unit_value(r, rec_get(r, 0, "PATIENT"), out);
}

/* A typed value: 'n' (missing or null), 's' string (unescaped) or 'p'
 * (anything else, compact), then a 4-byte length and the bytes. */
static void add_typed(struct buf *b, char type, const char *p, size_t n)
{
	uint32_t len = (uint32_t)n;
	buf_addch(b, type);
	buf_add(b, &len, sizeof len);
	if (n)
		buf_add(b, p, n);
}

static void add_value(const struct rec *r, int i, struct buf *b,
		      struct buf *tmp)
{
	buf_reset(tmp);
	int t = i > 0 ? rec_type(r, i) : 0;
	if (t == REC_STRING) {
		rec_str(r, i, tmp);
		add_typed(b, 's', tmp->data, tmp->len);
		return;
	}
	if (t == REC_PRIMITIVE) {
		size_t n;
		const char *p = rec_raw(r, i, &n);
		if (n == 4 && !memcmp(p, "null", 4)) {
			add_typed(b, 'n', NULL, 0);
			return;
		}
	}
	if (!t) {
		add_typed(b, 'n', NULL, 0);
		return;
	}
	rec_write(r, i, tmp);
	add_typed(b, 'p', tmp->data, tmp->len);
}

static int digits(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return 0;
	return 1;
}

static void add_time_bin(const struct sample *s, const struct rec *r,
			 struct buf *b, struct buf *tmp)
{
	int i = rec_path(r, 0, s->p->time_field);
	buf_reset(tmp);
	if (i > 0 && rec_type(r, i) == REC_STRING)
		rec_str(r, i, tmp);
	const char *p = tmp->data;
	size_t n = tmp->len;
	char bin[16];
	int ok = n >= 4 && digits(p, 4);
	int month = 0;
	if (ok && s->p->time_bins != BINS_YEAR) {
		ok = n >= 7 && p[4] == '-' && digits(p + 5, 2);
		if (ok) {
			month = (p[5] - '0') * 10 + (p[6] - '0');
			ok = month >= 1 && month <= 12;
		}
	}
	if (!ok) {
		add_typed(b, 'n', NULL, 0);
		return;
	}
	if (s->p->time_bins == BINS_YEAR)
		snprintf(bin, sizeof bin, "%.4s", p);
	else if (s->p->time_bins == BINS_QUARTER)
		snprintf(bin, sizeof bin, "%.4s-Q%d", p, (month - 1) / 3 + 1);
	else
		snprintf(bin, sizeof bin, "%.7s", p);
	add_typed(b, 's', bin, strlen(bin));
}

static void hash_unit(struct tls *t, uint64_t seed, const char *unit,
		      size_t n, uint64_t *u, uint64_t *v)
{
	uint8_t sb[8], md[SHA256_LEN];
	for (int i = 0; i < 8; i++)
		sb[i] = (uint8_t)(seed >> (56 - 8 * i));
	crypto_hmac2(t->mac, sb, sizeof sb, unit, n, md);
	uint64_t a = 0, b = 0;
	for (int i = 0; i < 8; i++) {
		a = a << 8 | md[i];
		b = b << 8 | md[8 + i];
	}
	*u = a;
	*v = b;
}

/*
 * The record with _mlk.sample (and _mlk.split) set: every byte outside
 * the envelope as it came; inside it, the other members as they came,
 * then sample, then split.  So a second pass stamps the same bytes.
 * Returns 0, or -1 when _mlk is there but not an object.
 */
static int stamp(const struct sample *s, const struct rec *r, int split,
		 struct buf *out)
{
	size_t b0, e0;
	rec_span(r, 0, &b0, &e0);
	const char *t = r->text;
	int m = rec_get(r, 0, "_mlk");
	const char *sp = split >= 0 ? s->p->split_name[split] : NULL;
	if (m < 0) {
		buf_add(out, t + b0, e0 - 1 - b0);
		if (rec_size(r, 0))
			buf_addch(out, ',');
		buf_addstr(out, "\"_mlk\":{");
		buf_add(out, s->stamp.data, s->stamp.len);
		if (sp) {
			buf_addstr(out, ",\"split\":\"");
			buf_addstr(out, sp);
			buf_addch(out, '"');
		}
		buf_addstr(out, "}}\n");
		return 0;
	}
	if (rec_type(r, m) != REC_OBJECT)
		return -1;
	size_t mb, me;
	rec_span(r, m, &mb, &me);
	buf_add(out, t + b0, mb - b0);
	buf_addch(out, '{');
	int old_split = -1, n = 0;
	for (int k = m + 1; k < r->skip[m]; k = r->skip[k + 1]) {
		if (rec_key_eq(r, k, "sample"))
			continue;
		if (rec_key_eq(r, k, "split")) {
			if (old_split < 0)
				old_split = k + 1;
			continue;
		}
		size_t kb, ke, vb, ve;
		rec_span(r, k, &kb, &ke);
		rec_span(r, k + 1, &vb, &ve);
		if (n++)
			buf_addch(out, ',');
		buf_add(out, t + kb, ve - kb);
	}
	if (n)
		buf_addch(out, ',');
	buf_add(out, s->stamp.data, s->stamp.len);
	if (sp) {
		buf_addstr(out, ",\"split\":\"");
		buf_addstr(out, sp);
		buf_addch(out, '"');
	} else if (old_split >= 0) {
		size_t vb, ve;
		rec_span(r, old_split, &vb, &ve);
		buf_addstr(out, ",\"split\":");
		buf_add(out, t + vb, ve - vb);
	}
	buf_addch(out, '}');
	buf_add(out, t + me, e0 - me);
	buf_addch(out, '\n');
	return 0;
}

static void map(void *ctx, void *tl, const char *line, size_t len,
		long long lineno, unsigned long long offset,
		struct pmap_out *out)
{
	struct sample *s = ctx;
	struct tls *t = tl;
	struct mlk_error pe = MLK_ERROR_INIT;
	if (rec_parse(&t->r, line, len, &pe) != MLK_OK) {
		pmap_add_reject(out, NULL, 0, pe.msg, lineno, offset);
		return;
	}
	struct rec *r = &t->r;
	struct auxhdr h;
	memset(&h, 0, sizeof h);
	h.split = -1;
	size_t off = out->data.len, aoff = out->aux.len;
	if (!find_unit(s, r, &t->unit)) {
		h.flags = AUX_NOUNIT;
		buf_add(&out->aux, &h, sizeof h);
		pmap_add_record(out, off, aoff, lineno, 0);
		return;
	}
	uint64_t v;
	hash_unit(t, s->p->seed, t->unit.data, t->unit.len, &h.u, &v);
	if (s->p->nsplit) {
		h.split = 0;
		while (v > s->split_thr[h.split])
			h.split++;
	}
	buf_reset(&t->strat);
	if (s->need_strata) {
		for (size_t i = 0; i < s->p->nstratify; i++)
			add_value(r, rec_path(r, 0, s->p->stratify[i]),
				  &t->strat, &t->tmp);
		if (s->p->time_field)
			add_time_bin(s, r, &t->strat, &t->tmp);
	}
	buf_reset(&t->audit);
	for (size_t i = 0; i < s->p->naudit; i++)
		add_value(r, rec_path(r, 0, s->p->audit[i]), &t->audit,
			  &t->tmp);
	int keep = !s->streaming || !s->p->has_fraction || s->keep_all ||
		   h.u < s->thresh;
	if (keep && stamp(s, r, h.split, &out->data) < 0) {
		buf_truncate(&out->data, off);
		pmap_add_reject(out, NULL, 0, "member '_mlk' is not an object",
				lineno, offset);
		return;
	}
	h.unitlen = (uint32_t)t->unit.len;
	h.stratlen = (uint32_t)t->strat.len;
	h.auditlen = (uint32_t)t->audit.len;
	buf_add(&out->aux, &h, sizeof h);
	buf_add(&out->aux, t->unit.data, t->unit.len);
	buf_add(&out->aux, t->strat.data, t->strat.len);
	buf_add(&out->aux, t->audit.data, t->audit.len);
	pmap_add_record(out, off, aoff, lineno, 0);
}

/* Reducer side: strata, heaps, histograms */

static uint64_t fnv(const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 1099511628211ULL;
	return h;
}

static void stab_put(struct sample *s, uint32_t idx)
{
	const struct stratum *st = s->sv[idx];
	size_t mask = s->stab_cap - 1;
	size_t i = (size_t)fnv(st->key, st->keylen) & mask;
	while (s->stab[i])
		i = (i + 1) & mask;
	s->stab[i] = idx + 1;
}

static uint32_t stratum_get(struct sample *s, const char *key, size_t n)
{
	if (s->stab_cap) {
		size_t mask = s->stab_cap - 1;
		for (size_t i = (size_t)fnv(key, n) & mask; s->stab[i];
		     i = (i + 1) & mask) {
			const struct stratum *st = s->sv[s->stab[i] - 1];
			if (st->keylen == n && (!n ||
			    !memcmp(st->key, key, n)))
				return s->stab[i] - 1;
		}
	}
	if ((s->nstrata + 1) * 2 > s->stab_cap) {
		free(s->stab);
		s->stab_cap = s->stab_cap ? s->stab_cap * 2 : 64;
		s->stab = xcalloc(s->stab_cap, sizeof *s->stab);
		for (size_t i = 0; i < s->nstrata; i++)
			stab_put(s, (uint32_t)i);
	}
	struct stratum *st = xcalloc(1, sizeof *st);
	st->key = xmalloc(n + 1);
	if (n)
		memcpy(st->key, key, n);
	st->keylen = n;
	XGROW(s->sv, s->sv_alloc, s->nstrata + 1);
	s->sv[s->nstrata] = st;
	stab_put(s, (uint32_t)s->nstrata);
	return (uint32_t)s->nstrata++;
}

static int ucmp(uint64_t u, const char *a, size_t an,
		const struct unit_ent *b)
{
	if (u != b->u)
		return u < b->u ? -1 : 1;
	size_t n = an < b->unitlen ? an : b->unitlen;
	int c = n ? memcmp(a, b->unit, n) : 0;
	if (c)
		return c;
	return an < b->unitlen ? -1 : an > b->unitlen;
}

static int ent_cmp(const struct unit_ent *a, const struct unit_ent *b)
{
	return ucmp(a->u, a->unit, a->unitlen, b);
}

static void heap_set(struct stratum *st, size_t i, struct unit_ent *x)
{
	st->h[i] = x;
	x->pos = i;
}

static void heap_up(struct stratum *st, size_t i)
{
	struct unit_ent *x = st->h[i];
	while (i) {
		size_t p = (i - 1) / 2;
		if (ent_cmp(st->h[p], x) >= 0)
			break;
		heap_set(st, i, st->h[p]);
		i = p;
	}
	heap_set(st, i, x);
}

static void heap_down(struct stratum *st, size_t i)
{
	struct unit_ent *x = st->h[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= st->n)
			break;
		if (c + 1 < st->n && ent_cmp(st->h[c + 1], st->h[c]) > 0)
			c++;
		if (ent_cmp(st->h[c], x) <= 0)
			break;
		heap_set(st, i, st->h[c]);
		i = c;
	}
	heap_set(st, i, x);
}

static size_t uslot(const struct sample *s, uint64_t u, uint32_t strat)
{
	return (size_t)((u ^ (strat * 0x9e3779b97f4a7c15ULL)) &
			(s->utab_cap - 1));
}

static void utab_grow(struct sample *s)
{
	struct unit_ent **old = s->utab;
	size_t oc = s->utab_cap;
	s->utab_cap = oc ? oc * 2 : 1024;
	s->utab = xcalloc(s->utab_cap, sizeof *s->utab);
	for (size_t i = 0; i < oc; i++) {
		if (!old[i])
			continue;
		size_t j = uslot(s, old[i]->u, old[i]->strat);
		while (s->utab[j])
			j = (j + 1) & (s->utab_cap - 1);
		s->utab[j] = old[i];
	}
	free(old);
}

static struct unit_ent *utab_find(const struct sample *s, uint64_t u,
				  uint32_t strat, const char *unit, size_t n)
{
	if (!s->utab_cap)
		return NULL;
	size_t mask = s->utab_cap - 1;
	for (size_t i = uslot(s, u, strat); s->utab[i]; i = (i + 1) & mask) {
		struct unit_ent *x = s->utab[i];
		if (x->u == u && x->strat == strat && x->unitlen == n &&
		    !memcmp(x->unit, unit, n))
			return x;
	}
	return NULL;
}

/* Linear probing with backward-shift deletion: no tombstones. */
static void utab_del(struct sample *s, const struct unit_ent *x)
{
	size_t mask = s->utab_cap - 1;
	size_t i = uslot(s, x->u, x->strat);
	while (s->utab[i] != x)
		i = (i + 1) & mask;
	s->utab[i] = NULL;
	size_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (!s->utab[j])
			break;
		size_t home = uslot(s, s->utab[j]->u, s->utab[j]->strat);
		/* Move j back to i unless its home lies in (i, j]. */
		int between = i <= j ? (home > i && home <= j)
				     : (home > i || home <= j);
		if (!between) {
			s->utab[i] = s->utab[j];
			s->utab[j] = NULL;
			i = j;
		}
	}
	s->nunits--;
}

static void utab_add(struct sample *s, struct unit_ent *x)
{
	if ((s->nunits + 1) * 2 > s->utab_cap)
		utab_grow(s);
	size_t i = uslot(s, x->u, x->strat);
	while (s->utab[i])
		i = (i + 1) & (s->utab_cap - 1);
	s->utab[i] = x;
	s->nunits++;
}

static int below(const struct sample *s, uint64_t u)
{
	return s->p->has_fraction && (s->keep_all || u < s->thresh);
}

static void evict_top(struct sample *s, struct stratum *st)
{
	struct unit_ent *top = st->h[0];
	utab_del(s, top);
	st->n--;
	if (st->n) {
		heap_set(st, 0, st->h[st->n]);
		heap_down(st, 0);
	}
	unit_free(top);
}

static struct held *held_new(const char *line, size_t len, const char *a,
			     size_t alen, int split)
{
	struct held *h = xmalloc(sizeof *h + len + alen);
	h->next = NULL;
	h->len = len;
	h->alen = alen;
	h->split = split;
	memcpy(h->data, line, len);
	if (alen)
		memcpy(h->data + len, a, alen);
	return h;
}

/*
 * A unit is kept when its u is below the fraction threshold or it is one
 * of the k smallest (u, unit) of its stratum: the heap holds every unit
 * below the threshold and the smallest others up to k in all.
 */
static void bottomk_add(struct sample *s, uint32_t si, uint64_t u,
			const char *unit, size_t un, const char *line,
			size_t len, const char *a, size_t alen, int split)
{
	struct stratum *st = s->sv[si];
	struct unit_ent *x = utab_find(s, u, si, unit, un);
	if (x) {
		struct held *h = held_new(line, len, a, alen, split);
		h->next = x->recs;
		x->recs = h;
		return;
	}
	int b = below(s, u);
	if (!b && st->n >= s->k) {
		struct unit_ent *top = st->h[0];
		if (below(s, top->u) || ucmp(u, unit, un, top) > 0)
			return;
		evict_top(s, st);
	}
	x = xcalloc(1, sizeof *x);
	x->u = u;
	x->strat = si;
	x->unit = xmalloc(un + 1);
	memcpy(x->unit, unit, un);
	x->unitlen = un;
	x->recs = held_new(line, len, a, alen, split);
	XGROW(st->h, st->alloc, st->n + 1);
	st->n++;
	heap_set(st, st->n - 1, x);
	heap_up(st, st->n - 1);
	utab_add(s, x);
	while (b && st->n > s->k && !below(s, st->h[0]->u))
		evict_top(s, st);
}

static uint32_t rd32(const char *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

static void hist_count(struct hist *h, const char *key, size_t n, int in,
		       int out)
{
	if ((h->n + 1) * 2 > h->cap && h->n < SAMPLE_MAX_VALUES) {
		struct hval *old = h->v;
		size_t oc = h->cap;
		h->cap = oc ? oc * 2 : 64;
		h->v = xcalloc(h->cap, sizeof *h->v);
		for (size_t i = 0; i < oc; i++) {
			if (!old[i].key)
				continue;
			size_t j = (size_t)fnv(old[i].key, old[i].keylen) &
				   (h->cap - 1);
			while (h->v[j].key)
				j = (j + 1) & (h->cap - 1);
			h->v[j] = old[i];
		}
		free(old);
	}
	h->in += (unsigned long long)in;
	h->out += (unsigned long long)out;
	size_t mask = h->cap - 1;
	size_t i = (size_t)fnv(key, n) & mask;
	for (; h->v[i].key; i = (i + 1) & mask)
		if (h->v[i].keylen == n && !memcmp(h->v[i].key, key, n)) {
			h->v[i].in += (unsigned long long)in;
			h->v[i].out += (unsigned long long)out;
			return;
		}
	if (h->n >= SAMPLE_MAX_VALUES) {
		h->other_in += (unsigned long long)in;
		h->other_out += (unsigned long long)out;
		return;
	}
	h->v[i].key = xmalloc(n + 1);
	memcpy(h->v[i].key, key, n);
	h->v[i].keylen = n;
	h->v[i].in = (unsigned long long)in;
	h->v[i].out = (unsigned long long)out;
	h->n++;
}

/* Walk the typed values of an audit blob into the histograms. */
static void audit_count(struct sample *s, const char *a, size_t alen, int in,
			int out)
{
	size_t off = 0;
	for (size_t i = 0; i < s->p->naudit && off + 5 <= alen; i++) {
		uint32_t n = rd32(a + off + 1);
		hist_count(&s->hist[i], a + off, 5 + (size_t)n, in, out);
		off += 5 + n;
	}
}

static int emit(struct sample *s, const char *p, size_t n)
{
	if (!n || s->out_failed)
		return 0;
	if (s->sink->output(s->sink->ctx, p, n)) {
		s->out_failed = 1;
		return MLK_SYSTEM;
	}
	return 0;
}

static int reduce(void *ctx, const struct pmap_out *out)
{
	struct sample *s = ctx;
	for (size_t i = 0; i < out->n; i++) {
		const struct pmap_item *it = &out->items[i];
		if (it->kind == PMAP_REJECT) {
			s->c.rejected++;
			struct buf why = BUF_INIT;
			buf_add(&why, out->aux.data + it->aux_off,
				it->aux_len);
			s->sink->reject(s->sink->ctx, it->line, why.data);
			buf_release(&why);
			continue;
		}
		struct auxhdr h;
		const char *a = out->aux.data + it->aux_off;
		memcpy(&h, a, sizeof h);
		s->c.in_records++;
		if (h.flags & AUX_NOUNIT) {
			if (!s->c.no_unit++)
				s->c.no_unit_line = it->line;
			continue;
		}
		const char *unit = a + sizeof h;
		const char *strat = unit + h.unitlen;
		const char *aud = strat + h.stratlen;
		uint32_t si = 0;
		if (s->need_strata) {
			si = stratum_get(s, strat, h.stratlen);
			s->sv[si]->in++;
		}
		if (s->streaming) {
			int kept = it->len > 0;
			if (s->hist)
				audit_count(s, aud, h.auditlen, 1, kept);
			if (kept) {
				s->c.out_records++;
				if (h.split >= 0)
					s->split_n[h.split]++;
				if (s->need_strata)
					s->sv[si]->out++;
			}
			continue;
		}
		if (s->hist)
			audit_count(s, aud, h.auditlen, 1, 0);
		bottomk_add(s, si, h.u, unit, h.unitlen,
			    out->data.data + it->off, it->len, aud,
			    h.auditlen, h.split);
	}
	/* Kept records' lines are contiguous: one write per block. */
	if (s->streaming)
		return emit(s, out->data.data, out->data.len);
	return 0;
}

static ssize_t read_hashed(void *ctx, void *p, size_t n)
{
	struct sample *s = ctx;
	ssize_t r = read(s->fd, p, n);
	if (r > 0)
		sha256_update(&s->sha, p, (size_t)r);
	return r;
}

static int cmp_stratum(const void *a, const void *b)
{
	const struct stratum *x = *(struct stratum *const *)a;
	const struct stratum *y = *(struct stratum *const *)b;
	/* Value by value: type, then bytes, then length, so that strata
	 * come out in the order a person expects ("A15.0" before "I10"). */
	size_t i = 0, j = 0;
	while (i < x->keylen && j < y->keylen) {
		if (x->key[i] != y->key[j])
			return x->key[i] < y->key[j] ? -1 : 1;
		uint32_t xn = rd32(x->key + i + 1), yn = rd32(y->key + j + 1);
		size_t n = xn < yn ? xn : yn;
		int c = n ? memcmp(x->key + i + 5, y->key + j + 5, n) : 0;
		if (c)
			return c;
		if (xn != yn)
			return xn < yn ? -1 : 1;
		i += 5 + xn;
		j += 5 + yn;
	}
	return (i < x->keylen) - (j < y->keylen);
}

static int cmp_ent(const void *a, const void *b)
{
	return ent_cmp(*(struct unit_ent *const *)a,
		       *(struct unit_ent *const *)b);
}

static int cmp_held(const void *a, const void *b)
{
	const struct held *x = *(struct held *const *)a;
	const struct held *y = *(struct held *const *)b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->data, y->data, n);
	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* The bottom-k sample, sorted so that it never depends on input order. */
static int flush_heaps(struct sample *s)
{
	if (s->nstrata > 1)
		qsort(s->sv, s->nstrata, sizeof *s->sv, cmp_stratum);
	struct held **hv = NULL;
	size_t halloc = 0;
	int rc = 0;
	for (size_t i = 0; i < s->nstrata; i++) {
		struct stratum *st = s->sv[i];
		st->units = st->n;
		if (st->n > 1)
			qsort(st->h, st->n, sizeof *st->h, cmp_ent);
		for (size_t k = 0; k < st->n; k++) {
			size_t nh = 0;
			for (struct held *h = st->h[k]->recs; h; h = h->next) {
				XGROW(hv, halloc, nh + 1);
				hv[nh++] = h;
			}
			if (nh > 1)
				qsort(hv, nh, sizeof *hv, cmp_held);
			for (size_t j = 0; j < nh; j++) {
				const struct held *h = hv[j];
				st->out++;
				s->c.out_records++;
				if (h->split >= 0)
					s->split_n[h->split]++;
				if (s->hist)
					audit_count(s, h->data + h->len,
						    h->alen, 0, 1);
				if (!rc)
					rc = emit(s, h->data, h->len);
			}
		}
		/* The sample is written: its memory goes now. */
		for (size_t k = 0; k < st->n; k++)
			unit_free(st->h[k]);
		st->n = 0;
	}
	free(hv);
	free(s->utab);
	s->utab = NULL;
	s->utab_cap = s->nunits = 0;
	return rc;
}

enum mlk_status sample_run(struct sample *s, int fd, int threads,
			   const struct sample_sink *sink,
			   struct mlk_error *e)
{
	struct pmap_ops ops = { s, tls_new, tls_free, map, reduce };
	s->fd = fd;
	s->sink = sink;
	s->e = e;
	sha256_init(&s->sha);
	enum mlk_status st = pmap_run(read_hashed, s, threads, 0, &ops, e);
	uint8_t d[SHA256_LEN];
	sha256_final(&s->sha, d);
	hex_encode(d, SHA256_LEN, s->c.sha256);
	if (st == MLK_OK && !s->streaming && flush_heaps(s))
		st = MLK_SYSTEM;
	if (st == MLK_SYSTEM && s->out_failed && e->status == MLK_OK)
		mlk_error_set(e, MLK_SYSTEM, NULL, 0, "cannot write records");
	return st;
}

/* The report */

static void add_typed_json(struct buf *b, const char *p, size_t *off)
{
	char type = p[*off];
	uint32_t n = rd32(p + *off + 1);
	const char *v = p + *off + 5;
	*off += 5 + n;
	if (type == 's')
		buf_add_json_str(b, v, n);
	else if (type == 'p')
		buf_add(b, v, n);
	else
		buf_addstr(b, "null");
}

static double hist_tv(const struct hist *h)
{
	if (!h->in || !h->out)
		return -1;
	double tv = 0;
	for (size_t i = 0; i < h->cap; i++)
		if (h->v[i].key)
			tv += fabs((double)h->v[i].in / (double)h->in -
				   (double)h->v[i].out / (double)h->out);
	tv += fabs((double)h->other_in / (double)h->in -
		   (double)h->other_out / (double)h->out);
	return tv / 2;
}

void sample_distances(const struct sample *s, struct buf *b)
{
	buf_addch(b, '{');
	for (size_t i = 0; i < s->p->naudit; i++) {
		const struct hist *h = &s->hist[i];
		if (i)
			buf_addch(b, ',');
		buf_add_json_cstr(b, s->p->audit[i]);
		double tv = hist_tv(h);
		if (tv < 0)
			buf_addstr(b, ":{\"tv\":null");
		else
			buf_addf(b, ":{\"tv\":%.6f", tv);
		buf_addf(b, ",\"values\":%zu,\"truncated\":%s}", h->n,
			 h->other_in || h->other_out ? "true" : "false");
	}
	buf_addch(b, '}');
}

void sample_report(const struct sample *s, struct buf *b)
{
	const struct sample_params *p = s->p;
	buf_addstr(b, "{\"v\":1,\"tool\":\"mlk-sample\",\"parameters\":");
	sample_params_json(p, b);
	buf_addf(b, ",\"input\":{\"records\":%llu,\"sha256\":\"%s\","
		 "\"without_unit\":%llu,\"rejected\":%llu},\"sample\":{"
		 "\"records\":%llu}", s->c.in_records, s->c.sha256,
		 s->c.no_unit, s->c.rejected, s->c.out_records);
	if (p->nsplit) {
		buf_addstr(b, ",\"splits\":{");
		for (size_t i = 0; i < p->nsplit; i++) {
			if (i)
				buf_addch(b, ',');
			buf_add_json_cstr(b, p->split_name[i]);
			buf_addf(b, ":%llu", s->split_n[i]);
		}
		buf_addch(b, '}');
	}
	buf_addstr(b, ",\"strata\":[");
	/* Streaming runs leave the strata in first-seen order: sort a copy
	 * of the order so the report never depends on input order. */
	struct stratum **sv = NULL;
	if (s->nstrata) {
		sv = xmalloc(s->nstrata * sizeof *sv);
		memcpy(sv, s->sv, s->nstrata * sizeof *sv);
		qsort(sv, s->nstrata, sizeof *sv, cmp_stratum);
	}
	for (size_t i = 0; i < s->nstrata && (p->nstratify || p->time_field);
	     i++) {
		const struct stratum *st = sv[i];
		size_t off = 0;
		if (i)
			buf_addch(b, ',');
		buf_addstr(b, "{\"key\":{");
		for (size_t f = 0; f < p->nstratify; f++) {
			if (f)
				buf_addch(b, ',');
			buf_add_json_cstr(b, p->stratify[f]);
			buf_addch(b, ':');
			add_typed_json(b, st->key, &off);
		}
		if (p->time_field) {
			if (p->nstratify)
				buf_addch(b, ',');
			buf_addstr(b, "\"time_bin\":");
			add_typed_json(b, st->key, &off);
		}
		buf_addf(b, "},\"input_records\":%llu,\"sample_records\":%llu",
			 st->in, st->out);
		if (!s->streaming)
			buf_addf(b, ",\"sample_units\":%llu", st->units);
		buf_addch(b, '}');
	}
	free(sv);
	buf_addstr(b, "],\"fields\":");
	sample_distances(s, b);
	buf_addstr(b, "}\n");
}
