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

enum lt_kind { LT_BATCH, LT_SOURCE, LT_DATASET, LT_SNAPSHOT };

/* ---- snapshots (mlk-snapshot create and compact events) ---- */

#define SNAP_DEPTH 64

typedef enum mlk_status (*event_fn)(void *ctx, const struct rec *r,
				    struct mlk_error *e);

/* The searchable bytes of part i of the log (every segment, then the
 * active log), or of the log itself when it has no parts. */
static size_t nparts_of(const struct auditlog *a)
{
	return a->nparts ? a->nparts : 1;
}

static void part_of(const struct auditlog *a, size_t i, const char **base,
		    const char **end)
{
	const char *d = a->nparts ? a->part[i].data : a->data;
	size_t c = a->nparts ? a->part[i].complete : a->complete;
	*base = d;
	*end = d ? d + c : NULL;
}

/* Every complete event holding the quoted string id, in log order. */
static enum mlk_status each_event(const struct auditlog *a, const char *id,
				  event_fn fn, void *ctx, struct mlk_error *e)
{
	struct buf needle = BUF_INIT;
	buf_add_json_cstr(&needle, id);
	struct rec r;
	rec_init(&r);
	enum mlk_status s = MLK_OK;
	for (size_t pi = 0; s == MLK_OK && pi < nparts_of(a); pi++) {
	const char *base, *end;
	part_of(a, pi, &base, &end);
	const char *p = base;
	while (s == MLK_OK && p && p < end) {
		const char *hit = memmem(p, (size_t)(end - p), needle.data,
					 needle.len);
		if (!hit)
			break;
		const char *ls = hit;
		while (ls > base && ls[-1] != '\n')
			ls--;
		const char *nl = memchr(hit, '\n', (size_t)(end - hit));
		p = nl + 1;
		struct mlk_error pe = MLK_ERROR_INIT;
		if (rec_parse(&r, ls, (size_t)(nl - ls), &pe) != MLK_OK)
			continue;
		s = fn(ctx, &r, e);
	}
	}
	rec_release(&r);
	buf_release(&needle);
	return s;
}

/* An allowed snapshot-create or snapshot-compact event. */
static int is_snapshot_event(const struct rec *r)
{
	int act = rec_get(r, 0, "action");
	int dec = rec_get(r, 0, "decision");
	return act >= 0 && (rec_str_eq(r, act, "snapshot-create") ||
			    rec_str_eq(r, act, "snapshot-compact")) &&
	       dec >= 0 && rec_str_eq(r, dec, "allow");
}

/* Index of the member of array arr whose key equals id, or -1. */
static int array_find(const struct rec *r, int arr, const char *key,
		      const char *id)
{
	if (arr < 0 || rec_type(r, arr) != REC_ARRAY)
		return -1;
	for (int k = arr + 1; k < r->skip[arr]; k = r->skip[k]) {
		int t = rec_get(r, k, key);
		if (t >= 0 && rec_str_eq(r, t, id))
			return k;
	}
	return -1;
}

struct snap_ctx {
	const struct lake *l;
	const struct auditlog *a;
	struct lineage *g;
	const char *id;
	int depth;
	long long found;
};

static enum mlk_status trace_snapshot(const struct lake *l,
				      const struct auditlog *a,
				      struct lineage *g, const char *id,
				      int depth, long long *found,
				      struct mlk_error *e);
static enum mlk_status trace(const struct lake *l, const struct auditlog *a,
			     const char *id, struct lineage *g, int fwd,
			     struct mlk_error *e);

/* Back from one event that made snapshot c->id: its manifest, its
 * dataset, and its inputs (batches to their sources, parents on up). */
static enum mlk_status on_snapshot_made(void *ctx, const struct rec *r,
					struct mlk_error *e)
{
	struct snap_ctx *c = ctx;
	if (!is_snapshot_event(r))
		return MLK_OK;
	int out = array_find(r, rec_get(r, 0, "outputs"), "snapshot", c->id);
	if (out < 0)
		return MLK_OK;
	c->found++;
	long long seq = num_of(r, 0, "seq");
	char *msha = str_of(r, out, "manifest_sha256");
	char *zone = str_of(r, 0, "zone");
	char *dataset = str_of(r, 0, "dataset");
	enum mlk_status s = MLK_OK;
	if (msha) {
		char *rel = xasprintf("snapshots/%s.json", c->id);
		char *path = lake_path(c->l, "%s", rel);
		char hex[SHA256_HEX];
		unsigned long long size;
		s = sha256_file(path, hex, &size, e);
		if (s == MLK_OK && strcmp(hex, msha) != 0)
			s = mlk_error_set(e, MLK_INTEGRITY, path, 0,
					  "manifest of snapshot %s does not "
					  "match the manifest_sha256 of its "
					  "event (seq %lld)", c->id, seq);
		if (s == MLK_OK)
			add_edge(c->g, xasprintf("manifest:%s", msha),
				 xasprintf("snapshot:%s", c->id), "describes",
				 rel, -1, seq);
		free(rel);
		free(path);
	}
	if (s == MLK_OK && zone && dataset)
		add_edge(c->g, xasprintf("snapshot:%s", c->id),
			 xasprintf("dataset:%s/%s", zone, dataset), "part_of",
			 NULL, -1, seq);
	int ins = rec_get(r, 0, "inputs");
	if (ins >= 0 && rec_type(r, ins) == REC_ARRAY)
		for (int k = ins + 1; s == MLK_OK && k < r->skip[ins];
		     k = r->skip[k]) {
			char *b = str_of(r, k, "batch");
			char *p = str_of(r, k, "snapshot");
			if (b) {
				add_edge(c->g, xasprintf("batch:%s", b),
					 xasprintf("snapshot:%s", c->id),
					 "input_of", NULL, -1, seq);
				struct lineage sub;
				lineage_init(&sub);
				s = trace(c->l, c->a, b, &sub, 0, e);
				for (size_t i = 0; s == MLK_OK && i < sub.n;
				     i++) {
					struct lineage_edge *x = &sub.v[i];
					add_edge(c->g, x->from, x->to,
						 x->relation, x->path,
						 x->bytes, x->seq);
					x->from = x->to = NULL;
				}
				lineage_release(&sub);
			}
			if (p && c->depth < SNAP_DEPTH) {
				add_edge(c->g, xasprintf("snapshot:%s", p),
					 xasprintf("snapshot:%s", c->id),
					 "derived_into", NULL, -1, seq);
				long long f = 0;
				s = trace_snapshot(c->l, c->a, c->g, p,
						   c->depth + 1, &f, e);
			}
			free(b);
			free(p);
		}
	free(msha);
	free(zone);
	free(dataset);
	return s;
}

static enum mlk_status trace_snapshot(const struct lake *l,
				      const struct auditlog *a,
				      struct lineage *g, const char *id,
				      int depth, long long *found,
				      struct mlk_error *e)
{
	struct snap_ctx c = { l, a, g, id, depth, 0 };
	enum mlk_status s = each_event(a, id, on_snapshot_made, &c, e);
	*found = c.found;
	return s;
}

/* Forward: the snapshots whose inputs name node (a batch or snapshot). */
struct fwd_ctx {
	const struct auditlog *a;
	struct lineage *g;
	const char *key;        /* "batch" or "snapshot" */
	const char *id;
	int depth;
};

static enum mlk_status forward(const struct auditlog *a, struct lineage *g,
			       const char *key, const char *id, int depth,
			       struct mlk_error *e);

static enum mlk_status on_snapshot_use(void *ctx, const struct rec *r,
				       struct mlk_error *e)
{
	struct fwd_ctx *c = ctx;
	if (!is_snapshot_event(r) ||
	    array_find(r, rec_get(r, 0, "inputs"), c->key, c->id) < 0)
		return MLK_OK;
	int outs = rec_get(r, 0, "outputs");
	if (outs < 0 || rec_type(r, outs) != REC_ARRAY)
		return MLK_OK;
	long long seq = num_of(r, 0, "seq");
	enum mlk_status s = MLK_OK;
	for (int k = outs + 1; s == MLK_OK && k < r->skip[outs];
	     k = r->skip[k]) {
		char *sid = str_of(r, k, "snapshot");
		if (sid && strcmp(sid, c->id) != 0) {
			add_edge(c->g, xasprintf("%s:%s", c->key, c->id),
				 xasprintf("snapshot:%s", sid),
				 *c->key == 'b' ? "input_of" : "derived_into",
				 NULL, -1, seq);
			if (c->depth < SNAP_DEPTH)
				s = forward(c->a, c->g, "snapshot", sid,
					    c->depth + 1, e);
		}
		free(sid);
	}
	return s;
}

static enum mlk_status forward(const struct auditlog *a, struct lineage *g,
			       const char *key, const char *id, int depth,
			       struct mlk_error *e)
{
	struct fwd_ctx c = { a, g, key, id, depth };
	return each_event(a, id, on_snapshot_use, &c, e);
}

/* Every batch in g, forward to the snapshots that used it. */
static enum mlk_status forward_batches(const struct auditlog *a,
				       struct lineage *g, struct mlk_error *e)
{
	enum mlk_status s = MLK_OK;
	size_t n = g->n;
	for (size_t i = 0; s == MLK_OK && i < n; i++) {
		const char *to = g->v[i].to;
		if (strncmp(to, "batch:", 6) != 0)
			continue;
		int dup = 0;
		for (size_t k = 0; k < i && !dup; k++)
			dup = !strcmp(g->v[k].to, to);
		if (!dup) {
			char *b = xstrdup(to + 6);
			s = forward(a, g, "batch", b, 0, e);
			free(b);
		}
	}
	return s;
}

static int snapshot_id(const char *id)
{
	return id[0] == 's' && strlen(id) == 25 &&
	       strspn(id + 1, "0123456789abcdef") == 24;
}

enum mlk_status lineage_trace(const struct lake *l, const struct auditlog *a,
			      const char *id, struct lineage *g,
			      struct mlk_error *e)
{
	return trace(l, a, id, g, 1, e);
}

/* fwd: also from every batch found forward to the snapshots using it. */
static enum mlk_status trace(const struct lake *l, const struct auditlog *a,
			     const char *id, struct lineage *g, int fwd,
			     struct mlk_error *e)
{
	enum lt_kind kind;
	size_t idn = strlen(id);
	if (snapshot_id(id)) {
		long long found = 0;
		enum mlk_status ss = trace_snapshot(l, a, g, id, 0, &found, e);
		if (ss == MLK_OK && !found)
			return mlk_error_set(e, MLK_USAGE, NULL, 0,
					     "the audit log records no "
					     "snapshot '%s'", id);
		if (ss == MLK_OK)
			ss = forward(a, g, "snapshot", id, 0, e);
		return ss;
	}
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
	for (size_t pi = 0; s == MLK_OK && pi < nparts_of(a); pi++) {
	const char *base, *end;
	part_of(a, pi, &base, &end);
	const char *p = base;
	while (s == MLK_OK && p && p < end) {
		const char *hit = memmem(p, (size_t)(end - p), needle.data,
					 needle.len);
		if (!hit)
			break;
		/* The line holding the hit. */
		const char *ls = hit;
		while (ls > base && ls[-1] != '\n')
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
	}
	rec_release(&r);
	buf_release(&needle);
	if (s == MLK_OK && found && fwd && kind != LT_DATASET)
		s = forward_batches(a, g, e);
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
