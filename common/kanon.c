#include "kanon.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "xalloc.h"
#include "banned.h"

struct kclass {
	char *key;             /* values joined by \x1f */
	size_t len;
	unsigned long long n;
};

struct kanon {
	char **fields;
	size_t nf;
	unsigned long long k, records;
	struct kclass *c;
	size_t nc, alloc;
	size_t *slot;          /* class index + 1 */
	size_t nslot;
	struct rec r;
	struct buf key;
};

struct kanon *kanon_new(char *const *fields, size_t n, unsigned long long k)
{
	struct kanon *ka = xcalloc(1, sizeof *ka);
	ka->fields = xcalloc(n ? n : 1, sizeof *ka->fields);
	for (size_t i = 0; i < n; i++)
		ka->fields[i] = xstrdup(fields[i]);
	ka->nf = n;
	ka->k = k;
	ka->nslot = 1024;
	ka->slot = xcalloc(ka->nslot, sizeof *ka->slot);
	rec_init(&ka->r);
	return ka;
}

void kanon_free(struct kanon *ka)
{
	if (!ka)
		return;
	for (size_t i = 0; i < ka->nf; i++)
		free(ka->fields[i]);
	free(ka->fields);
	for (size_t i = 0; i < ka->nc; i++)
		free(ka->c[i].key);
	free(ka->c);
	free(ka->slot);
	rec_release(&ka->r);
	buf_release(&ka->key);
	free(ka);
}

static int make_key(struct kanon *ka, const char *line, size_t len)
{
	struct mlk_error e = MLK_ERROR_INIT;
	if (rec_parse(&ka->r, line, len, &e) != MLK_OK)
		return -1;
	buf_reset(&ka->key);
	for (size_t i = 0; i < ka->nf; i++) {
		if (i)
			buf_addch(&ka->key, '\x1f');
		int t = rec_path(&ka->r, 0, ka->fields[i]);
		if (t < 0)
			buf_addstr(&ka->key, "null");
		else
			rec_write(&ka->r, t, &ka->key);
	}
	return 0;
}

static uint64_t khash(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
	return h;
}

static size_t *find(struct kanon *ka, const char *p, size_t n)
{
	size_t s = khash(p, n) & (ka->nslot - 1);
	while (ka->slot[s]) {
		const struct kclass *c = &ka->c[ka->slot[s] - 1];
		if (c->len == n && !memcmp(c->key, p, n))
			break;
		s = (s + 1) & (ka->nslot - 1);
	}
	return &ka->slot[s];
}

int kanon_add(struct kanon *ka, const char *line, size_t len)
{
	if (make_key(ka, line, len) != 0)
		return -1;
	ka->records++;
	const char *p = ka->key.data ? ka->key.data : "";
	size_t *s = find(ka, p, ka->key.len);
	if (*s) {
		ka->c[*s - 1].n++;
		return 0;
	}
	XGROW(ka->c, ka->alloc, ka->nc + 1);
	ka->c[ka->nc] = (struct kclass){ xstrndup(p, ka->key.len),
					 ka->key.len, 1 };
	*s = ++ka->nc;
	if (ka->nc * 2 > ka->nslot) {
		free(ka->slot);
		ka->nslot *= 2;
		ka->slot = xcalloc(ka->nslot, sizeof *ka->slot);
		for (size_t i = 0; i < ka->nc; i++)
			*find(ka, ka->c[i].key, ka->c[i].len) = i + 1;
	}
	return 0;
}

unsigned long long kanon_class(struct kanon *ka, const char *line,
			       size_t len)
{
	if (make_key(ka, line, len) != 0)
		return 0;
	size_t *s = find(ka, ka->key.data ? ka->key.data : "", ka->key.len);
	return *s ? ka->c[*s - 1].n : 0;
}

static int by_size(const void *a, const void *b)
{
	const struct kclass *x = *(const struct kclass *const *)a;
	const struct kclass *y = *(const struct kclass *const *)b;
	if (x->n != y->n)
		return x->n < y->n ? -1 : 1;
	size_t m = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->key, y->key, m);
	return c ? c : (x->len < y->len ? -1 : x->len > y->len);
}

void kanon_report(const struct kanon *ka, unsigned long long suppressed,
		  struct buf *out)
{
	const struct kclass **small = xcalloc(ka->nc ? ka->nc : 1,
					      sizeof *small);
	size_t ns = 0;
	unsigned long long in_small = 0;
	for (size_t i = 0; i < ka->nc; i++)
		if (ka->c[i].n < ka->k) {
			small[ns++] = &ka->c[i];
			in_small += ka->c[i].n;
		}
	if (ns)
		qsort(small, ns, sizeof *small, by_size);
	buf_addf(out, "{\"k\":%llu,\"quasi\":[", ka->k);
	for (size_t i = 0; i < ka->nf; i++) {
		if (i)
			buf_addch(out, ',');
		buf_add_json_cstr(out, ka->fields[i]);
	}
	buf_addf(out, "],\"records\":%llu,\"classes\":%zu,\"small_classes\":"
		 "%zu,\"records_in_small_classes\":%llu,\"suppressed\":%llu,"
		 "\"k_anonymous\":%s,\"smallest\":[", ka->records, ka->nc, ns,
		 in_small, suppressed, ns && !suppressed ? "false" : "true");
	for (size_t i = 0; i < ns && i < 100; i++) {
		if (i)
			buf_addch(out, ',');
		buf_addf(out, "{\"size\":%llu,\"values\":{", small[i]->n);
		const char *p = small[i]->key, *end = p + small[i]->len;
		for (size_t f = 0; f < ka->nf; f++) {
			const char *q = memchr(p, '\x1f', (size_t)(end - p));
			if (!q)
				q = end;
			if (f)
				buf_addch(out, ',');
			buf_add_json_cstr(out, ka->fields[f]);
			buf_addch(out, ':');
			buf_add(out, p, (size_t)(q - p));
			p = q < end ? q + 1 : end;
		}
		buf_add(out, "}}", 2);
	}
	buf_add(out, "]}\n", 3);
	free(small);
}
