#include "model.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "catalog.h"
#include "crypto.h"
#include "fsio.h"
#include "manifest.h"
#include "xalloc.h"
#include "banned.h"

static const char *const stages[] = {
	"registered", "validated", "approved", "deployed", "deprecated",
};
#define NSTAGES (sizeof stages / sizeof stages[0])

static int name_chars(const char *s, size_t max, int upper)
{
	size_t n = strlen(s);
	if (!n || n > max || !(isalnum((unsigned char)s[0])))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!(islower(c) || isdigit(c) || c == '.' || c == '_' ||
		      c == '-' || (upper && isupper(c))))
			return 0;
	}
	return upper || !isupper((unsigned char)s[0]);
}

int model_name_valid(const char *name)
{
	return name_chars(name, 64, 0);
}

int model_snapshot_valid(const char *id)
{
	return name_chars(id, 128, 1);
}

int model_ref_parse(const char *ref, char name[65], long long *version)
{
	const char *at = strrchr(ref, '@');
	if (!at || at == ref || (size_t)(at - ref) > 64)
		return 0;
	memcpy(name, ref, (size_t)(at - ref));
	name[at - ref] = '\0';
	char *end;
	errno = 0;
	long long v = strtoll(at + 1, &end, 10);
	if (errno || *end || v <= 0 || !isdigit((unsigned char)at[1]))
		return 0;
	*version = v;
	return model_name_valid(name);
}

static long long latest_version(const char *dir)
{
	DIR *dp = opendir(dir);
	if (!dp)
		return 0;
	long long max = 0;
	struct dirent *de;
	while ((de = readdir(dp))) {
		char *end;
		long long v = strtoll(de->d_name, &end, 10);
		if (v > max && !strcmp(end, ".yaml") &&
		    isdigit((unsigned char)de->d_name[0]))
			max = v;
	}
	closedir(dp);
	return max;
}

static struct ynode *map_new(void)
{
	struct ynode *n = xcalloc(1, sizeof *n);
	n->type = YNODE_MAP;
	return n;
}

static struct ynode *history_item(const char *stage, const char *ts,
				  const char *user)
{
	struct ynode *h = map_new();
	catalog_map_put(h, "stage", catalog_scalar(stage, 1));
	catalog_map_put(h, "time", catalog_scalar(ts, 1));
	catalog_map_put(h, "by", catalog_scalar(user, 1));
	return h;
}

static enum mlk_status write_entry(const struct lake *l, const char *name,
				   long long v, const struct ynode *ent,
				   struct mlk_error *e)
{
	struct buf b = BUF_INIT;
	catalog_yaml(ent, &b);
	char *p = lake_path(l, "catalog/models/%s/%lld.yaml", name, v);
	enum mlk_status s = fsio_write_atomic(p, b.data, b.len, 0644, e);
	free(p);
	buf_release(&b);
	return s;
}

static enum mlk_status copy_file(const char *src, const char *dst,
				 char hex[SHA256_HEX], struct mlk_error *e)
{
	char *data = NULL;
	size_t len = 0;
	enum mlk_status s = fsio_read_file(src, &data, &len, e);
	if (s == MLK_OK) {
		sha256_hex_once(data, len, hex);
		s = fsio_write_atomic(dst, data, len, 0444, e);
	}
	free(data);
	return s;
}

/* Add or update NAME@N in a dataset's descriptor's models list. */
struct note {
	const char *ref, *snapshot, *stage;
};

static enum mlk_status note_models(struct ynode *d, void *ctx,
				   struct mlk_error *e)
{
	const struct note *nt = ctx;
	(void)e;
	const struct ynode *cm = ynode_get(d, "models");
	struct ynode *models = (struct ynode *)cm;
	if (!models || models->type != YNODE_SEQ) {
		models = catalog_seq();
		catalog_map_put(d, "models", models);
	}
	struct ynode *item = NULL;
	for (size_t i = 0; i < models->n; i++) {
		const char *m = ynode_str(models->items[i], "model");
		if (m && !strcmp(m, nt->ref))
			item = models->items[i];
	}
	if (!item) {
		item = map_new();
		catalog_map_put(item, "model", catalog_scalar(nt->ref, 1));
		catalog_map_put(item, "snapshot",
				catalog_scalar(nt->snapshot, 1));
		catalog_seq_push(models, item);
	}
	catalog_map_put(item, "stage", catalog_scalar(nt->stage, 1));
	return MLK_OK;
}

/* The model's line in a dataset's descriptor, under the catalog lock. */
static enum mlk_status note_in_descriptor(const struct lake *l,
					  const char *dataset,
					  const char *ref,
					  const char *snapshot,
					  const char *stage,
					  struct mlk_error *e)
{
	struct note nt = { ref, snapshot, stage };
	return catalog_update(l, dataset, note_models, &nt, e);
}

/* The dataset a snapshot manifest names in its header, if it is here. */
static int snap_cb(void *ctx, const struct rec *r, int is_header)
{
	if (!is_header)
		return 1;
	int k = rec_get(r, 0, "dataset");
	if (k >= 0 && rec_type(r, k) == REC_STRING)
		rec_str(r, k, ctx);
	return 1;
}

enum mlk_status model_register(const struct lake *l,
			       const struct model_reg *m, long long *version,
			       struct mlk_error *e)
{
	if (!model_name_valid(m->name))
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "'%s' is not a valid model name",
				     m->name);
	if (!model_snapshot_valid(m->snapshot))
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "'%s' is not a valid snapshot id",
				     m->snapshot);
	/* The snapshot tool may not be here yet: check only what exists. */
	struct buf snapds = BUF_INIT;
	char *sdir = lake_path(l, "snapshots");
	int have_snaps = 0;
	DIR *dp = opendir(sdir);
	if (dp) {
		struct dirent *de;
		while ((de = readdir(dp)))
			if (de->d_name[0] != '.')
				have_snaps = 1;
		closedir(dp);
	}
	if (have_snaps) {
		char *c1 = lake_path(l, "snapshots/%s", m->snapshot);
		char *c2 = lake_path(l, "snapshots/%s.json", m->snapshot);
		char *c3 = lake_path(l, "snapshots/%s/_manifest.json",
				     m->snapshot);
		const char *mf = fsio_exists(c3) ? c3 : fsio_exists(c2) ? c2 :
				 (fsio_exists(c1) && !fsio_is_dir(c1)) ? c1 :
				 NULL;
		if (mf) {
			struct mlk_error ig = MLK_ERROR_INIT;
			manifest_read(mf, snap_cb, &snapds, &ig);
		}
		int found = fsio_exists(c1) || fsio_exists(c2);
		free(c1);
		free(c2);
		free(c3);
		if (!found) {
			free(sdir);
			buf_release(&snapds);
			return mlk_error_set(e, MLK_USAGE, NULL, 0,
					     "no snapshot '%s' in the lake",
					     m->snapshot);
		}
	}
	free(sdir);
	for (size_t i = 0; i < m->ndatasets; i++) {
		if (!catalog_exists(l, m->datasets[i])) {
			buf_release(&snapds);
			return mlk_error_set(e, MLK_USAGE, NULL, 0,
					     "dataset '%s' is not in the "
					     "catalog", m->datasets[i]);
		}
	}

	char *dir = lake_path(l, "catalog/models/%s", m->name);
	enum mlk_status s = fsio_mkdirs(dir, 0755, e);
	char *lock = lake_path(l, "catalog/models/.lock");
	int fd = -1;
	if (s == MLK_OK)
		s = fsio_lock(lock, &fd, e);
	free(lock);
	if (s != MLK_OK) {
		free(dir);
		buf_release(&snapds);
		return s;
	}
	long long v = latest_version(dir) + 1;
	char ph[SHA256_HEX] = "", mh[SHA256_HEX] = "";
	char *pp = lake_path(l, "catalog/models/%s/%lld.params", m->name, v);
	char *mp = lake_path(l, "catalog/models/%s/%lld.metrics", m->name,
			     v);
	s = copy_file(m->params_path, pp, ph, e);
	if (s == MLK_OK)
		s = copy_file(m->metrics_path, mp, mh, e);
	free(pp);
	free(mp);

	char ts[32], num[32], ref[96];
	lake_time_iso(m->now, ts);
	snprintf(num, sizeof num, "%lld", v);
	snprintf(ref, sizeof ref, "%s@%lld", m->name, v);
	struct ynode *ent = map_new();
	catalog_map_put(ent, "model", catalog_scalar(m->name, 1));
	catalog_map_put(ent, "version", catalog_scalar(num, 0));
	catalog_map_put(ent, "ref", catalog_scalar(ref, 1));
	catalog_map_put(ent, "snapshot", catalog_scalar(m->snapshot, 1));
	catalog_map_put(ent, "code", catalog_scalar(m->code, 1));
	struct ynode *dss = catalog_seq();
	for (size_t i = 0; i < m->ndatasets; i++)
		catalog_seq_push(dss, catalog_scalar(m->datasets[i], 1));
	if (snapds.len && lake_dataset_valid(snapds.data)) {
		int dup = 0;
		for (size_t i = 0; i < m->ndatasets; i++)
			dup |= !strcmp(m->datasets[i], snapds.data);
		if (!dup && catalog_exists(l, snapds.data))
			catalog_seq_push(dss, catalog_scalar(snapds.data, 1));
	}
	catalog_map_put(ent, "datasets", dss);
	catalog_map_put(ent, "params_sha256", catalog_scalar(ph, 1));
	catalog_map_put(ent, "metrics_sha256", catalog_scalar(mh, 1));
	catalog_map_put(ent, "stage", catalog_scalar("registered", 1));
	catalog_map_put(ent, "registered", catalog_scalar(ts, 1));
	catalog_map_put(ent, "by", catalog_scalar(m->user, 1));
	struct ynode *hist = catalog_seq();
	catalog_seq_push(hist, history_item("registered", ts, m->user));
	catalog_map_put(ent, "history", hist);
	if (s == MLK_OK)
		s = write_entry(l, m->name, v, ent, e);
	fsio_unlock(fd);
	for (size_t i = 0; s == MLK_OK && i < dss->n; i++)
		s = note_in_descriptor(l, dss->items[i]->scalar, ref,
				       m->snapshot, "registered", e);
	ynode_free(ent);
	free(dir);
	buf_release(&snapds);
	*version = v;
	return s;
}

enum mlk_status model_load(const struct lake *l, const char *name,
			   long long version, struct ynode **out,
			   struct mlk_error *e)
{
	if (!model_name_valid(name))
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "'%s' is not a valid model name", name);
	if (version <= 0) {
		char *dir = lake_path(l, "catalog/models/%s", name);
		version = latest_version(dir);
		free(dir);
	}
	char *p = lake_path(l, "catalog/models/%s/%lld.yaml", name, version);
	enum mlk_status s;
	if (version <= 0 || !fsio_exists(p))
		s = mlk_error_set(e, MLK_USAGE, NULL, 0,
				  "no model '%s' version %lld", name, version);
	else
		s = ynode_load_file(p, out, e);
	free(p);
	return s;
}

static int stage_index(const char *s)
{
	for (size_t i = 0; i < NSTAGES; i++)
		if (s && !strcmp(s, stages[i]))
			return (int)i;
	return -1;
}

enum mlk_status model_promote(const struct lake *l, const char *name,
			      long long version, const char *stage,
			      const char *user, time_t now, char from[32],
			      struct mlk_error *e)
{
	int to = stage_index(stage);
	if (to <= 0)
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "stage must be validated, approved, "
				     "deployed or deprecated");
	struct ynode *ent = NULL;
	enum mlk_status s = model_load(l, name, version, &ent, e);
	if (s != MLK_OK)
		return s;
	int cur = stage_index(ynode_str(ent, "stage"));
	snprintf(from, 32, "%s", cur >= 0 ? stages[cur] : "");
	if (cur < 0 || cur == (int)NSTAGES - 1 ||
	    (to != (int)NSTAGES - 1 && to != cur + 1)) {
		ynode_free(ent);
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "model '%s' version %lld cannot go from "
				     "%s to %s", name, version,
				     cur >= 0 ? stages[cur] : "?", stage);
	}
	char ts[32], ref[96];
	lake_time_iso(now, ts);
	snprintf(ref, sizeof ref, "%s@%lld", name, version);
	catalog_map_put(ent, "stage", catalog_scalar(stage, 1));
	struct ynode *hist = (struct ynode *)ynode_get(ent, "history");
	if (!hist || hist->type != YNODE_SEQ) {
		hist = catalog_seq();
		catalog_map_put(ent, "history", hist);
	}
	catalog_seq_push(hist, history_item(stage, ts, user));
	s = write_entry(l, name, version, ent, e);
	const struct ynode *dss = ynode_get(ent, "datasets");
	const char *snap = ynode_str(ent, "snapshot");
	for (size_t i = 0; s == MLK_OK && dss && dss->type == YNODE_SEQ &&
			   i < dss->n; i++)
		if (dss->items[i]->type == YNODE_SCALAR &&
		    catalog_exists(l, dss->items[i]->scalar))
			s = note_in_descriptor(l, dss->items[i]->scalar, ref,
					       snap ? snap : "", stage, e);
	ynode_free(ent);
	return s;
}

enum mlk_status model_list(const struct lake *l, model_fn fn, void *ctx,
			   struct mlk_error *e)
{
	char *dir = lake_path(l, "catalog/models");
	char **names;
	size_t n;
	enum mlk_status ls = fsio_list(dir, "", &names, &n, e);
	if (ls != MLK_OK) {
		free(dir);
		return ls;
	}
	enum mlk_status s = MLK_OK;
	for (size_t i = 0; i < n; i++) {
		if (!model_name_valid(names[i])) {
			free(names[i]);
			continue;
		}
		char *md = xasprintf("%s/%s", dir, names[i]);
		long long last = latest_version(md);
		free(md);
		for (long long v = 1; s == MLK_OK && v <= last; v++) {
			struct ynode *ent = NULL;
			char *p = lake_path(l, "catalog/models/%s/%lld.yaml",
					    names[i], v);
			if (fsio_exists(p)) {
				s = ynode_load_file(p, &ent, e);
				if (s == MLK_OK && fn(ctx, ent))
					s = MLK_SYSTEM;
				ynode_free(ent);
			}
			free(p);
		}
		free(names[i]);
	}
	free(names);
	free(dir);
	return s;
}
