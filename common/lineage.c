#define _GNU_SOURCE  /* memmem */
#include "lineage.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "manifest.h"
#include "record.h"
#include "xalloc.h"
#include "banned.h"

void lineage_init(struct lineage *g)
{
	memset(g, 0, sizeof *g);
}

void lineage_release(struct lineage *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->v[i].from);
		free(g->v[i].to);
		free(g->v[i].path);
	}
	free(g->v);
	memset(g, 0, sizeof *g);
}

static void add_edge(struct lineage *g, char *from, char *to,
		     const char *rel, const char *path, long long bytes,
		     long long seq)
{
	for (size_t i = 0; i < g->n; i++)
		if (!strcmp(g->v[i].from, from) && !strcmp(g->v[i].to, to)) {
			free(from);
			free(to);
			return;
		}
	XGROW(g->v, g->alloc, g->n + 1);
	struct lineage_edge *x = &g->v[g->n++];
	x->from = from;
	x->to = to;
	x->relation = rel;
	x->path = path ? xstrdup(path) : NULL;
	x->bytes = bytes;
	x->seq = seq;
}

static long long num_of(const struct rec *r, int obj, const char *key)
{
	int t = rec_get(r, obj, key);
	if (t < 0 || rec_type(r, t) != REC_PRIMITIVE)
		return -1;
	size_t n;
	const char *p = rec_raw(r, t, &n);
	return (p[0] >= '0' && p[0] <= '9') ? strtoll(p, NULL, 10) : -1;
}

/* A string member as a new C string, or NULL. */
static char *str_of(const struct rec *r, int obj, const char *key)
{
	int t = rec_get(r, obj, key);
	struct buf b = BUF_INIT;
	if (t < 0 || rec_str(r, t, &b) < 0) {
		buf_release(&b);
		return NULL;
	}
	if (!b.data)
		buf_addstr(&b, "");
	return buf_detach(&b);
}

struct src_ctx {
	struct lineage *g;
	const char *batch;
	const char *only;   /* only this source sha256, or NULL */
	long long seq;
};

static int on_entry(void *ctx, const struct rec *r, int is_header)
{
	struct src_ctx *c = ctx;
	if (is_header)
		return 0;
	int k = rec_get(r, 0, "entry");
	if (k < 0 || !rec_str_eq(r, k, "source"))
		return 0;
	char *sha = str_of(r, 0, "sha256");
	char *path = str_of(r, 0, "path");
	if (sha && (!c->only || !strcmp(sha, c->only)))
		add_edge(c->g, xasprintf("source:%s", sha),
			 xasprintf("batch:%s", c->batch), "ingested_into",
			 path, num_of(r, 0, "size"), c->seq);
	free(sha);
	free(path);
	return 0;
}

/* One ingest event's batch: its manifest, checked, and its sources. */
static enum mlk_status trace_batch(const struct lake *l, struct lineage *g,
				   const char *dataset, const char *batch,
				   const char *msha, long long seq,
				   const char *only, struct mlk_error *e)
{
	char *rel = xasprintf("raw/%s/batch=%s/_manifest.json", dataset,
			      batch);
	char *path = lake_path(l, "%s", rel);
	char hex[SHA256_HEX];
	unsigned long long size;
	enum mlk_status s = sha256_file(path, hex, &size, e);
	if (s == MLK_OK && strcmp(hex, msha) != 0)
		s = mlk_error_set(e, MLK_INTEGRITY, path, 0,
				  "manifest of batch %s does not match the "
				  "manifest_sha256 of its ingest event (seq "
				  "%lld)", batch, seq);
	if (s == MLK_OK) {
		add_edge(g, xasprintf("manifest:%s", msha),
			 xasprintf("batch:%s", batch), "describes", rel, -1,
			 seq);
		add_edge(g, xasprintf("batch:%s", batch),
			 xasprintf("dataset:%s", dataset), "part_of", NULL, -1,
			 seq);
		struct src_ctx c = { g, batch, only, seq };
		s = manifest_read(path, on_entry, &c, e);
	}
	free(rel);
	free(path);
	return s;
}

enum lt_kind { LT_BATCH, LT_SOURCE, LT_DATASET };

enum mlk_status lineage_trace(const struct lake *l, const struct auditlog *a,
			      const char *id, struct lineage *g,
			      struct mlk_error *e)
{
	enum lt_kind kind;
	size_t idn = strlen(id);
	char hexck[SHA256_HEX];
	uint8_t raw[SHA256_LEN];
	if (idn == 64 && hex_decode(id, raw, SHA256_LEN) == 0) {
		hex_encode(raw, SHA256_LEN, hexck);
		if (strcmp(hexck, id) != 0)
			return mlk_error_set(e, MLK_USAGE, NULL, 0,
					     "write SHA-256 ids in lowercase");
		kind = LT_SOURCE;
	} else if (id[0] == 'b' && idn > 1 && idn < 64 &&
		   strspn(id + 1, "0123456789abcdef") == idn - 1) {
		kind = LT_BATCH;
	} else if (lake_dataset_valid(id)) {
		kind = LT_DATASET;
	} else {
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "'%s' is not a batch id, a SHA-256 or a "
				     "dataset name", id);
	}
	/* The id as it appears inside an event: quoted. */
	struct buf needle = BUF_INIT;
	buf_add_json_cstr(&needle, id);
	size_t off = 0, len;
	const char *line;
	long long seq = 0, found = 0;
	enum mlk_status s = MLK_OK;
	struct rec r;
	rec_init(&r);
	const char *end = a->data ? a->data + a->complete : NULL;
	const char *p = a->data;
	while (s == MLK_OK && p && p < end) {
		const char *hit = memmem(p, (size_t)(end - p), needle.data,
					 needle.len);
		if (!hit)
			break;
		/* The line holding the hit. */
		const char *ls = hit;
		while (ls > a->data && ls[-1] != '\n')
			ls--;
		const char *nl = memchr(hit, '\n', (size_t)(end - hit));
		line = ls;
		len = (size_t)(nl - ls);
		p = nl + 1;
		(void)off;
		struct mlk_error pe = MLK_ERROR_INIT;
		if (rec_parse(&r, line, len, &pe) != MLK_OK)
			continue;
		int act = rec_get(&r, 0, "action");
		if (act < 0 || !rec_str_eq(&r, act, "ingest"))
			continue;
		seq = num_of(&r, 0, "seq");
		char *dataset = str_of(&r, 0, "dataset");
		int outs = rec_get(&r, 0, "outputs");
		int ins = rec_get(&r, 0, "inputs");
		int used = 0;
		if (kind == LT_SOURCE && ins >= 0 &&
		    rec_type(&r, ins) == REC_ARRAY)
			for (int k = ins + 1; k < r.skip[ins]; k = r.skip[k]) {
				int sh = rec_get(&r, k, "sha256");
				if (sh >= 0 && rec_str_eq(&r, sh, id))
					used = 1;
			}
		if (kind == LT_DATASET)
			used = dataset && !strcmp(dataset, id);
		if (outs >= 0 && rec_type(&r, outs) == REC_ARRAY && dataset)
			for (int k = outs + 1; s == MLK_OK && k < r.skip[outs];
			     k = r.skip[k]) {
				char *b = str_of(&r, k, "batch");
				char *m = str_of(&r, k, "manifest_sha256");
				int want = used || (kind == LT_BATCH && b &&
						    !strcmp(b, id));
				if (b && m && want) {
					found++;
					s = trace_batch(l, g, dataset, b, m, seq,
							kind == LT_SOURCE ? id
									  : NULL,
							e);
				}
				free(b);
				free(m);
			}
		free(dataset);
	}
	rec_release(&r);
	buf_release(&needle);
	if (s == MLK_OK && !found)
		s = mlk_error_set(e, MLK_USAGE, NULL, 0,
				  "the audit log records no %s '%s'",
				  kind == LT_BATCH ? "batch"
				  : kind == LT_SOURCE ? "source" : "dataset",
				  id);
	return s;
}

void lineage_ndjson(const struct lineage *g, struct buf *out)
{
	for (size_t i = 0; i < g->n; i++) {
		const struct lineage_edge *x = &g->v[i];
		buf_addstr(out, "{\"from\":");
		buf_add_json_cstr(out, x->from);
		buf_addstr(out, ",\"to\":");
		buf_add_json_cstr(out, x->to);
		buf_addstr(out, ",\"relation\":");
		buf_add_json_cstr(out, x->relation);
		if (x->path) {
			buf_addstr(out, ",\"path\":");
			buf_add_json_cstr(out, x->path);
		}
		if (x->bytes >= 0)
			buf_addf(out, ",\"bytes\":%lld", x->bytes);
		buf_addf(out, ",\"seq\":%lld}\n", x->seq);
	}
}

void lineage_dot(const struct lineage *g, struct buf *out)
{
	buf_addstr(out, "digraph lineage {\n  rankdir=LR;\n");
	for (size_t i = 0; i < g->n; i++) {
		const struct lineage_edge *x = &g->v[i];
		buf_addstr(out, "  ");
		buf_add_json_cstr(out, x->from);
		buf_addstr(out, " -> ");
		buf_add_json_cstr(out, x->to);
		buf_addstr(out, " [label=");
		buf_add_json_cstr(out, x->relation);
		buf_addstr(out, "];\n");
	}
	buf_addstr(out, "}\n");
}
