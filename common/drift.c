#include "drift.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "record.h"
#include "xalloc.h"
#include "banned.h"

struct cat {
	char *val;
	unsigned long long n[2];
};

struct field {
	char *name;
	int numeric, text;              /* kinds of values seen */
	int high;                       /* too many categories */
	struct cat *c;
	size_t nc, calloc;
	double min, max;
	int have_range;
	unsigned long long bin[DRIFT_BINS][2];
	unsigned long long present[2];  /* records holding the field */
};

struct drift {
	struct field *f;
	size_t nf, falloc;
	uint64_t *h[2];
	size_t nh[2], halloc[2];
	unsigned long long records[2];
	struct rec r;
	struct buf scratch;
};

struct drift *drift_new(void)
{
	struct drift *d = xcalloc(1, sizeof *d);
	rec_init(&d->r);
	return d;
}

void drift_free(struct drift *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nf; i++) {
		for (size_t k = 0; k < d->f[i].nc; k++)
			free(d->f[i].c[k].val);
		free(d->f[i].c);
		free(d->f[i].name);
	}
	free(d->f);
	free(d->h[0]);
	free(d->h[1]);
	rec_release(&d->r);
	buf_release(&d->scratch);
	free(d);
}

static struct field *field_get(struct drift *d, const char *name, size_t n,
			       int create)
{
	for (size_t i = 0; i < d->nf; i++)
		if (strlen(d->f[i].name) == n && !memcmp(d->f[i].name, name, n))
			return &d->f[i];
	if (!create || d->nf >= DRIFT_MAX_FIELDS)
		return NULL;
	XGROW(d->f, d->falloc, d->nf + 1);
	struct field *f = &d->f[d->nf++];
	memset(f, 0, sizeof *f);
	f->name = xstrndup(name, n);
	return f;
}

static void add_cat(struct field *f, int side, const char *v, size_t n)
{
	if (f->high)
		return;
	for (size_t i = 0; i < f->nc; i++)
		if (strlen(f->c[i].val) == n && !memcmp(f->c[i].val, v, n)) {
			f->c[i].n[side]++;
			return;
		}
	if (f->nc >= DRIFT_MAX_CATEGORIES) {
		f->high = 1;
		return;
	}
	XGROW(f->c, f->calloc, f->nc + 1);
	struct cat *c = &f->c[f->nc++];
	memset(c, 0, sizeof *c);
	c->val = xstrndup(v, n);
	c->n[side] = 1;
}

static void one_value(struct drift *d, int pass, int side, const char *name,
		      size_t nlen, int tok)
{
	struct rec *r = &d->r;
	int ty = rec_type(r, tok);
	if (ty != REC_STRING && ty != REC_PRIMITIVE)
		return;
	size_t n;
	const char *raw = rec_raw(r, tok, &n);
	if (ty == REC_PRIMITIVE && n == 4 && !memcmp(raw, "null", 4))
		return;
	struct field *f = field_get(d, name, nlen, pass == 0);
	if (!f)
		return;
	int num = ty == REC_PRIMITIVE &&
		  (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'));
	if (pass == 0) {
		f->present[side]++;
		if (num) {
			f->numeric = 1;
			double x = strtod(raw, NULL);
			if (!f->have_range || x < f->min)
				f->min = x;
			if (!f->have_range || x > f->max)
				f->max = x;
			f->have_range = 1;
		} else {
			f->text = 1;
		}
		/* Categories also for numbers, in case text comes too. */
		add_cat(f, side, raw, n);
		return;
	}
	if (!num || f->text)
		return;
	int b = 0;
	if (f->max > f->min) {
		b = (int)((strtod(raw, NULL) - f->min) / (f->max - f->min) *
			  DRIFT_BINS);
		if (b >= DRIFT_BINS)
			b = DRIFT_BINS - 1;
		if (b < 0)
			b = 0;
	}
	f->bin[b][side]++;
}

void drift_record(struct drift *d, int pass, int side, const char *line,
		  size_t len)
{
	struct rec *r = &d->r;
	struct mlk_error e = MLK_ERROR_INIT;
	if (rec_parse(r, line, len, &e) != MLK_OK)
		return;
	if (pass == 0) {
		d->records[side]++;
		buf_reset(&d->scratch);
		int empty;
		rec_write_open(r, 0, "_mlk", &d->scratch, &empty);
		uint8_t h[SHA256_LEN];
		sha256_once(d->scratch.data, d->scratch.len, h);
		uint64_t x = 0;
		for (int i = 0; i < 8; i++)
			x = x << 8 | h[i];
		XGROW(d->h[side], d->halloc[side], d->nh[side] + 1);
		d->h[side][d->nh[side]++] = x;
	}
	for (int k = 1; k < r->skip[0]; k = r->skip[k + 1]) {
		size_t kn;
		const char *key = rec_raw(r, k, &kn);
		if (kn == 4 && !memcmp(key, "_mlk", 4)) {
			int s = rec_get(r, k + 1, "split");
			if (s >= 0)
				one_value(d, pass, side, "_mlk.split", 10, s);
			continue;
		}
		if (memchr(key, '\\', kn))
			continue;
		one_value(d, pass, side, key, kn, k + 1);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int cmp_field(const void *a, const void *b)
{
	return strcmp(((const struct field *)a)->name,
		      ((const struct field *)b)->name);
}

static double share(unsigned long long n, unsigned long long total)
{
	double p = total ? (double)n / (double)total : 0;
	return p > 0 ? p : 0.0001;
}

void drift_report(struct drift *d, double threshold, struct buf *out,
		  struct drift_totals *t)
{
	memset(t, 0, sizeof *t);
	t->records[0] = d->records[0];
	t->records[1] = d->records[1];
	for (int s = 0; s < 2; s++)
		if (d->nh[s])
			qsort(d->h[s], d->nh[s], sizeof *d->h[s], cmp_u64);
	size_t i = 0, j = 0;
	while (i < d->nh[0] || j < d->nh[1]) {
		if (j >= d->nh[1] || (i < d->nh[0] && d->h[0][i] < d->h[1][j])) {
			t->removed++;
			i++;
		} else if (i >= d->nh[0] || d->h[1][j] < d->h[0][i]) {
			t->added++;
			j++;
		} else {
			i++;
			j++;
		}
	}
	if (d->nf)
		qsort(d->f, d->nf, sizeof *d->f, cmp_field);
	for (size_t k = 0; k < d->nf; k++) {
		struct field *f = &d->f[k];
		buf_addstr(out, "{\"diff\":\"field\",\"field\":");
		buf_add_json_cstr(out, f->name);
		int numeric = f->numeric && !f->text;
		if (!numeric && f->high) {
			buf_addstr(out, ",\"kind\":\"categorical\","
				   "\"high_cardinality\":true,\"psi\":null,"
				   "\"drift\":null}\n");
			continue;
		}
		double psi = 0;
		size_t bins = 0;
		unsigned long long n0 = d->records[0], n1 = d->records[1];
		if (numeric) {
			for (int b = 0; b < DRIFT_BINS; b++) {
				double a = share(f->bin[b][0], n0);
				double c = share(f->bin[b][1], n1);
				if (f->bin[b][0] || f->bin[b][1]) {
					psi += (c - a) * log(c / a);
					bins++;
				}
			}
		} else {
			for (size_t c = 0; c < f->nc; c++) {
				double a = share(f->c[c].n[0], n0);
				double b = share(f->c[c].n[1], n1);
				psi += (b - a) * log(b / a);
				bins++;
			}
		}
		/* Records without the field are a bin of their own. */
		unsigned long long m0 = n0 - f->present[0];
		unsigned long long m1 = n1 - f->present[1];
		if (m0 || m1) {
			double a = share(m0, n0), b = share(m1, n1);
			psi += (b - a) * log(b / a);
			bins++;
		}
		int flag = psi > threshold;
		t->fields++;
		t->flagged += (size_t)flag;
		buf_addf(out, ",\"kind\":\"%s\",\"bins\":%zu,\"psi\":%.4f,"
			 "\"drift\":%s}\n", numeric ? "numeric" : "categorical",
			 bins, psi, flag ? "true" : "false");
	}
}
