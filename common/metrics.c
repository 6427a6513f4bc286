#define _GNU_SOURCE  /* memmem, timegm */
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "crypto.h"
#include "fsio.h"
#include "record.h"
#include "xalloc.h"
#include "yamltree.h"
#include "banned.h"

static void names_add(struct metric_names *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], name))
			return;
	XGROW(s->v, s->alloc, s->n + 1);
	s->v[s->n++] = xstrdup(name);
}

static void names_release(struct metric_names *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof *s);
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static void names_sort(struct metric_names *s)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof *s->v, cmp_str);
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? -1 : a > b;
}

static void times_of(double *v, size_t n, struct metric_times *t)
{
	t->n = (long long)n;
	if (!n)
		return;
	qsort(v, n, sizeof *v, cmp_double);
	t->median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	t->max = v[n - 1];
}

/* "2026-11-25T18:30:11Z" or "2026-11-25" (UTC); -1 when neither. */
static long long iso_time(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	int n = 0;
	size_t len = strlen(s);
	if (len == 10 && sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon,
				&tm.tm_mday, &n) == 3 && n == 10) {
	} else if (len == 20 && s[10] == 'T' && s[19] == 'Z' &&
		   sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &tm.tm_year,
			  &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
			  &tm.tm_sec, &n) == 6 && n == 20) {
	} else {
		return -1;
	}
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
	    tm.tm_sec > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long)timegm(&tm);
}

/* --- the log ---------------------------------------------------------- */

struct batch_rec {
	char *id, *dataset, *manifest;   /* manifest: NULL when not recorded */
	int sources;                     /* the event named its sources */
	int on_disk;
};

struct req {
	char *id;
	long long t;
	int decide;
};

struct scan {
	struct batch_rec *b;
	size_t nb, ab;
	struct req *r;
	size_t nr, ar;
	double *rebuild;
	size_t nrb, arb;
};

static char *str_member(const struct rec *r, int obj, const char *key)
{
	int t = rec_get(r, obj, key);
	struct buf b = BUF_INIT;
	if (t < 0 || rec_str(r, t, &b) < 0 || !b.data) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b);
}

static struct batch_rec *batch_find(struct scan *s, const char *id)
{
	for (size_t i = 0; i < s->nb; i++)
		if (!strcmp(s->b[i].id, id))
			return &s->b[i];
	return NULL;
}

static struct batch_rec *batch_add(struct scan *s, const char *id,
				   const char *dataset)
{
	XGROW(s->b, s->ab, s->nb + 1);
	struct batch_rec *b = &s->b[s->nb++];
	memset(b, 0, sizeof *b);
	b->id = xstrdup(id);
	b->dataset = xstrdup(dataset);
	return b;
}

static void scan_ingest(struct scan *s, const struct rec *r)
{
	char *ds = str_member(r, 0, "dataset");
	int ins = rec_get(r, 0, "inputs"), outs = rec_get(r, 0, "outputs");
	int sources = 0;
	if (ins >= 0 && rec_type(r, ins) == REC_ARRAY)
		for (int k = ins + 1; k < r->skip[ins]; k = r->skip[k])
			if (rec_get(r, k, "sha256") >= 0)
				sources = 1;
	if (ds && outs >= 0 && rec_type(r, outs) == REC_ARRAY)
		for (int k = outs + 1; k < r->skip[outs]; k = r->skip[k]) {
			char *id = str_member(r, k, "batch");
			if (id && !batch_find(s, id)) {
				struct batch_rec *b = batch_add(s, id, ds);
				b->manifest = str_member(r, k,
							 "manifest_sha256");
				b->sources = sources;
			}
			free(id);
		}
	free(ds);
}

static void scan_request(struct scan *s, const struct rec *r, int decide)
{
	int d = rec_get(r, 0, "detail");
	char *id = d >= 0 ? str_member(r, d, "request") : NULL;
	char *tm = str_member(r, 0, "time");
	long long t = tm ? iso_time(tm) : -1;
	free(tm);
	if (!id || t < 0) {
		free(id);
		return;
	}
	XGROW(s->r, s->ar, s->nr + 1);
	s->r[s->nr++] = (struct req){ id, t, decide };
}

static void scan_rebuild(struct scan *s, const struct rec *r)
{
	int d = rec_get(r, 0, "detail");
	int sec = d >= 0 ? rec_get(r, d, "seconds") : -1;
	char *of = d >= 0 ? str_member(r, d, "rebuild_of") : NULL;
	if (of && sec >= 0 && rec_type(r, sec) == REC_PRIMITIVE) {
		size_t n;
		const char *p = rec_raw(r, sec, &n);
		char num[32];
		if (n < sizeof num && ((p[0] >= '0' && p[0] <= '9'))) {
			memcpy(num, p, n);
			num[n] = '\0';
			XGROW(s->rebuild, s->arb, s->nrb + 1);
			s->rebuild[s->nrb++] = strtod(num, NULL);
		}
	}
	free(of);
}

static int has(const char *line, size_t len, const char *needle)
{
	return memmem(line, len, needle, strlen(needle)) != NULL;
}

static void scan_log(const struct auditlog *a, struct scan *s,
		     struct audit_metrics *m)
{
	size_t off = 0, len;
	const char *line;
	struct rec r;
	rec_init(&r);
	while (auditlog_next(a, &off, &line, &len)) {
		m->events++;
		/* Only events that can matter are parsed. */
		if (!has(line, len, "\"action\":\"ingest\"") &&
		    !has(line, len, "\"action\":\"access.") &&
		    !has(line, len, "\"action\":\"export\"") &&
		    !has(line, len, "\"rebuild_of\""))
			continue;
		struct mlk_error pe = MLK_ERROR_INIT;
		if (rec_parse(&r, line, len, &pe) != MLK_OK)
			continue;
		int act = rec_get(&r, 0, "action");
		int dec = rec_get(&r, 0, "decision");
		int denied = dec >= 0 && rec_str_eq(&r, dec, "deny");
		if (act >= 0 && rec_str_eq(&r, act, "ingest") && !denied)
			scan_ingest(s, &r);
		else if (act >= 0 && rec_str_eq(&r, act, "access.request"))
			scan_request(s, &r, 0);
		else if (act >= 0 && rec_str_eq(&r, act, "access.decide"))
			scan_request(s, &r, 1);
		else if (act >= 0 && rec_str_eq(&r, act, "export")) {
			m->exports++;
			m->exports_denied += denied;
		}
		if (!denied)
			scan_rebuild(s, &r);
	}
	rec_release(&r);
}

/* --- the lake on disk -------------------------------------------------- */

/* Batches under raw/: raw/<dataset>/batch=<id>/, datasets of 1 to 4
 * segments. */
static enum mlk_status scan_batches(const struct lake *l, struct scan *s,
				    const char *rel, int depth,
				    struct mlk_error *e)
{
	char *dir = lake_path(l, "raw/%s", rel);
	DIR *d = opendir(dir);
	if (!d) {
		enum mlk_status st = errno == ENOENT || errno == ENOTDIR
			? MLK_OK : mlk_error_errno(e, dir, "cannot read");
		free(dir);
		return st;
	}
	free(dir);
	enum mlk_status st = MLK_OK;
	struct dirent *de;
	while (st == MLK_OK && (de = readdir(d)) != NULL) {
		const char *nm = de->d_name;
		if (nm[0] == '.')
			continue;
		if (!strncmp(nm, "batch=", 6) && *rel) {
			struct batch_rec *b = batch_find(s, nm + 6);
			if (!b)
				b = batch_add(s, nm + 6, rel);
			b->on_disk = 1;
			continue;
		}
		if (depth >= 4 || strchr(nm, '='))
			continue;
		struct buf sub = BUF_INIT;
		buf_addf(&sub, "%s%s%s", rel, *rel ? "/" : "", nm);
		if (lake_dataset_valid(sub.data))
			st = scan_batches(l, s, sub.data, depth + 1, e);
		buf_release(&sub);
	}
	closedir(d);
	return st;
}

/* Descriptors under catalog/datasets/: <dataset>.yaml. */
static void scan_descriptors(const struct lake *l, const char *rel, int depth,
			     struct metric_names *out)
{
	char *dir = lake_path(l, "catalog/datasets%s%s", *rel ? "/" : "", rel);
	DIR *d = opendir(dir);
	free(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *nm = de->d_name;
		size_t n = strlen(nm);
		if (nm[0] == '.')
			continue;
		struct buf sub = BUF_INIT;
		buf_addf(&sub, "%s%s%s", rel, *rel ? "/" : "", nm);
		if (n > 5 && !strcmp(nm + n - 5, ".yaml")) {
			buf_truncate(&sub, sub.len - 5);
			if (lake_dataset_valid(sub.data))
				names_add(out, sub.data);
		} else if (depth < 4 && lake_dataset_valid(sub.data)) {
			scan_descriptors(l, sub.data, depth + 1, out);
		}
		buf_release(&sub);
	}
	closedir(d);
}

static int present(const struct ynode *root, const char *key)
{
	const struct ynode *v = ynode_get(root, key);
	if (!v || ynode_is_null(v))
		return 0;
	return v->type != YNODE_SCALAR || v->scalar[0] != '\0';
}

static int has_owner_and_steward(const struct lake *l, const char *dataset)
{
	char *p = lake_path(l, "catalog/datasets/%s.yaml", dataset);
	struct ynode *y = NULL;
	struct mlk_error ye = MLK_ERROR_INIT;
	int ok = fsio_exists(p) && ynode_load_file(p, &y, &ye) == MLK_OK &&
		 present(y, "owner") && present(y, "steward");
	ynode_free(y);
	free(p);
	return ok;
}

/* 1 when the batch's manifest is there and hashes to what was logged. */
static int manifest_ok(const struct lake *l, const struct batch_rec *b)
{
	if (!b->manifest)
		return 0;
	char *p = lake_path(l, "raw/%s/batch=%s/_manifest.json", b->dataset,
			    b->id);
	char hex[SHA256_HEX];
	struct mlk_error he = MLK_ERROR_INIT;
	int ok = sha256_file(p, hex, NULL, &he) == MLK_OK &&
		 !strcmp(hex, b->manifest);
	free(p);
	return ok;
}

static void lineage_share(const struct lake *l, struct scan *s,
			  struct metric_names *datasets,
			  struct audit_metrics *m)
{
	for (size_t i = 0; i < s->nb; i++)
		names_add(datasets, s->b[i].dataset);
	names_sort(datasets);
	for (size_t d = 0; d < datasets->n; d++) {
		int complete = 1;
		for (size_t i = 0; complete && i < s->nb; i++) {
			const struct batch_rec *b = &s->b[i];
			if (strcmp(b->dataset, datasets->v[d]))
				continue;
			complete = b->sources && manifest_ok(l, b);
		}
		m->datasets++;
		if (complete)
			m->complete++;
		else
			names_add(&m->incomplete, datasets->v[d]);
	}
}

static int cmp_req(const void *x, const void *y)
{
	const struct req *a = x, *b = y;
	int c = strcmp(a->id, b->id);
	if (c)
		return c;
	if (a->decide != b->decide)
		return a->decide - b->decide;
	return a->t < b->t ? -1 : a->t > b->t;
}

/* A request's first "access.request" to its first "access.decide". */
static void access_times(struct scan *s, struct audit_metrics *m)
{
	if (s->nr > 1)
		qsort(s->r, s->nr, sizeof *s->r, cmp_req);
	double *v = xmalloc((s->nr + 1) * sizeof *v);
	size_t nv = 0;
	for (size_t i = 0; i < s->nr;) {
		size_t j = i;
		while (j < s->nr && !strcmp(s->r[j].id, s->r[i].id))
			j++;
		const struct req *rq = s->r[i].decide ? NULL : &s->r[i];
		const struct req *dc = NULL;
		for (size_t k = i; k < j; k++)
			if (s->r[k].decide) {
				dc = &s->r[k];
				break;
			}
		if (rq) {
			m->requests++;
			if (dc && dc->t >= rq->t) {
				m->decided++;
				v[nv++] = (double)(dc->t - rq->t);
			}
		}
		i = j;
	}
	times_of(v, nv, &m->access);
	free(v);
}

static void sandboxes(const struct lake *l, struct audit_metrics *m)
{
	char *dir = lake_path(l, "sandboxes");
	DIR *d = opendir(dir);
	free(dir);
	if (!d)
		return;
	long long now = (long long)lake_now(l);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char *p = lake_path(l, "sandboxes/%s/sandbox.yaml", de->d_name);
		struct ynode *y = NULL;
		struct mlk_error ye = MLK_ERROR_INIT;
		if (fsio_exists(p)) {
			m->sandboxes++;
			const char *ex = NULL, *st = NULL;
			if (ynode_load_file(p, &y, &ye) == MLK_OK) {
				ex = ynode_str(y, "expires");
				st = ynode_str(y, "status");
			}
			long long t = ex ? iso_time(ex) : -1;
			if (t < 0)
				m->sandboxes_bad++;
			else if (t < now && !(st && (!strcmp(st, "expired") ||
						     !strcmp(st, "deleted"))))
				names_add(&m->overdue, de->d_name);
		}
		ynode_free(y);
		free(p);
	}
	closedir(d);
	names_sort(&m->overdue);
}

enum mlk_status audit_metrics(const struct lake *l, const struct auditlog *a,
			      struct audit_metrics *m, struct mlk_error *e)
{
	memset(m, 0, sizeof *m);
	struct scan s;
	memset(&s, 0, sizeof s);
	scan_log(a, &s, m);
	enum mlk_status st = scan_batches(l, &s, "", 0, e);
	struct metric_names datasets = { NULL, 0, 0 };
	if (st == MLK_OK) {
		lineage_share(l, &s, &datasets, m);
		scan_descriptors(l, "", 0, &datasets);
		names_sort(&datasets);
		for (size_t i = 0; i < datasets.n; i++) {
			m->owned_examined++;
			if (!has_owner_and_steward(l, datasets.v[i]))
				names_add(&m->unowned, datasets.v[i]);
		}
		access_times(&s, m);
		times_of(s.rebuild, s.nrb, &m->rebuild);
		sandboxes(l, m);
	}
	names_release(&datasets);
	for (size_t i = 0; i < s.nb; i++) {
		free(s.b[i].id);
		free(s.b[i].dataset);
		free(s.b[i].manifest);
	}
	free(s.b);
	for (size_t i = 0; i < s.nr; i++)
		free(s.r[i].id);
	free(s.r);
	free(s.rebuild);
	return st;
}

static void add_names(struct buf *b, const char *key,
		      const struct metric_names *s)
{
	buf_addf(b, ",\"%s\":[", key);
	for (size_t i = 0; i < s->n; i++) {
		if (i)
			buf_addch(b, ',');
		buf_add_json_cstr(b, s->v[i]);
	}
	buf_addch(b, ']');
}

static void add_times(struct buf *b, const struct metric_times *t)
{
	if (t->n)
		buf_addf(b, ",\"median_seconds\":%.15g,\"max_seconds\":%.15g",
			 t->median, t->max);
	else
		buf_addstr(b, ",\"median_seconds\":null,\"max_seconds\":null");
}

void audit_metrics_json(const struct audit_metrics *m, struct buf *b)
{
	buf_addf(b, "{\"events\":%lld,\"lineage\":{\"datasets\":%lld,"
		 "\"complete\":%lld,\"share\":", m->events, m->datasets,
		 m->complete);
	if (m->datasets)
		buf_addf(b, "%.4g", (double)m->complete / (double)m->datasets);
	else
		buf_addstr(b, "null");
	add_names(b, "incomplete", &m->incomplete);
	buf_addf(b, "},\"ownership\":{\"datasets\":%lld,"
		 "\"without_owner_or_steward\":%zu", m->owned_examined,
		 m->unowned.n);
	add_names(b, "unowned", &m->unowned);
	buf_addf(b, "},\"access_requests\":{\"requests\":%lld,"
		 "\"decided\":%lld,\"pending\":%lld", m->requests, m->decided,
		 m->requests - m->decided);
	add_times(b, &m->access);
	buf_addf(b, "},\"exports\":{\"events\":%lld,\"denied\":%lld},"
		 "\"sandboxes\":{\"examined\":%lld,\"past_expiry\":%zu,"
		 "\"unreadable_expiry\":%lld", m->exports, m->exports_denied,
		 m->sandboxes, m->overdue.n, m->sandboxes_bad);
	add_names(b, "overdue", &m->overdue);
	buf_addf(b, "},\"rebuilds\":{\"rebuilds\":%lld", m->rebuild.n);
	add_times(b, &m->rebuild);
	buf_addstr(b, "}}\n");
}

void audit_metrics_release(struct audit_metrics *m)
{
	names_release(&m->incomplete);
	names_release(&m->unowned);
	names_release(&m->overdue);
}
