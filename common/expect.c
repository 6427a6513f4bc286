/*
 * expect — quality gates over a stream of records (see expect.h and
 * mlk-expect(5)).
 */
#include "expect.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "crypto.h"
#include "record.h"
#include "scan.h"
#include "snapshot.h"
#include "xalloc.h"
#include "yamltree.h"
#include "banned.h"

enum kind {
	K_REQUIRED, K_TYPE, K_NULL_SHARE, K_IN_SET, K_IN_VOCAB, K_RANGE,
	K_AGE, K_PATTERN, K_UNIQUE, K_REFERENCES, K_FRESHNESS, K_PSI,
};

static const char *const kind_names[] = {
	"required", "type", "null_share", "in_set", "in_vocab", "range",
	"age", "pattern", "unique", "references", "freshness", "psi",
};

enum vtype { T_STRING, T_NUMBER, T_INTEGER, T_BOOLEAN, T_OBJECT, T_ARRAY,
	     T_DATE, T_DATETIME };

static const char *const type_names[] = {
	"string", "number", "integer", "boolean", "object", "array", "date",
	"datetime",
};

#define MAX_VALS 64
#define PSI_MAX_CATS 200

/* ---- paths ---- */

struct seg {
	char *key;
	int step;       /* -2 none, -1 every item, >= 0 that item */
};

struct path {
	struct seg *s;
	size_t n;
	char *text;
};

struct cond {
	struct path p;
	char *val;
};

/* ---- digests and key tables ---- */

struct kentry {
	uint8_t d[16];
	long long pos;
	unsigned long long count;
};

struct ktab {
	struct kentry *v;
	size_t cap, n;          /* cap a power of two; count 0 = empty slot */
};

static void ktab_release(struct ktab *t)
{
	free(t->v);
	memset(t, 0, sizeof *t);
}

static size_t ktab_slot(const struct ktab *t, const uint8_t d[16])
{
	uint64_t h;
	memcpy(&h, d, sizeof h);
	size_t i = (size_t)h & (t->cap - 1);
	while (t->v[i].count && memcmp(t->v[i].d, d, 16))
		i = (i + 1) & (t->cap - 1);
	return i;
}

static struct kentry *ktab_find(const struct ktab *t, const uint8_t d[16])
{
	if (!t->cap)
		return NULL;
	size_t i = ktab_slot(t, d);
	return t->v[i].count ? &t->v[i] : NULL;
}

/* Insert (count 1, pos) or return the existing entry; *fresh says which. */
static struct kentry *ktab_add(struct ktab *t, const uint8_t d[16],
			       long long pos, int *fresh)
{
	if ((t->n + 1) * 2 > t->cap) {
		struct ktab g = { NULL, t->cap ? t->cap * 2 : 1024, 0 };
		g.v = xcalloc(g.cap, sizeof *g.v);
		for (size_t i = 0; i < t->cap; i++)
			if (t->v[i].count) {
				g.v[ktab_slot(&g, t->v[i].d)] = t->v[i];
				g.n++;
			}
		free(t->v);
		*t = g;
	}
	size_t i = ktab_slot(t, d);
	*fresh = !t->v[i].count;
	if (*fresh) {
		memcpy(t->v[i].d, d, 16);
		t->v[i].pos = pos;
		t->v[i].count = 1;
		t->n++;
	}
	return &t->v[i];
}

static int cmp_kentry(const void *a, const void *b)
{
	const struct kentry *x = a, *y = b;
	int c = memcmp(x->d, y->d, 16);
	if (c)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static void digest16(const char *p, size_t n, uint8_t d[16])
{
	uint8_t full[SHA256_LEN];
	sha256_raw(p, n, full);
	memcpy(d, full, 16);
}

/* ---- one expectation ---- */

struct psi_bins {
	int numeric;
	double lo, hi;
	size_t nb;                      /* numeric bins */
	char **cat;                     /* categories, sorted */
	size_t ncat;
	double *ref, *cur;              /* nb or ncat, + other + missing */
	double ref_total, cur_total;
};

struct exp {
	char *name;
	enum kind kind;
	int blocking;
	size_t line;                    /* of the item in the YAML */
	struct path field;
	struct path *fields;            /* unique: the key's fields */
	size_t nfields;
	struct cond *where;
	size_t nwhere;

	enum vtype type;
	int has_min, has_max, dates;    /* range: dates compare as seconds */
	double min, max;
	char **set;                     /* in_set values, sorted; in_vocab */
	size_t nset;
	regex_t re;
	int have_re;
	double days;
	char *reference;
	size_t bins;

	/* references */
	char *t_dataset, *t_snapshot, *t_prefix;
	struct path t_field;
	struct cond *t_where;
	size_t nt_where;
	int t_self;
	struct ktab targets, refs;

	/* unique */
	struct ktab keys;
	FILE *spill;
	long long *runs;                /* entries per spilled run */
	size_t nruns;

	/* results */
	unsigned long long checked, failed;
	long long first[EXPECT_FIRST];
	size_t nfirst;
	long long lastpos;
	long long newest;
	int have_newest;
	double share, psi;
	struct psi_bins pb;
	int overflow;
};

struct expect_set {
	char *name;
	struct exp *v;
	size_t n;
	struct rec r;
	struct buf tmp;
	const struct lake *l;
	time_t now;
	struct vocab vocab;
	int have_vocab;
	unsigned long long records, invalid;
	long long ifirst[EXPECT_FIRST];
	size_t nifirst;
};

static void first_add(long long *first, size_t *n, long long pos)
{
	size_t i = *n;
	if (i == EXPECT_FIRST) {
		if (pos >= first[EXPECT_FIRST - 1])
			return;
		i--;
	} else {
		(*n)++;
	}
	while (i > 0 && first[i - 1] > pos) {
		first[i] = first[i - 1];
		i--;
	}
	first[i] = pos;
}

static void fail_at(struct exp *x, long long pos)
{
	x->failed++;
	if (x->lastpos == pos)
		return;
	x->lastpos = pos;
	first_add(x->first, &x->nfirst, pos);
}

/* ---- loading ---- */

static void path_release(struct path *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->s[i].key);
	free(p->s);
	free(p->text);
	memset(p, 0, sizeof *p);
}

static int path_parse(const char *text, struct path *p)
{
	memset(p, 0, sizeof *p);
	p->text = xstrdup(text);
	const char *s = text;
	size_t alloc = 0;
	for (;;) {
		const char *dot = strchr(s, '.');
		size_t len = dot ? (size_t)(dot - s) : strlen(s);
		const char *br = memchr(s, '[', len);
		size_t klen = br ? (size_t)(br - s) : len;
		if (!klen)
			return -1;
		XGROW(p->s, alloc, p->n + 1);
		struct seg *g = &p->s[p->n++];
		g->key = xstrndup(s, klen);
		g->step = -2;
		if (br) {
			const char *end = s + len;
			if (end - br == 3 && br[1] == '*' && br[2] == ']') {
				g->step = -1;
			} else {
				long v = 0;
				const char *q = br + 1;
				if (q >= end - 1 || end[-1] != ']')
					return -1;
				for (; q < end - 1; q++) {
					if (*q < '0' || *q > '9' || v > 100000)
						return -1;
					v = v * 10 + (*q - '0');
				}
				g->step = (int)v;
			}
		}
		if (!dot)
			break;
		s = dot + 1;
	}
	return 0;
}

static void exp_release(struct exp *x)
{
	free(x->name);
	path_release(&x->field);
	for (size_t i = 0; i < x->nfields; i++)
		path_release(&x->fields[i]);
	free(x->fields);
	for (size_t i = 0; i < x->nwhere; i++) {
		path_release(&x->where[i].p);
		free(x->where[i].val);
	}
	free(x->where);
	for (size_t i = 0; i < x->nt_where; i++) {
		path_release(&x->t_where[i].p);
		free(x->t_where[i].val);
	}
	free(x->t_where);
	for (size_t i = 0; i < x->nset; i++)
		free(x->set[i]);
	free(x->set);
	if (x->have_re)
		regfree(&x->re);
	free(x->reference);
	free(x->t_dataset);
	free(x->t_snapshot);
	free(x->t_prefix);
	path_release(&x->t_field);
	ktab_release(&x->targets);
	ktab_release(&x->refs);
	ktab_release(&x->keys);
	if (x->spill)
		fclose(x->spill);
	free(x->runs);
	for (size_t i = 0; i < x->pb.ncat; i++)
		free(x->pb.cat[i]);
	free(x->pb.cat);
	free(x->pb.ref);
	free(x->pb.cur);
}

void expect_free(struct expect_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		exp_release(&s->v[i]);
	free(s->v);
	free(s->name);
	rec_release(&s->r);
	buf_release(&s->tmp);
	if (s->have_vocab)
		vocab_release(&s->vocab);
	free(s);
}

size_t expect_count(const struct expect_set *s)
{
	return s->n;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static enum mlk_status bad(struct mlk_error *e, const char *file,
			   const struct ynode *n, const char *what,
			   const char *name)
{
	if (name)
		return mlk_error_set(e, MLK_USAGE, file, (long long)n->line,
				     "expectation '%s': %s", name, what);
	return mlk_error_set(e, MLK_USAGE, file, (long long)n->line, "%s",
			     what);
}

static int num_of(const char *s, double *v)
{
	char *end;
	if (!s || !*s)
		return -1;
	errno = 0;
	*v = strtod(s, &end);
	return (*end || errno || !isfinite(*v)) ? -1 : 0;
}

struct when {
	int y, mo, d, h, mi, s, off;    /* off: minutes east of UTC */
	int parts;                      /* 1 year, 2 month, 3 day, 4 time */
};

static int digits(const char *p, size_t n, int *v)
{
	int x = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		x = x * 10 + (p[i] - '0');
	}
	*v = x;
	return 0;
}

static int days_in(int y, int m)
{
	static const int dm[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
				  31 };
	if (m == 2 && ((y % 4 == 0 && y % 100) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

/* FHIR date / dateTime: YYYY[-MM[-DD[Thh:mm[:ss[.f]](Z|+hh:mm)]]]. */
static int parse_when(const char *p, size_t n, struct when *w)
{
	memset(w, 0, sizeof *w);
	w->mo = w->d = 1;
	if (n < 4 || digits(p, 4, &w->y) || w->y < 1)
		return -1;
	w->parts = 1;
	if (n == 4)
		return 0;
	if (n < 7 || p[4] != '-' || digits(p + 5, 2, &w->mo) || w->mo < 1 ||
	    w->mo > 12)
		return -1;
	w->parts = 2;
	if (n == 7)
		return 0;
	if (n < 10 || p[7] != '-' || digits(p + 8, 2, &w->d) || w->d < 1 ||
	    w->d > days_in(w->y, w->mo))
		return -1;
	w->parts = 3;
	if (n == 10)
		return 0;
	if (n < 16 || p[10] != 'T' || digits(p + 11, 2, &w->h) ||
	    p[13] != ':' || digits(p + 14, 2, &w->mi) || w->h > 23 ||
	    w->mi > 59)
		return -1;
	size_t i = 16;
	if (i < n && p[i] == ':') {
		if (i + 3 > n || digits(p + i + 1, 2, &w->s) || w->s > 60)
			return -1;
		i += 3;
		if (i < n && p[i] == '.') {
			i++;
			size_t k = i;
			while (i < n && p[i] >= '0' && p[i] <= '9')
				i++;
			if (i == k)
				return -1;
		}
	}
	w->parts = 4;
	if (i == n)
		return 0;       /* no zone: read as UTC */
	if (p[i] == 'Z')
		return i + 1 == n ? 0 : -1;
	int oh, om;
	if ((p[i] != '+' && p[i] != '-') || i + 6 != n ||
	    digits(p + i + 1, 2, &oh) || p[i + 3] != ':' ||
	    digits(p + i + 4, 2, &om) || oh > 14 || om > 59)
		return -1;
	w->off = (oh * 60 + om) * (p[i] == '-' ? -1 : 1);
	return 0;
}

static long long days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	long long yoe = y - era * 400;
	long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static long long when_secs(const struct when *w)
{
	return days_from_civil(w->y, w->mo, w->d) * 86400LL + w->h * 3600LL +
	       w->mi * 60LL + w->s - w->off * 60LL;
}

static void civil_of(long long secs, int *y, int *m, int *d)
{
	long long z = (secs >= 0 ? secs : secs - 86399) / 86400 + 719468;
	long long era = (z >= 0 ? z : z - 146096) / 146097;
	long long doe = z - era * 146097;
	long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	long long mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

static const char *const item_keys[] = {
	"name", "kind", "field", "fields", "severity", "where", "type", "max",
	"min", "values", "preferred", "pattern", "target", "days",
	"reference", "bins", NULL,
};

static enum mlk_status parse_where(const char *file, const struct ynode *w,
				   const char *name, struct cond **out,
				   size_t *nout, struct mlk_error *e)
{
	if (w->type != YNODE_MAP)
		return bad(e, file, w, "where wants a map of field: value",
			   name);
	*out = xcalloc(w->n ? w->n : 1, sizeof **out);
	for (size_t i = 0; i < w->n; i++) {
		const struct ynode *v = w->values[i];
		if (v->type != YNODE_SCALAR || ynode_is_null(v))
			return bad(e, file, v, "a where value must be a scalar",
				   name);
		if (path_parse(w->keys[i], &(*out)[i].p))
			return bad(e, file, w, "a where field is not a path",
				   name);
		(*out)[i].val = xstrdup(v->scalar);
		(*nout)++;
	}
	return MLK_OK;
}

static enum mlk_status scalar_list(const char *file, const struct ynode *v,
				   const char *name, const char *what,
				   struct exp *x, struct mlk_error *e)
{
	if (v->type != YNODE_SEQ || !v->n)
		return mlk_error_set(e, MLK_USAGE, file, (long long)v->line,
				     "expectation '%s': %s wants a list of "
				     "values", name, what);
	x->set = xcalloc(v->n, sizeof *x->set);
	for (size_t i = 0; i < v->n; i++) {
		if (v->items[i]->type != YNODE_SCALAR)
			return bad(e, file, v->items[i],
				   "list items must be scalars", name);
		x->set[x->nset++] = xstrdup(v->items[i]->scalar);
	}
	qsort(x->set, x->nset, sizeof *x->set, cmp_str);
	return MLK_OK;
}

static enum mlk_status parse_num(const char *file, const struct ynode *it,
				 const char *key, const char *name,
				 double *v, int *has, struct mlk_error *e)
{
	const struct ynode *n = ynode_get(it, key);
	if (!n)
		return MLK_OK;
	if (n->type != YNODE_SCALAR || num_of(n->scalar, v))
		return mlk_error_set(e, MLK_USAGE, file, (long long)n->line,
				     "expectation '%s': %s wants a number",
				     name, key);
	if (has)
		*has = 1;
	return MLK_OK;
}

/* A range bound: a number, a date, or "now". */
static enum mlk_status parse_bound(const char *file, const struct ynode *it,
				   const char *key, struct exp *x, double *v,
				   int *has, struct mlk_error *e)
{
	const struct ynode *n = ynode_get(it, key);
	if (!n)
		return MLK_OK;
	struct when w;
	if (n->type == YNODE_SCALAR && !num_of(n->scalar, v)) {
		if (x->dates == 1)
			goto mixed;
		x->dates = 2;
	} else if (n->type == YNODE_SCALAR && !strcmp(n->scalar, "now")) {
		if (x->dates == 2)
			goto mixed;
		x->dates = 1;
		*v = NAN;       /* filled in by expect_prepare */
	} else if (n->type == YNODE_SCALAR &&
		   !parse_when(n->scalar, strlen(n->scalar), &w)) {
		if (x->dates == 2)
			goto mixed;
		x->dates = 1;
		*v = (double)when_secs(&w);
	} else {
		return mlk_error_set(e, MLK_USAGE, file, (long long)n->line,
				     "expectation '%s': %s wants a number, a "
				     "date or now", x->name, key);
	}
	*has = 1;
	return MLK_OK;
mixed:
	return mlk_error_set(e, MLK_USAGE, file, (long long)n->line,
			     "expectation '%s': min and max must both be "
			     "numbers or both dates", x->name);
}

static enum mlk_status parse_item(const char *file, const struct ynode *it,
				  struct exp *x, struct mlk_error *e)
{
	if (it->type != YNODE_MAP)
		return bad(e, file, it, "an expectation must be a map", NULL);
	x->line = it->line;
	x->blocking = 1;
	x->lastpos = -1;
	const char *name = ynode_str(it, "name");
	if (!name || !*name || strlen(name) > 64)
		return bad(e, file, it, "an expectation needs a name (at "
			   "most 64 bytes)", NULL);
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
			return bad(e, file, it, "a name may hold only letters, "
				   "digits, '.', '_' and '-'", NULL);
	x->name = xstrdup(name);
	for (size_t i = 0; i < it->n; i++) {
		size_t k = 0;
		while (item_keys[k] && strcmp(item_keys[k], it->keys[i]))
			k++;
		if (!item_keys[k])
			return mlk_error_set(e, MLK_USAGE, file,
					     (long long)it->values[i]->line,
					     "expectation '%s': unknown key "
					     "'%s'", name, it->keys[i]);
	}
	const char *kind = ynode_str(it, "kind");
	size_t k = 0;
	while (kind && k < sizeof kind_names / sizeof kind_names[0] &&
	       strcmp(kind_names[k], kind))
		k++;
	if (!kind || k == sizeof kind_names / sizeof kind_names[0])
		return bad(e, file, it, "kind wants one of required, type, "
			   "null_share, in_set, in_vocab, range, age, pattern, "
			   "unique, references, freshness, psi", name);
	x->kind = (enum kind)k;
	const char *sev = ynode_str(it, "severity");
	if (sev && !strcmp(sev, "warning"))
		x->blocking = 0;
	else if (sev && strcmp(sev, "blocking"))
		return bad(e, file, ynode_get(it, "severity"),
			   "severity wants blocking or warning", name);
	const char *field = ynode_str(it, "field");
	const struct ynode *fields = ynode_get(it, "fields");
	if (x->kind == K_UNIQUE && fields) {
		if (fields->type != YNODE_SEQ || !fields->n || field)
			return bad(e, file, fields, "fields wants a list of "
				   "fields (and no field)", name);
		x->fields = xcalloc(fields->n, sizeof *x->fields);
		for (size_t i = 0; i < fields->n; i++) {
			const struct ynode *f = fields->items[i];
			if (f->type != YNODE_SCALAR ||
			    path_parse(f->scalar, &x->fields[i]))
				return bad(e, file, f, "not a field path", name);
			x->nfields++;
		}
	} else {
		if (!field)
			return bad(e, file, it, "field is missing", name);
		if (path_parse(field, &x->field))
			return bad(e, file, ynode_get(it, "field"),
				   "field is not a path (a.b, a[*].b, a[0])",
				   name);
		if (x->kind == K_UNIQUE) {
			x->fields = xcalloc(1, sizeof *x->fields);
			path_parse(field, &x->fields[0]);
			x->nfields = 1;
		}
	}
	const struct ynode *w = ynode_get(it, "where");
	enum mlk_status st = MLK_OK;
	if (w)
		st = parse_where(file, w, name, &x->where, &x->nwhere, e);
	if (st != MLK_OK)
		return st;
	const struct ynode *v;
	int has = 0;
	switch (x->kind) {
	case K_TYPE: {
		const char *t = ynode_str(it, "type");
		size_t i = 0;
		while (t && i < sizeof type_names / sizeof type_names[0] &&
		       strcmp(type_names[i], t))
			i++;
		if (!t || i == sizeof type_names / sizeof type_names[0])
			return bad(e, file, it, "type wants string, number, "
				   "integer, boolean, object, array, date or "
				   "datetime", name);
		x->type = (enum vtype)i;
		break;
	}
	case K_NULL_SHARE:
		x->max = 0;
		st = parse_num(file, it, "max", name, &x->max, &has, e);
		if (st == MLK_OK && (!has || x->max < 0 || x->max > 1))
			return bad(e, file, it, "max wants a share from 0 to 1",
				   name);
		break;
	case K_IN_SET:
		v = ynode_get(it, "values");
		if (!v)
			return bad(e, file, it, "values is missing", name);
		st = scalar_list(file, v, name, "values", x, e);
		break;
	case K_IN_VOCAB:
		v = ynode_get(it, "preferred");
		if (v)
			st = scalar_list(file, v, name, "preferred", x, e);
		break;
	case K_RANGE:
		st = parse_bound(file, it, "min", x, &x->min, &x->has_min, e);
		if (st == MLK_OK)
			st = parse_bound(file, it, "max", x, &x->max,
					 &x->has_max, e);
		if (st == MLK_OK && !x->has_min && !x->has_max)
			return bad(e, file, it, "range wants min, max or both",
				   name);
		x->dates = x->dates == 1;
		break;
	case K_AGE:
		x->min = 0;
		x->max = 120;
		x->has_min = x->has_max = 1;
		st = parse_num(file, it, "min", name, &x->min, NULL, e);
		if (st == MLK_OK)
			st = parse_num(file, it, "max", name, &x->max, NULL, e);
		break;
	case K_PATTERN: {
		const char *pat = ynode_str(it, "pattern");
		if (!pat)
			return bad(e, file, it, "pattern is missing", name);
		int rc = regcomp(&x->re, pat, REG_EXTENDED | REG_NOSUB);
		if (rc) {
			char msg[128];
			regerror(rc, &x->re, msg, sizeof msg);
			return mlk_error_set(e, MLK_USAGE, file,
					     (long long)ynode_get(it,
								  "pattern")->line,
					     "expectation '%s': pattern: %s",
					     name, msg);
		}
		x->have_re = 1;
		break;
	}
	case K_REFERENCES: {
		const struct ynode *t = ynode_get(it, "target");
		if (!t || t->type != YNODE_MAP)
			return bad(e, file, it, "target wants a map (dataset "
				   "or snapshot, where, field, prefix)", name);
		for (size_t i = 0; i < t->n; i++)
			if (strcmp(t->keys[i], "dataset") &&
			    strcmp(t->keys[i], "snapshot") &&
			    strcmp(t->keys[i], "where") &&
			    strcmp(t->keys[i], "field") &&
			    strcmp(t->keys[i], "prefix"))
				return mlk_error_set(e, MLK_USAGE, file,
						     (long long)t->values[i]->line,
						     "expectation '%s': unknown "
						     "target key '%s'", name,
						     t->keys[i]);
		const char *ds = ynode_str(t, "dataset");
		const char *sn = ynode_str(t, "snapshot");
		if (ds && sn)
			return bad(e, file, t, "target names a dataset or a "
				   "snapshot, not both", name);
		if (ds && !lake_dataset_valid(ds))
			return bad(e, file, t, "target dataset is not a valid "
				   "dataset name", name);
		if (sn && !snap_id_valid(sn))
			return bad(e, file, t, "target snapshot is not a "
				   "snapshot id", name);
		x->t_dataset = ds ? xstrdup(ds) : NULL;
		x->t_snapshot = sn ? xstrdup(sn) : NULL;
		x->t_self = !ds && !sn;
		const char *tf = ynode_str(t, "field");
		if (path_parse(tf ? tf : "id", &x->t_field))
			return bad(e, file, t, "target field is not a path",
				   name);
		const char *pre = ynode_str(t, "prefix");
		x->t_prefix = xstrdup(pre ? pre : "");
		const struct ynode *tw = ynode_get(t, "where");
		if (tw)
			st = parse_where(file, tw, name, &x->t_where,
					 &x->nt_where, e);
		break;
	}
	case K_FRESHNESS:
		st = parse_num(file, it, "days", name, &x->days, &has, e);
		if (st == MLK_OK && (!has || x->days < 0))
			return bad(e, file, it, "days wants a number of days",
				   name);
		break;
	case K_PSI: {
		const char *ref = ynode_str(it, "reference");
		if (ref && !snap_id_valid(ref))
			return bad(e, file, ynode_get(it, "reference"),
				   "reference is not a snapshot id", name);
		x->reference = ref ? xstrdup(ref) : NULL;
		x->max = 0.2;
		st = parse_num(file, it, "max", name, &x->max, NULL, e);
		double b = 10;
		if (st == MLK_OK)
			st = parse_num(file, it, "bins", name, &b, NULL, e);
		if (st == MLK_OK && (b < 2 || b > 100 || b != floor(b)))
			return bad(e, file, it, "bins wants 2 to 100", name);
		x->bins = (size_t)b;
		break;
	}
	default:
		break;
	}
	return st;
}

static enum mlk_status load_tree(const char *file, struct ynode *root,
				 struct expect_set **out, struct mlk_error *e)
{
	struct expect_set *s = xcalloc(1, sizeof *s);
	s->name = xstrdup(file);
	rec_init(&s->r);
	enum mlk_status st = MLK_OK;
	const struct ynode *list = ynode_get(root, "expectations");
	if (root->type != YNODE_MAP || !list || list->type != YNODE_SEQ) {
		st = bad(e, file, root, "the file wants a list under "
			 "'expectations'", NULL);
		goto out;
	}
	for (size_t i = 0; i < root->n; i++)
		if (strcmp(root->keys[i], "expectations") &&
		    strcmp(root->keys[i], "version") &&
		    strcmp(root->keys[i], "description")) {
			st = mlk_error_set(e, MLK_USAGE, file,
					   (long long)root->values[i]->line,
					   "unknown key '%s'", root->keys[i]);
			goto out;
		}
	s->v = xcalloc(list->n ? list->n : 1, sizeof *s->v);
	for (size_t i = 0; i < list->n && st == MLK_OK; i++) {
		st = parse_item(file, list->items[i], &s->v[i], e);
		s->n++;
		for (size_t k = 0; st == MLK_OK && k + 1 < s->n; k++)
			if (!strcmp(s->v[k].name, s->v[i].name))
				st = bad(e, file, list->items[i],
					 "a name used twice", s->v[i].name);
	}
out:
	ynode_free(root);
	if (st != MLK_OK) {
		expect_free(s);
		return st;
	}
	*out = s;
	return MLK_OK;
}

enum mlk_status expect_load_file(const char *path, struct expect_set **out,
				 struct mlk_error *e)
{
	struct ynode *root;
	enum mlk_status st = ynode_load_file(path, &root, e);
	if (st != MLK_OK)
		return st;
	return load_tree(path, root, out, e);
}

enum mlk_status expect_load_mem(const char *name, const char *text,
				size_t len, struct expect_set **out,
				struct mlk_error *e)
{
	struct ynode *root;
	enum mlk_status st = ynode_load_mem(name, text, len, &root, e);
	if (st != MLK_OK)
		return st;
	return load_tree(name, root, out, e);
}

/* ---- the built-in defaults (mlk-expect(5), DEFAULTS) ---- */

static const char fhir_defaults[] =
"# mlk-catalog check --defaults fhir: FHIR R4 resources (Bulk NDJSON)\n"
"expectations:\n"
"  - {name: resource-type, kind: required, field: resourceType}\n"
"  - {name: resource-id, kind: required, field: id}\n"
"  - {name: resource-id-unique, kind: unique, fields: [resourceType, id]}\n"
"  - {name: patient-birthdate, kind: required, field: birthDate,\n"
"     where: {resourceType: Patient}}\n"
"  - {name: patient-birthdate-type, kind: type, field: birthDate,\n"
"     type: date, where: {resourceType: Patient}}\n"
"  - {name: patient-age, kind: age, field: birthDate, min: 0, max: 120,\n"
"     where: {resourceType: Patient}}\n"
"  - {name: patient-gender, kind: in_set, field: gender,\n"
"     values: [male, female, other, unknown], where: {resourceType: Patient}}\n"
"  - {name: encounter-subject, kind: required, field: subject.reference,\n"
"     where: {resourceType: Encounter}}\n"
"  - {name: encounter-subject-resolves, kind: references,\n"
"     field: subject.reference, where: {resourceType: Encounter},\n"
"     target: {where: {resourceType: Patient}, field: id,\n"
"              prefix: Patient/}}\n"
"  - {name: encounter-start, kind: required, field: period.start,\n"
"     where: {resourceType: Encounter}}\n"
"  - {name: encounter-start-type, kind: type, field: period.start,\n"
"     type: datetime, where: {resourceType: Encounter}}\n"
"  - {name: encounter-start-past, kind: range, field: period.start,\n"
"     max: now, where: {resourceType: Encounter}}\n"
"  - {name: encounter-status, kind: in_set, field: status,\n"
"     values: [planned, arrived, triaged, in-progress, onleave, finished,\n"
"              cancelled, entered-in-error, unknown],\n"
"     where: {resourceType: Encounter}}\n"
"  - {name: condition-code, kind: required, field: 'code.coding[*].code',\n"
"     where: {resourceType: Condition}}\n"
"  - {name: condition-code-shape, kind: pattern,\n"
"     field: 'code.coding[*].code', pattern: '^[0-9A-Za-z.-]{1,20}$',\n"
"     where: {resourceType: Condition}}\n"
"  - {name: condition-onset-past, kind: range, field: onsetDateTime,\n"
"     max: now, where: {resourceType: Condition}}\n"
"  - {name: encounter-fresh, kind: freshness, field: period.start,\n"
"     days: 3650, severity: warning, where: {resourceType: Encounter}}\n";

static const char synthea_defaults[] =
"# mlk-catalog check --defaults synthea: Synthea CSV export tables\n"
"expectations:\n"
"  - {name: patient-id, kind: required, field: Id,\n"
"     where: {_mlk.type: 'csv:patients'}}\n"
"  - {name: patient-id-unique, kind: unique, field: Id,\n"
"     where: {_mlk.type: 'csv:patients'}}\n"
"  - {name: patient-birthdate, kind: type, field: BIRTHDATE, type: date,\n"
"     where: {_mlk.type: 'csv:patients'}}\n"
"  - {name: patient-birthdate-required, kind: required, field: BIRTHDATE,\n"
"     where: {_mlk.type: 'csv:patients'}}\n"
"  - {name: patient-age, kind: age, field: BIRTHDATE, min: 0, max: 120,\n"
"     where: {_mlk.type: 'csv:patients'}}\n"
"  - {name: patient-gender, kind: in_set, field: GENDER, values: [M, F],\n"
"     where: {_mlk.type: 'csv:patients'}}\n"
"  - {name: encounter-patient, kind: required, field: PATIENT,\n"
"     where: {_mlk.type: 'csv:encounters'}}\n"
"  - {name: encounter-patient-resolves, kind: references, field: PATIENT,\n"
"     where: {_mlk.type: 'csv:encounters'},\n"
"     target: {where: {_mlk.type: 'csv:patients'}, field: Id}}\n"
"  - {name: encounter-start, kind: type, field: START, type: datetime,\n"
"     where: {_mlk.type: 'csv:encounters'}}\n"
"  - {name: encounter-start-past, kind: range, field: START, max: now,\n"
"     where: {_mlk.type: 'csv:encounters'}}\n"
"  - {name: encounter-id-unique, kind: unique, field: Id,\n"
"     where: {_mlk.type: 'csv:encounters'}}\n"
"  - {name: observation-loinc, kind: pattern, field: CODE,\n"
"     pattern: '^([0-9]{1,5}-[0-9]|QALY|DALY|QOLS)$',\n"
"     where: {_mlk.type: 'csv:observations'}}\n"
"  - {name: encounter-fresh, kind: freshness, field: START, days: 3650,\n"
"     severity: warning, where: {_mlk.type: 'csv:encounters'}}\n";

const char *expect_default(const char *name)
{
	if (!strcmp(name, "fhir"))
		return fhir_defaults;
	if (!strcmp(name, "synthea"))
		return synthea_defaults;
	return NULL;
}

/* ---- evaluation ---- */

static void path_walk(const struct rec *r, int tok, const struct path *p,
		      size_t i, int *vals, size_t *n)
{
	for (; i < p->n; i++) {
		if (*n >= MAX_VALS)
			return;
		tok = rec_get(r, tok, p->s[i].key);
		if (tok < 0)
			return;
		if (p->s[i].step == -2)
			continue;
		if (rec_type(r, tok) != REC_ARRAY)
			return;
		int item = tok + 1, k = 0;
		if (p->s[i].step >= 0) {
			for (; item < r->skip[tok] && k < p->s[i].step; k++)
				item = r->skip[item];
			if (item >= r->skip[tok])
				return;
			tok = item;
			continue;
		}
		for (; item < r->skip[tok]; item = r->skip[item]) {
			if (i + 1 == p->n) {
				if (*n < MAX_VALS)
					vals[(*n)++] = item;
			} else {
				path_walk(r, item, p, i + 1, vals, n);
			}
		}
		return;
	}
	vals[(*n)++] = tok;
}

static size_t path_eval(const struct rec *r, const struct path *p, int *vals)
{
	size_t n = 0;
	path_walk(r, 0, p, 0, vals, &n);
	return n;
}

static int is_null(const struct rec *r, int t)
{
	if (rec_type(r, t) != REC_PRIMITIVE)
		return 0;
	size_t n;
	const char *p = rec_raw(r, t, &n);
	return n == 4 && !memcmp(p, "null", 4);
}

/* The value's text: unescaped for strings, raw for primitives. */
static const char *val_text(struct expect_set *s, int t, size_t *n)
{
	const char *p = rec_raw(&s->r, t, n);
	if (rec_type(&s->r, t) == REC_STRING && memchr(p, '\\', *n)) {
		buf_reset(&s->tmp);
		rec_str(&s->r, t, &s->tmp);
		*n = s->tmp.len;
		return s->tmp.data;
	}
	return p;
}

static int conds_hold(struct expect_set *s, const struct cond *c, size_t n)
{
	int vals[MAX_VALS];
	for (size_t i = 0; i < n; i++) {
		size_t nv = path_eval(&s->r, &c[i].p, vals);
		if (!nv)
			return 0;
		int ty = rec_type(&s->r, vals[0]);
		if (ty == REC_STRING) {
			if (!rec_str_eq(&s->r, vals[0], c[i].val))
				return 0;
		} else if (ty == REC_PRIMITIVE) {
			size_t len;
			const char *p = rec_raw(&s->r, vals[0], &len);
			if (len != strlen(c[i].val) || memcmp(p, c[i].val, len))
				return 0;
		} else {
			return 0;
		}
	}
	return 1;
}

static int num_value(struct expect_set *s, int t, double *v)
{
	int ty = rec_type(&s->r, t);
	if (ty != REC_PRIMITIVE && ty != REC_STRING)
		return -1;
	size_t n;
	const char *p = val_text(s, t, &n);
	char tmp[64];
	if (!n || n >= sizeof tmp)
		return -1;
	if (ty == REC_PRIMITIVE && (*p == 't' || *p == 'f' || *p == 'n'))
		return -1;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	return num_of(tmp, v);
}

static int when_value(struct expect_set *s, int t, struct when *w)
{
	if (rec_type(&s->r, t) != REC_STRING)
		return -1;
	size_t n;
	const char *p = val_text(s, t, &n);
	return parse_when(p, n, w);
}

static int type_ok(struct expect_set *s, const struct exp *x, int t)
{
	int ty = rec_type(&s->r, t);
	size_t n;
	const char *p;
	struct when w;
	switch (x->type) {
	case T_STRING: return ty == REC_STRING;
	case T_OBJECT: return ty == REC_OBJECT;
	case T_ARRAY: return ty == REC_ARRAY;
	case T_BOOLEAN:
		p = rec_raw(&s->r, t, &n);
		return ty == REC_PRIMITIVE && (*p == 't' || *p == 'f');
	case T_NUMBER:
		p = rec_raw(&s->r, t, &n);
		return ty == REC_PRIMITIVE && (*p == '-' || (*p >= '0' &&
							     *p <= '9'));
	case T_INTEGER:
		p = rec_raw(&s->r, t, &n);
		if (ty != REC_PRIMITIVE || !(*p == '-' || (*p >= '0' &&
							  *p <= '9')))
			return 0;
		for (size_t i = 0; i < n; i++)
			if (p[i] == '.' || p[i] == 'e' || p[i] == 'E')
				return 0;
		return 1;
	case T_DATE:
		return !when_value(s, t, &w) && w.parts <= 3;
	case T_DATETIME:
		return !when_value(s, t, &w);
	}
	return 0;
}

static int in_sorted(char **v, size_t n, const char *p, size_t len)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strncmp(v[mid], p, len);
		if (!c && v[mid][len])
			c = 1;
		if (!c)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int regex_ok(struct expect_set *s, struct exp *x, int t)
{
	int ty = rec_type(&s->r, t);
	if (ty != REC_STRING && ty != REC_PRIMITIVE)
		return 0;
	size_t n;
	const char *p = val_text(s, t, &n);
	char small[256];
	char *z = n < sizeof small ? small : xmalloc(n + 1);
	memcpy(z, p, n);
	z[n] = '\0';
	int ok = (strlen(z) == n) && !regexec(&x->re, z, 0, NULL, 0);
	if (z != small)
		free(z);
	return ok;
}

static int age_ok(struct expect_set *s, struct exp *x, int t)
{
	struct when w;
	if (when_value(s, t, &w))
		return 0;
	int y, m, d;
	civil_of((long long)s->now, &y, &m, &d);
	long long born = days_from_civil(w.y, w.mo, w.d);
	if (born > days_from_civil(y, m, d))
		return 0;       /* born in the future */
	int age = y - w.y - ((m < w.mo || (m == w.mo && d < w.d)) ? 1 : 0);
	return age >= x->min && age <= x->max;
}

static int range_ok(struct expect_set *s, struct exp *x, int t)
{
	double v;
	if (x->dates) {
		struct when w;
		if (when_value(s, t, &w))
			return 0;
		v = (double)when_secs(&w);
	} else if (num_value(s, t, &v)) {
		return 0;
	}
	return !(x->has_min && v < x->min) && !(x->has_max && v > x->max);
}

static int vocab_ok(struct expect_set *s, struct exp *x, int t)
{
	if (rec_type(&s->r, t) != REC_STRING)
		return 0;
	size_t n;
	const char *p = val_text(s, t, &n);
	const char *pref = vocab_preferred(&s->vocab, p, n);
	if (!pref)
		return 0;
	return !x->nset || in_sorted(x->set, x->nset, pref, strlen(pref));
}

/* The id a reference names: prefix stripped; NULL when it lacks it. */
static const char *ref_id(struct expect_set *s, const char *prefix, int t,
			  size_t *n)
{
	if (rec_type(&s->r, t) != REC_STRING && rec_type(&s->r, t) !=
	    REC_PRIMITIVE)
		return NULL;
	const char *p = val_text(s, t, n);
	size_t pl = strlen(prefix);
	if (*n < pl || memcmp(p, prefix, pl))
		return NULL;
	*n -= pl;
	return p + pl;
}

static void spill_run(struct exp *x)
{
	if (!x->spill)
		x->spill = tmpfile();
	if (!x->spill) {
		x->overflow = 2;
		return;
	}
	struct ktab *t = &x->keys;
	size_t k = 0;
	for (size_t i = 0; i < t->cap; i++)
		if (t->v[i].count)
			t->v[k++] = t->v[i];
	if (k)
		qsort(t->v, k, sizeof *t->v, cmp_kentry);
	if (fwrite(t->v, sizeof *t->v, k, x->spill) != k)
		x->overflow = 2;
	x->runs = xrealloc(x->runs, (x->nruns + 1) * sizeof *x->runs);
	x->runs[x->nruns++] = (long long)k;
	memset(t->v, 0, t->cap * sizeof *t->v);
	t->n = 0;
}

static size_t unique_ram(void)
{
	/* Test only: a small limit makes the tests exercise the spill. */
	const char *v = getenv("MLK_TEST_UNIQUE_RAM");
	if (v && *v) {
		char *end;
		unsigned long n = strtoul(v, &end, 10);
		if (!*end && n >= 2)
			return n;
	}
	return EXPECT_UNIQUE_RAM;
}

static void eval_unique(struct expect_set *s, struct exp *x, long long pos)
{
	int vals[MAX_VALS];
	struct sha256_ctx c;
	uint8_t full[SHA256_LEN], d[16];
	if (x->nfields == 1) {
		if (!path_eval(&s->r, &x->fields[0], vals) ||
		    is_null(&s->r, vals[0]))
			return;
		size_t n;
		const char *p = val_text(s, vals[0], &n);
		digest16(p, n, d);
	} else {
		sha256_init(&c);
		for (size_t i = 0; i < x->nfields; i++) {
			if (!path_eval(&s->r, &x->fields[i], vals) ||
			    is_null(&s->r, vals[0])) {
				sha256_abort(&c);
				return;
			}
			size_t n;
			const char *p = val_text(s, vals[0], &n);
			uint64_t len = n;
			sha256_update(&c, &len, sizeof len);
			sha256_update(&c, p, n);
		}
		sha256_final(&c, full);
		memcpy(d, full, 16);
	}
	x->checked++;
	int fresh;
	ktab_add(&x->keys, d, pos, &fresh);
	if (!fresh)
		fail_at(x, pos);
	else if (x->keys.n >= unique_ram())
		spill_run(x);
}

static void psi_add(struct exp *x, double *bins, int have, double num,
		    const char *p, size_t n)
{
	struct psi_bins *b = &x->pb;
	size_t nb = b->numeric ? b->nb : b->ncat;
	if (!have) {
		bins[nb + 1] += 1;
		return;
	}
	if (b->numeric) {
		size_t i = 0;
		if (b->hi > b->lo) {
			double f = (num - b->lo) / (b->hi - b->lo) * (double)nb;
			i = f < 0 ? 0 : f >= (double)nb ? nb - 1 : (size_t)f;
		}
		bins[i] += 1;
		return;
	}
	size_t lo = 0, hi = b->ncat;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strncmp(b->cat[mid], p, n);
		if (!c && b->cat[mid][n])
			c = 1;
		if (!c) {
			bins[mid] += 1;
			return;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	bins[nb] += 1;          /* a category the reference lacks */
}

static void eval_psi(struct expect_set *s, struct exp *x)
{
	int vals[MAX_VALS];
	size_t nv = path_eval(&s->r, &x->field, vals);
	int have = nv && !is_null(&s->r, vals[0]);
	double num = 0;
	const char *p = NULL;
	size_t n = 0;
	if (have && x->pb.numeric)
		have = !num_value(s, vals[0], &num);
	else if (have)
		p = val_text(s, vals[0], &n);
	x->checked++;
	x->pb.cur_total += 1;
	psi_add(x, x->pb.cur, have, num, p, n);
}

static void eval_one(struct expect_set *s, struct exp *x, long long pos)
{
	if (x->nwhere && !conds_hold(s, x->where, x->nwhere))
		goto target;
	int vals[MAX_VALS];
	size_t nv;
	switch (x->kind) {
	case K_UNIQUE:
		eval_unique(s, x, pos);
		return;
	case K_PSI:
		eval_psi(s, x);
		return;
	default:
		break;
	}
	nv = path_eval(&s->r, &x->field, vals);
	if (x->kind == K_REQUIRED || x->kind == K_NULL_SHARE) {
		int present = 0;
		for (size_t i = 0; i < nv && !present; i++)
			present = !is_null(&s->r, vals[i]);
		x->checked++;
		if (!present)
			fail_at(x, pos);
		return;
	}
	for (size_t i = 0; i < nv; i++) {
		int t = vals[i];
		if (is_null(&s->r, t))
			continue;
		int ok = 1;
		switch (x->kind) {
		case K_TYPE: ok = type_ok(s, x, t); break;
		case K_IN_SET: {
			int ty = rec_type(&s->r, t);
			size_t n;
			const char *p = val_text(s, t, &n);
			ok = (ty == REC_STRING || ty == REC_PRIMITIVE) &&
			     in_sorted(x->set, x->nset, p, n);
			break;
		}
		case K_IN_VOCAB: ok = vocab_ok(s, x, t); break;
		case K_RANGE: ok = range_ok(s, x, t); break;
		case K_AGE: ok = age_ok(s, x, t); break;
		case K_PATTERN: ok = regex_ok(s, x, t); break;
		case K_FRESHNESS: {
			struct when w;
			if (when_value(s, t, &w)) {
				ok = 1;         /* type checks that */
				continue;
			}
			long long v = when_secs(&w);
			if (!x->have_newest || v > x->newest)
				x->newest = v;
			x->have_newest = 1;
			break;
		}
		case K_REFERENCES: {
			size_t n;
			const char *id = ref_id(s, x->t_prefix, t, &n);
			uint8_t d[16];
			if (!id) {
				ok = 0;
				break;
			}
			digest16(id, n, d);
			if (!x->t_self) {
				ok = ktab_find(&x->targets, d) != NULL;
				break;
			}
			if (x->refs.n >= EXPECT_KEYS_MAX) {
				x->overflow = 1;
				break;
			}
			int fresh;
			struct kentry *k = ktab_add(&x->refs, d, pos, &fresh);
			if (!fresh)
				k->count++;
			break;
		}
		default: break;
		}
		x->checked++;
		if (!ok)
			fail_at(x, pos);
	}
target:
	/* References to the same stream: collect the target ids too. */
	if (x->kind == K_REFERENCES && x->t_self &&
	    (!x->nt_where || conds_hold(s, x->t_where, x->nt_where))) {
		nv = path_eval(&s->r, &x->t_field, vals);
		for (size_t i = 0; i < nv; i++) {
			int ty = rec_type(&s->r, vals[i]);
			if (ty != REC_STRING && ty != REC_PRIMITIVE)
				continue;
			size_t n;
			const char *p = val_text(s, vals[i], &n);
			uint8_t d[16];
			digest16(p, n, d);
			if (x->targets.n >= EXPECT_KEYS_MAX) {
				x->overflow = 1;
				continue;
			}
			int fresh;
			ktab_add(&x->targets, d, 0, &fresh);
		}
	}
}

void expect_record(struct expect_set *s, const char *line, size_t len,
		   long long pos)
{
	struct mlk_error e = MLK_ERROR_INIT;
	s->records++;
	if (rec_parse(&s->r, line, len, &e) != MLK_OK) {
		s->invalid++;
		first_add(s->ifirst, &s->nifirst, pos);
		return;
	}
	for (size_t i = 0; i < s->n; i++)
		eval_one(s, &s->v[i], pos);
}

/* ---- preparing: reference snapshots and target ids ---- */

struct load_ctx {
	struct expect_set *s;
	struct exp *x;
	int pass;
	unsigned long long cats;
};

static int target_line(void *ctx, const char *line, size_t len)
{
	struct load_ctx *c = ctx;
	struct expect_set *s = c->s;
	struct exp *x = c->x;
	struct mlk_error e = MLK_ERROR_INIT;
	if (len && line[len - 1] == '\n')
		len--;
	if (rec_parse(&s->r, line, len, &e) != MLK_OK)
		return 0;
	if (x->nt_where && !conds_hold(s, x->t_where, x->nt_where))
		return 0;
	int vals[MAX_VALS];
	size_t nv = path_eval(&s->r, &x->t_field, vals);
	for (size_t i = 0; i < nv; i++) {
		int ty = rec_type(&s->r, vals[i]);
		if (ty != REC_STRING && ty != REC_PRIMITIVE)
			continue;
		if (x->targets.n >= EXPECT_KEYS_MAX) {
			x->overflow = 1;
			return 0;
		}
		size_t n;
		const char *p = val_text(s, vals[i], &n);
		uint8_t d[16];
		digest16(p, n, d);
		int fresh;
		ktab_add(&x->targets, d, 0, &fresh);
	}
	return 0;
}

static int ref_line(void *ctx, const char *line, size_t len)
{
	struct load_ctx *c = ctx;
	struct expect_set *s = c->s;
	struct exp *x = c->x;
	struct psi_bins *b = &x->pb;
	struct mlk_error e = MLK_ERROR_INIT;
	if (rec_parse(&s->r, line, len, &e) != MLK_OK)
		return 0;
	if (x->nwhere && !conds_hold(s, x->where, x->nwhere))
		return 0;
	int vals[MAX_VALS];
	size_t nv = path_eval(&s->r, &x->field, vals);
	int have = nv && !is_null(&s->r, vals[0]);
	if (c->pass == 0) {
		if (!have)
			return 0;
		double v;
		size_t n;
		const char *p = val_text(s, vals[0], &n);
		if (b->numeric && !num_value(s, vals[0], &v)) {
			if (!c->cats || v < b->lo)
				b->lo = v;
			if (!c->cats || v > b->hi)
				b->hi = v;
		} else {
			b->numeric = 0;
		}
		p = val_text(s, vals[0], &n);
		if (!in_sorted(b->cat, b->ncat, p, n)) {
			if (b->ncat < PSI_MAX_CATS + 1) {
				b->cat = xrealloc(b->cat, (b->ncat + 1) *
						  sizeof *b->cat);
				b->cat[b->ncat++] = xstrndup(p, n);
				qsort(b->cat, b->ncat, sizeof *b->cat,
				      cmp_str);
			}
		}
		c->cats++;
		return 0;
	}
	double num = 0;
	const char *p = NULL;
	size_t n = 0;
	if (have && b->numeric)
		have = !num_value(s, vals[0], &num);
	else if (have)
		p = val_text(s, vals[0], &n);
	b->ref_total += 1;
	psi_add(x, b->ref, have, num, p, n);
	return 0;
}

static enum mlk_status load_snapshot(const struct expect_env *env,
				     const char *id, struct exp *x,
				     struct snapshot *snap,
				     struct mlk_error *e)
{
	enum mlk_status st = snap_load(env->l, id, snap, e);
	if (st != MLK_OK)
		return st;
	if (env->may_read) {
		int rc = env->may_read(env->rctx, snap->zone, snap->dataset);
		if (rc) {
			snap_release(snap);
			return mlk_error_set(e, (enum mlk_status)rc, NULL, 0,
					     "expectation '%s': reading "
					     "snapshot %s was refused", x->name,
					     id);
		}
	}
	return MLK_OK;
}

static enum mlk_status prepare_psi(struct expect_set *s, struct exp *x,
				   const struct expect_env *env,
				   struct mlk_error *e)
{
	const char *id = env->reference ? env->reference : x->reference;
	if (!id)
		return mlk_error_set(e, MLK_USAGE, s->name, (long long)x->line,
				     "expectation '%s': psi needs a reference "
				     "snapshot (reference: ID or --reference)",
				     x->name);
	struct snapshot snap;
	enum mlk_status st = load_snapshot(env, id, x, &snap, e);
	if (st != MLK_OK)
		return st;
	struct psi_bins *b = &x->pb;
	b->numeric = 1;
	struct load_ctx c = { s, x, 0, 0 };
	st = snap_each_line(env->l, &snap, ref_line, &c, e);
	if (st == MLK_OK && !c.cats)
		st = mlk_error_set(e, MLK_USAGE, s->name, (long long)x->line,
				   "expectation '%s': the reference snapshot "
				   "has no values of the field", x->name);
	if (st == MLK_OK && !b->numeric && b->ncat > PSI_MAX_CATS)
		st = mlk_error_set(e, MLK_USAGE, s->name, (long long)x->line,
				   "expectation '%s': more than %d categories "
				   "in the reference; psi wants a categorical "
				   "or numeric field", x->name, PSI_MAX_CATS);
	if (st == MLK_OK) {
		if (b->numeric) {
			for (size_t i = 0; i < b->ncat; i++)
				free(b->cat[i]);
			free(b->cat);
			b->cat = NULL;
			b->ncat = 0;
			b->nb = x->bins;
		}
		size_t nb = (b->numeric ? b->nb : b->ncat) + 2;
		b->ref = xcalloc(nb, sizeof *b->ref);
		b->cur = xcalloc(nb, sizeof *b->cur);
		c.pass = 1;
		st = snap_each_line(env->l, &snap, ref_line, &c, e);
	}
	snap_release(&snap);
	return st;
}

static enum mlk_status prepare_targets(struct expect_set *s, struct exp *x,
				       const struct expect_env *env,
				       struct mlk_error *e)
{
	struct load_ctx c = { s, x, 0, 0 };
	if (x->t_snapshot) {
		struct snapshot snap;
		enum mlk_status st = load_snapshot(env, x->t_snapshot, x, &snap,
						   e);
		if (st != MLK_OK)
			return st;
		st = snap_each_line(env->l, &snap, target_line, &c, e);
		snap_release(&snap);
		return st;
	}
	if (env->may_read) {
		int rc = env->may_read(env->rctx, "raw", x->t_dataset);
		if (rc)
			return mlk_error_set(e, (enum mlk_status)rc, NULL, 0,
					     "expectation '%s': reading raw/%s "
					     "was refused", x->name,
					     x->t_dataset);
	}
	struct scan_filter f;
	enum mlk_status st = scan_filter_parse("", &f, e);
	struct scan_stats ss;
	if (st == MLK_OK)
		st = scan_dataset(env->l, x->t_dataset, &f, target_line, &c,
				  &ss, e);
	scan_filter_release(&f);
	return st;
}

enum mlk_status expect_prepare(struct expect_set *s,
			       const struct expect_env *env,
			       struct mlk_error *e)
{
	s->l = env->l;
	s->now = env->now;
	enum mlk_status st = MLK_OK;
	for (size_t i = 0; i < s->n && st == MLK_OK; i++) {
		struct exp *x = &s->v[i];
		int needs = x->kind == K_PSI || x->kind == K_IN_VOCAB ||
			    (x->kind == K_REFERENCES && !x->t_self);
		if (needs && !env->l)
			return mlk_error_set(e, MLK_USAGE, s->name,
					     (long long)x->line,
					     "expectation '%s': %s needs a "
					     "lake", x->name,
					     kind_names[x->kind]);
		if (x->kind == K_RANGE && x->dates) {
			if (isnan(x->min))
				x->min = (double)env->now;
			if (isnan(x->max))
				x->max = (double)env->now;
		}
		if (x->kind == K_IN_VOCAB && !s->have_vocab) {
			st = vocab_load(env->l, &s->vocab, e);
			s->have_vocab = st == MLK_OK;
		} else if (x->kind == K_PSI) {
			st = prepare_psi(s, x, env, e);
		} else if (x->kind == K_REFERENCES && !x->t_self) {
			st = prepare_targets(s, x, env, e);
		}
	}
	return st;
}

/* ---- finishing ---- */

struct run {
	long long left;
	long off;
	struct kentry cur;
};

static enum mlk_status merge_runs(struct exp *x, struct mlk_error *e)
{
	spill_run(x);
	if (x->overflow == 2 || fflush(x->spill))
		return mlk_error_errno(e, NULL, "expectation '%s': cannot "
				       "write the spill file", x->name);
	struct run *r = xcalloc(x->nruns, sizeof *r);
	long off = 0;
	for (size_t i = 0; i < x->nruns; i++) {
		r[i].off = off;
		r[i].left = x->runs[i];
		off += (long)(x->runs[i] * (long long)sizeof(struct kentry));
	}
	enum mlk_status st = MLK_OK;
	/* Each run is read one entry at a time through its own offset;
	 * stdio buffers, and runs are few. */
	for (size_t i = 0; i < x->nruns && st == MLK_OK; i++) {
		if (!r[i].left)
			continue;
		if (fseek(x->spill, r[i].off, SEEK_SET) ||
		    fread(&r[i].cur, sizeof r[i].cur, 1, x->spill) != 1)
			st = mlk_error_errno(e, NULL, "cannot read spill file");
		r[i].off += (long)sizeof r[i].cur;
		r[i].left--;
		r[i].cur.count = 1;
	}
	int have_prev = 0;
	struct kentry prev;
	memset(&prev, 0, sizeof prev);
	while (st == MLK_OK) {
		size_t best = x->nruns;
		for (size_t i = 0; i < x->nruns; i++)
			if (r[i].cur.count && (best == x->nruns ||
					       cmp_kentry(&r[i].cur,
							  &r[best].cur) < 0))
				best = i;
		if (best == x->nruns)
			break;
		struct kentry k = r[best].cur;
		if (have_prev && !memcmp(prev.d, k.d, 16))
			fail_at(x, k.pos);
		prev = k;
		have_prev = 1;
		if (!r[best].left) {
			r[best].cur.count = 0;
			continue;
		}
		if (fseek(x->spill, r[best].off, SEEK_SET) ||
		    fread(&r[best].cur, sizeof r[best].cur, 1, x->spill) != 1)
			st = mlk_error_errno(e, NULL, "cannot read spill file");
		r[best].off += (long)sizeof r[best].cur;
		r[best].left--;
		r[best].cur.count = 1;
	}
	free(r);
	return st;
}

static double psi_of(const struct psi_bins *b)
{
	size_t nb = (b->numeric ? b->nb : b->ncat) + 2;
	double psi = 0;
	for (size_t i = 0; i < nb; i++) {
		double a = b->ref_total ? b->ref[i] / b->ref_total : 0;
		double c = b->cur_total ? b->cur[i] / b->cur_total : 0;
		if (a < 0.0001)
			a = 0.0001;
		if (c < 0.0001)
			c = 0.0001;
		psi += (c - a) * log(c / a);
	}
	return psi;
}

static int exp_pass(const struct expect_set *s, const struct exp *x);

enum mlk_status expect_finish(struct expect_set *s, struct mlk_error *e)
{
	for (size_t i = 0; i < s->n; i++) {
		struct exp *x = &s->v[i];
		if (x->overflow == 1)
			return mlk_error_set(e, MLK_SYSTEM, NULL, 0,
					     "expectation '%s': more than %u "
					     "ids to hold", x->name,
					     EXPECT_KEYS_MAX);
		if (x->kind == K_UNIQUE && x->nruns) {
			enum mlk_status st = merge_runs(x, e);
			if (st != MLK_OK)
				return st;
		}
		if (x->kind == K_REFERENCES && x->t_self) {
			for (size_t k = 0; k < x->refs.cap; k++) {
				struct kentry *r = &x->refs.v[k];
				if (!r->count || ktab_find(&x->targets, r->d))
					continue;
				x->lastpos = -1;
				fail_at(x, r->pos);
				x->failed += r->count - 1;
			}
		}
		if (x->kind == K_NULL_SHARE)
			x->share = x->checked ? (double)x->failed /
						(double)x->checked : 0;
		if (x->kind == K_PSI)
			x->psi = psi_of(&x->pb);
		/* Whole-stream kinds fail once, not per record. */
		if (x->kind == K_PSI || x->kind == K_FRESHNESS)
			x->failed = !exp_pass(s, x);
	}
	return MLK_OK;
}

static int exp_pass(const struct expect_set *s, const struct exp *x)
{
	switch (x->kind) {
	case K_NULL_SHARE: return x->share <= x->max;
	case K_PSI: return x->psi <= x->max;
	case K_FRESHNESS:
		return x->have_newest &&
		       (double)((long long)s->now - x->newest) <=
		       x->days * 86400.0;
	default: return x->failed == 0;
	}
}

void expect_report(const struct expect_set *s, const char *positions,
		   const char *extra, struct buf *out,
		   struct expect_summary *sum)
{
	memset(sum, 0, sizeof *sum);
	sum->records = s->records;
	sum->invalid = s->invalid;
	sum->expectations = s->n;
	for (size_t i = 0; i < s->n; i++)
		if (!exp_pass(s, &s->v[i])) {
			if (s->v[i].blocking)
				sum->failed_blocking++;
			else
				sum->failed_warning++;
		}
	sum->pass = !sum->failed_blocking && !s->invalid;
	buf_addch(out, '{');
	if (extra) {
		buf_addstr(out, extra);
		buf_addch(out, ',');
	}
	buf_addf(out, "\"pass\":%s,\"records\":%llu,\"invalid\":%llu,"
		 "\"invalid_%s\":[", sum->pass ? "true" : "false",
		 s->records, s->invalid, positions);
	for (size_t k = 0; k < s->nifirst; k++)
		buf_addf(out, "%s%lld", k ? "," : "", s->ifirst[k]);
	buf_addf(out, "],\"expectations_total\":%zu,\"failed_blocking\":%zu,"
		 "\"failed_warning\":%zu,\"expectations\":[", s->n,
		 sum->failed_blocking, sum->failed_warning);
	for (size_t i = 0; i < s->n; i++) {
		const struct exp *x = &s->v[i];
		buf_addstr(out, i ? ",{\"name\":" : "{\"name\":");
		buf_add_json_cstr(out, x->name);
		buf_addf(out, ",\"kind\":\"%s\",\"severity\":\"%s\","
			 "\"field\":", kind_names[x->kind],
			 x->blocking ? "blocking" : "warning");
		if (x->kind == K_UNIQUE) {
			buf_addch(out, '[');
			for (size_t k = 0; k < x->nfields; k++) {
				if (k)
					buf_addch(out, ',');
				buf_add_json_cstr(out, x->fields[k].text);
			}
			buf_addch(out, ']');
		} else {
			buf_add_json_cstr(out, x->field.text);
		}
		buf_addf(out, ",\"pass\":%s,\"checked\":%llu,\"failed\":%llu",
			 exp_pass(s, x) ? "true" : "false", x->checked,
			 x->failed);
		if (x->kind == K_NULL_SHARE)
			buf_addf(out, ",\"share\":%.6g,\"max\":%.6g", x->share,
				 x->max);
		if (x->kind == K_PSI)
			buf_addf(out, ",\"psi\":%.6g,\"max\":%.6g", x->psi,
				 x->max);
		if (x->kind == K_FRESHNESS)
			buf_addf(out, ",\"days\":%.6g,\"dated\":%s", x->days,
				 x->have_newest ? "true" : "false");
		buf_addf(out, ",\"first_%s\":[", positions);
		for (size_t k = 0; k < x->nfirst; k++)
			buf_addf(out, "%s%lld", k ? "," : "", x->first[k]);
		buf_addstr(out, "]}");
	}
	buf_addstr(out, "]}\n");
}

void expect_failed_names(const struct expect_set *s, struct buf *out)
{
	buf_addch(out, '[');
	int first = 1;
	for (size_t i = 0; i < s->n; i++) {
		if (!s->v[i].blocking || exp_pass(s, &s->v[i]))
			continue;
		if (!first)
			buf_addch(out, ',');
		first = 0;
		buf_add_json_cstr(out, s->v[i].name);
	}
	buf_addch(out, ']');
}

char *expect_path(const struct lake *l, const char *dataset)
{
	return lake_path(l, "catalog/expectations/%s.yaml", dataset);
}

enum mlk_status expect_run_fd(struct expect_set *s, int fd, const char *name,
			      struct mlk_error *e)
{
	struct linereader lr;
	lr_init(&lr, lr_read_fd, &fd);
	const char *line;
	size_t len;
	int rc;
	enum mlk_status st = MLK_OK;
	for (;;) {
		struct mlk_error le = MLK_ERROR_INIT;
		rc = lr_next(&lr, &line, &len, &le);
		if (rc == 0)
			break;
		if (rc < 0) {
			if (le.status == MLK_PARTIAL) {
				s->records++;
				s->invalid++;
				first_add(s->ifirst, &s->nifirst, lr.lineno);
				continue;
			}
			st = mlk_error_set(e, le.status, name, lr.lineno, "%s",
					   le.msg);
			break;
		}
		if (len)
			expect_record(s, line, len, lr.lineno);
	}
	lr_release(&lr);
	return st;
}
