/* timegm(3) is a GNU/BSD call. */
#define _GNU_SOURCE
#include "lifecycle.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "catalog.h"
#include "fsio.h"
#include "manifest.h"
#include "record.h"
#include "snapshot.h"
#include "xalloc.h"
#include "banned.h"

#define DAY 86400LL

static const struct lc_class default_classes[] = {
	{ "active-clinical", "hot", 0, 3650, -1, 0 },
	{ "research-ready", "warm", 90, 365, -1, 1 },
	{ "training-approved", "warm", 180, 1095, 3650, 1 },
	{ "archive-only", "archive", 0, 3650, -1, 0 },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int name_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n >= 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) &&
		    !isdigit((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '_')
			return 0;
	return 1;
}

static int num_of(const struct ynode *m, const char *key, long long *out)
{
	const char *v = ynode_str(m, key);
	if (!v)
		return 0;
	char *end;
	long long n = strtoll(v, &end, 10);
	if (end == v || *end || n < 0 || n > 100000)
		return -1;
	*out = n;
	return 1;
}

static enum mlk_status load_tiers(struct lifecycle *lc, struct mlk_error *e)
{
	const struct lake *l = lc->l;
	lc->tier = xcalloc(1, sizeof *lc->tier);
	snprintf(lc->tier[0].name, sizeof lc->tier[0].name, "hot");
	lc->tier[0].dir = lake_path(l, "objects");
	lc->ntier = 1;
	const struct ynode *t = l->conf ? ynode_get(l->conf, "tiers") : NULL;
	if (!t)
		return MLK_OK;
	if (t->type != YNODE_MAP)
		return mlk_error_set(e, MLK_USAGE, "mlk.yaml", (long long)t->line,
				     "tiers must be a map of name to folder");
	for (size_t i = 0; i < t->n; i++) {
		const struct ynode *v = t->values[i];
		if (v->type != YNODE_SCALAR || !*v->scalar ||
		    !name_ok(t->keys[i]))
			return mlk_error_set(e, MLK_USAGE, "mlk.yaml",
					     (long long)v->line,
					     "tier '%s' wants a name of "
					     "[a-z0-9_-] and a folder",
					     t->keys[i]);
		if (!strcmp(t->keys[i], "hot")) {
			if (strcmp(v->scalar, "objects"))
				return mlk_error_set(e, MLK_USAGE, "mlk.yaml",
						     (long long)v->line,
						     "tier 'hot' is always "
						     "objects");
			continue;
		}
		if (lc_tier_find(lc, t->keys[i]) >= 0)
			return mlk_error_set(e, MLK_USAGE, "mlk.yaml",
					     (long long)v->line,
					     "tier '%s' named twice",
					     t->keys[i]);
		lc->tier = xrealloc(lc->tier, (lc->ntier + 1) *
				    sizeof *lc->tier);
		struct lc_tier *nt = &lc->tier[lc->ntier++];
		snprintf(nt->name, sizeof nt->name, "%s", t->keys[i]);
		nt->dir = v->scalar[0] == '/' ? xstrdup(v->scalar)
					      : lake_path(l, "%s", v->scalar);
		size_t dl = strlen(nt->dir);
		while (dl > 1 && nt->dir[dl - 1] == '/')
			nt->dir[--dl] = '\0';
	}
	return MLK_OK;
}

static enum mlk_status load_classes(struct lifecycle *lc, struct mlk_error *e)
{
	lc->ncls = NELEM(default_classes);
	lc->cls = xmalloc(sizeof default_classes);
	memcpy(lc->cls, default_classes, sizeof default_classes);
	char *pp = lake_path(lc->l, "policy.yaml");
	struct ynode *pol = NULL;
	enum mlk_status s = MLK_OK;
	if (fsio_exists(pp))
		s = ynode_load_file(pp, &pol, e);
	free(pp);
	if (s != MLK_OK)
		return s;
	const struct ynode *rc = pol ? ynode_get(pol, "retention_classes")
				     : NULL;
	if (rc && rc->type != YNODE_MAP) {
		s = mlk_error_set(e, MLK_USAGE, "policy.yaml",
				  (long long)rc->line,
				  "retention_classes must be a map");
		rc = NULL;
	}
	for (size_t i = 0; rc && s == MLK_OK && i < rc->n; i++) {
		const struct ynode *m = rc->values[i];
		long long line = (long long)m->line;
		if (m->type != YNODE_MAP || !name_ok(rc->keys[i])) {
			s = mlk_error_set(e, MLK_USAGE, "policy.yaml", line,
					  "retention class '%s' must be a map "
					  "named [a-z0-9_-]", rc->keys[i]);
			break;
		}
		struct lc_class *c = (struct lc_class *)
			lc_class_find(lc, rc->keys[i]);
		if (!c) {
			lc->cls = xrealloc(lc->cls, (lc->ncls + 1) *
					   sizeof *lc->cls);
			c = &lc->cls[lc->ncls++];
			memset(c, 0, sizeof *c);
			snprintf(c->name, sizeof c->name, "%s", rc->keys[i]);
			snprintf(c->tier, sizeof c->tier, "hot");
			c->max_days = -1;
		}
		const char *tier = ynode_str(m, "tier");
		if (tier) {
			if (!name_ok(tier)) {
				s = mlk_error_set(e, MLK_USAGE, "policy.yaml",
						  line, "retention class '%s': "
						  "bad tier name", c->name);
				break;
			}
			snprintf(c->tier, sizeof c->tier, "%s", tier);
		}
		if (num_of(m, "tier_after_days", &c->tier_after_days) < 0 ||
		    num_of(m, "min_days", &c->min_days) < 0 ||
		    num_of(m, "max_days", &c->max_days) < 0) {
			s = mlk_error_set(e, MLK_USAGE, "policy.yaml", line,
					  "retention class '%s': days must be "
					  "0 to 100000", c->name);
			break;
		}
		const char *del = ynode_str(m, "delete");
		if (del && !strcmp(del, "never"))
			c->deletable = 0;
		else if (del && !strcmp(del, "after-min"))
			c->deletable = 1;
		else if (del) {
			s = mlk_error_set(e, MLK_USAGE, "policy.yaml", line,
					  "retention class '%s': delete is "
					  "never or after-min", c->name);
			break;
		}
		if (c->max_days >= 0 && c->max_days < c->min_days) {
			s = mlk_error_set(e, MLK_USAGE, "policy.yaml", line,
					  "retention class '%s': max_days is "
					  "below min_days", c->name);
			break;
		}
	}
	ynode_free(pol);
	return s;
}

enum mlk_status lc_open(const struct lake *l, struct lifecycle *lc,
			struct mlk_error *e)
{
	memset(lc, 0, sizeof *lc);
	lc->l = l;
	lc->gc_grace_days = lake_conf_num(l, "lifecycle", "gc_grace_days", 7);
	if (lc->gc_grace_days < 0)
		lc->gc_grace_days = 7;
	enum mlk_status s = load_tiers(lc, e);
	if (s == MLK_OK)
		s = load_classes(lc, e);
	if (s != MLK_OK)
		lc_close(lc);
	return s;
}

void lc_close(struct lifecycle *lc)
{
	for (size_t i = 0; i < lc->ntier; i++)
		free(lc->tier[i].dir);
	free(lc->tier);
	free(lc->cls);
	memset(lc, 0, sizeof *lc);
}

const struct lc_class *lc_class_find(const struct lifecycle *lc,
				     const char *name)
{
	for (size_t i = 0; i < lc->ncls; i++)
		if (!strcmp(lc->cls[i].name, name))
			return &lc->cls[i];
	return NULL;
}

int lc_tier_find(const struct lifecycle *lc, const char *name)
{
	for (size_t i = 0; i < lc->ntier; i++)
		if (!strcmp(lc->tier[i].name, name))
			return (int)i;
	return -1;
}

static char *tier_path(const struct lifecycle *lc, int t, const char *hex)
{
	return xasprintf("%s/sha256/%.2s/%s", lc->tier[t].dir, hex, hex);
}

char *lc_object_find(const struct lake *l, const char *hex)
{
	const struct ynode *t = l->conf ? ynode_get(l->conf, "tiers") : NULL;
	if (!t || t->type != YNODE_MAP)
		return NULL;
	/* The hot tier first: it is where new objects land. */
	char *p = lake_path(l, "objects/sha256/%.2s/%s", hex, hex);
	if (fsio_exists(p))
		return p;
	free(p);
	for (size_t i = 0; i < t->n; i++) {
		const struct ynode *v = t->values[i];
		if (v->type != YNODE_SCALAR || !*v->scalar ||
		    !strcmp(t->keys[i], "hot"))
			continue;
		p = v->scalar[0] == '/'
			? xasprintf("%s/sha256/%.2s/%s", v->scalar, hex, hex)
			: lake_path(l, "%s/sha256/%.2s/%s", v->scalar, hex,
				    hex);
		if (fsio_exists(p))
			return p;
		free(p);
	}
	return NULL;
}

/* ---- time ---- */

long long lc_duration(const char *s)
{
	char *end;
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	long long n = strtoll(s, &end, 10);
	long long mult;
	if (!strcmp(end, "s"))
		mult = 1;
	else if (!strcmp(end, "m"))
		mult = 60;
	else if (!strcmp(end, "h"))
		mult = 3600;
	else if (!strcmp(end, "d"))
		mult = DAY;
	else
		return -1;
	if (n <= 0 || n > 3660 * DAY / mult)
		return -1;
	return n * mult;
}

time_t lc_time_parse(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	int y, mo, d, h, mi, se;
	char z;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi,
			 &se, &z) != 7 || z != 'Z')
		return 0;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	return timegm(&tm);
}

/* ---- holds ---- */

static char *hold_path(const struct lake *l, const char *target,
		       const char *reason)
{
	char h[SHA256_HEX];
	sha256_hex_once(reason, strlen(reason), h);
	char *t = xstrdup(target);
	for (char *p = t; *p; p++)
		if (*p == '/')
			*p = '+';
	char *path = lake_path(l, "holds/%s@%.16s.json", t, h);
	free(t);
	return path;
}

static char *rec_string(const struct rec *r, const char *key)
{
	int i = rec_get(r, 0, key);
	struct buf b = BUF_INIT;
	if (i < 0 || rec_str(r, i, &b) < 0) {
		buf_release(&b);
		return xstrdup("");
	}
	if (!b.data)
		return xstrdup("");
	return buf_detach(&b);
}

enum mlk_status lc_holds_load(const struct lake *l, struct lc_hold **v,
			      size_t *n, struct mlk_error *e)
{
	*v = NULL;
	*n = 0;
	char *dir = lake_path(l, "holds");
	char **names;
	size_t nn;
	enum mlk_status s = fsio_list(dir, ".json", &names, &nn, e);
	if (s != MLK_OK) {
		free(dir);
		return s;
	}
	if (nn)
		*v = xcalloc(nn, sizeof **v);
	struct rec r;
	rec_init(&r);
	for (size_t i = 0; i < nn && s == MLK_OK; i++) {
		char *p = xasprintf("%s/%s.json", dir, names[i]);
		char *data;
		size_t len;
		s = fsio_read_file(p, &data, &len, e);
		if (s == MLK_OK) {
			if (rec_parse(&r, data, len, e) != MLK_OK) {
				s = mlk_error_set(e, MLK_INTEGRITY, p, 1,
						  "not a hold record");
			} else {
				struct lc_hold *h = &(*v)[(*n)++];
				h->target = rec_string(&r, "target");
				h->zone = rec_string(&r, "zone");
				h->dataset = rec_string(&r, "dataset");
				h->reason = rec_string(&r, "reason");
				h->by = rec_string(&r, "by");
				h->since = rec_string(&r, "since");
			}
			free(data);
		}
		free(p);
	}
	rec_release(&r);
	fsio_list_free(names, nn);
	free(dir);
	if (s != MLK_OK) {
		lc_holds_free(*v, *n);
		*v = NULL;
		*n = 0;
	}
	return s;
}

void lc_holds_free(struct lc_hold *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].target);
		free(v[i].zone);
		free(v[i].dataset);
		free(v[i].reason);
		free(v[i].by);
		free(v[i].since);
	}
	free(v);
}

enum mlk_status lc_hold_add(const struct lake *l, const char *target,
			    const char *zone, const char *dataset,
			    const char *reason, const char *by, time_t now,
			    int *existed, struct mlk_error *e)
{
	char *p = hold_path(l, target, reason);
	*existed = fsio_exists(p);
	enum mlk_status s = MLK_OK;
	if (!*existed) {
		char *dir = lake_path(l, "holds");
		s = fsio_mkdirs(dir, 0755, e);
		free(dir);
		char ts[32];
		lake_time_iso(now, ts);
		struct buf b = BUF_INIT;
		buf_addstr(&b, "{\"target\":");
		buf_add_json_cstr(&b, target);
		buf_addstr(&b, ",\"zone\":");
		buf_add_json_cstr(&b, zone);
		buf_addstr(&b, ",\"dataset\":");
		buf_add_json_cstr(&b, dataset);
		buf_addstr(&b, ",\"reason\":");
		buf_add_json_cstr(&b, reason);
		buf_addstr(&b, ",\"by\":");
		buf_add_json_cstr(&b, by);
		buf_addf(&b, ",\"since\":\"%s\"}\n", ts);
		if (s == MLK_OK)
			s = fsio_write_atomic(p, b.data, b.len, 0444, e);
		buf_release(&b);
	}
	free(p);
	return s;
}

enum mlk_status lc_hold_release(const struct lake *l, const char *target,
				const char *reason, int *found,
				struct mlk_error *e)
{
	char *p = hold_path(l, target, reason);
	*found = fsio_exists(p);
	enum mlk_status s = MLK_OK;
	if (*found) {
		if (unlink(p) != 0)
			s = mlk_error_errno(e, p, "cannot remove");
		else
			s = fsio_fsync_parent(p, e);
	}
	free(p);
	return s;
}

size_t lc_held(const struct lc_hold *v, size_t n, const char *id,
	       const char *zone, const char *dataset)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct lc_hold *h = &v[i];
		if (strcmp(h->dataset, dataset) || (zone && strcmp(h->zone, zone)))
			continue;
		/* A dataset hold covers all its snapshots; a snapshot hold
		 * covers that snapshot, and counts for its dataset. */
		if (strchr(h->target, '/') || !id || !strcmp(h->target, id))
			k++;
	}
	return k;
}

/* ---- status ---- */

static const char *zone_default_class(const char *zone)
{
	if (zone && !strcmp(zone, "raw"))
		return "active-clinical";
	if (zone && !strcmp(zone, "training"))
		return "training-approved";
	return "research-ready";
}

/* Class, jurisdiction and the descriptor's own legal_hold flag. */
static int dataset_info(const struct lake *l, const char *zone,
			const char *dataset, char cls[64], char juris[256])
{
	snprintf(cls, 64, "%s", zone_default_class(zone));
	juris[0] = '\0';
	struct ynode *d = NULL;
	struct mlk_error e = MLK_ERROR_INIT;
	if (!catalog_exists(l, dataset) ||
	    catalog_load(l, dataset, &d, &e) != MLK_OK)
		return 0;
	const char *r = ynode_str(d, "retention");
	if (r && *r)
		snprintf(cls, 64, "%s", r);
	const char *j = ynode_str(d, "jurisdiction");
	if (j)
		snprintf(juris, 256, "%s", j);
	const char *h = ynode_str(d, "legal_hold");
	int held = h && !strcmp(h, "true");
	ynode_free(d);
	return held;
}

void lc_status_of(const struct lifecycle *lc, const char *zone,
		  const char *dataset, time_t created, size_t holds,
		  time_t now, struct lc_status *st)
{
	memset(st, 0, sizeof *st);
	if (dataset_info(lc->l, zone, dataset, st->cls, st->jurisdiction))
		holds++;
	st->holds = holds;
	st->created = created;
	const struct lc_class *c = lc_class_find(lc, st->cls);
	if (c && created) {
		st->min_until = created + (time_t)(c->min_days * DAY);
		if (c->max_days >= 0)
			st->max_until = created + (time_t)(c->max_days * DAY);
	}
	if (holds)
		st->deletion = "held";
	else if (!c || !c->deletable || !created)
		st->deletion = "never";
	else if (now < st->min_until)
		st->deletion = "retained";
	else if (st->max_until && now >= st->max_until)
		st->deletion = "due";
	else
		st->deletion = "eligible";
}

static struct ynode *map_new(void)
{
	struct ynode *n = xcalloc(1, sizeof *n);
	n->type = YNODE_MAP;
	return n;
}

enum mlk_status lc_describe(const struct lake *l, struct ynode *desc,
			    time_t now, struct mlk_error *e)
{
	const char *ds = ynode_str(desc, "dataset");
	if (!ds)
		return MLK_OK;
	struct lifecycle lc;
	enum mlk_status s = lc_open(l, &lc, e);
	if (s != MLK_OK)
		return s;
	struct lc_hold *hv;
	size_t hn;
	s = lc_holds_load(l, &hv, &hn, e);
	if (s != MLK_OK) {
		lc_close(&lc);
		return s;
	}
	char *dataset = xstrdup(ds);
	size_t holds = lc_held(hv, hn, NULL, NULL, dataset);
	struct lc_status st;
	lc_status_of(&lc, NULL, dataset,
		     lc_time_parse(ynode_str(desc, "created")), holds, now,
		     &st);
	const struct lc_class *c = lc_class_find(&lc, st.cls);
	struct ynode *m = map_new();
	catalog_map_put(m, "class", catalog_scalar(st.cls, 1));
	catalog_map_put(m, "known_class", catalog_scalar(c ? "true" : "false",
							  0));
	catalog_map_put(m, "jurisdiction",
			catalog_scalar(st.jurisdiction, 1));
	struct ynode *hs = catalog_seq();
	for (size_t i = 0; i < hn; i++) {
		if (strcmp(hv[i].dataset, dataset))
			continue;
		struct ynode *h = map_new();
		catalog_map_put(h, "target", catalog_scalar(hv[i].target, 1));
		catalog_map_put(h, "reason", catalog_scalar(hv[i].reason, 1));
		catalog_map_put(h, "by", catalog_scalar(hv[i].by, 1));
		catalog_map_put(h, "since", catalog_scalar(hv[i].since, 1));
		catalog_seq_push(hs, h);
	}
	catalog_map_put(m, "holds", hs);
	catalog_map_put(m, "deletion", catalog_scalar(st.deletion, 1));
	catalog_map_put(desc, "legal_hold",
			catalog_scalar(st.holds ? "true" : "false", 0));
	catalog_map_put(desc, "lifecycle", m);
	free(dataset);
	lc_holds_free(hv, hn);
	lc_close(&lc);
	return MLK_OK;
}

/* ---- references: which blobs the lake still needs, and where ---- */

struct ref {
	char sha256[SHA256_HEX];
	int want;               /* the tier it belongs in */
	unsigned long long size;
	char reason[160];
};

struct refs {
	const struct lifecycle *lc;
	time_t now;
	struct ref *v;
	size_t n, alloc;
	/* the batch being read */
	int want;
	char reason[160];
	const char *dataset;
};

static void want_tier(const struct lifecycle *lc, const char *zone,
		      const char *dataset, time_t created, time_t now,
		      int *want, char reason[160])
{
	char cls[64], juris[256];
	dataset_info(lc->l, zone, dataset, cls, juris);
	const struct lc_class *c = lc_class_find(lc, cls);
	long long age = created && now > created ? (now - created) / DAY : 0;
	*want = 0;
	if (!c) {
		snprintf(reason, 160, "unknown class %.60s: stays hot", cls);
		return;
	}
	if (created && age >= c->tier_after_days) {
		int t = lc_tier_find(lc, c->tier);
		if (t >= 0)
			*want = t;
	}
	snprintf(reason, 160, "class %.40s, %lld days old, %.40s after %lld days",
		 c->name, age, c->tier, c->tier_after_days);
}

static void ref_push(struct refs *r, const char *sha, unsigned long long size,
		     int want, const char *reason)
{
	if (strlen(sha) != SHA256_HEX - 1)
		return;
	XGROW(r->v, r->alloc, r->n + 1);
	struct ref *x = &r->v[r->n++];
	snprintf(x->sha256, sizeof x->sha256, "%s", sha);
	x->want = want;
	x->size = size;
	snprintf(x->reason, sizeof x->reason, "%s", reason);
}

static int on_batch(void *ctx, const struct rec *r, int is_header)
{
	struct refs *rf = ctx;
	if (is_header) {
		char *created = rec_string(r, "created");
		want_tier(rf->lc, "raw", rf->dataset, lc_time_parse(created),
			  rf->now, &rf->want, rf->reason);
		free(created);
		return 0;
	}
	int ent = rec_get(r, 0, "entry");
	if (ent < 0 || !rec_str_eq(r, ent, "source"))
		return 0;
	char *sha = rec_string(r, "sha256");
	int si = rec_get(r, 0, "size");
	unsigned long long size = 0;
	if (si >= 0) {
		size_t n;
		const char *p = rec_raw(r, si, &n);
		char tmp[32];
		if (n < sizeof tmp) {
			memcpy(tmp, p, n);
			tmp[n] = '\0';
			size = strtoull(tmp, NULL, 10);
		}
	}
	ref_push(rf, sha, size, rf->want, rf->reason);
	free(sha);
	return 0;
}

/* Every batch below raw/, depth first: datasets are 1 to 4 levels. */
static enum mlk_status walk_raw(struct refs *rf, const char *dir,
				const char *rel, int depth,
				struct mlk_error *e)
{
	char **names;
	size_t n;
	enum mlk_status s = fsio_list(dir, "", &names, &n, e);
	for (size_t i = 0; i < n && s == MLK_OK; i++) {
		if (names[i][0] == '_')
			continue;
		char *p = xasprintf("%s/%s", dir, names[i]);
		if (!strncmp(names[i], "batch=", 6) && *rel) {
			char *mp = xasprintf("%s/_manifest.json", p);
			rf->dataset = rel;
			if (fsio_exists(mp))
				s = manifest_read(mp, on_batch, rf, e);
			free(mp);
		} else if (depth < 4 && fsio_is_dir(p)) {
			char *r2 = *rel ? xasprintf("%s/%s", rel, names[i])
					: xstrdup(names[i]);
			s = walk_raw(rf, p, r2, depth + 1, e);
			free(r2);
		}
		free(p);
	}
	fsio_list_free(names, n);
	return s;
}

static int cmp_ref(const void *a, const void *b)
{
	const struct ref *x = a, *y = b;
	int c = strcmp(x->sha256, y->sha256);
	return c ? c : x->want - y->want;
}

/* All references, one per blob (the hottest tier any of them wants). */
static enum mlk_status refs_collect(const struct lifecycle *lc, time_t now,
				   struct refs *rf, struct mlk_error *e)
{
	memset(rf, 0, sizeof *rf);
	rf->lc = lc;
	rf->now = now;
	struct snapshot *sv;
	size_t sn;
	enum mlk_status s = snap_list(lc->l, &sv, &sn, e);
	if (s != MLK_OK)
		return s;
	for (size_t i = 0; i < sn; i++) {
		int want;
		char reason[160];
		want_tier(lc, sv[i].zone, sv[i].dataset,
			  lc_time_parse(sv[i].created), now, &want, reason);
		for (size_t k = 0; k < sv[i].nf; k++)
			ref_push(rf, sv[i].f[k].sha256, sv[i].f[k].size, want,
				 reason);
		snap_release(&sv[i]);
	}
	free(sv);
	char *raw = lake_path(lc->l, "raw");
	s = walk_raw(rf, raw, "", 0, e);
	free(raw);
	if (s != MLK_OK)
		return s;
	if (rf->n)
		qsort(rf->v, rf->n, sizeof *rf->v, cmp_ref);
	/* Sorted by blob, then by tier: keep the first of each blob. */
	size_t w = 0;
	for (size_t i = 0; i < rf->n; i++)
		if (!w || strcmp(rf->v[w - 1].sha256, rf->v[i].sha256))
			rf->v[w++] = rf->v[i];
	rf->n = w;
	return MLK_OK;
}

static int ref_known(const struct refs *rf, const char *sha)
{
	size_t lo = 0, hi = rf->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(rf->v[mid].sha256, sha);
		if (!c)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* ---- tiering ---- */

enum mlk_status lc_tier_plan(const struct lifecycle *lc, time_t now,
			     struct lc_move **v, size_t *n,
			     struct mlk_error *e)
{
	*v = NULL;
	*n = 0;
	struct refs rf;
	enum mlk_status s = refs_collect(lc, now, &rf, e);
	if (s != MLK_OK) {
		free(rf.v);
		return s;
	}
	size_t alloc = 0;
	for (size_t i = 0; i < rf.n; i++) {
		const struct ref *r = &rf.v[i];
		int from = -1, at_want = 0;
		for (size_t t = 0; t < lc->ntier; t++) {
			char *p = tier_path(lc, (int)t, r->sha256);
			int here = fsio_exists(p);
			free(p);
			if (!here)
				continue;
			if ((int)t == r->want)
				at_want = 1;
			else if (from < 0)
				from = (int)t;
		}
		/* In place, or nowhere (verify reports that): no move.  In
		 * two tiers: a killed move, which the plan finishes. */
		if (from < 0)
			continue;
		XGROW(*v, alloc, *n + 1);
		struct lc_move *m = &(*v)[(*n)++];
		snprintf(m->sha256, sizeof m->sha256, "%s", r->sha256);
		m->from = from;
		m->to = r->want;
		m->size = r->size;
		snprintf(m->reason, sizeof m->reason, "%.130s%s", r->reason,
			 at_want ? " (finishing a move)" : "");
	}
	free(rf.v);
	return MLK_OK;
}

/* Copy src to fd, syncing it. */
static enum mlk_status copy_to(const char *src, int out, const char *tmp,
			       struct mlk_error *e)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return mlk_error_errno(e, src, "cannot open");
	size_t cap = 1 << 20;
	char *chunk = xmalloc(cap);
	enum mlk_status s = MLK_OK;
	for (;;) {
		ssize_t r = read(in, chunk, cap);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			s = mlk_error_errno(e, src, "read error");
			break;
		}
		if (r == 0)
			break;
		s = fsio_write_all(out, chunk, (size_t)r, tmp, e);
		if (s != MLK_OK)
			break;
	}
	free(chunk);
	close(in);
	if (s == MLK_OK && fsync(out) != 0)
		s = mlk_error_errno(e, tmp, "cannot sync");
	return s;
}

enum mlk_status lc_tier_move(const struct lifecycle *lc,
			     const struct lc_move *m, struct mlk_error *e)
{
	char *src = tier_path(lc, m->from, m->sha256);
	char *dst = tier_path(lc, m->to, m->sha256);
	enum mlk_status s = MLK_OK;
	/* The destination exists only once verified: then only the old
	 * copy is left to remove. */
	if (!fsio_exists(dst)) {
		char *dir = xasprintf("%s/sha256/%.2s", lc->tier[m->to].dir,
				      m->sha256);
		char *stem = xasprintf("%s/tier-%s", dir, m->sha256);
		int fd = -1;
		char *tmp = NULL;
		s = fsio_mkdirs(dir, 0755, e);
		if (s == MLK_OK)
			s = fsio_temp_beside(stem, &fd, &tmp, e);
		if (s == MLK_OK)
			s = copy_to(src, fd, tmp, e);
		char got[SHA256_HEX];
		if (s == MLK_OK)
			s = sha256_file(tmp, got, NULL, e);
		if (s == MLK_OK && strcmp(got, m->sha256))
			s = mlk_error_set(e, MLK_INTEGRITY, src, 0,
					  "bytes do not match the object's "
					  "name; not moved");
		if (s == MLK_OK) {
			s = fsio_commit(fd, tmp, dst, 0444, 0, e);
			fd = -1;
		}
		if (fd >= 0)
			close(fd);
		if (s != MLK_OK && tmp)
			unlink(tmp);
		free(tmp);
		free(stem);
		free(dir);
	}
	if (s == MLK_OK && fsio_exists(src)) {
		if (unlink(src) != 0)
			s = mlk_error_errno(e, src, "cannot remove");
		else
			s = fsio_fsync_parent(src, e);
	}
	free(src);
	free(dst);
	return s;
}

/* Call fn on each file of each TIER/sha256/XX/ and TIER/ itself. */
typedef enum mlk_status (*each_fn)(void *ctx, int tier, const char *dir,
				   const char *name, struct mlk_error *e);

static enum mlk_status each_dir(const char *dir, int tier, each_fn fn,
				void *ctx, struct mlk_error *e)
{
	DIR *dp = opendir(dir);
	if (!dp)
		return errno == ENOENT ? MLK_OK
		       : mlk_error_errno(e, dir, "cannot read directory");
	char **names = NULL;
	size_t n = 0, alloc = 0;
	struct dirent *de;
	while ((de = readdir(dp))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		XGROW(names, alloc, n + 1);
		names[n++] = xstrdup(de->d_name);
	}
	closedir(dp);
	enum mlk_status s = MLK_OK;
	for (size_t i = 0; i < n; i++) {
		if (s == MLK_OK)
			s = fn(ctx, tier, dir, names[i], e);
		free(names[i]);
	}
	free(names);
	return s;
}

struct walk {
	each_fn fn;
	void *ctx;
};

static enum mlk_status walk_sub(void *ctx, int tier, const char *dir,
				const char *name, struct mlk_error *e)
{
	struct walk *w = ctx;
	if (strlen(name) != 2)
		return MLK_OK;
	char *p = xasprintf("%s/%s", dir, name);
	enum mlk_status s = each_dir(p, tier, w->fn, w->ctx, e);
	free(p);
	return s;
}

static enum mlk_status walk_tiers(const struct lifecycle *lc, each_fn fn,
				  void *ctx, struct mlk_error *e)
{
	struct walk w = { fn, ctx };
	enum mlk_status s = MLK_OK;
	for (size_t t = 0; t < lc->ntier && s == MLK_OK; t++) {
		s = each_dir(lc->tier[t].dir, (int)t, fn, ctx, e);
		char *p = xasprintf("%s/sha256", lc->tier[t].dir);
		if (s == MLK_OK)
			s = each_dir(p, (int)t, walk_sub, &w, e);
		free(p);
	}
	return s;
}

static enum mlk_status clean_one(void *ctx, int tier, const char *dir,
				 const char *name, struct mlk_error *e)
{
	(void)tier;
	size_t *n = ctx;
	if (strncmp(name, ".tmp-tier-", 10))
		return MLK_OK;
	char *p = xasprintf("%s/%s", dir, name);
	enum mlk_status s = MLK_OK;
	if (unlink(p) != 0 && errno != ENOENT)
		s = mlk_error_errno(e, p, "cannot remove");
	else
		(*n)++;
	free(p);
	return s;
}

enum mlk_status lc_tier_cleanup(const struct lifecycle *lc, size_t *n,
				struct mlk_error *e)
{
	*n = 0;
	return walk_tiers(lc, clean_one, n, e);
}

/* ---- gc ---- */

struct gcw {
	const struct lifecycle *lc;
	const struct refs *rf;
	time_t now;
	struct lc_gc *v;
	size_t n, alloc;
};

static int is_hex64(const char *s)
{
	size_t i = 0;
	for (; s[i]; i++)
		if (!isdigit((unsigned char)s[i]) &&
		    (s[i] < 'a' || s[i] > 'f'))
			return 0;
	return i == SHA256_HEX - 1;
}

static enum mlk_status gc_one(void *ctx, int tier, const char *dir,
			      const char *name, struct mlk_error *e)
{
	(void)e;
	struct gcw *g = ctx;
	int temp = !strncmp(name, ".tmp-", 5);
	if (!temp && (!is_hex64(name) || ref_known(g->rf, name)))
		return MLK_OK;
	char *p = xasprintf("%s/%s", dir, name);
	struct stat st;
	if (lstat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
		free(p);
		return MLK_OK;
	}
	long long age = (long long)(g->now - st.st_mtime) / DAY;
	if ((long long)(g->now - st.st_mtime) < g->lc->gc_grace_days * DAY) {
		free(p);
		return MLK_OK;
	}
	XGROW(g->v, g->alloc, g->n + 1);
	struct lc_gc *x = &g->v[g->n++];
	memset(x, 0, sizeof *x);
	x->path = p;
	if (!temp)
		snprintf(x->sha256, sizeof x->sha256, "%s", name);
	x->tier = tier;
	x->size = (unsigned long long)st.st_size;
	x->age_days = age;
	x->reason = temp ? "stale temp file" : "unreferenced";
	return MLK_OK;
}

static int cmp_gc(const void *a, const void *b)
{
	return strcmp(((const struct lc_gc *)a)->path,
		      ((const struct lc_gc *)b)->path);
}

enum mlk_status lc_gc_plan(const struct lifecycle *lc, time_t now,
			   struct lc_gc **v, size_t *n, struct mlk_error *e)
{
	*v = NULL;
	*n = 0;
	struct refs rf;
	/* Any reference that cannot be read stops gc: fail closed. */
	enum mlk_status s = refs_collect(lc, now, &rf, e);
	struct gcw g = { lc, &rf, now, NULL, 0, 0 };
	if (s == MLK_OK)
		s = walk_tiers(lc, gc_one, &g, e);
	free(rf.v);
	if (s != MLK_OK) {
		lc_gc_free(g.v, g.n);
		return s;
	}
	if (g.n)
		qsort(g.v, g.n, sizeof *g.v, cmp_gc);
	*v = g.v;
	*n = g.n;
	return MLK_OK;
}

void lc_gc_free(struct lc_gc *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

enum mlk_status lc_gc_remove(const struct lc_gc *g, struct mlk_error *e)
{
	if (unlink(g->path) != 0 && errno != ENOENT)
		return mlk_error_errno(e, g->path, "cannot remove");
	return fsio_fsync_parent(g->path, e);
}

enum mlk_status lc_lock(const struct lake *l, int *fd, struct mlk_error *e)
{
	char *p = lake_path(l, "objects/.lifecycle.lock");
	enum mlk_status s = fsio_lock(p, fd, e);
	free(p);
	return s;
}
