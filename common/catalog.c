#include "catalog.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datareader.h"
#include "fsio.h"
#include "manifest.h"
#include "record.h"
#include "snapshot.h"
#include "xalloc.h"
#include "banned.h"

/* The keys people edit, in the order a new descriptor has them. */
static const char *const edit_keys[] = {
	"owner", "steward", "maintainer", "description", "source_system",
	"sensitivity", "retention", "jurisdiction", "consent", "deid",
	"legal_hold",
};
/* Keys only tools write. */
static const char *const fixed_keys[] = {
	"dataset", "created", "added_by", "derived", "models", "versions",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

char *catalog_desc_path(const struct lake *l, const char *dataset)
{
	return lake_path(l, "catalog/datasets/%s.yaml", dataset);
}

int catalog_exists(const struct lake *l, const char *dataset)
{
	char *p = catalog_desc_path(l, dataset);
	int r = fsio_exists(p);
	free(p);
	return r;
}

struct ynode *catalog_scalar(const char *text, int quoted)
{
	struct ynode *n = xcalloc(1, sizeof *n);
	n->type = YNODE_SCALAR;
	n->scalar = xstrdup(text);
	n->quoted = quoted;
	return n;
}

struct ynode *catalog_seq(void)
{
	struct ynode *n = xcalloc(1, sizeof *n);
	n->type = YNODE_SEQ;
	return n;
}

static struct ynode *new_map(void)
{
	struct ynode *n = xcalloc(1, sizeof *n);
	n->type = YNODE_MAP;
	return n;
}

void catalog_seq_push(struct ynode *seq, struct ynode *item)
{
	seq->items = xrealloc(seq->items, (seq->n + 1) * sizeof *seq->items);
	seq->items[seq->n++] = item;
}

void catalog_map_put(struct ynode *map, const char *key, struct ynode *v)
{
	for (size_t i = 0; i < map->n; i++) {
		if (!strcmp(map->keys[i], key)) {
			ynode_free(map->values[i]);
			map->values[i] = v;
			return;
		}
	}
	map->keys = xrealloc(map->keys, (map->n + 1) * sizeof *map->keys);
	map->values = xrealloc(map->values,
			       (map->n + 1) * sizeof *map->values);
	map->keys[map->n] = xstrdup(key);
	map->values[map->n++] = v;
}

struct ynode *catalog_new(const char *dataset, const char *owner,
			  time_t now)
{
	struct ynode *d = new_map();
	char ts[32];
	lake_time_iso(now, ts);
	catalog_map_put(d, "dataset", catalog_scalar(dataset, 1));
	for (size_t i = 0; i < NELEM(edit_keys); i++) {
		const char *v = "";
		if (!strcmp(edit_keys[i], "owner"))
			v = owner;
		else if (!strcmp(edit_keys[i], "sensitivity"))
			v = "restricted";
		else if (!strcmp(edit_keys[i], "deid"))
			v = "none";
		if (!strcmp(edit_keys[i], "legal_hold"))
			catalog_map_put(d, edit_keys[i],
					catalog_scalar("false", 0));
		else
			catalog_map_put(d, edit_keys[i],
					catalog_scalar(v, 1));
	}
	catalog_map_put(d, "created", catalog_scalar(ts, 1));
	/* Who catalogued it with `mlk-catalog add`; "" while only tools
	 * (ingest, snapshot) have described it. */
	catalog_map_put(d, "added_by", catalog_scalar("", 1));
	catalog_map_put(d, "models", catalog_seq());
	catalog_map_put(d, "versions", catalog_seq());
	return d;
}

enum mlk_status catalog_load(const struct lake *l, const char *dataset,
			     struct ynode **out, struct mlk_error *e)
{
	char *p = catalog_desc_path(l, dataset);
	enum mlk_status s;
	if (!fsio_exists(p)) {
		s = mlk_error_set(e, MLK_USAGE, NULL, 0,
				  "dataset '%s' is not in the catalog",
				  dataset);
	} else {
		s = ynode_load_file(p, out, e);
		if (s == MLK_OK && (*out)->type != YNODE_MAP) {
			ynode_free(*out);
			*out = NULL;
			s = mlk_error_set(e, MLK_INTEGRITY, p, 1,
					  "a descriptor must be a map");
		}
	}
	free(p);
	return s;
}

enum mlk_status catalog_set(struct ynode *d, const char *assignment,
			    struct mlk_error *e)
{
	const char *eq = strchr(assignment, '=');
	if (!eq || eq == assignment)
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "expected KEY=VALUE");
	size_t kn = (size_t)(eq - assignment);
	char key[40];
	if (kn > 32)
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "key longer than 32 bytes");
	memcpy(key, assignment, kn);
	key[kn] = '\0';
	if (!islower((unsigned char)key[0]))
		goto bad;
	for (size_t i = 0; i < kn; i++)
		if (!islower((unsigned char)key[i]) &&
		    !isdigit((unsigned char)key[i]) && key[i] != '_')
			goto bad;
	for (size_t i = 0; i < NELEM(fixed_keys); i++)
		if (!strcmp(key, fixed_keys[i]))
			return mlk_error_set(e, MLK_USAGE, NULL, 0,
					     "key '%s' is kept by mlk and "
					     "cannot be set", key);
	const char *val = eq + 1;
	if (utf8_invalid_at(val, strlen(val)) >= 0)
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "value of '%s' is not UTF-8", key);
	for (const char *p = val; *p; p++)
		if ((unsigned char)*p < 0x20)
			return mlk_error_set(e, MLK_USAGE, NULL, 0,
					     "value of '%s' holds a control "
					     "character", key);
	if (!strcmp(key, "legal_hold")) {
		if (strcmp(val, "true") && strcmp(val, "false"))
			return mlk_error_set(e, MLK_USAGE, NULL, 0,
					     "legal_hold must be true or "
					     "false");
		catalog_map_put(d, key, catalog_scalar(val, 0));
	} else {
		catalog_map_put(d, key, catalog_scalar(val, 1));
	}
	return MLK_OK;
bad:
	return mlk_error_set(e, MLK_USAGE, NULL, 0,
			     "key '%s' is not [a-z][a-z0-9_]*", key);
}

/* Emitting ---------------------------------------------------------------- */

static int is_number(const char *s)
{
	const char *p = s;
	if (*p == '-')
		p++;
	if (!isdigit((unsigned char)*p))
		return 0;
	if (*p == '0' && isdigit((unsigned char)p[1]))
		return 0;
	while (isdigit((unsigned char)*p))
		p++;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return 0;
		while (isdigit((unsigned char)*p))
			p++;
	}
	return *p == '\0';
}

/* An unquoted scalar that is safe to write back unquoted. */
static int plain_ok(const struct ynode *n)
{
	if (n->quoted || !*n->scalar)
		return 0;
	if (is_number(n->scalar) || !strcmp(n->scalar, "true") ||
	    !strcmp(n->scalar, "false") || !strcmp(n->scalar, "null"))
		return 1;
	return 0;
}

static void yaml_key(const char *k, struct buf *out)
{
	int plain = *k != '\0';
	for (const char *p = k; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
			plain = 0;
	if (plain)
		buf_addstr(out, k);
	else
		buf_add_json_cstr(out, k);
}

/*
 * A node on one line: YAML flow style (", " and ": ", keys as YAML) or,
 * with json, compact JSON, where a quoted "null" stays a string.
 */
static void flow(const struct ynode *n, int json, struct buf *out)
{
	switch (n->type) {
	case YNODE_SCALAR:
		if ((!json || !n->quoted) && ynode_is_null(n))
			buf_addstr(out, "null");
		else if (plain_ok(n))
			buf_addstr(out, n->scalar);
		else
			buf_add_json_cstr(out, n->scalar);
		break;
	case YNODE_SEQ:
		buf_addch(out, '[');
		for (size_t i = 0; i < n->n; i++) {
			if (i)
				buf_addstr(out, json ? "," : ", ");
			flow(n->items[i], json, out);
		}
		buf_addch(out, ']');
		break;
	case YNODE_MAP:
		buf_addch(out, '{');
		for (size_t i = 0; i < n->n; i++) {
			if (i)
				buf_addstr(out, json ? "," : ", ");
			if (json)
				buf_add_json_cstr(out, n->keys[i]);
			else
				yaml_key(n->keys[i], out);
			buf_addstr(out, json ? ":" : ": ");
			flow(n->values[i], json, out);
		}
		buf_addch(out, '}');
		break;
	}
}

static void yaml_flow(const struct ynode *n, struct buf *out)
{
	flow(n, 0, out);
}

static void yaml_block(const struct ynode *n, int indent, struct buf *out)
{
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *v = n->values[i];
		buf_addf(out, "%*s", indent, "");
		yaml_key(n->keys[i], out);
		buf_addch(out, ':');
		if (v->type == YNODE_MAP && v->n) {
			buf_addch(out, '\n');
			yaml_block(v, indent + 2, out);
		} else if (v->type == YNODE_SEQ && v->n) {
			buf_addch(out, '\n');
			for (size_t j = 0; j < v->n; j++) {
				buf_addf(out, "%*s- ", indent + 2, "");
				yaml_flow(v->items[j], out);
				buf_addch(out, '\n');
			}
		} else {
			buf_addch(out, ' ');
			yaml_flow(v, out);
			buf_addch(out, '\n');
		}
	}
}

void catalog_yaml(const struct ynode *n, struct buf *out)
{
	buf_addstr(out, "# mlk catalog entry; see mlk-catalog(5)\n");
	if (n->type == YNODE_MAP)
		yaml_block(n, 0, out);
	else
		yaml_flow(n, out);
}

void catalog_json(const struct ynode *n, struct buf *out)
{
	flow(n, 1, out);
}

/* Index ------------------------------------------------------------------- */

/*
 * The index line of a descriptor: the descriptor as JSON, `derived`
 * cut down to its record count, record types and field names (what
 * search looks at), dataset first.
 */
static void index_line(const struct ynode *d, struct buf *out)
{
	buf_addch(out, '{');
	int first = 1;
	const char *ds = ynode_str(d, "dataset");
	buf_addstr(out, "\"dataset\":");
	buf_add_json_cstr(out, ds ? ds : "");
	first = 0;
	for (size_t i = 0; i < d->n; i++) {
		const char *k = d->keys[i];
		if (!strcmp(k, "dataset"))
			continue;
		if (!first)
			buf_addch(out, ',');
		first = 0;
		buf_add_json_cstr(out, k);
		buf_addch(out, ':');
		if (strcmp(k, "derived")) {
			catalog_json(d->values[i], out);
			continue;
		}
		const struct ynode *dv = d->values[i];
		const struct ynode *rec = ynode_get(dv, "records");
		const struct ynode *types = ynode_get(dv, "types");
		const struct ynode *schema = ynode_get(dv, "schema");
		buf_addstr(out, "{\"records\":");
		if (rec && rec->type == YNODE_SCALAR)
			catalog_json(rec, out);
		else
			buf_addch(out, '0');
		buf_addstr(out, ",\"types\":");
		if (types)
			catalog_json(types, out);
		else
			buf_addstr(out, "[]");
		buf_addstr(out, ",\"fields\":[");
		if (schema && schema->type == YNODE_SEQ) {
			for (size_t j = 0; j < schema->n; j++) {
				const char *f = ynode_str(schema->items[j],
							  "field");
				if (j)
					buf_addch(out, ',');
				buf_add_json_cstr(out, f ? f : "");
			}
		}
		buf_addstr(out, "]}");
	}
	buf_addch(out, '}');
}

/* The bytes every index line of dataset starts with. */
static void index_prefix(const char *dataset, struct buf *out)
{
	buf_addstr(out, "{\"dataset\":");
	buf_add_json_cstr(out, dataset);
	buf_addch(out, ',');
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static enum mlk_status write_index(const struct lake *l, char **lines,
				   size_t n, struct mlk_error *e)
{
	if (n)
		qsort(lines, n, sizeof *lines, cmp_str);
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		buf_addstr(&b, lines[i]);
		buf_addch(&b, '\n');
	}
	char *p = lake_path(l, "catalog/index.ndjson");
	enum mlk_status s = fsio_write_atomic(p, b.data ? b.data : "",
					      b.len, 0644, e);
	free(p);
	buf_release(&b);
	return s;
}

struct lines {
	char **v;
	size_t n, alloc;
};

static void lines_free(struct lines *ls)
{
	for (size_t i = 0; i < ls->n; i++)
		free(ls->v[i]);
	free(ls->v);
}

static void lines_push(struct lines *ls, char *s)
{
	XGROW(ls->v, ls->alloc, ls->n + 1);
	ls->v[ls->n++] = s;
}

static enum mlk_status walk_descs(const struct lake *l, const char *dir,
				  const char *rel, struct lines *out,
				  struct mlk_error *e)
{
	DIR *dp = opendir(dir);
	if (!dp) {
		if (errno == ENOENT)
			return MLK_OK;
		return mlk_error_errno(e, dir, "cannot read directory");
	}
	enum mlk_status s = MLK_OK;
	struct dirent *de;
	while (s == MLK_OK && (de = readdir(dp))) {
		const char *nm = de->d_name;
		if (nm[0] == '.')
			continue;
		char *path = xasprintf("%s/%s", dir, nm);
		char *r = *rel ? xasprintf("%s/%s", rel, nm) : xstrdup(nm);
		size_t len = strlen(nm);
		if (fsio_is_dir(path)) {
			s = walk_descs(l, path, r, out, e);
		} else if (len > 5 && !strcmp(nm + len - 5, ".yaml")) {
			r[strlen(r) - 5] = '\0';
			struct ynode *d = NULL;
			s = ynode_load_file(path, &d, e);
			if (s == MLK_OK) {
				/* The path names the dataset, whatever the
				 * file says. */
				catalog_map_put(d, "dataset",
						catalog_scalar(r, 1));
				struct buf b = BUF_INIT;
				index_line(d, &b);
				lines_push(out, buf_detach(&b));
				ynode_free(d);
			}
		}
		free(path);
		free(r);
	}
	closedir(dp);
	return s;
}

static enum mlk_status reindex_locked(const struct lake *l, size_t *n,
				      struct mlk_error *e)
{
	struct lines ls = { NULL, 0, 0 };
	char *dir = lake_path(l, "catalog/datasets");
	enum mlk_status s = walk_descs(l, dir, "", &ls, e);
	free(dir);
	if (s == MLK_OK)
		s = write_index(l, ls.v, ls.n, e);
	if (n)
		*n = ls.n;
	lines_free(&ls);
	return s;
}

static enum mlk_status catalog_lock(const struct lake *l, int *fd,
				    struct mlk_error *e)
{
	char *lock = lake_path(l, "catalog/.lock");
	enum mlk_status s = fsio_lock(lock, fd, e);
	free(lock);
	return s;
}

enum mlk_status catalog_reindex(const struct lake *l, size_t *n,
				struct mlk_error *e)
{
	int fd;
	enum mlk_status s = catalog_lock(l, &fd, e);
	if (s != MLK_OK)
		return s;
	s = reindex_locked(l, n, e);
	fsio_unlock(fd);
	return s;
}

/* Write the descriptor and its index line; catalog/.lock is held. */
static enum mlk_status save_locked(const struct lake *l, const struct ynode *d,
				   struct mlk_error *e)
{
	const char *ds = ynode_str(d, "dataset");
	char *path = catalog_desc_path(l, ds);
	char *dir = xstrdup(path);
	*strrchr(dir, '/') = '\0';
	enum mlk_status s = fsio_mkdirs(dir, 0755, e);
	free(dir);
	struct buf y = BUF_INIT;
	catalog_yaml(d, &y);
	if (s == MLK_OK)
		s = fsio_write_atomic(path, y.data, y.len, 0644, e);
	buf_release(&y);
	free(path);

	/* The index: every other line kept, this one replaced or added. */
	char *ip = lake_path(l, "catalog/index.ndjson");
	int have_index = fsio_exists(ip);
	char *data = NULL;
	size_t len = 0;
	if (s == MLK_OK && have_index)
		s = fsio_read_file(ip, &data, &len, e);
	free(ip);
	if (s == MLK_OK && !have_index)
		return reindex_locked(l, NULL, e);
	if (s == MLK_OK) {
		struct buf pre = BUF_INIT, mine = BUF_INIT;
		index_prefix(ds, &pre);
		index_line(d, &mine);
		struct lines ls = { NULL, 0, 0 };
		char *p = data, *end = data + len;
		while (p < end) {
			char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
			if (n && !(n >= pre.len && !memcmp(p, pre.data,
							   pre.len)))
				lines_push(&ls, xstrndup(p, n));
			p += n + 1;
		}
		lines_push(&ls, buf_detach(&mine));
		s = write_index(l, ls.v, ls.n, e);
		lines_free(&ls);
		buf_release(&pre);
	}
	free(data);
	return s;
}

enum mlk_status catalog_save(const struct lake *l, const struct ynode *d,
			     struct mlk_error *e)
{
	const char *ds = ynode_str(d, "dataset");
	if (!ds || !lake_dataset_valid(ds))
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "descriptor without a valid dataset");
	char *dir = lake_path(l, "catalog");
	enum mlk_status s = fsio_mkdirs(dir, 0755, e);
	free(dir);
	int fd = -1;
	if (s == MLK_OK)
		s = catalog_lock(l, &fd, e);
	if (s != MLK_OK)
		return s;
	s = save_locked(l, d, e);
	fsio_unlock(fd);
	return s;
}

static struct ynode *ynode_copy(const struct ynode *n)
{
	struct ynode *c = xcalloc(1, sizeof *c);
	c->type = n->type;
	c->line = n->line;
	c->col = n->col;
	c->quoted = n->quoted;
	if (n->type == YNODE_SCALAR)
		c->scalar = xstrdup(n->scalar);
	for (size_t i = 0; n->type == YNODE_SEQ && i < n->n; i++)
		catalog_seq_push(c, ynode_copy(n->items[i]));
	for (size_t i = 0; n->type == YNODE_MAP && i < n->n; i++)
		catalog_map_put(c, n->keys[i], ynode_copy(n->values[i]));
	return c;
}

enum mlk_status catalog_save_keys(const struct lake *l, const struct ynode *d,
				  char **keys, size_t nkeys,
				  struct mlk_error *e)
{
	const char *ds = ynode_str(d, "dataset");
	if (!ds || !lake_dataset_valid(ds))
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "descriptor without a valid dataset");
	if (!catalog_exists(l, ds))
		return catalog_save(l, d, e);
	int fd;
	enum mlk_status s = catalog_lock(l, &fd, e);
	if (s != MLK_OK)
		return s;
	struct ynode *cur = NULL;
	s = catalog_load(l, ds, &cur, e);
	for (size_t i = 0; s == MLK_OK && i < nkeys; i++) {
		const struct ynode *v = ynode_get(d, keys[i]);
		if (v)
			catalog_map_put(cur, keys[i], ynode_copy(v));
	}
	if (s == MLK_OK)
		s = save_locked(l, cur, e);
	ynode_free(cur);
	fsio_unlock(fd);
	return s;
}

enum mlk_status catalog_update(const struct lake *l, const char *dataset,
			       enum mlk_status (*fn)(struct ynode *d,
						     void *ctx,
						     struct mlk_error *e),
			       void *ctx, struct mlk_error *e)
{
	int fd;
	enum mlk_status s = catalog_lock(l, &fd, e);
	if (s != MLK_OK)
		return s;
	struct ynode *d = NULL;
	s = catalog_load(l, dataset, &d, e);
	if (s == MLK_OK)
		s = fn(d, ctx, e);
	if (s == MLK_OK)
		s = save_locked(l, d, e);
	ynode_free(d);
	fsio_unlock(fd);
	return s;
}

/* Refresh ----------------------------------------------------------------- */

enum { T_STRING = 1, T_NUMBER = 2, T_BOOLEAN = 4, T_OBJECT = 8,
       T_ARRAY = 16, T_NULL = 32 };
static const char *const type_names[] = {
	"string", "number", "boolean", "object", "array", "null",
};

/* Wide datasets are cut here: a descriptor is a summary. */
#define MAX_FIELDS 2000
#define MAX_TYPES 1000

struct field {
	char *name;
	unsigned types;
	unsigned long long nonnull;
};

struct derive {
	struct field *f;
	size_t nf, falloc;
	struct lines types;
	struct lines pkeys;
	struct lines batches;
	unsigned long long records;
	/* Data files of the batch being read, and their record counts. */
	struct lines files;
	unsigned long long *frecs;
	size_t frecalloc;
	struct buf tmp;
};

static int lines_has(const struct lines *ls, const char *s, size_t n)
{
	for (size_t i = 0; i < ls->n; i++)
		if (strlen(ls->v[i]) == n && !memcmp(ls->v[i], s, n))
			return 1;
	return 0;
}

static int manifest_cb(void *ctx, const struct rec *r, int is_header)
{
	struct derive *dv = ctx;
	if (is_header)
		return 0;
	int k = rec_get(r, 0, "entry");
	if (k < 0 || !rec_str_eq(r, k, "file"))
		return 0;
	int pth = rec_get(r, 0, "path"), part = rec_get(r, 0, "partition");
	if (pth < 0 || part < 0)
		return 0;
	buf_reset(&dv->tmp);
	rec_str(r, pth, &dv->tmp);
	XGROW(dv->frecs, dv->frecalloc, dv->files.n + 1);
	int nr = rec_get(r, 0, "records");
	size_t rn = 0;
	const char *rp = nr >= 0 ? rec_raw(r, nr, &rn) : NULL;
	dv->frecs[dv->files.n] = rp ? strtoull(rp, NULL, 10) : 0;
	lines_push(&dv->files, xstrdup(dv->tmp.data ? dv->tmp.data : ""));
	buf_reset(&dv->tmp);
	rec_str(r, part, &dv->tmp);
	const char *p = dv->tmp.data ? dv->tmp.data : "";
	while (*p) {
		const char *eq = strchr(p, '=');
		const char *sl = strchr(p, '/');
		if (!eq || (sl && sl < eq))
			break;
		if (!lines_has(&dv->pkeys, p, (size_t)(eq - p)))
			lines_push(&dv->pkeys, xstrndup(p, (size_t)(eq - p)));
		if (!sl)
			break;
		p = sl + 1;
	}
	return 0;
}

static struct field *field_get(struct derive *dv, const char *name)
{
	for (size_t i = 0; i < dv->nf; i++)
		if (!strcmp(dv->f[i].name, name))
			return &dv->f[i];
	if (dv->nf >= MAX_FIELDS)
		return NULL;
	XGROW(dv->f, dv->falloc, dv->nf + 1);
	struct field *f = &dv->f[dv->nf++];
	f->name = xstrdup(name);
	f->types = 0;
	f->nonnull = 0;
	return f;
}

static unsigned value_type(const struct rec *r, int i)
{
	switch (rec_type(r, i)) {
	case REC_OBJECT: return T_OBJECT;
	case REC_ARRAY: return T_ARRAY;
	case REC_STRING: return T_STRING;
	default: break;
	}
	size_t n;
	const char *p = rec_raw(r, i, &n);
	if (n && p[0] == 'n')
		return T_NULL;
	if (n && (p[0] == 't' || p[0] == 'f'))
		return T_BOOLEAN;
	return T_NUMBER;
}

struct derive_file_ctx {
	struct derive *dv;
	const char *path;
	unsigned long long limit;   /* records to read; 0: all */
	unsigned long long seen;
	struct rec r;
	struct buf key;
};

/* What derive_line returns when the sample is complete. */
#define SAMPLE_DONE 100

static int derive_line(void *ctx, const char *line, size_t len,
		       long long lineno, struct mlk_error *e)
{
	struct derive_file_ctx *c = ctx;
	struct derive *dv = c->dv;
	struct rec *r = &c->r;
	struct buf *key = &c->key;
	if (c->limit && c->seen >= c->limit)
		return SAMPLE_DONE;
	c->seen++;
	if (rec_parse(r, line, len, e) != MLK_OK)
		return mlk_error_set(e, MLK_INTEGRITY, c->path, lineno,
				     "stored record is not valid JSON");
	dv->records++;
	for (int k = 1; k < r->skip[0]; k = r->skip[k + 1]) {
		buf_reset(key);
		rec_str(r, k, key);
		const char *kn = key->data ? key->data : "";
		if (!strcmp(kn, "_mlk")) {
			int t = rec_get(r, k + 1, "type");
			buf_reset(key);
			if (t >= 0 && rec_str(r, t, key) >= 0 &&
			    dv->types.n < MAX_TYPES &&
			    !lines_has(&dv->types, key->data, key->len))
				lines_push(&dv->types, xstrdup(key->data));
			continue;
		}
		struct field *f = field_get(dv, kn);
		if (!f)
			continue;
		unsigned t = value_type(r, k + 1);
		f->types |= t;
		if (t != T_NULL)
			f->nonnull++;
	}
	return 0;
}

static enum mlk_status derive_file(struct derive *dv, const char *path,
				   unsigned long long limit,
				   struct mlk_error *e)
{
	struct derive_file_ctx c = { .dv = dv, .path = path, .limit = limit };
	rec_init(&c.r);
	buf_init(&c.key);
	enum mlk_status s = limit ? datareader_lines_lazy(path, derive_line,
							   &c, e)
				  : datareader_lines(path, derive_line, &c, e);
	if ((int)s == SAMPLE_DONE)
		s = MLK_OK;
	buf_release(&c.key);
	rec_release(&c.r);
	return s;
}

static int cmp_field(const void *a, const void *b)
{
	return strcmp(((const struct field *)a)->name,
		      ((const struct field *)b)->name);
}

/* The batch directories of raw/<dataset>, sorted. */
static enum mlk_status list_batches(const char *dir, struct lines *out,
				    struct mlk_error *e)
{
	DIR *dp = opendir(dir);
	if (!dp) {
		if (errno == ENOENT)
			return MLK_OK;
		return mlk_error_errno(e, dir, "cannot read directory");
	}
	struct dirent *de;
	while ((de = readdir(dp)))
		if (!strncmp(de->d_name, "batch=", 6))
			lines_push(out, xstrdup(de->d_name + 6));
	closedir(dp);
	if (out->n)
		qsort(out->v, out->n, sizeof *out->v, cmp_str);
	return MLK_OK;
}

static struct ynode *lines_seq(const struct lines *ls)
{
	struct ynode *s = catalog_seq();
	for (size_t i = 0; i < ls->n; i++)
		catalog_seq_push(s, catalog_scalar(ls->v[i], 1));
	return s;
}

enum mlk_status catalog_refresh(const struct lake *l, struct ynode *d,
				time_t now, struct mlk_error *e)
{
	const char *ds = ynode_str(d, "dataset");
	if (!ds || !lake_dataset_valid(ds))
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "descriptor without a valid dataset");
	struct derive dv;
	memset(&dv, 0, sizeof dv);
	char *rawdir = lake_path(l, "raw/%s", ds);
	enum mlk_status s = list_batches(rawdir, &dv.batches, e);
	for (size_t b = 0; s == MLK_OK && b < dv.batches.n; b++) {
		char *mp = xasprintf("%s/batch=%s/_manifest.json", rawdir,
				     dv.batches.v[b]);
		s = manifest_read(mp, manifest_cb, &dv, e);
		free(mp);
		for (size_t i = 0; s == MLK_OK && i < dv.files.n; i++) {
			char *fp = xasprintf("%s/batch=%s/%s", rawdir,
					     dv.batches.v[b], dv.files.v[i]);
			s = derive_file(&dv, fp, 0, e);
			free(fp);
		}
		lines_free(&dv.files);
		memset(&dv.files, 0, sizeof dv.files);
	}
	free(rawdir);
	if (s == MLK_OK) {
		struct ynode *m = new_map();
		char ts[32], num[32];
		lake_time_iso(now, ts);
		catalog_map_put(m, "refreshed", catalog_scalar(ts, 1));
		snprintf(num, sizeof num, "%llu", dv.records);
		catalog_map_put(m, "records", catalog_scalar(num, 0));
		catalog_map_put(m, "batches", lines_seq(&dv.batches));
		catalog_map_put(m, "partitions", lines_seq(&dv.pkeys));
		if (dv.types.n)
			qsort(dv.types.v, dv.types.n, sizeof *dv.types.v,
			      cmp_str);
		catalog_map_put(m, "types", lines_seq(&dv.types));
		if (dv.nf)
			qsort(dv.f, dv.nf, sizeof *dv.f, cmp_field);
		struct ynode *schema = catalog_seq();
		for (size_t i = 0; i < dv.nf; i++) {
			struct ynode *fm = new_map();
			catalog_map_put(fm, "field",
					catalog_scalar(dv.f[i].name, 1));
			struct ynode *ts2 = catalog_seq();
			for (unsigned t = 0; t < NELEM(type_names); t++)
				if (dv.f[i].types & (1u << t))
					catalog_seq_push(ts2, catalog_scalar(
						type_names[t], 1));
			catalog_map_put(fm, "types", ts2);
			double share = dv.records ?
				(double)(dv.records - dv.f[i].nonnull) /
				(double)dv.records : 0.0;
			snprintf(num, sizeof num, "%.4f", share);
			catalog_map_put(fm, "null_share",
					catalog_scalar(num, 0));
			catalog_seq_push(schema, fm);
		}
		catalog_map_put(m, "schema", schema);
		catalog_map_put(d, "derived", m);
	}
	for (size_t i = 0; i < dv.nf; i++)
		free(dv.f[i].name);
	free(dv.f);
	lines_free(&dv.types);
	lines_free(&dv.pkeys);
	lines_free(&dv.batches);
	lines_free(&dv.files);
	free(dv.frecs);
	buf_release(&dv.tmp);
	return s;
}

/* Keeping derived parts current ------------------------------------------ */

/* A batch's schema is read from at most this many of its records. */
#define NOTE_SAMPLE 20000ULL

struct mfield {
	char *name;
	unsigned types;
	double nonnull;     /* records where it is present and not null */
};

struct merge {
	struct mfield *f;
	size_t n, alloc;
};

static struct mfield *mfield_get(struct merge *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->f[i].name, name))
			return &m->f[i];
	if (m->n >= MAX_FIELDS)
		return NULL;
	XGROW(m->f, m->alloc, m->n + 1);
	struct mfield *f = &m->f[m->n++];
	f->name = xstrdup(name);
	f->types = 0;
	f->nonnull = 0;
	return f;
}

static int cmp_mfield(const void *a, const void *b)
{
	return strcmp(((const struct mfield *)a)->name,
		      ((const struct mfield *)b)->name);
}

static unsigned long long scalar_ull(const struct ynode *n)
{
	return n && n->type == YNODE_SCALAR ? strtoull(n->scalar, NULL, 10)
					    : 0;
}

/* A sequence of scalars of the old derived map, with more added once. */
static struct ynode *seq_union(const struct ynode *old,
			       const struct lines *add, int sort)
{
	struct lines ls = { NULL, 0, 0 };
	for (size_t i = 0; old && old->type == YNODE_SEQ && i < old->n; i++)
		if (old->items[i]->type == YNODE_SCALAR &&
		    !lines_has(&ls, old->items[i]->scalar,
			       strlen(old->items[i]->scalar)))
			lines_push(&ls, xstrdup(old->items[i]->scalar));
	for (size_t i = 0; i < add->n; i++)
		if (!lines_has(&ls, add->v[i], strlen(add->v[i])))
			lines_push(&ls, xstrdup(add->v[i]));
	if (sort && ls.n)
		qsort(ls.v, ls.n, sizeof *ls.v, cmp_str);
	struct ynode *r = lines_seq(&ls);
	lines_free(&ls);
	return r;
}

/*
 * The new derived map: the old one's counts and schema plus what dv
 * found in `sampled` records standing for `records` new ones.  Null
 * shares are weighted by records, so merging batch by batch gives the
 * shares of the whole (up to sampling).
 */
static struct ynode *merge_derived(const struct ynode *old,
				   const struct derive *dv,
				   unsigned long long records,
				   time_t now)
{
	unsigned long long oldn = scalar_ull(ynode_get(old, "records"));
	unsigned long long total = oldn + records;
	struct merge m = { NULL, 0, 0 };
	const struct ynode *os = ynode_get(old, "schema");
	for (size_t i = 0; os && os->type == YNODE_SEQ && i < os->n; i++) {
		const struct ynode *it = os->items[i];
		const char *name = ynode_str(it, "field");
		struct mfield *f = name ? mfield_get(&m, name) : NULL;
		if (!f)
			continue;
		const struct ynode *ts = ynode_get(it, "types");
		for (size_t j = 0; ts && ts->type == YNODE_SEQ && j < ts->n;
		     j++)
			for (unsigned t = 0; t < NELEM(type_names); t++)
				if (ts->items[j]->type == YNODE_SCALAR &&
				    !strcmp(ts->items[j]->scalar,
					    type_names[t]))
					f->types |= 1u << t;
		const char *sh = ynode_str(it, "null_share");
		double share = sh ? strtod(sh, NULL) : 1.0;
		f->nonnull = (1.0 - share) * (double)oldn;
	}
	for (size_t i = 0; i < dv->nf; i++) {
		struct mfield *f = mfield_get(&m, dv->f[i].name);
		if (!f)
			continue;
		f->types |= dv->f[i].types;
		if (dv->records)
			f->nonnull += (double)dv->f[i].nonnull /
				      (double)dv->records * (double)records;
	}
	struct ynode *d = new_map();
	char ts[32], num[32];
	lake_time_iso(now, ts);
	catalog_map_put(d, "refreshed", catalog_scalar(ts, 1));
	snprintf(num, sizeof num, "%llu", total);
	catalog_map_put(d, "records", catalog_scalar(num, 0));
	catalog_map_put(d, "batches",
			seq_union(ynode_get(old, "batches"), &dv->batches, 1));
	catalog_map_put(d, "partitions",
			seq_union(ynode_get(old, "partitions"), &dv->pkeys,
				  0));
	catalog_map_put(d, "types",
			seq_union(ynode_get(old, "types"), &dv->types, 1));
	if (m.n)
		qsort(m.f, m.n, sizeof *m.f, cmp_mfield);
	struct ynode *schema = catalog_seq();
	for (size_t i = 0; i < m.n; i++) {
		struct ynode *fm = new_map();
		catalog_map_put(fm, "field", catalog_scalar(m.f[i].name, 1));
		struct ynode *tl = catalog_seq();
		for (unsigned t = 0; t < NELEM(type_names); t++)
			if (m.f[i].types & (1u << t))
				catalog_seq_push(tl, catalog_scalar(
					type_names[t], 1));
		catalog_map_put(fm, "types", tl);
		double share = total ? 1.0 - m.f[i].nonnull / (double)total
				     : 0.0;
		if (share < 0)
			share = 0;
		if (share > 1)
			share = 1;
		snprintf(num, sizeof num, "%.4f", share);
		catalog_map_put(fm, "null_share", catalog_scalar(num, 0));
		catalog_seq_push(schema, fm);
		free(m.f[i].name);
	}
	free(m.f);
	catalog_map_put(d, "schema", schema);
	return d;
}

static void derive_release(struct derive *dv)
{
	for (size_t i = 0; i < dv->nf; i++)
		free(dv->f[i].name);
	free(dv->f);
	lines_free(&dv->types);
	lines_free(&dv->pkeys);
	lines_free(&dv->batches);
	lines_free(&dv->files);
	free(dv->frecs);
	buf_release(&dv->tmp);
}

/* Load the descriptor, or make one; *fresh says which. */
static enum mlk_status load_or_new(const struct lake *l, const char *dataset,
				   const char *user, time_t now,
				   struct ynode **d, int *fresh,
				   struct mlk_error *e)
{
	*fresh = !catalog_exists(l, dataset);
	if (*fresh) {
		*d = catalog_new(dataset, user, now);
		return MLK_OK;
	}
	return catalog_load(l, dataset, d, e);
}

static int seq_has(const struct ynode *seq, const char *s)
{
	for (size_t i = 0; seq && seq->type == YNODE_SEQ && i < seq->n; i++)
		if (seq->items[i]->type == YNODE_SCALAR &&
		    !strcmp(seq->items[i]->scalar, s))
			return 1;
	return 0;
}

enum mlk_status catalog_note_batch(const struct lake *l, const char *dataset,
				   const char *batch, const char *user,
				   time_t now, struct mlk_error *e)
{
	if (!lake_dataset_valid(dataset))
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "'%s' is not a valid dataset name",
				     dataset);
	int fd;
	enum mlk_status s = catalog_lock(l, &fd, e);
	if (s != MLK_OK)
		return s;
	struct ynode *d = NULL;
	int fresh;
	s = load_or_new(l, dataset, user, now, &d, &fresh, e);
	const struct ynode *old = s == MLK_OK ? ynode_get(d, "derived")
					       : NULL;
	struct derive dv;
	memset(&dv, 0, sizeof dv);
	char *rawdir = lake_path(l, "raw/%s", dataset);
	if (s == MLK_OK && (!old || old->type != YNODE_MAP)) {
		/* Nothing derived yet: the whole dataset when it holds
		 * more than this batch (exact), else this batch alone. */
		s = list_batches(rawdir, &dv.batches, e);
		if (s == MLK_OK && (dv.batches.n > 1 ||
				    (dv.batches.n == 1 &&
				     strcmp(dv.batches.v[0], batch)))) {
			s = catalog_refresh(l, d, now, e);
			goto save;
		}
		lines_free(&dv.batches);
		memset(&dv.batches, 0, sizeof dv.batches);
		old = NULL;
	} else if (s == MLK_OK && seq_has(ynode_get(old, "batches"), batch)) {
		goto out;          /* already counted */
	}
	if (s != MLK_OK)
		goto out;
	lines_push(&dv.batches, xstrdup(batch));
	char *bdir = xasprintf("%s/batch=%s", rawdir, batch);
	char *mp = xasprintf("%s/_manifest.json", bdir);
	s = manifest_read(mp, manifest_cb, &dv, e);
	free(mp);
	unsigned long long brecs = 0;
	for (size_t i = 0; i < dv.files.n; i++)
		brecs += dv.frecs[i];
	/* A sample spread over the files in proportion to their size. */
	for (size_t i = 0; s == MLK_OK && i < dv.files.n; i++) {
		unsigned long long lim = 0;
		if (brecs > NOTE_SAMPLE)
			lim = (dv.frecs[i] * NOTE_SAMPLE + brecs - 1) / brecs;
		if (brecs > NOTE_SAMPLE && !lim)
			continue;
		char *fp = xasprintf("%s/%s", bdir, dv.files.v[i]);
		s = derive_file(&dv, fp, lim, e);
		free(fp);
	}
	free(bdir);
	if (s == MLK_OK)
		catalog_map_put(d, "derived", merge_derived(old, &dv, brecs,
							    now));
save:
	if (s == MLK_OK)
		s = save_locked(l, d, e);
out:
	free(rawdir);
	derive_release(&dv);
	ynode_free(d);
	fsio_unlock(fd);
	return s;
}

struct snap_derive {
	struct derive_file_ctx c;
	long long line;
	struct mlk_error *e;
};

static int snap_derive_line(void *ctx, const char *line, size_t len)
{
	struct snap_derive *sd = ctx;
	return derive_line(&sd->c, line, len, ++sd->line, sd->e);
}

/* derived of a dataset that lives in snapshots only: from snapshot s. */
static enum mlk_status derive_snapshot(const struct lake *l,
				       const struct snapshot *sn,
				       struct ynode *d, time_t now,
				       struct mlk_error *e)
{
	struct derive dv;
	memset(&dv, 0, sizeof dv);
	struct snap_derive sd;
	memset(&sd, 0, sizeof sd);
	sd.c.dv = &dv;
	sd.c.path = sn->id;
	sd.c.limit = NOTE_SAMPLE;
	sd.e = e;
	rec_init(&sd.c.r);
	buf_init(&sd.c.key);
	enum mlk_status s = snap_each_line(l, sn, snap_derive_line, &sd, e);
	if ((int)s == SAMPLE_DONE)
		s = MLK_OK;
	rec_release(&sd.c.r);
	buf_release(&sd.c.key);
	for (size_t i = 0; i < sn->nf; i++) {
		const char *p = sn->f[i].partition ? sn->f[i].partition : "";
		while (*p) {
			const char *eq = strchr(p, '=');
			const char *sl = strchr(p, '/');
			if (!eq || (sl && sl < eq))
				break;
			if (!lines_has(&dv.pkeys, p, (size_t)(eq - p)))
				lines_push(&dv.pkeys,
					   xstrndup(p, (size_t)(eq - p)));
			if (!sl)
				break;
			p = sl + 1;
		}
	}
	if (s == MLK_OK) {
		struct ynode *m = merge_derived(NULL, &dv, sn->records, now);
		catalog_map_put(m, "snapshot", catalog_scalar(sn->id, 1));
		catalog_map_put(d, "derived", m);
	}
	derive_release(&dv);
	return s;
}

enum mlk_status catalog_note_snapshot(const struct lake *l, const char *id,
				      const char *user, time_t now,
				      struct mlk_error *e)
{
	struct snapshot sn;
	enum mlk_status s = snap_load(l, id, &sn, e);
	if (s != MLK_OK)
		return s;
	int fd;
	s = catalog_lock(l, &fd, e);
	if (s != MLK_OK) {
		snap_release(&sn);
		return s;
	}
	struct ynode *d = NULL;
	int fresh;
	s = load_or_new(l, sn.dataset, user, now, &d, &fresh, e);
	if (s != MLK_OK)
		goto out;
	struct ynode *vs = (struct ynode *)ynode_get(d, "versions");
	if (!vs || vs->type != YNODE_SEQ) {
		catalog_map_put(d, "versions", catalog_seq());
		vs = (struct ynode *)ynode_get(d, "versions");
	}
	int listed = 0;
	for (size_t i = 0; i < vs->n; i++) {
		const char *sid = ynode_str(vs->items[i], "snapshot");
		listed |= sid && !strcmp(sid, sn.id);
	}
	if (listed)
		goto out;          /* already noted */
	struct ynode *v = new_map();
	char num[32];
	catalog_map_put(v, "snapshot", catalog_scalar(sn.id, 1));
	catalog_map_put(v, "zone", catalog_scalar(sn.zone, 1));
	snprintf(num, sizeof num, "%lld", sn.version);
	catalog_map_put(v, "version", catalog_scalar(num, 0));
	snprintf(num, sizeof num, "%llu", sn.records);
	catalog_map_put(v, "records", catalog_scalar(num, 0));
	catalog_map_put(v, "created",
			catalog_scalar(sn.created ? sn.created : "", 1));
	catalog_seq_push(vs, v);
	/* A dataset without raw batches is described by its latest
	 * snapshot. */
	const struct ynode *old = ynode_get(d, "derived");
	const struct ynode *ob = ynode_get(old, "batches");
	if (!ob || ob->type != YNODE_SEQ || !ob->n)
		s = derive_snapshot(l, &sn, d, now, e);
	if (s == MLK_OK)
		s = save_locked(l, d, e);
out:
	ynode_free(d);
	fsio_unlock(fd);
	snap_release(&sn);
	return s;
}

/* Vocabulary and search ---------------------------------------------------- */

static char *lower_dup(const char *s, size_t n)
{
	char *r = xstrndup(s, n);
	for (char *p = r; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return r;
}

static int ieq(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn)
		return 0;
	for (size_t i = 0; i < an; i++)
		if (tolower((unsigned char)a[i]) !=
		    tolower((unsigned char)b[i]))
			return 0;
	return 1;
}

/*
 * Does needle (already lowercase) occur in h as whole words,
 * case-insensitively: not preceded or followed by a letter or digit?
 */
static int icontains(const char *h, size_t hn, const char *needle)
{
	size_t nn = strlen(needle);
	if (nn == 0)
		return 1;
	if (nn > hn)
		return 0;
	for (size_t i = 0; i + nn <= hn; i++) {
		if (tolower((unsigned char)h[i]) != needle[0])
			continue;
		if (i && isalnum((unsigned char)h[i - 1]))
			continue;
		size_t j = 1;
		while (j < nn && tolower((unsigned char)h[i + j]) == needle[j])
			j++;
		if (j == nn && (i + nn == hn ||
				!isalnum((unsigned char)h[i + nn])))
			return 1;
	}
	return 0;
}

/*
 * Can lowercase text needle occur in the lowercased JSON line h?  A
 * needle that JSON would escape cannot be told this way: yes.
 */
static int may_occur(const char *h, size_t hn, const char *needle)
{
	size_t nn = strlen(needle);
	for (size_t i = 0; i < nn; i++)
		if ((unsigned char)needle[i] < 0x20 || needle[i] == '"' ||
		    needle[i] == '\\')
			return 1;
	if (!nn)
		return 1;
	const char *p = h, *end = h + hn;
	while ((size_t)(end - p) >= nn) {
		p = memchr(p, needle[0], (size_t)(end - p) - nn + 1);
		if (!p)
			return 0;
		if (!memcmp(p, needle, nn))
			return 1;
		p++;
	}
	return 0;
}

struct term {
	char *key;             /* field filter, or NULL for free text */
	char *val;             /* lowercase */
	const char *pref;      /* vocabulary term, or NULL */
	char **alts;           /* free text: the term's synonyms, lowercase */
	size_t nalts;
};

/* Does value token i (a string or array of strings) match t? */
static int value_match(const struct rec *r, int i, const struct term *t,
		       const struct vocab *v, struct buf *tmp)
{
	if (rec_type(r, i) == REC_ARRAY) {
		for (int k = i + 1; k < r->skip[i]; k = r->skip[k])
			if (value_match(r, k, t, v, tmp))
				return 1;
		return 0;
	}
	if (rec_type(r, i) == REC_OBJECT)
		return 0;
	buf_reset(tmp);
	if (rec_type(r, i) == REC_STRING)
		rec_str(r, i, tmp);
	else {
		size_t n;
		const char *p = rec_raw(r, i, &n);
		buf_add(tmp, p, n);
	}
	const char *s = tmp->data ? tmp->data : "";
	if (t->key) {
		if (t->pref) {
			const char *vp = vocab_preferred(v, s, tmp->len);
			if (vp && !strcmp(vp, t->pref))
				return 1;
		}
		return ieq(s, tmp->len, t->val, strlen(t->val));
	}
	if (icontains(s, tmp->len, t->val))
		return 1;
	for (size_t a = 0; a < t->nalts; a++)
		if (icontains(s, tmp->len, t->alts[a]))
			return 1;
	return 0;
}

/* Free text looks at every value, one level of objects down. */
static int any_value(const struct rec *r, int obj, const struct term *t,
		     const struct vocab *v, struct buf *tmp)
{
	for (int k = obj + 1; k < r->skip[obj]; k = r->skip[k + 1]) {
		int val = k + 1;
		if (rec_type(r, val) == REC_OBJECT) {
			if (obj == 0 && any_value(r, val, t, v, tmp))
				return 1;
		} else if (value_match(r, val, t, v, tmp)) {
			return 1;
		}
	}
	return 0;
}

enum mlk_status catalog_search(const struct lake *l, const struct vocab *v,
			       char **terms, size_t nterms, catalog_fn fn,
			       void *ctx, struct mlk_error *e)
{
	char *ip = lake_path(l, "catalog/index.ndjson");
	enum mlk_status s = MLK_OK;
	if (!fsio_exists(ip))
		s = catalog_reindex(l, NULL, e);
	char *data = NULL;
	size_t len = 0;
	if (s == MLK_OK)
		s = fsio_read_file(ip, &data, &len, e);
	free(ip);
	if (s != MLK_OK)
		return s;

	struct term *t = xcalloc(nterms ? nterms : 1, sizeof *t);
	for (size_t i = 0; i < nterms; i++) {
		const char *eq = strchr(terms[i], '=');
		const char *val = eq ? eq + 1 : terms[i];
		if (eq)
			t[i].key = xstrndup(terms[i],
					    (size_t)(eq - terms[i]));
		t[i].val = lower_dup(val, strlen(val));
		t[i].pref = vocab_preferred(v, val, strlen(val));
		if (t[i].pref) {
			for (size_t j = 0; j < v->n; j++) {
				if (strcmp(v->pref[j], t[i].pref))
					continue;
				t[i].alts = xrealloc(t[i].alts,
					(t[i].nalts + 1) * sizeof *t[i].alts);
				t[i].alts[t[i].nalts++] = xstrdup(v->term[j]);
			}
		}
	}

	/*
	 * A line can only match when every term (or one of its synonyms)
	 * occurs in it as text: a lowercased copy of the index lets
	 * the scan skip most lines without parsing them.
	 */
	char *low = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++)
		low[i] = (char)tolower((unsigned char)data[i]);
	low[len] = '\0';

	struct rec r;
	rec_init(&r);
	struct buf tmp = BUF_INIT;
	char *p = data, *end = data + len;
	long long lineno = 0;
	while (s == MLK_OK && p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		lineno++;
		const char *line = p;
		const char *lline = low + (p - data);
		p += n + 1;
		if (!n)
			continue;
		int maybe = 1;
		for (size_t i = 0; maybe && i < nterms; i++) {
			maybe = may_occur(lline, n, t[i].val);
			for (size_t a = 0; !maybe && a < t[i].nalts; a++)
				maybe = may_occur(lline, n,
							  t[i].alts[a]);
		}
		if (!maybe)
			continue;
		if (rec_parse(&r, line, n, e) != MLK_OK) {
			s = mlk_error_set(e, MLK_INTEGRITY,
					  "catalog/index.ndjson", lineno,
					  "not a valid index line; run "
					  "mlk-catalog reindex");
			break;
		}
		int ok = 1;
		for (size_t i = 0; ok && i < nterms; i++) {
			if (t[i].key) {
				int k = rec_get(&r, 0, t[i].key);
				ok = k >= 0 && value_match(&r, k, &t[i], v,
							   &tmp);
			} else {
				ok = any_value(&r, 0, &t[i], v, &tmp);
			}
		}
		if (ok && fn(ctx, line, n))
			break;
	}
	for (size_t i = 0; i < nterms; i++) {
		free(t[i].key);
		free(t[i].val);
		for (size_t a = 0; a < t[i].nalts; a++)
			free(t[i].alts[a]);
		free(t[i].alts);
	}
	free(t);
	buf_release(&tmp);
	rec_release(&r);
	free(low);
	free(data);
	return s;
}
