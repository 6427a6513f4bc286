/* objdeid — see objdeid.h. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "crypto.h"
#include "dicom.h"
#include "dicomdeid.h"
#include "dicomwrite.h"
#include "fsio.h"
#include "gendeid.h"
#include "genomics.h"
#include "lake.h"
#include "object.h"
#include "objdeid.h"
#include "record.h"
#include "xalloc.h"
#include "banned.h"

#define PENDING_MAX 1024

struct objdeid {
	const struct lake *l;
	struct deid_keys *k;         /* this instance's copy of the keys */
	const struct profile *prof;
	char *project;
	struct dicomdeid *dd;
	const struct samplemap *samples;   /* borrowed, or NULL */
	struct object_info *pending[PENDING_MAX];   /* stored, unpublished */
	size_t npending;
	size_t nsyncing;             /* pending[0, nsyncing) being synced */
	struct object_sync **syncs;  /* ... by these (objdeid_sync_start) */
	size_t nsyncs;
	struct rec r;
	unsigned long long count, quarantined, superseded;
	/* reasons of objects left out, written and not yet synced */
	struct reason {
		int fd;
		char *tmp, *path;
	} *reasons;
	size_t nreasons, reasons_alloc;
	char *qdir;                  /* made (quarantine/_deid/<project>) */
};

static void sync_finish(struct objdeid *od);

static void tok(void *ctx, const char *v, size_t n,
		char out[DD_TOKEN_LEN + 1])
{
	deid_keys_token(ctx, v, n, out);
}

static int shift(void *ctx, const char *pid, size_t n)
{
	return deid_keys_shift(ctx, pid, n);
}

struct objdeid *objdeid_new(const struct lake *l, struct deid *d,
			    const struct profile *prof, const char *project,
			    struct mlk_error *e)
{
	struct dd_params p;
	memset(&p, 0, sizeof p);
	p.options = prof->dicom_options;
	p.accept_burned_in = prof->dicom_accept_burned_in;
	p.keep_private = prof->dicom_keep_private;
	p.nkeep_private = prof->ndicom_keep_private;
	struct deid_keys *k = deid_keys_new(d);
	p.token = tok;
	p.token_ctx = k;
	struct dicomdeid *dd = dd_new(&p, e);
	if (!dd)
		return NULL;
	struct objdeid *od = xcalloc(1, sizeof *od);
	od->l = l;
	od->k = k;
	od->prof = prof;
	od->project = xstrdup(project);
	od->dd = dd;
	rec_init(&od->r);
	return od;
}

void objdeid_free(struct objdeid *od)
{
	if (!od)
		return;
	dd_free(od->dd);
	sync_finish(od);
	free(od->syncs);
	for (size_t i = 0; i < od->npending; i++) {
		object_discard(od->pending[i]);
		free(od->pending[i]->tmp);
		free(od->pending[i]);
	}
	for (size_t i = 0; i < od->nreasons; i++) {
		close(od->reasons[i].fd);
		unlink(od->reasons[i].tmp);
		free(od->reasons[i].tmp);
		free(od->reasons[i].path);
	}
	free(od->reasons);
	free(od->qdir);
	deid_keys_free(od->k);
	rec_release(&od->r);
	free(od->project);
	free(od);
}

void objdeid_set_samples(struct objdeid *od, const struct samplemap *m)
{
	od->samples = m;
}

size_t objdeid_pending(const struct objdeid *od)
{
	return od->npending;
}

unsigned long long objdeid_count(const struct objdeid *od)
{
	return od->count;
}

unsigned long long objdeid_quarantined(const struct objdeid *od)
{
	return od->quarantined;
}

/*
 * The reason an object was left out, as quarantine/_deid/<project>/
 * <hex>.json (mlk-layout(5)): one file per object and project, replaced
 * atomically by a later run, so reruns do not pile up.  It names the
 * object, never a value of it.  Written into a temp file here; synced
 * and renamed into place by publish_reasons(), with the objects, so that
 * a batch's reasons cost one sync of their folder.
 */
static enum mlk_status quarantine(struct objdeid *od, const char *hex,
				  const char *type, const char *dataset,
				  const char *reason, struct mlk_error *e)
{
	if (!od->qdir) {
		char *dir = lake_path(od->l, "quarantine/_deid/%s",
				      od->project);
		enum mlk_status s = fsio_mkdirs(dir, 0755, e);
		if (s != MLK_OK) {
			free(dir);
			return s;
		}
		od->qdir = dir;
	}
	struct buf j = BUF_INIT;
	char now[32];
	lake_time_iso(lake_now(od->l), now);
	buf_addf(&j, "{\"v\":1,\"object\":\"sha256:%.64s\",\"type\":", hex);
	buf_add_json_cstr(&j, type);
	if (dataset && *dataset) {
		buf_addstr(&j, ",\"dataset\":");
		buf_add_json_cstr(&j, dataset);
	}
	buf_addstr(&j, ",\"project\":");
	buf_add_json_cstr(&j, od->project);
	buf_addstr(&j, ",\"profile\":");
	buf_add_json_cstr(&j, od->prof->name);
	buf_addf(&j, ",\"profile_sha256\":\"%s\",\"reason\":",
		 od->prof->sha256);
	buf_add_json_cstr(&j, reason);
	buf_addf(&j, ",\"time\":\"%s\"}\n", now);
	struct reason r;
	r.path = xasprintf("%s/%.64s.json", od->qdir, hex);
	enum mlk_status s = fsio_temp_beside(r.path, &r.fd, &r.tmp, e);
	if (s == MLK_OK) {
		s = fsio_write_all(r.fd, j.data, j.len, r.path, e);
		if (s != MLK_OK) {
			close(r.fd);
			unlink(r.tmp);
			free(r.tmp);
		}
	}
	buf_release(&j);
	if (s != MLK_OK) {
		free(r.path);
		return s;
	}
	if (od->nreasons == od->reasons_alloc) {
		od->reasons_alloc = od->reasons_alloc ? 2 * od->reasons_alloc
						      : 16;
		od->reasons = xrealloc(od->reasons, od->reasons_alloc *
					   sizeof *od->reasons);
	}
	od->reasons[od->nreasons++] = r;
	od->quarantined++;
	return MLK_OK;
}

/* The reasons written since the last call: synced together, read-only,
 * renamed into place, their folder synced once.  On failure none is
 * left behind as a temp. */
static enum mlk_status publish_reasons(struct objdeid *od,
				       struct mlk_error *e)
{
	size_t n = od->nreasons;
	if (!n)
		return MLK_OK;
	int *fds = xmalloc(n * sizeof *fds);
	for (size_t i = 0; i < n; i++)
		fds[i] = od->reasons[i].fd;
	size_t bad = 0;
	int err = fsio_fsync_many(fds, n, &bad);
	free(fds);
	enum mlk_status s = MLK_OK;
	if (err) {
		errno = err;
		s = mlk_error_errno(e, od->reasons[bad].path, "cannot sync");
	}
	for (size_t i = 0; i < n; i++) {
		struct reason *r = &od->reasons[i];
		if (s == MLK_OK && fchmod(r->fd, 0444) != 0)
			s = mlk_error_errno(e, r->path, "cannot set mode");
		if (close(r->fd) != 0 && s == MLK_OK)
			s = mlk_error_errno(e, r->path, "cannot close");
		if (s == MLK_OK && rename(r->tmp, r->path) != 0)
			s = mlk_error_errno(e, r->path, "cannot rename into "
					    "place");
		if (s != MLK_OK)
			unlink(r->tmp);
		free(r->tmp);
		free(r->path);
	}
	od->nreasons = 0;
	if (s == MLK_OK)
		s = fsio_fsync_dir(od->qdir, e);
	return s;
}

unsigned long long objdeid_superseded(const struct objdeid *od)
{
	return od->superseded;
}

void objdeid_sync_start(struct objdeid *od)
{
	if (od->nsyncing == od->npending)
		return;
	od->syncs = xrealloc(od->syncs, (od->nsyncs + 1) * sizeof *od->syncs);
	od->syncs[od->nsyncs++] = object_sync_start(od->pending + od->nsyncing,
						    od->npending -
						    od->nsyncing);
	od->nsyncing = od->npending;
}

/* Wait for the syncs started: their objects may be published now. */
static void sync_finish(struct objdeid *od)
{
	for (size_t i = 0; i < od->nsyncs; i++)
		object_sync_finish(od->syncs[i]);
	od->nsyncs = 0;
	od->nsyncing = 0;
}

enum mlk_status objdeid_flush_many(struct objdeid *const *ods, size_t n,
				   struct mlk_error *e)
{
	for (size_t i = 0; i < n; i++)
		sync_finish(ods[i]);
	for (size_t i = 0; i < n; i++) {
		enum mlk_status rs = publish_reasons(ods[i], e);
		if (rs != MLK_OK) {
			for (size_t j = i + 1; j < n; j++) {
				struct mlk_error ignored = MLK_ERROR_INIT;
				publish_reasons(ods[j], &ignored);
			}
			return rs;
		}
	}
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += ods[i]->npending;
	if (!total)
		return MLK_OK;
	struct object_info **v = xmalloc(total * sizeof *v);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(v + k, ods[i]->pending,
		       ods[i]->npending * sizeof *v);
		k += ods[i]->npending;
		ods[i]->npending = 0;
	}
	/* one publish: each directory of the store synced once */
	enum mlk_status st = object_publish_many(ods[0]->l, v, total, e);
	for (size_t i = 0; i < total; i++) {
		if (st != MLK_OK && v[i]->tmp)
			object_discard(v[i]);
		free(v[i]->tmp);
		free(v[i]);
	}
	free(v);
	return st;
}

enum mlk_status objdeid_flush(struct objdeid *od, struct mlk_error *e)
{
	sync_finish(od);
	enum mlk_status rs = publish_reasons(od, e);
	if (rs != MLK_OK)
		return rs;
	if (!od->npending)
		return MLK_OK;
	enum mlk_status st = object_publish_many(od->l, od->pending,
						 od->npending, e);
	for (size_t i = 0; i < od->npending; i++) {
		struct object_info *info = od->pending[i];
		if (st != MLK_OK && info->tmp)
			object_discard(info);
		free(info->tmp);
		free(info);
	}
	od->npending = 0;
	return st;
}

/* The new object; its record's fields (the DICOM JSON Model and the
 * convenience fields of mlk-record(5), read back from the new bytes)
 * into fields, its size into size. */
static enum mlk_status dicom_object(struct objdeid *od, const char *in,
				    const char *name, char hex[SHA256_HEX],
				    struct buf *fields,
				    unsigned long long *size,
				    struct mlk_error *e)
{
	int ifd = open(in, O_RDONLY | O_CLOEXEC);
	if (ifd < 0)
		return mlk_error_set(e, MLK_PARTIAL, name, 0, "object not in "
				     "the store");
	/* refused objects (burned-in text) get no file at all */
	struct dicomwrite_params wp = { od->dd, shift, od->k };
	struct dicomwrite *dw;
	enum mlk_status st = dicomwrite_begin(&wp, ifd, name, &dw, e);
	if (st != MLK_OK) {
		close(ifd);
		return st;
	}
	/* written straight into a temp file of the store: one file, once */
	if (od->npending == PENDING_MAX) {
		st = objdeid_flush(od, e);
		if (st != MLK_OK) {
			dicomwrite_abort(dw);
			close(ifd);
			return st;
		}
	}
	struct object_info *info = xcalloc(1, sizeof *info);
	struct dicomwrite_result res;
	st = object_create(od->l, info, e);
	if (st == MLK_OK)
		st = dicomwrite_end(dw, info->fd, &res, e);
	else
		dicomwrite_abort(dw);
	close(ifd);
	if (st == MLK_OK)
		object_seal(od->l, info, res.sha256, res.bytes);
	int rfd = -1;
	if (st == MLK_OK) {
		memcpy(hex, info->sha256, SHA256_HEX);
		*size = res.bytes;
		if (info->tmp) {
			rfd = dup(info->fd);
		} else {   /* the store held these bytes already */
			char *path = object_path(od->l, hex);
			rfd = open(path, O_RDONLY | O_CLOEXEC);
			free(path);
		}
		if (rfd < 0)
			st = mlk_error_errno(e, name, "cannot read back");
	}
	if (st == MLK_OK) {
		struct dicom_doc doc;
		if (lseek(rfd, 0, SEEK_SET) != 0) {
			st = mlk_error_errno(e, name, "cannot rewind");
		} else if (dicom_json_fd(rfd, name, &doc, e) != 0) {
			/* our own output unreadable: a bug, never passed on */
			st = mlk_error_set(e, MLK_SYSTEM, name, 0, "the "
					   "de-identified object cannot be "
					   "read back");
		} else {
			buf_add(fields, doc.json.data, doc.json.len);
		}
		dicom_doc_release(&doc);
	}
	if (rfd >= 0)
		close(rfd);
	if (st == MLK_OK && info->tmp) {
		od->pending[od->npending++] = info;   /* objdeid_flush() */
		return MLK_OK;
	}
	object_discard(info);
	free(info);
	return st;
}

static void gen_tok(void *ctx, const char *v, size_t n,
		    char out[GENDEID_TOKEN_LEN + 1])
{
	struct objdeid *od = ctx;
	deid_keys_token(od->k, v, n, out);
}

static const char *sample_patient(void *ctx, const char *sample)
{
	struct objdeid *od = ctx;
	return od->samples ? samplemap_patient(od->samples, sample) : NULL;
}

/* A label of the record (project, assay, pipeline_version) or NULL. */
static char *label(struct objdeid *od, const char *key)
{
	int v = rec_get(&od->r, 0, key);
	if (v < 0 || rec_type(&od->r, v) != REC_STRING)
		return NULL;
	struct buf b = BUF_INIT;
	rec_str(&od->r, v, &b);
	return buf_detach(&b);
}

/* The record fields of the de-identified genomics file at path: its own
 * description (genomics.h: samples as tokens, the cleaned header, the
 * reference build) with the record's labels; its size into size. */
static enum mlk_status genomics_fields(struct objdeid *od, const char *path,
				       const char *name, const char *pcol,
				       const char *patient, struct buf *fields,
				       unsigned long long *size,
				       struct mlk_error *e)
{
	struct genomics_meta meta = { label(od, "project"),
		label(od, "assay"), label(od, "pipeline_version") };
	struct buf body = BUF_INIT;
	struct genomics_info gi;
	struct stat st;
	enum mlk_status s = genomics_describe(path, NULL, name, &meta, &body,
					      &gi, e);
	if (s != MLK_OK) {
		/* our own output unreadable: a bug, never passed on */
		s = mlk_error_set(e, MLK_SYSTEM, name, 0, "the de-identified "
				  "object cannot be read back");
	} else if (stat(path, &st) != 0) {
		s = mlk_error_errno(e, name, "cannot stat");
	} else {
		*size = (unsigned long long)st.st_size;
		/* the members, without the opening brace */
		if (body.len > 1)
			buf_add(fields, body.data + 1, body.len - 1);
		/* the patient column: the token his EHR records carry */
		if (patient) {
			if (fields->len)
				buf_addch(fields, ',');
			buf_add_json_cstr(fields, pcol);
			buf_addch(fields, ':');
			buf_add_json_cstr(fields, patient);
		}
	}
	buf_release(&body);
	genomics_meta_release(&meta);
	return s;
}

/*
 * The de-identified copy and, when one fits it (gendeid_index()), its
 * index: both stored; ihex is left empty when there is no index.
 */
/* A file made in the store's folder (object_temp_name()) as a pending
 * object; its name into hex.  path is taken over. */
static enum mlk_status adopt(struct objdeid *od, char *path,
			     char hex[SHA256_HEX], struct mlk_error *e)
{
	if (od->npending == PENDING_MAX) {
		enum mlk_status fs = objdeid_flush(od, e);
		if (fs != MLK_OK) {
			unlink(path);
			free(path);
			return fs;
		}
	}
	struct object_info *info = xcalloc(1, sizeof *info);
	enum mlk_status st = object_adopt(od->l, path, info, e);
	if (st == MLK_OK)
		memcpy(hex, info->sha256, SHA256_HEX);
	if (st == MLK_OK && info->tmp) {
		od->pending[od->npending++] = info;
		return MLK_OK;
	}
	free(info);
	return st;
}

/*
 * The copy is written by htslib under a name reserved in the store's
 * folder, and so is its index: both become objects by rename, their
 * bytes written once (a 1 GB BAM is not copied again into the store).
 */
static enum mlk_status genomics_object(struct objdeid *od, const char *in,
				       const char *name, char hex[SHA256_HEX],
				       char ihex[SHA256_HEX],
				       struct buf *fields,
				       unsigned long long *size,
				       struct mlk_error *e)
{
	ihex[0] = '\0';
	if (access(in, R_OK) != 0)
		return mlk_error_set(e, MLK_PARTIAL, name, 0, "object not in "
				     "the store");
	char *out = NULL, *idx = NULL;
	enum mlk_status st = object_temp_name(od->l, &out, e);
	/* the record's patient column (a token since the profile's pass:
	 * deid.c keep_labels()): its only sample's patient */
	static const char *const pcols[] = { "patient_id", "patient",
					     "subject_id", "person_id" };
	char *patient = NULL;
	const char *pcol = NULL;
	for (size_t i = 0; !patient && i < sizeof pcols / sizeof *pcols; i++)
		patient = label(od, pcol = pcols[i]);
	struct gendeid_params gp = { sample_patient, gen_tok, od, patient };
	if (st == MLK_OK)
		st = gendeid_file(&gp, in, out, NULL, e);
	if (st == MLK_OK)
		st = genomics_fields(od, out, name, pcol, patient, fields,
				     size, e);
	if (st == MLK_OK)
		st = gendeid_index(out, &idx, e);
	if (st == MLK_OK) {
		st = adopt(od, out, hex, e);
		out = NULL;
	}
	if (st == MLK_OK && idx) {
		st = adopt(od, idx, ihex, e);
		idx = NULL;
	}
	free(patient);
	/* messages name the object, not the store's path */
	if (st != MLK_OK)
		snprintf(e->file, sizeof e->file, "%s", name);
	if (idx) {
		unlink(idx);
		free(idx);
	}
	if (out) {
		unlink(out);
		free(out);
	}
	return st;
}

/* Whether line holds the key "blob" at all (memmem is not POSIX). */
static int mentions_blob(const char *p, size_t n)
{
	const char *end = p + n;
	for (const char *q = p; q + 6 <= end; q++) {
		q = memchr(q, '"', (size_t)(end - q) - 5);
		if (!q)
			return 0;
		if (!memcmp(q, "\"blob\"", 6))
			return 1;
	}
	return 0;
}

static int is_hex64(const char *s)
{
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

/* An index of the original (genomics_detect()'s index types). */
static int is_index_type(const char *ty)
{
	return !strcmp(ty, "tbi") || !strcmp(ty, "bai") ||
	       !strcmp(ty, "crai") || !strcmp(ty, "csi");
}

static int json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * The span of _mlk's member "index" (value token v) with one comma, so
 * that cutting it leaves valid JSON: the comma before it, or after it
 * when it is the first member.
 */
static void member_span(const struct rec *r, int v, const char *line,
			size_t n, size_t *begin, size_t *end)
{
	size_t kb, ke, vb, ve;
	rec_span(r, v - 1, &kb, &ke);
	rec_span(r, v, &vb, &ve);
	size_t b = kb;
	while (b > 0 && json_space(line[b - 1]))
		b--;
	if (b > 0 && line[b - 1] == ',') {
		*begin = b - 1;
		*end = ve;
		return;
	}
	size_t x = ve;
	while (x < n && json_space(line[x]))
		x++;
	if (x < n && line[x] == ',')
		x++;
	*begin = kb;
	*end = x;
}

struct edit {
	size_t begin, end;      /* bytes of the line replaced */
	char text[192];
};

/*
 * line[from, to) with its blob replaced by the copy's name, followed by
 * "index" when the copy has one; an "index" the input carried (the
 * original's) is cut, wherever it stood.  With size: "size" set to *size
 * (added after the blob when the record has none).
 */
static void rewrite(const struct rec *r, int m, int b, const char *line,
		    size_t from, size_t to, const char *hex,
		    const char *ihex, const unsigned long long *size,
		    struct buf *out)
{
	struct edit ed[3];
	size_t ne = 0;
	int sz = size ? rec_get(r, m, "size") : -1;
	rec_span(r, b, &ed[ne].begin, &ed[ne].end);
	int k = snprintf(ed[ne].text, sizeof ed[ne].text, "\"sha256:%.64s\"",
			 hex);
	if (size && sz < 0)
		k += snprintf(ed[ne].text + k, sizeof ed[ne].text - (size_t)k,
			      ",\"size\":%llu", *size);
	if (*ihex)
		snprintf(ed[ne].text + k, sizeof ed[ne].text - (size_t)k,
			 ",\"index\":\"sha256:%.64s\"", ihex);
	ne++;
	if (sz >= 0) {
		rec_span(r, sz, &ed[ne].begin, &ed[ne].end);
		snprintf(ed[ne].text, sizeof ed[ne].text, "%llu", *size);
		ne++;
	}
	int oi = rec_get(r, m, "index");
	if (oi >= 0) {
		member_span(r, oi, line, to, &ed[ne].begin, &ed[ne].end);
		ed[ne].text[0] = '\0';
		ne++;
	}
	/* in the order they stand (three at most) */
	for (size_t i = 1; i < ne; i++)
		for (size_t j = i; j > 0 && ed[j].begin < ed[j - 1].begin;
		     j--) {
			struct edit t = ed[j];
			ed[j] = ed[j - 1];
			ed[j - 1] = t;
		}
	size_t at = from;
	for (size_t i = 0; i < ne; i++) {
		buf_add(out, line + at, ed[i].begin - at);
		buf_addstr(out, ed[i].text);
		at = ed[i].end;
	}
	buf_add(out, line + at, to - at);
}

enum mlk_status objdeid_record(struct objdeid *od, const char *line,
			       size_t n, struct buf *out, struct mlk_error *e)
{
	if (!mentions_blob(line, n)) {
		buf_add(out, line, n);
		buf_addch(out, '\n');
		return MLK_OK;
	}
	if (rec_parse(&od->r, line, n, e) != MLK_OK)
		return MLK_PARTIAL;
	int m = rec_get(&od->r, 0, "_mlk");
	int b = m >= 0 ? rec_get(&od->r, m, "blob") : -1;
	if (b < 0) {
		buf_add(out, line, n);
		buf_addch(out, '\n');
		return MLK_OK;
	}
	int t = rec_get(&od->r, m, "type");
	struct buf blob = BUF_INIT, type = BUF_INIT, fields = BUF_INIT;
	unsigned long long size = 0;
	rec_str(&od->r, b, &blob);
	if (t >= 0)
		rec_str(&od->r, t, &type);
	const char *ty = type.data ? type.data : "";
	enum mlk_status st;
	char hex[SHA256_HEX], ihex[SHA256_HEX] = "";
	/* The original's index describes the original's byte layout; the
	 * de-identified data record carries its own (_mlk.index). */
	if (is_index_type(ty)) {
		od->superseded++;
		st = MLK_OK;
		goto done;
	}
	if (!blob.data || strncmp(blob.data, "sha256:", 7) ||
	    !is_hex64(blob.data + 7)) {
		st = mlk_error_set(e, MLK_PARTIAL, NULL, 0, "_mlk.blob is not "
				   "sha256:HEX");
		goto done;
	}
	const char *name = blob.data;
	char *in = object_path(od->l, blob.data + 7);
	if (!strcmp(ty, "dicom"))
		st = dicom_object(od, in, name, hex, &fields, &size, e);
	else if (!strcmp(ty, "vcf") || !strcmp(ty, "bcf") ||
		 !strcmp(ty, "sam") || !strcmp(ty, "bam") ||
		 !strcmp(ty, "cram"))
		st = genomics_object(od, in, name, hex, ihex, &fields, &size,
				     e);
	else
		st = mlk_error_set(e, MLK_PARTIAL, name, 0, "no "
				   "de-identification for objects of this "
				   "type yet");
	free(in);
	if (st == MLK_DENIED)   /* burned-in text: left out, not a denial */
		st = e->status = MLK_PARTIAL;
	if (st == MLK_PARTIAL) {
		struct buf ds = BUF_INIT;
		int dk = rec_get(&od->r, m, "dataset");
		if (dk >= 0)
			rec_str(&od->r, dk, &ds);
		struct mlk_error qe = MLK_ERROR_INIT;
		if (quarantine(od, blob.data + 7, ty, ds.data, e->msg, &qe) !=
		    MLK_OK)
			*e = qe;   /* the reason cannot be kept: a failure */
		buf_release(&ds);
		st = e->status;
	}
	if (st != MLK_OK)
		goto done;
	od->count++;
	if (fields.len) {
		/* the record is the new object's: its fields, then the
		 * envelope with the copy's blob, size and index */
		size_t mb, me;
		rec_span(&od->r, m, &mb, &me);
		buf_addch(out, '{');
		buf_add(out, fields.data, fields.len);
		buf_addstr(out, ",\"_mlk\":");
		rewrite(&od->r, m, b, line, mb, me, hex, ihex, &size, out);
		buf_addstr(out, "}\n");
	} else {
		rewrite(&od->r, m, b, line, 0, n, hex, ihex, NULL, out);
		buf_addch(out, '\n');
	}
done:
	buf_release(&fields);
	buf_release(&blob);
	buf_release(&type);
	return st;
}
