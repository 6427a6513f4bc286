#include "batch.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fsio.h"
#include "manifest.h"
#include "xalloc.h"
#include "banned.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void batch_make_id(const char *dataset, const char *opts, char **shas,
		   size_t n, char id[BATCH_ID_LEN])
{
	char **sorted = xcalloc(n + 1, sizeof *sorted);
	if (n)
		memcpy(sorted, shas, n * sizeof *sorted);
	qsort(sorted, n, sizeof *sorted, cmp_str);
	struct sha256_ctx c;
	sha256_init(&c);
	sha256_update(&c, "mlk-batch\n", 10);
	sha256_update(&c, dataset, strlen(dataset) + 1);
	sha256_update(&c, opts, strlen(opts) + 1);
	for (size_t i = 0; i < n; i++)
		sha256_update(&c, sorted[i], strlen(sorted[i]) + 1);
	free(sorted);
	uint8_t d[SHA256_LEN];
	char hex[SHA256_HEX];
	sha256_final(&c, d);
	hex_encode(d, SHA256_LEN, hex);
	snprintf(id, BATCH_ID_LEN, "b%.24s", hex);
}

int batch_source_known(const struct lake *l, const char *dataset,
		       const char *sha, char id[BATCH_ID_LEN])
{
	char *p = lake_path(l, "raw/%s/_sources/%s", dataset, sha);
	char *data = NULL;
	size_t len;
	struct mlk_error e = MLK_ERROR_INIT;
	int known = fsio_read_file(p, &data, &len, &e) == MLK_OK;
	if (known) {
		snprintf(id, BATCH_ID_LEN, "%.*s", (int)len, data);
		char *nl = strchr(id, '\n');
		if (nl)
			*nl = '\0';
	}
	free(data);
	free(p);
	return known;
}

struct marker_ctx {
	const struct lake *l;
	const char *dataset;
	/* The markers the manifest names, written in write_markers. */
	char **paths;
	size_t n, alloc;
};

static int write_marker(void *vctx, const struct rec *r, int is_header)
{
	struct marker_ctx *m = vctx;
	if (is_header)
		return 0;
	int k = rec_get(r, 0, "entry");
	if (k < 0 || !rec_str_eq(r, k, "source"))
		return 0;
	/* A source quarantined whole is not held: it may be retried. */
	if (rec_get(r, 0, "quarantined") > 0)
		return 0;
	int s = rec_get(r, 0, "sha256");
	if (s < 0 || rec_type(r, s) != REC_STRING)
		return 0;
	struct buf sha = BUF_INIT;
	rec_str(r, s, &sha);
	XGROW(m->paths, m->alloc, m->n + 1);
	m->paths[m->n++] = lake_path(m->l, "raw/%s/_sources/%s", m->dataset,
				     sha.data);
	buf_release(&sha);
	return 0;
}

static enum mlk_status write_markers(const struct lake *l,
				     const char *dataset, const char *id,
				     struct mlk_error *e)
{
	char *dir = lake_path(l, "raw/%s/_sources", dataset);
	enum mlk_status s = fsio_mkdirs(dir, 0755, e);
	if (s != MLK_OK) {
		free(dir);
		return s;
	}
	char *mp = lake_path(l, "raw/%s/batch=%s/_manifest.json", dataset, id);
	struct marker_ctx m = { l, dataset, NULL, 0, 0 };
	s = manifest_read(mp, write_marker, &m, e);
	free(mp);
	/* Thousands of new files: created on the ingest threads, synced
	 * and renamed together. */
	char line[BATCH_ID_LEN + 1];
	snprintf(line, sizeof line, "%s\n", id);
	if (s == MLK_OK)
		s = fsio_write_many(m.paths, m.n, line, strlen(line), 0444,
				    (int)lake_conf_num(l, "ingest", "threads",
						       2), e);
	if (s == MLK_OK && m.n)
		s = fsio_fsync_dir(dir, e);
	for (size_t i = 0; i < m.n; i++)
		free(m.paths[i]);
	free(m.paths);
	free(dir);
	return s;
}

int batch_published(const struct lake *l, const char *dataset,
		    const char *id, struct mlk_error *e)
{
	char *p = lake_path(l, "raw/%s/batch=%s/_manifest.json", dataset, id);
	int yes = fsio_exists(p);
	free(p);
	if (yes)
		write_markers(l, dataset, id, e);
	return yes;
}


enum mlk_status batch_begin(struct batch *b, const struct lake *l,
			    const char *dataset, const char *kind,
			    const char *id, const struct dw_opts *opts,
			    struct mlk_error *e)
{
	memset(b, 0, sizeof *b);
	b->lake = l;
	b->dataset = xstrdup(dataset);
	b->kind = xstrdup(kind);
	snprintf(b->id, sizeof b->id, "%s", id);
	b->staging = lake_path(l, "staging/%s", id);
	b->final = lake_path(l, "raw/%s/batch=%s", dataset, id);
	/* What a killed run left behind is garbage: same id, same work. */
	fsio_remove_tree(b->staging);
	enum mlk_status s = fsio_mkdirs(b->staging, 0755, e);
	if (s != MLK_OK)
		return s;
	char *name = xasprintf("%s.ndjson.gz", id);
	s = dw_open(&b->dw, b->staging, name, opts, e);
	free(name);
	return s;
}

void batch_kind(struct batch *b, const char *kind)
{
	if (!b->kind_noted) {
		free(b->kind);
		b->kind = xstrdup(kind);
		b->kind_noted = 1;
	} else if (strcmp(b->kind, kind) && strcmp(b->kind, "mixed")) {
		free(b->kind);
		b->kind = xstrdup("mixed");
	}
}

size_t batch_add_source(struct batch *b, const char *path, const char *sha,
			unsigned long long size)
{
	XGROW(b->src, b->src_alloc, b->nsrc + 1);
	struct batch_source *s = &b->src[b->nsrc];
	memset(s, 0, sizeof *s);
	s->path = xstrdup(path);
	snprintf(s->sha256, sizeof s->sha256, "%s", sha);
	s->size = size;
	return b->nsrc++;
}

enum mlk_status batch_add(struct batch *b, const char *partition, size_t plen,
			  const char *line, size_t len, const char *tail,
			  size_t tlen, struct mlk_error *e)
{
	b->records++;
	return dw_add(b->dw, partition, plen, line, len, tail, tlen, e);
}

enum mlk_status batch_quarantine(struct batch *b, size_t si, long long line,
				 unsigned long long offset, const char *raw,
				 size_t rawlen, const char *reason,
				 struct mlk_error *e)
{
	struct batch_source *src = &b->src[si];
	char *dir = lake_path(b->lake, "quarantine/%s/%s", b->dataset, b->id);
	enum mlk_status s = fsio_mkdirs(dir, 0755, e);
	if (s != MLK_OK) {
		free(dir);
		return s;
	}
	unsigned long long n = ++b->quarantined;
	src->rejected++;
	b->rejected++;
	char *bad = NULL;
	if (raw) {
		bad = xasprintf("%s/q%06llu.bad", dir, n);
		s = fsio_write_atomic(bad, raw, rawlen, 0444, e);
	}
	struct buf j = BUF_INIT;
	char now[32];
	lake_time_iso(lake_now(b->lake), now);
	buf_addstr(&j, "{\"v\":1,\"batch\":");
	buf_add_json_cstr(&j, b->id);
	buf_addstr(&j, ",\"dataset\":");
	buf_add_json_cstr(&j, b->dataset);
	buf_addstr(&j, ",\"src\":{\"path\":");
	buf_add_json_cstr(&j, src->path);
	if (src->sha256[0])
		buf_addf(&j, ",\"sha256\":\"%s\"", src->sha256);
	if (line > 0)
		buf_addf(&j, ",\"line\":%lld,\"offset\":%llu", line, offset);
	buf_addstr(&j, "},\"reason\":");
	buf_add_json_cstr(&j, reason);
	if (raw)
		buf_addf(&j, ",\"piece\":\"q%06llu.bad\",\"bytes\":%zu", n,
			 rawlen);
	else if (line <= 0 && src->sha256[0])
		buf_addf(&j, ",\"object\":\"sha256:%s\"", src->sha256);
	buf_addf(&j, ",\"time\":\"%s\"}\n", now);
	if (s == MLK_OK) {
		char *rp = xasprintf("%s/q%06llu.json", dir, n);
		s = fsio_write_atomic(rp, j.data, j.len, 0444, e);
		free(rp);
	}
	buf_release(&j);
	free(bad);
	free(dir);
	return s;
}

enum mlk_status batch_prepare(struct batch *b, const char *actor,
			      const char *tool, const char *header_extra,
			      struct mlk_error *e)
{
	enum mlk_status s = dw_finish(b->dw, &b->files, &b->nfiles, e);
	if (s != MLK_OK)
		return s;
	struct manifest m;
	manifest_init(&m, "batch");
	manifest_set_str(&m, "id", b->id);
	manifest_set_str(&m, "dataset", b->dataset);
	manifest_set_str(&m, "zone", "raw");
	manifest_set_str(&m, "kind", b->kind);
	char now[32];
	lake_time_iso(lake_now(b->lake), now);
	manifest_set_str(&m, "created", now);
	manifest_set_str(&m, "actor", actor);
	manifest_set_str(&m, "tool", tool);
	manifest_set_num(&m, "records", (long long)b->records);
	manifest_set_num(&m, "rejected", (long long)b->rejected);
	manifest_set_num(&m, "files", (long long)b->nfiles);
	manifest_set_num(&m, "sources", (long long)b->nsrc);
	if (header_extra && *header_extra) {
		buf_addch(&m.head, ',');
		buf_addstr(&m.head, header_extra);
	}
	struct buf line = BUF_INIT;
	for (size_t i = 0; i < b->nfiles; i++) {
		const struct dw_file *f = &b->files[i];
		buf_reset(&line);
		buf_addstr(&line, "{\"entry\":\"file\",\"path\":");
		buf_add_json_cstr(&line, f->path);
		buf_addstr(&line, ",\"partition\":");
		buf_add_json_cstr(&line, f->partition);
		buf_addf(&line, ",\"records\":%llu,\"bytes\":%llu,\"size\":%llu,"
			 "\"sha256\":\"%s\"}", f->records, f->bytes, f->size,
			 f->sha256);
		manifest_add(&m, line.data, line.len);
	}
	for (size_t i = 0; i < b->nsrc; i++) {
		const struct batch_source *src = &b->src[i];
		buf_reset(&line);
		buf_addstr(&line, "{\"entry\":\"source\",\"path\":");
		buf_add_json_cstr(&line, src->path);
		if (src->sha256[0])
			buf_addf(&line, ",\"sha256\":\"%s\",\"size\":%llu",
				 src->sha256, src->size);
		else
			buf_addstr(&line, ",\"sha256\":null,\"size\":null");
		buf_addstr(&line, ",\"format\":");
		buf_add_json_cstr(&line, src->format[0] ? src->format
							: "unknown");
		buf_addf(&line, ",\"records\":%llu,\"rejected\":%llu",
			 src->records, src->rejected);
		if (src->whole_reason) {
			buf_addstr(&line, ",\"quarantined\":");
			buf_add_json_cstr(&line, src->whole_reason);
		}
		buf_addch(&line, '}');
		manifest_add(&m, line.data, line.len);
	}
	buf_release(&line);
	struct buf out = BUF_INIT;
	manifest_serialize(&m, &out);
	manifest_release(&m);
	sha256_hex_once(out.data, out.len, b->manifest_sha256);
	char *mp = xasprintf("%s/_manifest.json", b->staging);
	s = fsio_write_atomic(mp, out.data, out.len, 0444, e);
	free(mp);
	buf_release(&out);
	if (s != MLK_OK)
		return s;
	/* Data files become read-only before anyone can see them. */
	for (size_t i = 0; i < b->nfiles; i++) {
		char *p = xasprintf("%s/%s", b->staging, b->files[i].path);
		if (chmod(p, 0444) != 0)
			s = mlk_error_errno(e, p, "cannot make read-only");
		free(p);
		if (s != MLK_OK)
			return s;
	}
	return MLK_OK;
}

enum mlk_status batch_publish(struct batch *b, struct mlk_error *e)
{
	char *parent = lake_path(b->lake, "raw/%s", b->dataset);
	enum mlk_status s = fsio_mkdirs(parent, 0755, e);
	if (s == MLK_OK && rename(b->staging, b->final) != 0)
		s = mlk_error_errno(e, b->final, "cannot publish batch");
	if (s == MLK_OK)
		s = fsio_fsync_dir(parent, e);
	free(parent);
	if (s == MLK_OK)
		s = write_markers(b->lake, b->dataset, b->id, e);
	return s;
}

void batch_abort(struct batch *b)
{
	if (b->staging)
		fsio_remove_tree(b->staging);
}

void batch_release(struct batch *b)
{
	dw_free(b->dw);
	for (size_t i = 0; i < b->nsrc; i++) {
		free(b->src[i].path);
		free(b->src[i].whole_reason);
	}
	free(b->src);
	free(b->dataset);
	free(b->kind);
	free(b->staging);
	free(b->final);
	memset(b, 0, sizeof *b);
}
