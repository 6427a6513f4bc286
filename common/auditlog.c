#include "auditlog.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "fsio.h"
#include "record.h"
#include "xalloc.h"
#include "banned.h"

enum mlk_status auditlog_open(const struct lake *l, struct auditlog *a,
			      struct mlk_error *e)
{
	memset(a, 0, sizeof *a);
	a->path = lake_path(l, "audit/log.ndjson");
	char *lockp = lake_path(l, "audit/log.lock");
	int lock = -1, fd = -1;
	enum mlk_status s = fsio_lock(lockp, &lock, e);
	free(lockp);
	if (s != MLK_OK)
		return s;
	fd = open(a->path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 && errno == ENOENT) {
		fsio_unlock(lock);
		return MLK_OK;
	}
	if (fd < 0 || fstat(fd, &st) != 0) {
		s = mlk_error_errno(e, a->path, "cannot open audit log");
		goto out;
	}
	/* Appends only ever add bytes: the first st_size bytes are stable
	 * once the lock is let go. */
	fsio_unlock(lock);
	lock = -1;
	a->size = (size_t)st.st_size;
	if (a->size) {
		void *p = mmap(NULL, a->size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd,
			       0);
		if (p == MAP_FAILED) {
			s = mlk_error_errno(e, a->path, "cannot map audit log");
			a->size = 0;
			goto out;
		}
		madvise(p, a->size, MADV_SEQUENTIAL | MADV_WILLNEED);
		a->data = p;
		a->map_len = a->size;
		const char *q = a->data + a->size;
		while (q > a->data && q[-1] != '\n')
			q--;
		a->complete = (size_t)(q - a->data);
	}
out:
	if (fd >= 0)
		close(fd);
	fsio_unlock(lock);
	return s;
}

void auditlog_close(struct auditlog *a)
{
	if (a->data)
		munmap((void *)a->data, a->map_len);
	free(a->path);
	memset(a, 0, sizeof *a);
}

int auditlog_next(const struct auditlog *a, size_t *off, const char **line,
		  size_t *len)
{
	if (*off >= a->complete)
		return 0;
	const char *p = a->data + *off;
	const char *nl = memchr(p, '\n', a->complete - *off);
	*line = p;
	*len = (size_t)(nl - p);
	*off += *len + 1;
	return 1;
}

int auditlog_event(const struct auditlog *a, uint64_t seq, const char **line,
		   size_t *len)
{
	size_t off = 0;
	for (uint64_t i = 1; auditlog_next(a, &off, line, len); i++)
		if (i == seq)
			return 1;
	return 0;
}

enum mlk_status auditlog_checkpoints(const struct lake *l,
				     struct tree_head **cp, size_t *n,
				     struct mlk_error *e)
{
	*cp = NULL;
	*n = 0;
	char *path = lake_path(l, "audit/checkpoints.ndjson");
	if (!fsio_exists(path)) {
		free(path);
		return MLK_OK;
	}
	char *data;
	size_t len, alloc = 0;
	enum mlk_status s = fsio_read_file(path, &data, &len, e);
	if (s != MLK_OK) {
		free(path);
		return s;
	}
	if (len && data[len - 1] != '\n') {
		s = mlk_error_set(e, MLK_INTEGRITY, path, 0,
				  "checkpoints file ends in a torn line");
	}
	long long lineno = 0;
	for (size_t off = 0; s == MLK_OK && off < len;) {
		char *nl = memchr(data + off, '\n', len - off);
		size_t ll = (size_t)(nl - (data + off));
		lineno++;
		XGROW(*cp, alloc, *n + 1);
		s = th_parse(data + off, ll, &(*cp)[*n], path, lineno, e);
		if (s == MLK_OK)
			(*n)++;
		off += ll + 1;
	}
	free(data);
	free(path);
	if (s != MLK_OK) {
		free(*cp);
		*cp = NULL;
		*n = 0;
	}
	return s;
}

enum mlk_status auditlog_checkpoint_append(const struct lake *l,
					   const struct buf *line,
					   struct mlk_error *e)
{
	char *lockp = lake_path(l, "audit/log.lock");
	char *cpf = lake_path(l, "audit/checkpoints.ndjson");
	int lock = -1, fd = -1;
	enum mlk_status s = fsio_lock(lockp, &lock, e);
	if (s == MLK_OK) {
		fd = open(cpf, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
			  0644);
		if (fd < 0)
			s = mlk_error_errno(e, cpf, "cannot open");
	}
	if (s == MLK_OK)
		s = fsio_write_all(fd, line->data, line->len, cpf, e);
	if (s == MLK_OK && fsync(fd) != 0)
		s = mlk_error_errno(e, cpf, "cannot sync");
	if (fd >= 0)
		close(fd);
	fsio_unlock(lock);
	free(lockp);
	free(cpf);
	return s;
}

/* --- verification ---------------------------------------------------- */

struct tree_job {
	const struct auditlog *a;
	const uint64_t *want;       /* sizes, ascending */
	size_t nwant;
	uint8_t (*roots)[MERKLE_HASH];
	uint8_t root[MERKLE_HASH];
	uint64_t leaves;
	atomic_int stop;
};

static void *tree_worker(void *arg)
{
	struct tree_job *j = arg;
	struct merkle_acc acc;
	merkle_acc_init(&acc);
	size_t off = 0, w = 0, len;
	const char *line;
	uint8_t h[MERKLE_HASH];
	while (w < j->nwant && j->want[w] == 0)
		merkle_acc_root(&acc, j->roots[w++]);
	while (auditlog_next(j->a, &off, &line, &len)) {
		if ((acc.n & 4095) == 0 &&
		    atomic_load_explicit(&j->stop, memory_order_relaxed))
			break;
		merkle_leaf(line, len, h);
		merkle_acc_push(&acc, h);
		while (w < j->nwant && j->want[w] == acc.n)
			merkle_acc_root(&acc, j->roots[w++]);
	}
	merkle_acc_root(&acc, j->root);
	j->leaves = acc.n;
	return NULL;
}

/* seq and prev of a line; the writer's fixed layout is checked first and
 * anything else goes through the full parser. */
static int event_fields(const char *line, size_t len, long long *seq,
			const char **prev)
{
	static const char head[] = "{\"v\":1,\"seq\":";
	static const char tail[] = "\"prev\":\"";
	size_t hl = sizeof head - 1, tl = sizeof tail - 1;
	if (len > hl + 76 && memcmp(line, head, hl) == 0 &&
	    line[len - 1] == '}' && line[len - 2] == '"' &&
	    memcmp(line + len - 2 - 64 - tl, tail, tl) == 0 &&
	    line[len - 3 - 64 - tl] == ',') {
		long long v = 0;
		size_t i = hl;
		while (i < len && line[i] >= '0' && line[i] <= '9' && i < hl + 18)
			v = v * 10 + (line[i++] - '0');
		if (i > hl && line[i] == ',' && line[hl] != '0') {
			*seq = v;
			*prev = line + len - 2 - 64;
			return 0;
		}
	}
	struct rec r;
	struct mlk_error pe = MLK_ERROR_INIT;
	rec_init(&r);
	int rc = -1;
	if (rec_parse(&r, line, len, &pe) == MLK_OK) {
		int s = rec_get(&r, 0, "seq"), p = rec_get(&r, 0, "prev");
		size_t n, pn;
		const char *sv = s > 0 ? rec_raw(&r, s, &n) : NULL;
		const char *pv = p > 0 && rec_type(&r, p) == REC_STRING
					 ? rec_raw(&r, p, &pn) : NULL;
		if (sv && rec_type(&r, s) == REC_PRIMITIVE && n < 19 &&
		    strspn(sv, "0123456789") >= n && n > 0 && pv && pn == 64) {
			*seq = strtoll(sv, NULL, 10);
			*prev = pv;
			rc = 0;
		}
	}
	rec_release(&r);
	return rc;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

enum mlk_status auditlog_verify(const struct auditlog *a,
				const struct tree_head *cp, size_t ncp,
				const struct th_key *key, const char *cpfile,
				struct audit_verify *out, struct mlk_error *e)
{
	memset(out, 0, sizeof *out);
	struct tree_job j;
	memset(&j, 0, sizeof j);
	j.a = a;
	uint64_t *want = NULL;
	if (ncp) {
		want = xmalloc(ncp * sizeof *want);
		for (size_t i = 0; i < ncp; i++)
			want[i] = cp[i].size;
		qsort(want, ncp, sizeof *want, cmp_u64);
		j.roots = xcalloc(ncp, MERKLE_HASH);
	}
	j.want = want;
	j.nwant = ncp;
	atomic_init(&j.stop, 0);
	pthread_t th;
	int threaded = pthread_create(&th, NULL, tree_worker, &j) == 0;
	if (!threaded)
		tree_worker(&j);

	/* The chain, on this thread. */
	static const char zeros[] = "0000000000000000000000000000000000000000"
				    "000000000000000000000000";
	char expect[SHA256_HEX];
	memcpy(expect, zeros, sizeof expect);
	uint8_t h[MERKLE_HASH];
	size_t off = 0, len;
	const char *line;
	long long n = 0;
	enum mlk_status s = MLK_OK;
	while (auditlog_next(a, &off, &line, &len)) {
		n++;
		long long seq;
		const char *prev;
		if (event_fields(line, len, &seq, &prev) != 0) {
			s = mlk_error_set(e, MLK_INTEGRITY, a->path, n,
					  "seq %lld: not an audit event "
					  "(malformed, or no seq or prev)", n);
			break;
		}
		if (seq != n) {
			s = mlk_error_set(e, MLK_INTEGRITY, a->path, n,
					  "seq %lld: found seq %lld here: an "
					  "event was removed, inserted or "
					  "moved", n, seq);
			break;
		}
		if (memcmp(prev, expect, 64) != 0) {
			/* The event before is the one the hash is about. */
			s = mlk_error_set(e, MLK_INTEGRITY, a->path,
					  n > 1 ? n - 1 : 1,
					  "seq %lld: event does not match the "
					  "\"prev\" hash of seq %lld: it was "
					  "changed, or an event was removed or "
					  "inserted after it",
					  n > 1 ? n - 1 : 1, n);
			break;
		}
		merkle_sha256(line, len, h);
		hex_encode(h, MERKLE_HASH, expect);
	}
	if (s != MLK_OK)
		atomic_store(&j.stop, 1);
	if (threaded)
		pthread_join(th, NULL);
	if (s == MLK_OK && a->complete < a->size)
		s = mlk_error_set(e, MLK_INTEGRITY, a->path, n + 1,
				  "seq %lld: torn last line (%zu bytes without "
				  "a newline): the log was cut or a write "
				  "did not finish", n + 1,
				  a->size - a->complete);
	out->events = (uint64_t)n;
	memcpy(out->root, j.root, MERKLE_HASH);

	/* Checkpoints, in file order: the first bad one is named. */
	for (size_t i = 0; s == MLK_OK && i < ncp; i++) {
		const struct tree_head *c = &cp[i];
		long long cl = (long long)i + 1;
		if (key && !th_verify(key, c)) {
			s = mlk_error_set(e, MLK_INTEGRITY, cpfile, cl,
					  "checkpoint of %llu events: bad "
					  "signature or unknown key '%s'",
					  (unsigned long long)c->size,
					  c->key_id);
			break;
		}
		if (i && c->size < cp[i - 1].size) {
			s = mlk_error_set(e, MLK_INTEGRITY, cpfile, cl,
					  "checkpoint of %llu events is "
					  "smaller than the one before it",
					  (unsigned long long)c->size);
			break;
		}
		if (c->size > (uint64_t)n) {
			s = mlk_error_set(e, MLK_INTEGRITY, a->path, n + 1,
					  "seq %lld: log truncated: it has %lld "
					  "events, checkpoint %lld covers %llu",
					  n + 1, n, cl,
					  (unsigned long long)c->size);
			break;
		}
		size_t w = 0;
		while (want[w] != c->size)
			w++;
		if (memcmp(j.roots[w], c->root, MERKLE_HASH) != 0) {
			uint64_t lo = i ? cp[i - 1].size + 1 : 1;
			s = mlk_error_set(e, MLK_INTEGRITY, a->path,
					  (long long)lo,
					  "seq %llu: events %llu to %llu do not "
					  "match checkpoint %lld (line %lld of "
					  "%s): an event was changed, removed "
					  "or inserted",
					  (unsigned long long)lo,
					  (unsigned long long)lo,
					  (unsigned long long)c->size, cl, cl,
					  "checkpoints.ndjson");
			break;
		}
		if (c->size > out->covered)
			out->covered = c->size;
	}
	free(want);
	free(j.roots);
	return s;
}

/* --- proofs ---------------------------------------------------------- */

enum mlk_status auditlog_subtrees(const struct auditlog *a, uint64_t size,
				  const struct merkle_range *r, size_t n,
				  uint8_t (*out)[MERKLE_HASH],
				  uint8_t root[MERKLE_HASH],
				  struct mlk_error *e)
{
	struct merkle_acc all, *part = xmalloc(sizeof *part);
	merkle_acc_init(&all);
	size_t off = 0, len;
	const char *line;
	uint8_t h[MERKLE_HASH];
	uint64_t i = 0;
	while (i < size && auditlog_next(a, &off, &line, &len)) {
		merkle_leaf(line, len, h);
		merkle_acc_push(&all, h);
		/* Ranges are disjoint: at most one holds leaf i. */
		for (size_t k = 0; k < n; k++) {
			if (i < r[k].lo || i >= r[k].hi)
				continue;
			if (i == r[k].lo)
				merkle_acc_init(part);
			merkle_acc_push(part, h);
			if (i + 1 == r[k].hi)
				merkle_acc_root(part, out[k]);
		}
		i++;
	}
	free(part);
	if (i < size)
		return mlk_error_set(e, MLK_USAGE, a->path, 0,
				     "the log has %llu events, fewer than %llu",
				     (unsigned long long)i,
				     (unsigned long long)size);
	merkle_acc_root(&all, root);
	return MLK_OK;
}

/* --- queries --------------------------------------------------------- */

/* Compare a time member with a bound; a bound of a date alone stands for
 * the whole day. */
static int time_cmp(const char *t, size_t tn, const char *bound, int upper)
{
	size_t bn = strlen(bound);
	size_t n = tn < bn ? tn : bn;
	int c = memcmp(t, bound, n);
	if (c || tn == bn)
		return c;
	if (bn < tn)   /* bound is a prefix: a date or a shorter time */
		return upper ? 0 : 1;
	return -1;
}

int auditlog_match(const char *line, size_t len, const struct audit_query *q)
{
	struct rec r;
	struct mlk_error pe = MLK_ERROR_INIT;
	rec_init(&r);
	int ok = rec_parse(&r, line, len, &pe) == MLK_OK;
	if (ok && q->who) {
		int t = rec_path(&r, 0, "actor.user");
		ok = t >= 0 && rec_str_eq(&r, t, q->who);
	}
	if (ok && q->action) {
		int t = rec_get(&r, 0, "action");
		ok = t >= 0 && rec_str_eq(&r, t, q->action);
	}
	if (ok && q->dataset) {
		int t = rec_get(&r, 0, "dataset");
		struct buf b = BUF_INIT;
		ok = t >= 0 && rec_str(&r, t, &b) >= 0 && b.data;
		if (ok) {
			size_t n = strlen(q->dataset);
			ok = !strcmp(b.data, q->dataset) ||
			     (!strncmp(b.data, q->dataset, n) &&
			      b.data[n] == '/');
		}
		buf_release(&b);
	}
	if (ok && (q->since || q->until)) {
		int t = rec_get(&r, 0, "time");
		size_t n = 0;
		const char *v = t >= 0 && rec_type(&r, t) == REC_STRING
					? rec_raw(&r, t, &n) : NULL;
		ok = v != NULL;
		if (ok && q->since)
			ok = time_cmp(v, n, q->since, 0) >= 0;
		if (ok && q->until)
			ok = time_cmp(v, n, q->until, 1) <= 0;
	}
	rec_release(&r);
	return ok;
}
