#include "lake.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pwd.h>

#include "buf.h"
#include "crypto.h"
#include "fsio.h"
#include "xalloc.h"
#include "banned.h"

static const char *const zones[] = { "raw", "curated", "training" };

static const char *const layout_dirs[] = {
	"raw", "curated", "training", "objects", "objects/sha256",
	"snapshots", "catalog", "catalog/models", "sandboxes", "quarantine",
	"audit",
};

char *lake_path(const struct lake *l, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	buf_addstr(&b, l->root);
	buf_addch(&b, '/');
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	buf_grow(&b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b.data + b.len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b.len += (size_t)n;
	return buf_detach(&b);
}

int lake_zone_valid(const char *zone)
{
	for (size_t i = 0; i < sizeof zones / sizeof *zones; i++)
		if (!strcmp(zone, zones[i]))
			return 1;
	return 0;
}

int lake_dataset_valid(const char *name)
{
	size_t n = strlen(name);
	if (!n || n > 128)
		return 0;
	int segs = 0, seglen = 0;
	for (size_t i = 0; i <= n; i++) {
		char c = name[i];
		if (c == '/' || c == '\0') {
			if (!seglen)
				return 0;
			segs++;
			seglen = 0;
			continue;
		}
		int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!seglen && !alnum)
			return 0;
		if (!alnum && c != '.' && c != '_' && c != '-')
			return 0;
		seglen++;
	}
	return segs >= 1 && segs <= 4;
}

static char *absolute(const char *dir)
{
	char *r = realpath(dir, NULL);
	return r;
}

enum mlk_status lake_open(const char *dir, struct lake *l,
			  struct mlk_error *e)
{
	memset(l, 0, sizeof *l);
	if (!dir || !*dir)
		dir = getenv("MLK_LAKE");
	char *root = NULL;
	if (dir && *dir) {
		root = absolute(dir);
		if (!root)
			return mlk_error_errno(e, dir, "cannot open lake");
		char *conf = xasprintf("%s/mlk.yaml", root);
		int ok = fsio_exists(conf);
		free(conf);
		if (!ok) {
			free(root);
			return mlk_error_set(e, MLK_USAGE, dir, 0,
					     "not a lake (no mlk.yaml); "
					     "create one with 'mlk-catalog init'");
		}
	} else {
		char *cwd = getcwd(NULL, 0);
		if (!cwd)
			return mlk_error_errno(e, NULL, "cannot get working "
					       "directory");
		for (;;) {
			char *conf = xasprintf("%s/mlk.yaml",
					       strcmp(cwd, "/") ? cwd : "");
			int ok = fsio_exists(conf);
			free(conf);
			if (ok) {
				root = cwd;
				break;
			}
			char *slash = strrchr(cwd, '/');
			if (!slash || slash == cwd) {
				if (slash && cwd[1]) {
					cwd[1] = '\0';
					continue;
				}
				free(cwd);
				return mlk_error_set(e, MLK_USAGE, NULL, 0,
					"no lake found: use --lake DIR, set "
					"MLK_LAKE, or run inside a lake");
			}
			*slash = '\0';
		}
	}
	l->root = root;
	char *conf = xasprintf("%s/mlk.yaml", root);
	enum mlk_status s = ynode_load_file(conf, &l->conf, e);
	free(conf);
	if (s != MLK_OK) {
		lake_close(l);
		return s;
	}
	const struct ynode *keys = ynode_get(l->conf, "keys");
	const char *kid = keys ? ynode_str(keys, "default") : NULL;
	if (kid)
		l->key_id = xstrdup(kid);
	return MLK_OK;
}

void lake_close(struct lake *l)
{
	free(l->root);
	free(l->key_id);
	if (l->conf)
		ynode_free(l->conf);
	memset(l, 0, sizeof *l);
}

static const char *current_user(char *tmp, size_t n)
{
	struct passwd *pw = getpwuid(getuid());
	if (pw && pw->pw_name)
		snprintf(tmp, n, "%s", pw->pw_name);
	else
		snprintf(tmp, n, "%u", (unsigned)getuid());
	return tmp;
}

static const char mlk_yaml[] =
"# mlk lake configuration; see mlk-layout(5).\n"
"version: 1\n"
"lake:\n"
"  id: %s\n"
"  created: %s\n"
"keys:\n"
"  # keyed pseudonyms use keys/<id>.key (mode 0600); never the key itself\n"
"  default: %s\n"
"ingest:\n"
"  buffer_mb: 24          # memory for micro-batches before they are "
"flushed\n"
"  compression_level: 1   # gzip level of data files, 1 (fast) to 12\n"
"  threads: 2             # compression threads\n"
"# Default partition specs per source format.  Transforms: identity,\n"
"# year(x), month(x), day(x), bucket[N](x), truncate[W](x).  Sources are\n"
"# record fields, or: date (the record's clinical date), table (CSV file\n"
"# name), type (_mlk.type), source_system.\n"
"partitions:\n"
"  fhir: [resourceType, year(date), month(date)]\n"
"  csv: [table, year(date), month(date)]\n"
"  ndjson: [year(date), month(date)]\n"
"  hl7v2: [message_type, year(date), month(date)]\n"
"  dicom: [modality, year(date), month(date)]\n"
"# Per-dataset settings, for example:\n"
"# datasets:\n"
"#   ehr/synthea:\n"
"#     partitions:\n"
"#       csv: [table, year(date)]\n"
"#     date_columns: {encounters: START, patients: none}\n"
"#     date_field: encounter_date     # plain NDJSON records\n"
"datasets: {}\n";

static const char policy_yaml[] =
"# mlk access policy; see mlk-policy(5).  Deny by default: an action is\n"
"# allowed only for the lake owner or by a grant below.\n"
"version: 1\n"
"owner: %s\n"
"# Tests only: honour MLK_TEST_USER / MLK_TEST_GROUPS as the identity.\n"
"test_identity_override: false\n"
"roles:\n"
"  data-engineer: {users: [], groups: []}\n"
"  researcher: {users: [], groups: []}\n"
"grants:\n"
"  - role: data-engineer\n"
"    actions: [ingest, read, write]\n"
"    zones: [raw, curated]\n"
"  - role: researcher\n"
"    actions: [read]\n"
"    zones: [training]\n";

static const char vocab_yaml[] =
"# Controlled vocabulary: preferred term -> synonyms; see mlk(7).\n"
"version: 1\n"
"terms: {}\n";

enum mlk_status lake_create(const char *dir, struct mlk_error *e)
{
	if (fsio_mkdirs(dir, 0755, e) != MLK_OK)
		return e->status;
	char *root = absolute(dir);
	if (!root)
		return mlk_error_errno(e, dir, "cannot resolve");
	enum mlk_status s = MLK_OK;
	char *p = xasprintf("%s/mlk.yaml", root);
	if (fsio_exists(p)) {
		s = mlk_error_set(e, MLK_USAGE, dir, 0,
				  "already a lake (mlk.yaml exists)");
		goto out;
	}
	for (size_t i = 0; i < sizeof layout_dirs / sizeof *layout_dirs; i++) {
		char *d = xasprintf("%s/%s", root, layout_dirs[i]);
		s = fsio_mkdirs(d, 0755, e);
		free(d);
		if (s != MLK_OK)
			goto out;
	}
	char *kd = xasprintf("%s/keys", root);
	if (mkdir(kd, 0700) != 0 && errno != EEXIST) {
		s = mlk_error_errno(e, kd, "cannot create directory");
		free(kd);
		goto out;
	}
	chmod(kd, 0700);
	/* The key file is named after its id, which needs the key first. */
	char *tmpkey = xasprintf("%s/.tmp-new.key", kd);
	unlink(tmpkey);
	char kid[32];
	s = crypto_key_create(tmpkey, kid, sizeof kid, e);
	if (s == MLK_OK) {
		char *final = xasprintf("%s/%s.key", kd, kid);
		if (rename(tmpkey, final) != 0)
			s = mlk_error_errno(e, final, "cannot name key file");
		free(final);
		if (s == MLK_OK)
			s = fsio_fsync_dir(kd, e);
	}
	free(tmpkey);
	free(kd);
	if (s != MLK_OK)
		goto out;

	uint8_t rnd[8];
	char hex[17], lid[32], now[32], user[256];
	if ((s = crypto_random(rnd, sizeof rnd, e)) != MLK_OK)
		goto out;
	hex_encode(rnd, sizeof rnd, hex);
	snprintf(lid, sizeof lid, "lake-%s", hex);
	lake_time_iso(time(NULL), now);
	current_user(user, sizeof user);

	struct buf b = BUF_INIT;
	char *f;
	buf_addf(&b, policy_yaml, user);
	f = xasprintf("%s/policy.yaml", root);
	s = fsio_write_atomic(f, b.data, b.len, 0644, e);
	free(f);
	buf_reset(&b);
	if (s == MLK_OK) {
		f = xasprintf("%s/vocab.yaml", root);
		s = fsio_write_atomic(f, vocab_yaml, sizeof vocab_yaml - 1,
				      0644, e);
		free(f);
	}
	if (s == MLK_OK) {
		/* mlk.yaml last: its presence is what makes this a lake. */
		buf_addf(&b, mlk_yaml, lid, now, kid);
		s = fsio_write_atomic(p, b.data, b.len, 0644, e);
	}
	buf_release(&b);
out:
	free(p);
	free(root);
	return s;
}

static const char *default_spec(const char *format)
{
	if (!strcmp(format, "fhir"))
		return "resourceType,year(date),month(date)";
	if (!strcmp(format, "csv"))
		return "table,year(date),month(date)";
	if (!strcmp(format, "hl7v2"))
		return "message_type,year(date),month(date)";
	if (!strcmp(format, "dicom"))
		return "modality,year(date),month(date)";
	return "year(date),month(date)";
}

static enum mlk_status spec_from_node(const struct ynode *n,
				      struct pspec *out, const char *file,
				      struct mlk_error *e)
{
	if (n->type != YNODE_SEQ)
		return mlk_error_set(e, MLK_USAGE, file, (long long)n->line,
				     "partition spec must be a list");
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *it = n->items[i];
		if (it->type != YNODE_SCALAR)
			return mlk_error_set(e, MLK_USAGE, file,
					     (long long)it->line,
					     "partition field must be text");
		if (pspec_add(out, it->scalar, e) != MLK_OK) {
			snprintf(e->file, sizeof e->file, "%s", file);
			e->line = (long long)it->line;
			return e->status;
		}
	}
	return MLK_OK;
}

const struct ynode *lake_dataset_conf(const struct lake *l,
				      const char *dataset, const char *key)
{
	const struct ynode *ds = ynode_get(l->conf, "datasets");
	const struct ynode *d = ds ? ynode_get(ds, dataset) : NULL;
	return d ? ynode_get(d, key) : NULL;
}

enum mlk_status lake_pspec(const struct lake *l, const char *dataset,
			   const char *format, struct pspec *out,
			   struct mlk_error *e)
{
	pspec_init(out);
	char *file = lake_path(l, "mlk.yaml");
	const struct ynode *n = NULL;
	const struct ynode *dp = lake_dataset_conf(l, dataset, "partitions");
	if (dp)
		n = ynode_get(dp, format);
	if (!n) {
		const struct ynode *p = ynode_get(l->conf, "partitions");
		if (p)
			n = ynode_get(p, format);
	}
	enum mlk_status s = MLK_OK;
	if (n) {
		s = spec_from_node(n, out, file, e);
	} else {
		char *spec = xstrdup(default_spec(format));
		char *save = NULL;
		for (char *t = strtok_r(spec, ",", &save); t && s == MLK_OK;
		     t = strtok_r(NULL, ",", &save))
			s = pspec_add(out, t, e);
		free(spec);
	}
	free(file);
	if (s != MLK_OK)
		pspec_release(out);
	return s;
}

long long lake_conf_num(const struct lake *l, const char *section,
			const char *key, long long def)
{
	const struct ynode *sec = ynode_get(l->conf, section);
	const char *v = sec ? ynode_str(sec, key) : NULL;
	if (!v)
		return def;
	char *end;
	long long n = strtoll(v, &end, 10);
	return (*end || end == v) ? def : n;
}

time_t lake_now(const struct lake *l)
{
	const char *t = getenv("MLK_TEST_NOW");
	if (t && l && l->conf && ynode_bool(l->conf, "test_clock", 0) == 1) {
		char *end;
		long long v = strtoll(t, &end, 10);
		if (!*end && end != t)
			return (time_t)v;
	}
	return time(NULL);
}

void lake_time_iso(time_t t, char out[32])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

enum mlk_status lake_key_load(const char *dir, const char *keyfile,
			      struct lake *l, int *have_lake,
			      unsigned char key[32], struct mlk_error *e)
{
	*have_lake = 0;
	enum mlk_status st = lake_open(dir, l, e);
	if (st == MLK_OK) {
		*have_lake = 1;
	} else if (dir || !keyfile) {
		size_t n = strlen(e->msg);
		if (!dir && !keyfile)
			snprintf(e->msg + n, sizeof e->msg - n, "; without a "
				 "lake, name the key with --key-file FILE");
		return st;
	}
	mlk_error_clear(e);
	char *path;
	if (keyfile)
		path = xstrdup(keyfile);
	else if (l->key_id)
		path = lake_path(l, "keys/%s.key", l->key_id);
	else
		return mlk_error_set(e, MLK_USAGE, NULL, 0, "the lake names no "
				     "key (keys.default in mlk.yaml); use "
				     "--key-file FILE");
	st = crypto_key_load(path, key, e);
	free(path);
	return st;
}
