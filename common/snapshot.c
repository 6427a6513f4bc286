#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "datareader.h"
#include "datawriter.h"
#include "fsio.h"
#include "manifest.h"
#include "object.h"
#include "par.h"
#include "partition.h"
#include "pmap.h"
#include "record.h"
#include "xalloc.h"
#include "banned.h"

/* ---- a small set of strings (open addressing) ---- */

struct strset {
	char **slot;
	size_t cap, n;
};

static uint32_t str_hash(const char *s, size_t n)
{
	return murmur3_32(s, n, 0x5eed);
}

static int strset_add(struct strset *ss, const char *s, size_t n)
{
	if ((ss->n + 1) * 2 > ss->cap) {
		size_t ncap = ss->cap ? ss->cap * 2 : 16;
		char **nv = xcalloc(ncap, sizeof *nv);
		for (size_t i = 0; i < ss->cap; i++) {
			char *x = ss->slot[i];
			if (!x)
				continue;
			size_t h = str_hash(x, strlen(x)) & (ncap - 1);
			while (nv[h])
				h = (h + 1) & (ncap - 1);
			nv[h] = x;
		}
		free(ss->slot);
		ss->slot = nv;
		ss->cap = ncap;
	}
	size_t h = str_hash(s, n) & (ss->cap - 1);
	while (ss->slot[h]) {
		if (strlen(ss->slot[h]) == n && !memcmp(ss->slot[h], s, n))
			return 0;
		h = (h + 1) & (ss->cap - 1);
	}
	ss->slot[h] = xstrndup(s, n);
	ss->n++;
	return 1;
}

static void strset_release(struct strset *ss)
{
	for (size_t i = 0; i < ss->cap; i++)
		free(ss->slot[i]);
	free(ss->slot);
	memset(ss, 0, sizeof *ss);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The members, sorted; the array is the caller's, the strings the set's. */
static char **strset_sorted(const struct strset *ss)
{
	char **v = xcalloc(ss->n + 1, sizeof *v);
	size_t k = 0;
	for (size_t i = 0; i < ss->cap; i++)
		if (ss->slot[i])
			v[k++] = ss->slot[i];
	if (k)
		qsort(v, k, sizeof *v, cmp_str);
	return v;
}

/* ---- names ---- */

int snap_id_valid(const char *id)
{
	return id && id[0] == 's' && strlen(id) == SNAP_ID_LEN - 1 &&
	       strspn(id + 1, "0123456789abcdef") == SNAP_ID_LEN - 2;
}

enum mlk_status snap_target(const char *arg, char **zone, char **dataset,
			    struct mlk_error *e)
{
	const char *sl = strchr(arg, '/');
	if (!sl)
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "'%s' is not ZONE/DATASET", arg);
	char *z = xstrndup(arg, (size_t)(sl - arg));
	if (strcmp(z, "curated") && strcmp(z, "training")) {
		mlk_error_set(e, MLK_USAGE, NULL, 0,
			      "snapshots go to curated/ or training/, not "
			      "'%s/'", z);
		free(z);
		return MLK_USAGE;
	}
	if (!lake_dataset_valid(sl + 1)) {
		free(z);
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "invalid dataset name '%s' (want e.g. "
				     "hf/readmit: lowercase letters, digits, "
				     ". _ -, up to 4 levels)", sl + 1);
	}
	*zone = z;
	*dataset = xstrdup(sl + 1);
	return MLK_OK;
}

char *snap_dir(const struct lake *l, const struct snapshot *s)
{
	return lake_path(l, "%s/%s/snapshot=%s", s->zone, s->dataset, s->id);
}

/* ---- loading manifests ---- */

static char *str_member(const struct rec *r, int obj, const char *key)
{
	int t = rec_get(r, obj, key);
	if (t < 0 || rec_type(r, t) != REC_STRING)
		return NULL;
	struct buf b = BUF_INIT;
	rec_str(r, t, &b);
	if (!b.data)
		buf_addstr(&b, "");
	return buf_detach(&b);
}

static unsigned long long num_member(const struct rec *r, int obj,
				     const char *key)
{
	int t = rec_get(r, obj, key);
	if (t < 0 || rec_type(r, t) != REC_PRIMITIVE)
		return 0;
	size_t n;
	const char *p = rec_raw(r, t, &n);
	return (p[0] >= '0' && p[0] <= '9') ? strtoull(p, NULL, 10) : 0;
}

void snap_release(struct snapshot *s)
{
	free(s->zone);
	free(s->dataset);
	free(s->created);
	free(s->actor);
	free(s->note);
	free(s->parent);
	free(s->partitions);
	for (size_t i = 0; i < s->nf; i++) {
		free(s->f[i].path);
		free(s->f[i].partition);
	}
	free(s->f);
	for (size_t i = 0; i < s->nent; i++)
		free(s->ent[i]);
	free(s->ent);
	buf_release(&s->bytes);
	memset(s, 0, sizeof *s);
}

static enum mlk_status parse_manifest(struct snapshot *s, const char *path,
				      struct mlk_error *e)
{
	struct rec r;
	rec_init(&r);
	enum mlk_status st = MLK_OK;
	const char *p = s->bytes.data, *end = p + s->bytes.len;
	long long lineno = 0;
	char id[SNAP_ID_LEN] = "";
	while (st == MLK_OK && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl) {
			st = mlk_error_set(e, MLK_INTEGRITY, path, lineno + 1,
					   "manifest ends without a newline");
			break;
		}
		lineno++;
		if (rec_parse(&r, p, (size_t)(nl - p), e) != MLK_OK) {
			st = mlk_error_set(e, MLK_INTEGRITY, path, lineno,
					   "malformed manifest line: %s",
					   e->msg);
			break;
		}
		if (lineno == 1) {
			int t = rec_get(&r, 0, "type");
			if (rec_get(&r, 0, "mlk_manifest") < 0 || t < 0 ||
			    !rec_str_eq(&r, t, "snapshot")) {
				st = mlk_error_set(e, MLK_INTEGRITY, path, 1,
						   "not a snapshot manifest");
				break;
			}
			char *x = str_member(&r, 0, "id");
			snprintf(id, sizeof id, "%s", x ? x : "");
			free(x);
			s->created = str_member(&r, 0, "created");
			s->actor = str_member(&r, 0, "actor");
			s->note = str_member(&r, 0, "note");
			s->parent = str_member(&r, 0, "parent");
			s->version = (long long)num_member(&r, 0, "version");
			s->records = num_member(&r, 0, "records");
		} else {
			XGROW(s->ent, s->entalloc, s->nent + 1);
			s->ent[s->nent++] = xstrndup(p, (size_t)(nl - p));
			int k = rec_get(&r, 0, "entry");
			if (k >= 0 && rec_str_eq(&r, k, "file")) {
				XGROW(s->f, s->falloc, s->nf + 1);
				struct snap_file *f = &s->f[s->nf++];
				memset(f, 0, sizeof *f);
				f->path = str_member(&r, 0, "path");
				f->partition = str_member(&r, 0, "partition");
				f->records = num_member(&r, 0, "records");
				f->bytes = num_member(&r, 0, "bytes");
				f->size = num_member(&r, 0, "size");
				char *h = str_member(&r, 0, "sha256");
				snprintf(f->sha256, sizeof f->sha256, "%s",
					 h ? h : "");
				free(h);
				if (!f->path || !f->partition ||
				    strlen(f->sha256) != 64 ||
				    strstr(f->path, "..") || f->path[0] == '/')
					st = mlk_error_set(e, MLK_INTEGRITY,
							   path, lineno,
							   "malformed file "
							   "entry");
			} else if (k >= 0 && rec_str_eq(&r, k, "layout")) {
				free(s->zone);
				free(s->dataset);
				free(s->partitions);
				s->zone = str_member(&r, 0, "zone");
				s->dataset = str_member(&r, 0, "dataset");
				s->partitions = str_member(&r, 0,
							   "partitions");
			}
		}
		p = nl + 1;
	}
	rec_release(&r);
	if (st != MLK_OK)
		return st;
	if (!s->zone || !s->dataset)
		return mlk_error_set(e, MLK_INTEGRITY, path, 0,
				     "manifest has no layout entry");
	/* The id is what the entries hash to: anything else is forged. */
	struct manifest m;
	memset(&m, 0, sizeof m);
	m.ent = s->ent;
	m.n = s->nent;
	char hex[SHA256_HEX];
	manifest_digest_entries(&m, hex);
	snprintf(s->id, sizeof s->id, "s%.24s", hex);
	if (strcmp(s->id, id) != 0)
		return mlk_error_set(e, MLK_INTEGRITY, path, 1,
				     "entries hash to %s, not to the id %s "
				     "in the header", s->id, id);
	return MLK_OK;
}

static enum mlk_status load_path(const char *path, struct snapshot *s,
				 struct mlk_error *e)
{
	memset(s, 0, sizeof *s);
	char *data = NULL;
	size_t len = 0;
	enum mlk_status st = fsio_read_file(path, &data, &len, e);
	if (st != MLK_OK)
		return st;
	buf_add(&s->bytes, data, len);
	free(data);
	sha256_hex_once(s->bytes.data, s->bytes.len, s->manifest_sha256);
	st = parse_manifest(s, path, e);
	if (st != MLK_OK)
		snap_release(s);
	return st;
}

enum mlk_status snap_load(const struct lake *l, const char *id,
			  struct snapshot *s, struct mlk_error *e)
{
	memset(s, 0, sizeof *s);
	if (!snap_id_valid(id))
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "'%s' is not a snapshot id (s and 24 hex "
				     "digits)", id);
	char *path = lake_path(l, "snapshots/%s.json", id);
	if (!fsio_exists(path)) {
		free(path);
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "no snapshot %s in this lake", id);
	}
	enum mlk_status st = load_path(path, s, e);
	if (st == MLK_OK && strcmp(s->id, id) != 0) {
		st = mlk_error_set(e, MLK_INTEGRITY, path, 1,
				   "manifest is that of %s", s->id);
		snap_release(s);
	}
	free(path);
	return st;
}

static int cmp_snap(const void *a, const void *b)
{
	const struct snapshot *x = a, *y = b;
	int c = strcmp(x->zone, y->zone);
	if (!c)
		c = strcmp(x->dataset, y->dataset);
	if (!c)
		c = (x->version > y->version) - (x->version < y->version);
	if (!c)
		c = strcmp(x->id, y->id);
	return c;
}

enum mlk_status snap_list(const struct lake *l, struct snapshot **v,
			  size_t *n, struct mlk_error *e)
{
	*v = NULL;
	*n = 0;
	size_t alloc = 0;
	char *dir = lake_path(l, "snapshots");
	DIR *d = opendir(dir);
	if (!d) {
		enum mlk_status st = errno == ENOENT ? MLK_OK :
			mlk_error_errno(e, dir, "cannot read");
		free(dir);
		return st;
	}
	enum mlk_status st = MLK_OK;
	struct dirent *de;
	while (st == MLK_OK && (de = readdir(d))) {
		size_t nl = strlen(de->d_name);
		if (nl != SNAP_ID_LEN - 1 + 5 ||
		    strcmp(de->d_name + nl - 5, ".json"))
			continue;
		char id[SNAP_ID_LEN];
		snprintf(id, sizeof id, "%.*s", SNAP_ID_LEN - 1, de->d_name);
		if (!snap_id_valid(id))
			continue;
		XGROW(*v, alloc, *n + 1);
		st = snap_load(l, id, &(*v)[*n], e);
		if (st == MLK_OK)
			(*n)++;
	}
	closedir(d);
	free(dir);
	if (*n)
		qsort(*v, *n, sizeof **v, cmp_snap);
	if (st != MLK_OK) {
		for (size_t i = 0; i < *n; i++)
			snap_release(&(*v)[i]);
		free(*v);
		*v = NULL;
		*n = 0;
	}
	return st;
}

enum mlk_status snap_latest(const struct lake *l, const char *zone,
			    const char *dataset, struct snapshot *s,
			    int *found, struct mlk_error *e)
{
	struct snapshot *v;
	size_t n;
	*found = 0;
	memset(s, 0, sizeof *s);
	enum mlk_status st = snap_list(l, &v, &n, e);
	if (st != MLK_OK)
		return st;
	ssize_t best = -1;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].zone, zone) && !strcmp(v[i].dataset, dataset))
			best = (ssize_t)i;   /* sorted: the last is the latest */
	for (size_t i = 0; i < n; i++) {
		if ((ssize_t)i == best)
			*s = v[i];
		else
			snap_release(&v[i]);
	}
	free(v);
	*found = best >= 0;
	return MLK_OK;
}

/* ---- small file helpers ---- */


static enum mlk_status copy_file(const char *from, const char *to,
				 mode_t mode, struct mlk_error *e)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return mlk_error_errno(e, from, "cannot open");
	int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		close(in);
		return mlk_error_errno(e, to, "cannot create");
	}
	enum mlk_status st = MLK_OK;
	char *b = xmalloc(1 << 20);
	for (;;) {
		ssize_t r = read(in, b, 1 << 20);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			st = mlk_error_errno(e, from, "cannot read");
			break;
		}
		if (!r)
			break;
		st = fsio_write_all(out, b, (size_t)r, to, e);
		if (st != MLK_OK)
			break;
	}
	free(b);
	close(in);
	if (st == MLK_OK && fsync(out) != 0)
		st = mlk_error_errno(e, to, "cannot fsync");
	if (close(out) != 0 && st == MLK_OK)
		st = mlk_error_errno(e, to, "cannot close");
	if (st == MLK_OK && chmod(to, mode) != 0)
		st = mlk_error_errno(e, to, "cannot chmod");
	return st;
}

/* A hard link, or a copy where links are refused (*copied set). */
static enum mlk_status link_or_copy(const char *from, const char *to,
				    int *copied, struct mlk_error *e)
{
	*copied = 0;
	if (link(from, to) == 0)
		return MLK_OK;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK &&
	    errno != ENOTSUP && errno != EACCES)
		return mlk_error_errno(e, to, "cannot link");
	*copied = 1;
	return copy_file(from, to, 0444, e);
}

static enum mlk_status mkdirs_for(const char *file, struct mlk_error *e)
{
	char *d = xstrdup(file);
	char *sl = strrchr(d, '/');
	enum mlk_status st = MLK_OK;
	if (sl) {
		*sl = '\0';
		st = fsio_mkdirs(d, 0755, e);
	}
	free(d);
	return st;
}

/*
 * Put a durable, read-only file into the object store under its hash
 * (a link when possible): *fresh says the store did not hold it.
 */
static enum mlk_status store_object(const struct lake *l, const char *file,
				    const char *sha, int *fresh,
				    struct mlk_error *e)
{
	*fresh = 0;
	if (object_exists(l, sha))
		return MLK_OK;
	char *op = object_path(l, sha);
	enum mlk_status st = mkdirs_for(op, e);
	char *tmp = NULL;
	if (st == MLK_OK) {
		/* Through a temp name, so a reader never sees a partial copy. */
		int fd;
		st = fsio_temp_beside(op, &fd, &tmp, e);
		if (st == MLK_OK) {
			close(fd);
			unlink(tmp);
			int copied;
			st = link_or_copy(file, tmp, &copied, e);
		}
	}
	if (st == MLK_OK && rename(tmp, op) != 0)
		st = mlk_error_errno(e, op, "cannot store object");
	if (st == MLK_OK)
		st = fsio_fsync_parent(op, e);
	if (st == MLK_OK)
		*fresh = 1;
	else if (tmp)
		unlink(tmp);
	free(tmp);
	free(op);
	return st;
}

/*
 * The input digest: SHA-256 over the SHA-256s of the input's 4 MiB
 * pieces.  Streamed in one pass while a pipe is read; over a regular file
 * the pieces are hashed on two threads, which makes recognising an
 * unchanged input twice as fast as one SHA-256 pass.
 */
#define PIECE (4u << 20)

struct tree_hash {
	struct sha256_ctx outer, inner;
	size_t fill;
	unsigned long long pieces;
};

static void th_init(struct tree_hash *t)
{
	sha256_init(&t->outer);
	sha256_init(&t->inner);
	t->fill = 0;
	t->pieces = 0;
}

static void th_piece(struct tree_hash *t)
{
	uint8_t d[SHA256_LEN];
	sha256_final(&t->inner, d);
	sha256_update(&t->outer, d, sizeof d);
	sha256_init(&t->inner);
	t->fill = 0;
	t->pieces++;
}

static void th_update(struct tree_hash *t, const char *p, size_t n)
{
	while (n) {
		size_t take = PIECE - t->fill < n ? PIECE - t->fill : n;
		sha256_update(&t->inner, p, take);
		t->fill += take;
		p += take;
		n -= take;
		if (t->fill == PIECE)
			th_piece(t);
	}
}

static void th_final(struct tree_hash *t, char hex[SHA256_HEX])
{
	if (t->fill || !t->pieces)
		th_piece(t);
	sha256_abort(&t->inner);
	uint8_t d[SHA256_LEN];
	sha256_final(&t->outer, d);
	hex_encode(d, SHA256_LEN, hex);
}

struct th_job {
	int fd;
	unsigned long long size, npieces;
	uint8_t (*d)[SHA256_LEN];
	int stride, first, failed;
};

static void *th_worker(void *arg)
{
	struct th_job *j = arg;
	char *b = xmalloc(1 << 20);
	for (unsigned long long i = (unsigned long long)j->first;
	     i < j->npieces && !j->failed; i += (unsigned long long)j->stride) {
		struct sha256_ctx c;
		sha256_init(&c);
		unsigned long long off = i * PIECE, end = off + PIECE;
		if (end > j->size)
			end = j->size;
		while (off < end) {
			size_t want = end - off < (1u << 20) ? end - off : 1u << 20;
			ssize_t r = pread(j->fd, b, want, (off_t)off);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				j->failed = 1;
				break;
			}
			sha256_update(&c, b, (size_t)r);
			off += (unsigned long long)r;
		}
		sha256_final(&c, j->d[i]);
	}
	free(b);
	return NULL;
}

static enum mlk_status hash_fd(int fd, unsigned long long size,
			       char hex[SHA256_HEX], struct mlk_error *e)
{
	unsigned long long n = size ? (size + PIECE - 1) / PIECE : 1;
	uint8_t (*d)[SHA256_LEN] = xcalloc(n, sizeof *d);
	struct th_job j[2] = { { fd, size, n, d, 2, 0, 0 },
			       { fd, size, n, d, 2, 1, 0 } };
	pthread_t t;
	int started = pthread_create(&t, NULL, th_worker, &j[1]) == 0;
	if (!started)
		j[0].stride = 1;
	th_worker(&j[0]);
	if (started)
		pthread_join(t, NULL);
	enum mlk_status st = MLK_OK;
	if (j[0].failed || j[1].failed)
		st = mlk_error_errno(e, "-", "cannot read");
	struct sha256_ctx c;
	sha256_init(&c);
	for (unsigned long long i = 0; i < n; i++)
		sha256_update(&c, d[i], SHA256_LEN);
	uint8_t out[SHA256_LEN];
	sha256_final(&c, out);
	hex_encode(out, SHA256_LEN, hex);
	free(d);
	return st;
}

/* ---- create ---- */

static const char *const date_fields[] = {
	"date", "effectiveDateTime", "period.start", "authoredOn",
	"onsetDateTime", "recordedDate", "occurrenceDateTime",
	"performedDateTime", "performedPeriod.start", "issued",
	"encounter_date",
};

struct cr_tls {
	struct rec r;
	struct buf scratch;
	struct strset batches, snaps, deids, samples;
};

struct cr_ctx {
	const struct pspec *ps;
	int need_deid;
	pthread_mutex_t mu;
	struct strset batches, snaps, deids, samples;
	struct dwriter *dw;
	snap_reject_fn reject;
	void *rctx;
	unsigned long long records, rejected;
	long long denied_line;
	struct tree_hash in_hash;
	int fd;
	struct mlk_error *e;
};

static void *cr_tls_new(void *ctx)
{
	(void)ctx;
	struct cr_tls *t = xcalloc(1, sizeof *t);
	rec_init(&t->r);
	return t;
}

static void merge_set(struct strset *to, struct strset *from)
{
	for (size_t i = 0; i < from->cap; i++)
		if (from->slot[i])
			strset_add(to, from->slot[i], strlen(from->slot[i]));
	strset_release(from);
}

/* Runs on the worker thread as it ends: the sets join the run's. */
static void cr_tls_free(void *ctx, void *tls)
{
	struct cr_ctx *c = ctx;
	struct cr_tls *t = tls;
	pthread_mutex_lock(&c->mu);
	merge_set(&c->batches, &t->batches);
	merge_set(&c->snaps, &t->snaps);
	merge_set(&c->deids, &t->deids);
	merge_set(&c->samples, &t->samples);
	pthread_mutex_unlock(&c->mu);
	rec_release(&t->r);
	buf_release(&t->scratch);
	free(t);
}

/* A scalar value for a partition field; 0 when it has none. */
static int field_value(struct cr_tls *t, int mlk, const char *name,
		       const char **v, size_t *n, int *num)
{
	struct rec *r = &t->r;
	int tok = -1;
	*num = 0;
	if (!strcmp(name, "type") || !strcmp(name, "split")) {
		tok = mlk >= 0 ? rec_get(r, mlk, name) : -1;
	} else if (!strcmp(name, "date")) {
		for (size_t i = 0; i < sizeof date_fields / sizeof *date_fields;
		     i++) {
			tok = rec_path(r, 0, date_fields[i]);
			if (tok > 0 && rec_type(r, tok) == REC_STRING)
				break;
			tok = -1;
		}
	} else {
		tok = rec_path(r, 0, name);
	}
	if (tok <= 0)
		return 0;
	int ty = rec_type(r, tok);
	if (ty != REC_STRING && ty != REC_PRIMITIVE)
		return 0;
	const char *raw = rec_raw(r, tok, n);
	if (ty == REC_PRIMITIVE) {
		if (*n == 4 && !memcmp(raw, "null", 4))
			return 0;
		*num = raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9');
		*v = raw;
		return 1;
	}
	if (!memchr(raw, '\\', *n)) {
		*v = raw;
		return 1;
	}
	buf_reset(&t->scratch);
	rec_str(r, tok, &t->scratch);
	*v = t->scratch.data ? t->scratch.data : "";
	*n = t->scratch.len;
	return 1;
}

static void note_member(struct cr_tls *t, int mlk, const char *key,
			struct strset *set, int as_json)
{
	int k = rec_get(&t->r, mlk, key);
	if (k < 0)
		return;
	if (as_json) {
		if (rec_type(&t->r, k) != REC_OBJECT)
			return;
		buf_reset(&t->scratch);
		rec_write(&t->r, k, &t->scratch);
		strset_add(set, t->scratch.data, t->scratch.len);
		return;
	}
	if (rec_type(&t->r, k) != REC_STRING)
		return;
	size_t n;
	const char *raw = rec_raw(&t->r, k, &n);
	/* Ids are plain hex; anything with escapes is not one of ours. */
	if (!memchr(raw, '\\', n))
		strset_add(set, raw, n);
}

static int is_place_member(const struct rec *r, int k)
{
	return rec_key_eq(r, k, "dataset") || rec_key_eq(r, k, "zone") ||
	       rec_key_eq(r, k, "partition") || rec_key_eq(r, k, "snapshot");
}

static void cr_map(void *ctx, void *tls, const char *line, size_t len,
		   long long lineno, unsigned long long offset,
		   struct pmap_out *out)
{
	struct cr_ctx *c = ctx;
	struct cr_tls *t = tls;
	struct rec *r = &t->r;
	struct mlk_error pe = MLK_ERROR_INIT;
	if (rec_parse(r, line, len, &pe) != MLK_OK) {
		pmap_add_reject(out, NULL, 0, pe.msg, lineno, offset);
		return;
	}
	int mlk = rec_get(r, 0, "_mlk");
	if (mlk >= 0 && rec_type(r, mlk) != REC_OBJECT)
		mlk = -1;
	int deid = mlk >= 0 ? rec_get(r, mlk, "deid") : -1;
	if (c->need_deid && (deid < 0 || rec_type(r, deid) != REC_OBJECT)) {
		/* Marked for reduce, which stops the run in input order. */
		size_t off = out->data.len, aoff = out->aux.len;
		pmap_add_record(out, off, aoff, lineno, SIZE_MAX);
		return;
	}
	if (mlk >= 0) {
		note_member(t, mlk, "batch", &t->batches, 0);
		note_member(t, mlk, "snapshot", &t->snaps, 0);
		note_member(t, mlk, "deid", &t->deids, 1);
		note_member(t, mlk, "sample", &t->samples, 1);
	}

	size_t aoff = out->aux.len;
	for (size_t i = 0; i < c->ps->n; i++) {
		const struct pfield *f = &c->ps->f[i];
		const char *v = NULL;
		size_t vn = 0;
		int num = 0;
		if (i)
			buf_addch(&out->aux, '/');
		if (!field_value(t, mlk, f->source, &v, &vn, &num))
			v = NULL;
		partition_add(f, v, vn, num, &out->aux);
	}

	/* The record without _mlk, then _mlk last, less its place. */
	size_t off = out->data.len;
	int empty = 0;
	int last = 0;
	if (mlk >= 0 && !r->has_space) {
		/* _mlk is usually the last member: copy up to its key. */
		size_t b, e2;
		rec_span(r, mlk - 1, &b, &e2);
		size_t ob, oe;
		rec_span(r, 0, &ob, &oe);
		last = r->skip[mlk] == r->skip[0];
		if (last) {
			size_t cut = b;
			while (cut > ob + 1 && r->text[cut - 1] != ',')
				cut--;
			if (cut > ob + 1) {
				buf_add(&out->data, r->text + ob, cut - 1 - ob);
			} else {
				buf_addch(&out->data, '{');
				empty = 1;
			}
		}
	}
	if (!last)
		rec_write_open(r, 0, mlk >= 0 ? "_mlk" : NULL, &out->data,
			       &empty);
	if (!empty)
		buf_addch(&out->data, ',');
	buf_addstr(&out->data, "\"_mlk\":{");
	int m = 0;
	if (mlk >= 0)
		for (int k = mlk + 1; k < r->skip[mlk]; k = r->skip[k]) {
			if (is_place_member(r, k))
				continue;
			if (m++)
				buf_addch(&out->data, ',');
			rec_write(r, k, &out->data);
			buf_addch(&out->data, ':');
			rec_write(r, k + 1, &out->data);
		}
	buf_addstr(&out->data, "}}\n");
	pmap_add_record(out, off, aoff, lineno, out->data.len - off);
}

static int cr_reduce(void *ctx, const struct pmap_out *out)
{
	struct cr_ctx *c = ctx;
	for (size_t i = 0; i < out->n; i++) {
		const struct pmap_item *it = &out->items[i];
		if (it->kind == PMAP_REJECT) {
			c->rejected++;
			if (c->reject) {
				char *why = xstrndup(out->aux.data +
						     it->aux_off, it->aux_len);
				c->reject(c->rctx, it->line, why);
				free(why);
			}
			continue;
		}
		if (it->keep == SIZE_MAX) {
			c->denied_line = it->line;
			return MLK_DENIED;
		}
		c->records++;
		if (dw_add(c->dw, out->aux.data + it->aux_off, it->aux_len,
			   out->data.data + it->off, it->len, NULL, 0,
			   c->e) != MLK_OK)
			return MLK_SYSTEM;
	}
	return 0;
}

static ssize_t cr_read(void *ctx, void *p, size_t n)
{
	struct cr_ctx *c = ctx;
	ssize_t r;
	do
		r = read(c->fd, p, n);
	while (r < 0 && errno == EINTR);
	if (r > 0)
		th_update(&c->in_hash, p, (size_t)r);
	return r;
}

/* The partition spec: mlk.yaml's "snapshot" family, else by type. */
static enum mlk_status snap_pspec(const struct lake *l, const char *dataset,
				  struct pspec *ps, struct mlk_error *e)
{
	const struct ynode *dp = lake_dataset_conf(l, dataset, "partitions");
	const struct ynode *gp = ynode_get(l->conf, "partitions");
	if ((dp && ynode_get(dp, "snapshot")) ||
	    (gp && ynode_get(gp, "snapshot")))
		return lake_pspec(l, dataset, "snapshot", ps, e);
	pspec_init(ps);
	return pspec_add(ps, "type", e);
}

static void layout_entry(const struct snap_opts *o, const struct pspec *ps,
			 const struct dw_opts *dwo, struct buf *out)
{
	struct buf spec = BUF_INIT;
	pspec_describe(ps, &spec);
	buf_addstr(out, "{\"entry\":\"layout\",\"zone\":");
	buf_add_json_cstr(out, o->zone);
	buf_addstr(out, ",\"dataset\":");
	buf_add_json_cstr(out, o->dataset);
	buf_addstr(out, ",\"partitions\":");
	buf_add_json_cstr(out, spec.data ? spec.data : "");
	buf_addf(out, ",\"format\":\"ndjson.gz\",\"level\":%d,\"chunk_bytes\""
		 ":%zu,\"buffer_bytes\":%zu}", dwo->level, dwo->chunk_bytes,
		 dwo->buffer_bytes);
	buf_release(&spec);
}

static void file_entry(struct buf *line, const char *path, const char *part,
		       unsigned long long records, unsigned long long bytes,
		       unsigned long long size, const char *sha)
{
	buf_reset(line);
	buf_addstr(line, "{\"entry\":\"file\",\"path\":");
	buf_add_json_cstr(line, path);
	buf_addstr(line, ",\"partition\":");
	buf_add_json_cstr(line, part);
	buf_addf(line, ",\"records\":%llu,\"bytes\":%llu,\"size\":%llu,"
		 "\"sha256\":\"%s\"}", records, bytes, size, sha);
}

static char *file_name(const char *part, const char *sha)
{
	return *part ? xasprintf("%s/%.16s.ndjson.gz", part, sha)
		     : xasprintf("%.16s.ndjson.gz", sha);
}

static enum mlk_status begin_build(struct snap_build *b, const struct lake *l,
				   const struct snap_opts *o,
				   struct snapshot *parent, int *have_parent,
				   struct mlk_error *e)
{
	memset(b, 0, sizeof *b);
	b->l = l;
	b->lock = -1;
	b->zone = xstrdup(o->zone);
	b->dataset = xstrdup(o->dataset);
	char *dsdir = lake_path(l, "%s/%s", o->zone, o->dataset);
	char *lockp = lake_path(l, "%s/%s/.lock", o->zone, o->dataset);
	enum mlk_status st = fsio_mkdirs(dsdir, 0755, e);
	if (st == MLK_OK)
		st = fsio_lock(lockp, &b->lock, e);
	free(dsdir);
	free(lockp);
	if (st != MLK_OK)
		return st;
	char *sd = lake_path(l, "snapshots");
	st = fsio_mkdirs(sd, 0755, e);
	free(sd);
	if (st != MLK_OK)
		return st;
	uint8_t rnd[8];
	char rh[17];
	st = crypto_random(rnd, sizeof rnd, e);
	if (st != MLK_OK)
		return st;
	hex_encode(rnd, sizeof rnd, rh);
	b->staging = lake_path(l, "staging/snap-%s", rh);
	st = fsio_mkdirs(b->staging, 0755, e);
	if (st != MLK_OK)
		return st;
	st = snap_latest(l, o->zone, o->dataset, parent, have_parent, e);
	if (st != MLK_OK)
		return st;
	b->version = *have_parent ? parent->version + 1 : 1;
	if (*have_parent)
		b->parent = xstrdup(parent->id);
	return MLK_OK;
}

static void add_entry_line(struct manifest *m, struct strset *seen,
			   const char *line, size_t len)
{
	if (strset_add(seen, line, len))
		manifest_add(m, line, len);
}

/*
 * Finish: the id from the entries; if new, the version's directory in
 * staging (links to the objects, the manifest) ready to publish.
 */
static enum mlk_status finish_build(struct snap_build *b,
				    const struct snap_opts *o,
				    struct manifest *m,
				    const struct snap_file *files, size_t nf,
				    struct mlk_error *e)
{
	char hex[SHA256_HEX];
	manifest_digest_entries(m, hex);
	snprintf(b->id, sizeof b->id, "s%.24s", hex);
	b->files = nf;
	char *mp = lake_path(b->l, "snapshots/%s.json", b->id);
	b->existed = fsio_exists(mp);
	free(mp);
	if (b->existed)
		return MLK_OK;

	char now[32];
	lake_time_iso(lake_now(b->l), now);
	struct manifest h;
	manifest_init(&h, "snapshot");
	manifest_set_str(&h, "id", b->id);
	manifest_set_str(&h, "zone", b->zone);
	manifest_set_str(&h, "dataset", b->dataset);
	manifest_set_num(&h, "version", b->version);
	manifest_set_str(&h, "parent", b->parent);
	manifest_set_str(&h, "created", now);
	manifest_set_str(&h, "actor", o->actor);
	manifest_set_str(&h, "tool", o->tool);
	manifest_set_str(&h, "note", o->note);
	manifest_set_num(&h, "records", (long long)b->records);
	manifest_set_num(&h, "rejected", (long long)b->rejected);
	manifest_set_num(&h, "files", (long long)nf);
	manifest_set_num(&h, "bytes", (long long)b->bytes);
	manifest_set_num(&h, "size", (long long)b->size);
	if (o->quality)
		manifest_set_json(&h, "quality", o->quality);
	/* The entries are m's; h only lends its header. */
	struct manifest out = *m;
	out.head = h.head;
	manifest_serialize(&out, &b->manifest);
	manifest_release(&h);
	sha256_hex_once(b->manifest.data, b->manifest.len, b->manifest_sha256);

	char *vdir = xasprintf("%s/version", b->staging);
	enum mlk_status st = fsio_mkdirs(vdir, 0755, e);
	for (size_t i = 0; st == MLK_OK && i < nf; i++) {
		char *op = object_path(b->l, files[i].sha256);
		char *dst = xasprintf("%s/%s", vdir, files[i].path);
		int copied;
		st = mkdirs_for(dst, e);
		if (st == MLK_OK)
			st = link_or_copy(op, dst, &copied, e);
		if (st == MLK_OK)
			st = fsio_fsync_parent(dst, e);
		free(op);
		free(dst);
	}
	if (st == MLK_OK) {
		char *p = xasprintf("%s/_manifest.json", vdir);
		st = fsio_write_atomic(p, b->manifest.data, b->manifest.len,
				       0444, e);
		free(p);
	}
	free(vdir);
	return st;
}

static void lineage_entries(struct manifest *m, struct strset *seen,
			    struct cr_ctx *c, struct buf *inputs)
{
	struct buf line = BUF_INIT;
	char **v = strset_sorted(&c->batches);
	buf_addch(inputs, '[');
	int first = 1;
	for (char **p = v; *p; p++) {
		buf_reset(&line);
		buf_addstr(&line, "{\"entry\":\"input\",\"batch\":");
		buf_add_json_cstr(&line, *p);
		buf_addch(&line, '}');
		add_entry_line(m, seen, line.data, line.len);
		buf_addstr(inputs, first ? "{\"batch\":" : ",{\"batch\":");
		buf_add_json_cstr(inputs, *p);
		buf_addch(inputs, '}');
		first = 0;
	}
	free(v);
	v = strset_sorted(&c->snaps);
	for (char **p = v; *p; p++) {
		buf_reset(&line);
		buf_addstr(&line, "{\"entry\":\"input\",\"snapshot\":");
		buf_add_json_cstr(&line, *p);
		buf_addch(&line, '}');
		add_entry_line(m, seen, line.data, line.len);
		buf_addstr(inputs, first ? "{\"snapshot\":" : ",{\"snapshot\":");
		buf_add_json_cstr(inputs, *p);
		buf_addch(inputs, '}');
		first = 0;
	}
	free(v);
	buf_addch(inputs, ']');
	v = strset_sorted(&c->deids);
	for (char **p = v; *p; p++) {
		buf_reset(&line);
		buf_addstr(&line, "{\"entry\":\"deid\",\"deid\":");
		buf_addstr(&line, *p);
		buf_addch(&line, '}');
		add_entry_line(m, seen, line.data, line.len);
	}
	free(v);
	v = strset_sorted(&c->samples);
	for (char **p = v; *p; p++) {
		buf_reset(&line);
		buf_addstr(&line, "{\"entry\":\"sample\",\"sample\":");
		buf_addstr(&line, *p);
		buf_addch(&line, '}');
		add_entry_line(m, seen, line.data, line.len);
	}
	free(v);
	buf_release(&line);
}

static void dw_settings(const struct lake *l, struct dw_opts *dwo)
{
	memset(dwo, 0, sizeof *dwo);
	dwo->level = (int)lake_conf_num(l, "snapshot", "compression_level", 1);
	if (dwo->level < 1 || dwo->level > 12)
		dwo->level = 1;
	dwo->chunk_bytes = 1u << 20;
	dwo->buffer_bytes = 16u << 20;
	dwo->threads = (int)lake_conf_num(l, "snapshot", "threads", 2);
	if (dwo->threads < 0 || dwo->threads > 64)
		dwo->threads = 2;
}

/*
 * A regular file's identity as the kernel keeps it.  Writing a byte
 * changes its ctime, which no user can set back, so the same device,
 * inode, size, mtime and ctime mean the same bytes (git's index and rsync
 * rely on this).  A file changed less than a second before it was read is
 * "racy" and never recorded, so clock granularity cannot fool the check.
 */
static char *stat_path(const struct lake *l, const char *layout,
		       const char *parent, const struct stat *sb)
{
	struct buf k = BUF_INIT;
	buf_addf(&k, "mlk-snapshot-stat\n%s\n%s\n%llu %llu %llu %lld.%09ld "
		 "%lld.%09ld", layout, parent ? parent : "",
		 (unsigned long long)sb->st_dev, (unsigned long long)sb->st_ino,
		 (unsigned long long)sb->st_size, (long long)sb->st_mtim.tv_sec,
		 sb->st_mtim.tv_nsec, (long long)sb->st_ctim.tv_sec,
		 sb->st_ctim.tv_nsec);
	char hex[SHA256_HEX];
	sha256_hex_once(k.data, k.len, hex);
	buf_release(&k);
	return lake_path(l, "snapshots/_inputs/st-%s", hex);
}

/* A version's inputs as the audit log names them: [{"batch":..},...]. */
static char *inputs_of(const struct snapshot *s)
{
	static const char pre[] = "{\"entry\":\"input\",";
	struct buf b = BUF_INIT;
	buf_addch(&b, '[');
	for (size_t i = 0; i < s->nent; i++) {
		if (strncmp(s->ent[i], pre, sizeof pre - 1) != 0)
			continue;
		if (b.len > 1)
			buf_addch(&b, ',');
		buf_addch(&b, '{');
		buf_addstr(&b, s->ent[i] + sizeof pre - 1);
	}
	buf_addch(&b, ']');
	return buf_detach(&b);
}

/* The input cache: an unchanged input (a regular file) is known by hash. */
static char *cache_path(const struct lake *l, const char *layout,
			const char *parent, const char *digest,
			unsigned long long size)
{
	struct sha256_ctx c;
	sha256_init(&c);
	sha256_update(&c, "mlk-snapshot-input\n", 19);
	sha256_update(&c, layout, strlen(layout) + 1);
	sha256_update(&c, parent ? parent : "", parent ? strlen(parent) + 1 : 1);
	sha256_update(&c, digest, strlen(digest));
	uint8_t d[SHA256_LEN];
	char hex[SHA256_HEX];
	sha256_final(&c, d);
	hex_encode(d, SHA256_LEN, hex);
	return lake_path(l, "snapshots/_inputs/%llu-%s", size, hex);
}

static int cache_size_known(const struct lake *l, unsigned long long size)
{
	char *dir = lake_path(l, "snapshots/_inputs");
	char prefix[32];
	snprintf(prefix, sizeof prefix, "%llu-", size);
	DIR *d = opendir(dir);
	free(dir);
	if (!d)
		return 0;
	int yes = 0;
	struct dirent *de;
	while (!yes && (de = readdir(d)))
		yes = !strncmp(de->d_name, prefix, strlen(prefix));
	closedir(d);
	return yes;
}

enum mlk_status snap_prepare(struct snap_build *b, const struct lake *l,
			     const struct snap_opts *o, int fd,
			     snap_reject_fn reject, void *rctx,
			     struct mlk_error *e)
{
	struct snapshot parent;
	int have_parent = 0;
	memset(&parent, 0, sizeof parent);
	enum mlk_status st = begin_build(b, l, o, &parent, &have_parent, e);
	struct pspec ps;
	int have_ps = 0;
	if (st == MLK_OK) {
		st = snap_pspec(l, o->dataset, &ps, e);
		have_ps = st == MLK_OK;
	}
	struct dw_opts dwo;
	dw_settings(l, &dwo);
	struct buf layout = BUF_INIT;
	if (have_ps)
		layout_entry(o, &ps, &dwo, &layout);
	const char *cparent = o->append && have_parent ? parent.id : NULL;

	/* An input we have seen whole before: its version, by hash alone. */
	time_t started = time(NULL);
	struct stat sb;
	if (st == MLK_OK && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    lseek(fd, 0, SEEK_CUR) == 0 &&
	    cache_size_known(l, (unsigned long long)sb.st_size)) {
		char hex[SHA256_HEX] = "";
		char *sp = stat_path(l, layout.data, cparent, &sb);
		char *sd = NULL;
		size_t sl;
		struct mlk_error se = MLK_ERROR_INIT;
		if (fsio_read_file(sp, &sd, &sl, &se) == MLK_OK &&
		    sl >= SHA256_HEX - 1) {
			snprintf(hex, sizeof hex, "%.*s", SHA256_HEX - 1, sd);
			b->by_stat = 1;
		} else {
			st = hash_fd(fd, (unsigned long long)sb.st_size, hex, e);
		}
		free(sd);
		free(sp);
		if (st == MLK_OK) {
			char *cp = cache_path(l, layout.data, cparent, hex,
					      (unsigned long long)sb.st_size);
			char *data = NULL;
			size_t len;
			struct mlk_error ce = MLK_ERROR_INIT;
			if (fsio_read_file(cp, &data, &len, &ce) == MLK_OK &&
			    len >= SNAP_ID_LEN - 1) {
				char id[SNAP_ID_LEN];
				snprintf(id, sizeof id, "%.*s", SNAP_ID_LEN - 1,
					 data);
				struct snapshot old;
				if (snap_id_valid(id) &&
				    snap_load(l, id, &old, &ce) == MLK_OK) {
					snprintf(b->id, sizeof b->id, "%s", id);
					snprintf(b->manifest_sha256,
						 sizeof b->manifest_sha256, "%s",
						 old.manifest_sha256);
					snprintf(b->input_sha256,
						 sizeof b->input_sha256, "%s", hex);
					b->existed = b->by_input = 1;
					b->inputs_json = inputs_of(&old);
					b->records = old.records;
					b->files = old.nf;
					b->version = old.version;
					snap_release(&old);
				}
			}
			free(data);
			free(cp);
			if (!b->existed && lseek(fd, 0, SEEK_SET) != 0)
				st = mlk_error_errno(e, "-", "cannot rewind");
		}
	}
	if (b->existed || st != MLK_OK) {
		if (have_ps)
			pspec_release(&ps);
		buf_release(&layout);
		snap_release(&parent);
		return st;
	}

	struct cr_ctx c;
	memset(&c, 0, sizeof c);
	c.ps = &ps;
	c.need_deid = 1;
	pthread_mutex_init(&c.mu, NULL);
	c.reject = reject;
	c.rctx = rctx;
	c.fd = fd;
	c.e = e;
	th_init(&c.in_hash);
	char *ddir = xasprintf("%s/data", b->staging);
	st = fsio_mkdirs(ddir, 0755, e);
	if (st == MLK_OK)
		st = dw_open(&c.dw, ddir, "part.ndjson.gz", &dwo, e);
	if (st == MLK_OK) {
		struct pmap_ops ops = { &c, cr_tls_new, cr_tls_free, cr_map,
					cr_reduce };
		st = pmap_run(cr_read, &c, o->threads, 0, &ops, e);
		if (st == MLK_DENIED) {
			b->denied_line = c.denied_line;
			mlk_error_set(e, MLK_DENIED, "-", c.denied_line,
				      "record has no _mlk.deid: only "
				      "de-identified records enter %s/",
				      o->zone);
		}
	}
	th_final(&c.in_hash, b->input_sha256);
	b->records = c.records;
	b->rejected = c.rejected;

	const struct dw_file *df = NULL;
	size_t ndf = 0;
	if (st == MLK_OK)
		st = dw_finish(c.dw, &df, &ndf, e);

	struct manifest m;
	manifest_init(&m, "snapshot");
	struct strset seen = { 0 };
	struct snap_file *files = NULL;
	size_t nf = 0, falloc = 0;
	struct buf line = BUF_INIT, inputs = BUF_INIT;
	for (size_t i = 0; st == MLK_OK && i < ndf; i++) {
		char *src = xasprintf("%s/%s", ddir, df[i].path);
		int fresh = 0;
		if (chmod(src, 0444) != 0)
			st = mlk_error_errno(e, src, "cannot make read-only");
		if (st == MLK_OK)
			st = store_object(l, src, df[i].sha256, &fresh, e);
		free(src);
		if (st != MLK_OK)
			break;
		b->new_files += (unsigned long long)fresh;
		char *path = file_name(df[i].partition, df[i].sha256);
		file_entry(&line, path, df[i].partition, df[i].records,
			   df[i].bytes, df[i].size, df[i].sha256);
		if (strset_add(&seen, line.data, line.len)) {
			manifest_add(&m, line.data, line.len);
			XGROW(files, falloc, nf + 1);
			files[nf].path = path;
			files[nf].partition = xstrdup(df[i].partition);
			snprintf(files[nf].sha256, SHA256_HEX, "%s",
				 df[i].sha256);
			files[nf].records = df[i].records;
			nf++;
			b->bytes += df[i].bytes;
			b->size += df[i].size;
		} else {
			free(path);
		}
	}
	if (st == MLK_OK) {
		add_entry_line(&m, &seen, layout.data, layout.len);
		/* An appended version derives from the one it extends. */
		if (o->append && have_parent)
			strset_add(&c.snaps, parent.id, strlen(parent.id));
		lineage_entries(&m, &seen, &c, &inputs);
		b->inputs_json = buf_detach(&inputs);
		if (o->append && have_parent) {
			for (size_t i = 0; i < parent.nent; i++) {
				const char *x = parent.ent[i];
				if (strstr(x, "{\"entry\":\"layout\"") == x)
					continue;
				add_entry_line(&m, &seen, x, strlen(x));
			}
			for (size_t i = 0; i < parent.nf; i++) {
				XGROW(files, falloc, nf + 1);
				files[nf].path = xstrdup(parent.f[i].path);
				files[nf].partition =
					xstrdup(parent.f[i].partition);
				snprintf(files[nf].sha256, SHA256_HEX, "%s",
					 parent.f[i].sha256);
				nf++;
				b->records += parent.f[i].records;
				b->bytes += parent.f[i].bytes;
				b->size += parent.f[i].size;
			}
		}
		st = finish_build(b, o, &m, files, nf, e);
	}
	if (st == MLK_OK && S_ISREG(sb.st_mode) && !b->rejected) {
		b->cache = cache_path(l, layout.data, cparent,
				      b->input_sha256,
				      (unsigned long long)sb.st_size);
		if (sb.st_ctim.tv_sec < started - 1)
			b->stat_cache = stat_path(l, layout.data, cparent, &sb);
	}
	if (st == MLK_OK && b->existed) {
		/* Same records and lineage as a version already made. */
		struct snapshot old;
		struct mlk_error le = MLK_ERROR_INIT;
		if (snap_load(l, b->id, &old, &le) == MLK_OK) {
			snprintf(b->manifest_sha256, sizeof b->manifest_sha256,
				 "%s", old.manifest_sha256);
			b->version = old.version;
			snap_release(&old);
		}
	}
	for (size_t i = 0; i < nf; i++) {
		free(files[i].path);
		free(files[i].partition);
	}
	free(files);
	buf_release(&line);
	buf_release(&inputs);
	strset_release(&seen);
	manifest_release(&m);
	dw_free(c.dw);
	free(ddir);
	strset_release(&c.batches);
	strset_release(&c.snaps);
	strset_release(&c.deids);
	strset_release(&c.samples);
	pthread_mutex_destroy(&c.mu);
	if (have_ps)
		pspec_release(&ps);
	buf_release(&layout);
	snap_release(&parent);
	return st;
}

enum mlk_status snap_publish(struct snap_build *b, struct mlk_error *e)
{
	enum mlk_status st = MLK_OK;
	if (!b->existed) {
		struct snapshot v;
		memset(&v, 0, sizeof v);
		snprintf(v.id, sizeof v.id, "%s", b->id);
		v.zone = b->zone;
		v.dataset = b->dataset;
		char *final = snap_dir(b->l, &v);
		char *staged = xasprintf("%s/version", b->staging);
		char *mp = lake_path(b->l, "snapshots/%s.json", b->id);
		if (fsio_exists(final)) {
			/* A killed run got this far: its copy is the one. */
			char *fm = xasprintf("%s/_manifest.json", final);
			char *data = NULL;
			size_t len;
			st = fsio_read_file(fm, &data, &len, e);
			if (st == MLK_OK) {
				buf_reset(&b->manifest);
				buf_add(&b->manifest, data, len);
				sha256_hex_once(data, len, b->manifest_sha256);
			}
			free(data);
			free(fm);
		} else if (rename(staged, final) != 0) {
			st = mlk_error_errno(e, final, "cannot publish "
					     "snapshot");
		} else {
			st = fsio_fsync_parent(final, e);
		}
		if (st == MLK_OK)
			st = fsio_write_atomic(mp, b->manifest.data,
					       b->manifest.len, 0444, e);
		free(final);
		free(staged);
		free(mp);
	}
	if (st == MLK_OK && b->cache && !b->by_input) {
		struct mlk_error ce = MLK_ERROR_INIT;
		char *dir = lake_path(b->l, "snapshots/_inputs");
		char line[SNAP_ID_LEN + 1];
		snprintf(line, sizeof line, "%s\n", b->id);
		/* Only a shortcut: failing to write it loses nothing. */
		if (fsio_mkdirs(dir, 0755, &ce) == MLK_OK)
			fsio_write_atomic(b->cache, line, strlen(line), 0444,
					  &ce);
		if (b->stat_cache) {
			char dl[SHA256_HEX + 1];
			snprintf(dl, sizeof dl, "%s\n", b->input_sha256);
			fsio_write_atomic(b->stat_cache, dl, strlen(dl), 0444,
					  &ce);
		}
		free(dir);
	}
	return st;
}

void snap_build_release(struct snap_build *b)
{
	if (b->staging)
		fsio_remove_tree(b->staging);
	if (b->lock >= 0)
		fsio_unlock(b->lock);
	free(b->staging);
	free(b->zone);
	free(b->dataset);
	free(b->parent);
	free(b->inputs_json);
	free(b->cache);
	free(b->stat_cache);
	buf_release(&b->manifest);
	memset(b, 0, sizeof *b);
	b->lock = -1;
}

/* ---- compact ---- */

/* Concatenate gzip files into one new object (gzip members chain). */
static enum mlk_status concat_files(const struct lake *l, struct snap_build *b,
				    const struct snap_file *const *in,
				    size_t n, struct snap_file *out,
				    struct mlk_error *e)
{
	char *tmp = xasprintf("%s/compact.%llu", b->staging, b->new_files);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		enum mlk_status st = mlk_error_errno(e, tmp, "cannot create");
		free(tmp);
		return st;
	}
	struct sha256_ctx c;
	sha256_init(&c);
	enum mlk_status st = MLK_OK;
	char *buf = xmalloc(1 << 20);
	memset(out, 0, sizeof *out);
	for (size_t i = 0; st == MLK_OK && i < n; i++) {
		char *op = object_path(l, in[i]->sha256);
		int ifd = open(op, O_RDONLY | O_CLOEXEC);
		if (ifd < 0)
			st = mlk_error_errno(e, op, "cannot open");
		while (st == MLK_OK) {
			ssize_t r = read(ifd, buf, 1 << 20);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				st = mlk_error_errno(e, op, "cannot read");
			if (r <= 0)
				break;
			sha256_update(&c, buf, (size_t)r);
			st = fsio_write_all(fd, buf, (size_t)r, tmp, e);
		}
		if (ifd >= 0)
			close(ifd);
		free(op);
		out->records += in[i]->records;
		out->bytes += in[i]->bytes;
		out->size += in[i]->size;
	}
	free(buf);
	uint8_t d[SHA256_LEN];
	sha256_final(&c, d);
	hex_encode(d, SHA256_LEN, out->sha256);
	if (fsync(fd) != 0 && st == MLK_OK)
		st = mlk_error_errno(e, tmp, "cannot fsync");
	close(fd);
	if (st == MLK_OK && chmod(tmp, 0444) != 0)
		st = mlk_error_errno(e, tmp, "cannot chmod");
	int fresh = 0;
	if (st == MLK_OK)
		st = store_object(l, tmp, out->sha256, &fresh, e);
	b->new_files += (unsigned long long)fresh;
	unlink(tmp);
	free(tmp);
	return st;
}

enum mlk_status snap_prepare_compact(struct snap_build *b,
				     const struct lake *l,
				     const struct snap_opts *o,
				     unsigned long long target,
				     struct mlk_error *e)
{
	struct snapshot cur;
	int have = 0;
	memset(&cur, 0, sizeof cur);
	enum mlk_status st = begin_build(b, l, o, &cur, &have, e);
	if (st == MLK_OK && !have)
		st = mlk_error_set(e, MLK_USAGE, NULL, 0,
				   "%s/%s has no snapshot to compact", o->zone,
				   o->dataset);
	if (st != MLK_OK) {
		snap_release(&cur);
		return st;
	}
	struct manifest m;
	manifest_init(&m, "snapshot");
	struct snap_file *files = NULL;
	size_t nf = 0, falloc = 0, merged = 0;
	const struct snap_file **grp = xcalloc(cur.nf + 1, sizeof *grp);
	struct buf line = BUF_INIT;
	struct buf in_line = BUF_INIT;
	buf_addf(&in_line, "{\"entry\":\"input\",\"snapshot\":\"%s\"}", cur.id);
	int have_in = 0;
	for (size_t i = 0; i < cur.nent; i++) {
		if (strstr(cur.ent[i], "{\"entry\":\"file\"") == cur.ent[i])
			continue;
		manifest_add(&m, cur.ent[i], strlen(cur.ent[i]));
		have_in |= !strcmp(cur.ent[i], in_line.data);
	}
	/* The compacted version derives from the one it rewrites. */
	if (!have_in)
		manifest_add(&m, in_line.data, in_line.len);
	buf_release(&in_line);
	/* Files of one partition are adjacent: paths start with it. */
	for (size_t i = 0; st == MLK_OK && i < cur.nf;) {
		size_t j = i, ng = 0;
		unsigned long long sum = 0;
		while (j < cur.nf &&
		       !strcmp(cur.f[j].partition, cur.f[i].partition) &&
		       (ng == 0 || sum + cur.f[j].bytes <= target)) {
			grp[ng++] = &cur.f[j];
			sum += cur.f[j].bytes;
			j++;
		}
		XGROW(files, falloc, nf + 1);
		struct snap_file *f = &files[nf++];
		if (ng == 1) {
			*f = cur.f[i];
			f->path = xstrdup(cur.f[i].path);
			f->partition = xstrdup(cur.f[i].partition);
		} else {
			st = concat_files(l, b, grp, ng, f, e);
			f->partition = xstrdup(cur.f[i].partition);
			f->path = file_name(f->partition, f->sha256);
			merged += ng;
		}
		file_entry(&line, f->path, f->partition, f->records, f->bytes,
			   f->size, f->sha256);
		manifest_add(&m, line.data, line.len);
		b->bytes += f->bytes;
		b->size += f->size;
		b->records += f->records;
		i = j;
	}
	if (st == MLK_OK && !merged) {
		/* Nothing to merge: the latest version stays the latest. */
		b->existed = 1;
		snprintf(b->id, sizeof b->id, "%s", cur.id);
		snprintf(b->manifest_sha256, sizeof b->manifest_sha256, "%s",
			 cur.manifest_sha256);
		b->files = cur.nf;
		b->version = cur.version;
	} else if (st == MLK_OK) {
		struct buf in = BUF_INIT;
		buf_addf(&in, "[{\"snapshot\":\"%s\"}]", cur.id);
		b->inputs_json = buf_detach(&in);
		st = finish_build(b, o, &m, files, nf, e);
	}
	for (size_t i = 0; i < nf; i++) {
		free(files[i].path);
		free(files[i].partition);
	}
	free(files);
	free(grp);
	buf_release(&line);
	manifest_release(&m);
	snap_release(&cur);
	return st;
}

/* ---- partition filters ---- */

enum wop { W_EQ, W_NE, W_LT, W_LE, W_GT, W_GE };

struct wterm {
	char *col;
	enum wop op;
	char **val;             /* escaped as in paths */
	size_t nval;
};

struct snap_where {
	struct wterm *t;
	size_t n;
};

void snap_where_free(struct snap_where *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n; i++) {
		free(w->t[i].col);
		for (size_t k = 0; k < w->t[i].nval; k++)
			free(w->t[i].val[k]);
		free(w->t[i].val);
	}
	free(w->t);
	free(w);
}

enum mlk_status snap_where_parse(const char *text, struct snap_where **out,
				 struct mlk_error *e)
{
	struct snap_where *w = xcalloc(1, sizeof *w);
	size_t alloc = 0;
	const char *p = text;
	while (*p) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		const char *end = p + strcspn(p, " \t");
		size_t cl = strspn(p, "abcdefghijklmnopqrstuvwxyz"
				   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
		const char *op = p + cl;
		enum wop o;
		size_t ol = 1;
		if (!strncmp(op, "!=", 2)) { o = W_NE; ol = 2; }
		else if (!strncmp(op, "<=", 2)) { o = W_LE; ol = 2; }
		else if (!strncmp(op, ">=", 2)) { o = W_GE; ol = 2; }
		else if (*op == '=') o = W_EQ;
		else if (*op == '<') o = W_LT;
		else if (*op == '>') o = W_GT;
		else {
			snap_where_free(w);
			return mlk_error_set(e, MLK_USAGE, NULL, 0,
					     "--where: want COLUMN=VALUE "
					     "(or != < <= > >=) terms");
		}
		if (!cl || op + ol > end) {
			snap_where_free(w);
			return mlk_error_set(e, MLK_USAGE, NULL, 0,
					     "--where: a term needs a column "
					     "and an operator");
		}
		XGROW(w->t, alloc, w->n + 1);
		struct wterm *t = &w->t[w->n++];
		memset(t, 0, sizeof *t);
		t->col = xstrndup(p, cl);
		t->op = o;
		const char *v = op + ol;
		size_t valloc = 0;
		for (;;) {
			const char *c = o == W_EQ || o == W_NE ?
				memchr(v, ',', (size_t)(end - v)) : NULL;
			const char *ve = c ? c : end;
			struct buf esc = BUF_INIT;
			if (ve == v)
				buf_addstr(&esc, PARTITION_DEFAULT);
			else
				partition_escape(v, (size_t)(ve - v), &esc);
			XGROW(t->val, valloc, t->nval + 1);
			t->val[t->nval++] = buf_detach(&esc);
			if (!c)
				break;
			v = c + 1;
		}
		p = end;
	}
	if (!w->n) {
		snap_where_free(w);
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "--where: empty filter");
	}
	*out = w;
	return MLK_OK;
}

static int numeric(const char *s, double *d)
{
	char *end;
	if (!*s)
		return 0;
	*d = strtod(s, &end);
	return *end == '\0';
}

static int compare_val(const char *a, const char *b)
{
	double x, y;
	if (numeric(a, &x) && numeric(b, &y))
		return (x > y) - (x < y);
	return strcmp(a, b);
}

/* The value of column col in a partition path, or NULL (malloc'd). */
static char *part_value(const char *part, const char *col)
{
	size_t cl = strlen(col);
	const char *p = part;
	while (*p) {
		const char *sl = strchr(p, '/');
		size_t n = sl ? (size_t)(sl - p) : strlen(p);
		if (n > cl && !strncmp(p, col, cl) && p[cl] == '=')
			return xstrndup(p + cl + 1, n - cl - 1);
		if (!sl)
			break;
		p = sl + 1;
	}
	return NULL;
}

int snap_where_match(const struct snap_where *w, const char *partition)
{
	if (!w)
		return 1;
	for (size_t i = 0; i < w->n; i++) {
		const struct wterm *t = &w->t[i];
		char *v = part_value(partition, t->col);
		if (!v)
			return 0;
		int ok = 0;
		if (t->op == W_EQ || t->op == W_NE) {
			for (size_t k = 0; k < t->nval && !ok; k++)
				ok = !strcmp(v, t->val[k]);
			if (t->op == W_NE)
				ok = !ok;
		} else if (strcmp(v, PARTITION_DEFAULT) != 0) {
			int c = compare_val(v, t->val[0]);
			ok = t->op == W_LT ? c < 0 : t->op == W_LE ? c <= 0 :
			     t->op == W_GT ? c > 0 : c >= 0;
		}
		free(v);
		if (!ok)
			return 0;
	}
	return 1;
}

const char *snap_where_unknown(const struct snap_where *w,
			       const struct snapshot *s)
{
	for (size_t i = 0; w && i < w->n; i++) {
		int seen = 0;
		for (size_t k = 0; k < s->nf && !seen; k++) {
			char *v = part_value(s->f[k].partition, w->t[i].col);
			seen = v != NULL;
			free(v);
		}
		if (!seen && s->nf)
			return w->t[i].col;
	}
	return NULL;
}

/* ---- reading records back ---- */

/* Each line of a stored file (the version's copy). */
struct file_lines_ctx {
	snap_line_fn fn;
	void *ctx;
};

static int file_line(void *ctx, const char *line, size_t len,
		     long long lineno, struct mlk_error *e)
{
	struct file_lines_ctx *c = ctx;
	(void)lineno;
	(void)e;
	return c->fn(c->ctx, line, len);
}

static enum mlk_status file_lines(const char *path, snap_line_fn fn,
				  void *ctx, struct mlk_error *e)
{
	struct file_lines_ctx c = { fn, ctx };
	return datareader_lines(path, file_line, &c, e);
}

enum mlk_status snap_each_line(const struct lake *l,
			       const struct snapshot *s, snap_line_fn fn,
			       void *ctx, struct mlk_error *e)
{
	char *dir = snap_dir(l, s);
	enum mlk_status st = MLK_OK;
	for (size_t i = 0; st == MLK_OK && i < s->nf; i++) {
		char *p = xasprintf("%s/%s", dir, s->f[i].path);
		st = file_lines(p, fn, ctx, e);
		free(p);
	}
	free(dir);
	return st;
}

struct cat_ctx {
	struct buf out;
	struct buf place;       /* ,"dataset":..,"partition":..}} + \n */
	snap_write_fn write;
	void *wctx;
	unsigned long long n;
	int stopped;
};

static int cat_line(void *ctx, const char *line, size_t len)
{
	struct cat_ctx *c = ctx;
	/* Stored lines end "}}" (with _mlk last); the place goes before. */
	if (len < 3 || line[len - 1] != '}' || line[len - 2] != '}')
		return MLK_INTEGRITY;
	buf_add(&c->out, line, len - 2);
	if (line[len - 3] == '{')
		buf_add(&c->out, c->place.data + 1, c->place.len - 1);
	else
		buf_add(&c->out, c->place.data, c->place.len);
	c->n++;
	if (c->out.len >= (256u << 10)) {
		if (c->write(c->wctx, c->out.data, c->out.len)) {
			c->stopped = 1;
			return MLK_SYSTEM;
		}
		buf_reset(&c->out);
	}
	return 0;
}

enum mlk_status snap_cat(const struct lake *l, const struct snapshot *s,
			 const struct snap_where *w, snap_write_fn out,
			 void *octx, unsigned long long *records,
			 struct mlk_error *e)
{
	struct cat_ctx c;
	memset(&c, 0, sizeof c);
	c.write = out;
	c.wctx = octx;
	char *dir = snap_dir(l, s);
	enum mlk_status st = MLK_OK;
	for (size_t i = 0; st == MLK_OK && i < s->nf; i++) {
		if (!snap_where_match(w, s->f[i].partition))
			continue;
		buf_reset(&c.place);
		buf_addstr(&c.place, ",\"dataset\":");
		buf_add_json_cstr(&c.place, s->dataset);
		buf_addstr(&c.place, ",\"zone\":");
		buf_add_json_cstr(&c.place, s->zone);
		buf_addf(&c.place, ",\"snapshot\":\"%s\",\"partition\":", s->id);
		buf_add_json_cstr(&c.place, s->f[i].partition);
		buf_addstr(&c.place, "}}\n");
		char *p = xasprintf("%s/%s", dir, s->f[i].path);
		st = file_lines(p, cat_line, &c, e);
		if (st == MLK_INTEGRITY && !e->msg[0])
			mlk_error_set(e, st, p, 0, "stored record does not "
				      "end with its envelope");
		free(p);
	}
	if (st == MLK_OK && c.out.len && c.write(c.wctx, c.out.data, c.out.len))
		st = MLK_SYSTEM;
	if (st == MLK_SYSTEM && (c.stopped || !e->msg[0]))
		mlk_error_set(e, MLK_SYSTEM, NULL, 0, "cannot write records");
	*records = c.n;
	buf_release(&c.out);
	buf_release(&c.place);
	free(dir);
	return st;
}

/* ---- verify ---- */

struct vjob {
	char *path;             /* what to hash */
	char *name;             /* how to name it (relative to the lake) */
	char sha256[SHA256_HEX];
	unsigned long long size;
	char *problem;          /* set by the worker */
	unsigned long long read; /* bytes hashed */
};

static void verify_one(void *ctx, size_t i)
{
	struct vjob *j = (struct vjob *)ctx + i;
	char hex[SHA256_HEX];
	unsigned long long size = 0;
	struct mlk_error e = MLK_ERROR_INIT;
	if (sha256_file(j->path, hex, &size, &e) != MLK_OK)
		j->problem = xstrdup(errno == ENOENT ? "missing"
				     : "cannot be read");
	else if (size != j->size)
		j->problem = xasprintf("size %llu, manifest says %llu", size,
				       j->size);
	else if (strcmp(hex, j->sha256) != 0)
		j->problem = xstrdup("sha256 does not match the manifest");
	j->read = size;
}

enum mlk_status snap_verify(const struct lake *l, const struct snapshot *s,
			    int threads, snap_bad_fn bad, void *ctx,
			    unsigned long long *bytes, struct mlk_error *e)
{
	struct {
		struct vjob *j;
		size_t n;
	} p = { xcalloc(2 * s->nf + 1, sizeof *p.j), 0 };
	int nbad = 0;
	char *dir = snap_dir(l, s);
	size_t rl = strlen(l->root) + 1;

	/* The version's copy of the manifest is the manifest. */
	char *vm = xasprintf("%s/_manifest.json", dir);
	char *data = NULL;
	size_t len;
	struct mlk_error me = MLK_ERROR_INIT;
	if (fsio_read_file(vm, &data, &len, &me) != MLK_OK) {
		bad(ctx, vm + rl, "missing");
		nbad++;
	} else if (len != s->bytes.len || memcmp(data, s->bytes.data, len)) {
		bad(ctx, vm + rl, "differs from the snapshot's manifest");
		nbad++;
	}
	free(data);
	free(vm);

	for (size_t i = 0; i < s->nf; i++) {
		const struct snap_file *f = &s->f[i];
		char *zp = xasprintf("%s/%s", dir, f->path);
		char *op = object_path(l, f->sha256);
		struct stat a, b;
		int za = stat(zp, &a) == 0, ob = stat(op, &b) == 0;
		struct vjob *j = &p.j[p.n++];
		j->path = zp;
		j->name = xstrdup(zp + rl);
		snprintf(j->sha256, SHA256_HEX, "%s", f->sha256);
		j->size = f->size;
		/* A hard link is one file: hash it once. */
		if (za && ob && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			free(op);
			continue;
		}
		j = &p.j[p.n++];
		j->path = op;
		/* A storage tier may lie outside the lake. */
		j->name = xstrdup(strncmp(op, l->root, rl - 1) ? op
							       : op + rl);
		snprintf(j->sha256, SHA256_HEX, "%s", f->sha256);
		j->size = f->size;
	}
	par_for(p.n, threads > 16 ? 16 : threads, verify_one, p.j);
	*bytes = 0;
	for (size_t i = 0; i < p.n; i++) {
		*bytes += p.j[i].read;
		if (p.j[i].problem) {
			bad(ctx, p.j[i].name, p.j[i].problem);
			nbad++;
		}
		free(p.j[i].path);
		free(p.j[i].name);
		free(p.j[i].problem);
	}
	free(p.j);
	free(dir);
	if (nbad)
		return mlk_error_set(e, MLK_INTEGRITY, NULL, 0,
				     "snapshot %s: %d problem%s", s->id, nbad,
				     nbad == 1 ? "" : "s");
	return MLK_OK;
}

/* ---- checkout ---- */

enum mlk_status snap_checkout(const struct lake *l, const struct snapshot *s,
			      const char *dir, size_t *linked,
			      size_t *copied, struct mlk_error *e)
{
	*linked = *copied = 0;
	struct stat sb;
	if (lstat(dir, &sb) == 0)
		return mlk_error_set(e, MLK_USAGE, dir, 0,
				     "already exists; check out into a new "
				     "directory");
	/* Built beside, then renamed: a half checkout is never seen. */
	char *tmp = xasprintf("%s.tmp-%d", dir, (int)getpid());
	fsio_remove_tree(tmp);
	enum mlk_status st = fsio_mkdirs(tmp, 0755, e);
	for (size_t i = 0; st == MLK_OK && i < s->nf; i++) {
		char *op = object_path(l, s->f[i].sha256);
		char *dst = xasprintf("%s/%s", tmp, s->f[i].path);
		int c = 0;
		st = mkdirs_for(dst, e);
		if (st == MLK_OK)
			st = link_or_copy(op, dst, &c, e);
		if (st == MLK_OK)
			(*(c ? copied : linked))++;
		free(op);
		free(dst);
	}
	if (st == MLK_OK) {
		char *mp = xasprintf("%s/_manifest.json", tmp);
		st = fsio_write_atomic(mp, s->bytes.data, s->bytes.len, 0444, e);
		free(mp);
	}
	if (st == MLK_OK && rename(tmp, dir) != 0)
		st = mlk_error_errno(e, dir, "cannot create");
	if (st == MLK_OK)
		st = fsio_fsync_parent(dir, e);
	if (st != MLK_OK)
		fsio_remove_tree(tmp);
	free(tmp);
	return st;
}
