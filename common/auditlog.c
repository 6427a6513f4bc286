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

#include "audit.h"
#include "crypto.h"
#include "fsio.h"
#include "record.h"
#include "xalloc.h"
#include "banned.h"

/* An offset of auditlog_next: the part in the top bits, then the byte. */
#define PART_SHIFT 48
#define PART_MASK (((size_t)1 << PART_SHIFT) - 1)
_Static_assert(sizeof(size_t) >= 8, "auditlog offsets need 64-bit size_t");

static void read_head(struct auditlog_part *p, const char *hp)
{
	char *d;
	size_t n;
	struct mlk_error e = MLK_ERROR_INIT;
	p->head = 0;
	if (!fsio_exists(hp))
		return;
	p->head = -1;
	if (fsio_read_file(hp, &d, &n, &e) != MLK_OK)
		return;
	while (n && d[n - 1] == '\n')
		n--;
	if (th_parse(d, n, &p->th, hp, 1, &e) == MLK_OK)
		p->head = 1;
	free(d);
}

static enum mlk_status map_part(struct auditlog_part *p, int fd,
				size_t size, struct mlk_error *e)
{
	p->size = size;
	if (!size)
		return MLK_OK;
	void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd,
		       0);
	if (m == MAP_FAILED) {
		p->size = 0;
		return mlk_error_errno(e, p->path, "cannot map audit log");
	}
	madvise(m, size, MADV_SEQUENTIAL | MADV_WILLNEED);
	p->data = m;
	p->map_len = size;
	const char *q = p->data + size;
	while (q > p->data && q[-1] != '\n')
		q--;
	p->complete = (size_t)(q - p->data);
	return MLK_OK;
}

/*
 * Open every part with the lock held (fds[i], sizes fixed now); mapping
 * may follow after the lock is let go, since appends only ever add bytes
 * past those sizes and segments never change.
 */
static enum mlk_status open_parts(const struct lake *l, struct auditlog *a,
				  int **fds, struct mlk_error *e)
{
	memset(a, 0, sizeof *a);
	a->path = lake_path(l, "audit/log.ndjson");
	unsigned *nums = NULL;
	size_t n = 0;
	enum mlk_status s = audit_segments(l, &nums, &n, e);
	if (s != MLK_OK)
		return s;
	a->part = xcalloc(n + 1, sizeof *a->part);
	*fds = xmalloc((n + 1) * sizeof **fds);
	struct stat st, last;
	memset(&last, 0, sizeof last);
	for (size_t i = 0; i < n && s == MLK_OK; i++) {
		struct auditlog_part *p = &a->part[a->nparts];
		p->seg = nums[i];
		p->path = audit_segment_path(l, nums[i], ".ndjson");
		int fd = open(p->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) != 0) {
			s = mlk_error_errno(e, p->path,
					    "cannot open audit segment");
			free(p->path);
			p->path = NULL;
			if (fd >= 0)
				close(fd);
			break;
		}
		(*fds)[a->nparts++] = fd;
		p->size = (size_t)st.st_size;
		last = st;
		char *hp = audit_segment_path(l, nums[i], ".head.json");
		read_head(p, hp);
		free(hp);
	}
	free(nums);
	if (s != MLK_OK)
		return s;
	int fd = open(a->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return MLK_OK;
	if (fd < 0 || fstat(fd, &st) != 0) {
		if (fd >= 0)
			close(fd);
		return mlk_error_errno(e, a->path, "cannot open audit log");
	}
	/* A rotation cut short: the log is still the newest segment's
	 * file, whose events are counted there. */
	if (n && st.st_ino == last.st_ino && st.st_dev == last.st_dev) {
		close(fd);
		return MLK_OK;
	}
	struct auditlog_part *p = &a->part[a->nparts];
	p->path = xstrdup(a->path);
	p->size = (size_t)st.st_size;
	(*fds)[a->nparts++] = fd;
	return MLK_OK;
}

static enum mlk_status map_parts(struct auditlog *a, int *fds,
				 struct mlk_error *e)
{
	enum mlk_status s = MLK_OK;
	for (size_t i = 0; i < a->nparts; i++) {
		struct auditlog_part *p = &a->part[i];
		if (s == MLK_OK)
			s = map_part(p, fds[i], p->size, e);
		else
			p->size = 0;
		close(fds[i]);
	}
	free(fds);
	if (a->nparts && a->part[a->nparts - 1].seg == 0) {
		const struct auditlog_part *p = &a->part[a->nparts - 1];
		a->data = p->data;
		a->size = p->size;
		a->complete = p->complete;
	}
	return s;
}

static enum mlk_status open_locked(const struct lake *l, struct auditlog *a,
				   struct mlk_error *e)
{
	int *fds = NULL;
	enum mlk_status s = open_parts(l, a, &fds, e);
	if (s == MLK_OK) {
		s = map_parts(a, fds, e);
	} else {
		for (size_t i = 0; i < a->nparts; i++)
			close(fds[i]);
		free(fds);
	}
	if (s != MLK_OK)
		auditlog_close(a);
	return s;
}

enum mlk_status auditlog_open(const struct lake *l, struct auditlog *a,
			      struct mlk_error *e)
{
	char *lockp = lake_path(l, "audit/log.lock");
	int lock = -1, *fds = NULL;
	enum mlk_status s = fsio_lock(lockp, &lock, e);
	free(lockp);
	if (s != MLK_OK) {
		memset(a, 0, sizeof *a);
		return s;
	}
	s = open_parts(l, a, &fds, e);
	fsio_unlock(lock);
	if (s == MLK_OK) {
		s = map_parts(a, fds, e);
	} else {
		for (size_t i = 0; i < a->nparts; i++)
			close(fds[i]);
		free(fds);
	}
	if (s != MLK_OK)
		auditlog_close(a);
	return s;
}

void auditlog_close(struct auditlog *a)
{
	if (!a->view) {
		for (size_t i = 0; i < a->nparts; i++) {
			if (a->part[i].data)
				munmap((void *)a->part[i].data,
				       a->part[i].map_len);
			free(a->part[i].path);
		}
		free(a->part);
		free(a->path);
	}
	memset(a, 0, sizeof *a);
}

void auditlog_view(const struct auditlog *a, size_t i, struct auditlog *v)
{
	memset(v, 0, sizeof *v);
	struct auditlog_part *p = &a->part[i];
	v->path = p->path;
	v->data = p->data;
	v->size = p->size;
	v->complete = p->complete;
	v->part = p;
	v->nparts = 1;
	v->view = 1;
}

int auditlog_next(const struct auditlog *a, size_t *off, const char **line,
		  size_t *len)
{
	size_t pi = *off >> PART_SHIFT, lo = *off & PART_MASK;
	for (; pi < a->nparts; pi++, lo = 0) {
		const struct auditlog_part *p = &a->part[pi];
		if (lo >= p->complete)
			continue;
		const char *q = p->data + lo;
		const char *nl = memchr(q, '\n', p->complete - lo);
		*line = q;
		*len = (size_t)(nl - q);
		*off = (pi << PART_SHIFT) | (lo + *len + 1);
		return 1;
	}
	*off = pi << PART_SHIFT;
	return 0;
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

static enum mlk_status checkpoint_append_locked(const struct lake *l,
						const struct buf *line,
						struct mlk_error *e)
{
	char *cpf = lake_path(l, "audit/checkpoints.ndjson");
	enum mlk_status s = MLK_OK;
	int fd = open(cpf, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		s = mlk_error_errno(e, cpf, "cannot open");
	if (s == MLK_OK)
		s = fsio_write_all(fd, line->data, line->len, cpf, e);
	if (s == MLK_OK && fsync(fd) != 0)
		s = mlk_error_errno(e, cpf, "cannot sync");
	if (fd >= 0)
		close(fd);
	free(cpf);
	return s;
}

enum mlk_status auditlog_checkpoint_append(const struct lake *l,
					   const struct buf *line,
					   struct mlk_error *e)
{
	char *lockp = lake_path(l, "audit/log.lock");
	int lock = -1;
	enum mlk_status s = fsio_lock(lockp, &lock, e);
	if (s == MLK_OK)
		s = checkpoint_append_locked(l, line, e);
	fsio_unlock(lock);
	free(lockp);
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

/* The root at size, from the sizes the tree worker was asked for. */
static const uint8_t *root_at(const struct tree_job *j, uint64_t size)
{
	for (size_t w = 0; w < j->nwant; w++)
		if (j->want[w] == size)
			return j->roots[w];
	return NULL;
}

/* The file name of a part, for messages that name another part. */
static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');
	return b ? b + 1 : path;
}

/* The chain of one part; *n counts events over all parts. */
static enum mlk_status verify_chain(const struct auditlog *a, size_t pi,
				    char expect[SHA256_HEX], long long *n,
				    struct mlk_error *e)
{
	const struct auditlog_part *p = &a->part[pi];
	const char *line;
	size_t len;
	uint8_t h[MERKLE_HASH];
	size_t off = pi << PART_SHIFT, end = (pi + 1) << PART_SHIFT;
	long long ln = 0;
	while (auditlog_next(a, &off, &line, &len) && off < end) {
		ln++;
		long long k = ++*n, seq;
		const char *prev;
		if (event_fields(line, len, &seq, &prev) != 0)
			return mlk_error_set(e, MLK_INTEGRITY, p->path, ln,
					     "seq %lld: not an audit event "
					     "(malformed, or no seq or prev)",
					     k);
		if (seq != k && ln == 1 && (pi > 0 || p->seg))
			return mlk_error_set(e, MLK_INTEGRITY, p->path, 1,
					     "seq %lld: found seq %lld at the "
					     "start of this %s: a segment "
					     "before it is missing, or "
					     "segments were reordered", k, seq,
					     p->seg ? "segment" : "log");
		if (seq != k)
			return mlk_error_set(e, MLK_INTEGRITY, p->path, ln,
					     "seq %lld: found seq %lld here: "
					     "an event was removed, inserted "
					     "or moved", k, seq);
		if (memcmp(prev, expect, 64) != 0 && ln == 1 && pi > 0)
			return mlk_error_set(e, MLK_INTEGRITY, p->path, 1,
					     "seq %lld: event does not match "
					     "the \"prev\" hash of the last "
					     "event of %s: a segment was "
					     "changed or replaced", k,
					     base_name(a->part[pi - 1].path));
		if (memcmp(prev, expect, 64) != 0)
			/* The event before is the one the hash is about. */
			return mlk_error_set(e, MLK_INTEGRITY, p->path,
					     ln > 1 ? ln - 1 : 1,
					     "seq %lld: event does not match "
					     "the \"prev\" hash of seq %lld: "
					     "it was changed, or an event was "
					     "removed or inserted after it",
					     k > 1 ? k - 1 : 1, k);
		merkle_sha256(line, len, h);
		hex_encode(h, MERKLE_HASH, expect);
	}
	if (p->complete < p->size)
		return mlk_error_set(e, MLK_INTEGRITY, p->path, ln + 1,
				     "seq %lld: torn last line (%zu bytes "
				     "without a newline): the %s was cut or a "
				     "write did not finish", *n + 1,
				     p->size - p->complete,
				     p->seg ? "segment" : "log");
	if (p->seg && ln == 0)
		return mlk_error_set(e, MLK_INTEGRITY, p->path, 0,
				     "segment holds no event");
	return MLK_OK;
}

/* Segment numbers run 1, 2, ... with no gap. */
static enum mlk_status verify_numbering(const struct auditlog *a,
					struct mlk_error *e)
{
	for (size_t i = 0; i < a->nparts && a->part[i].seg; i++) {
		if (a->part[i].seg == i + 1)
			continue;
		/* Name the missing file: beside the one found. */
		const char *path = a->part[i].path;
		const char *b = base_name(path);
		char miss[1024];
		snprintf(miss, sizeof miss, "%.*s%06zu.ndjson",
			 (int)(b - path), path, i + 1);
		return mlk_error_set(e, MLK_INTEGRITY, miss, 0,
				     "audit segment is missing (found %s "
				     "after it)", b);
	}
	return MLK_OK;
}

static enum mlk_status verify_heads(const struct auditlog *a,
				    const struct tree_job *j,
				    const uint64_t *last,
				    const struct th_key *key,
				    struct mlk_error *e)
{
	char hp[1024];
	for (size_t i = 0; i < a->nparts && a->part[i].seg; i++) {
		const struct auditlog_part *p = &a->part[i];
		size_t pl = strlen(p->path);
		snprintf(hp, sizeof hp, "%.*s.head.json",
			 (int)(pl - strlen(".ndjson")), p->path);
		if (p->head == 0)
			return mlk_error_set(e, MLK_INTEGRITY, hp, 0,
					     "segment %06u has no tree head",
					     p->seg);
		if (p->head < 0)
			return mlk_error_set(e, MLK_INTEGRITY, hp, 1,
					     "not a tree head (want "
					     "tree_size, root_hash, time, "
					     "key_id, signature)");
		if (key && !th_verify(key, &p->th))
			return mlk_error_set(e, MLK_INTEGRITY, hp, 1,
					     "tree head of segment %06u: bad "
					     "signature or unknown key '%s'",
					     p->seg, p->th.key_id);
		if (p->th.size != last[i])
			return mlk_error_set(e, MLK_INTEGRITY, hp, 1,
					     "tree head of segment %06u covers "
					     "%llu events, the segment ends at "
					     "seq %llu", p->seg,
					     (unsigned long long)p->th.size,
					     (unsigned long long)last[i]);
		const uint8_t *r = root_at(j, p->th.size);
		if (!r || memcmp(r, p->th.root, MERKLE_HASH) != 0)
			return mlk_error_set(e, MLK_INTEGRITY, p->path, 1,
					     "events 1 to %llu do not match the "
					     "tree head of segment %06u: an "
					     "event was changed, removed or "
					     "inserted", (unsigned long long)
					     p->th.size, p->seg);
	}
	return MLK_OK;
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
	size_t nseg = 0;
	while (nseg < a->nparts && a->part[nseg].seg)
		nseg++;
	out->segments = nseg;
	uint64_t *want = xmalloc((ncp + nseg + 1) * sizeof *want);
	size_t nw = 0;
	for (size_t i = 0; i < ncp; i++)
		want[nw++] = cp[i].size;
	for (size_t i = 0; i < nseg; i++)
		if (a->part[i].head == 1)
			want[nw++] = a->part[i].th.size;
	if (nw > 1)
		qsort(want, nw, sizeof *want, cmp_u64);
	j.roots = xcalloc(nw + 1, MERKLE_HASH);
	j.want = want;
	j.nwant = nw;
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
	long long n = 0;
	uint64_t *last = xcalloc(nseg + 1, sizeof *last);
	enum mlk_status s = verify_numbering(a, e);
	for (size_t pi = 0; s == MLK_OK && pi < a->nparts; pi++) {
		s = verify_chain(a, pi, expect, &n, e);
		last[pi < nseg ? pi : nseg] = (uint64_t)n;
	}
	if (s != MLK_OK)
		atomic_store(&j.stop, 1);
	if (threaded)
		pthread_join(th, NULL);
	out->events = (uint64_t)n;
	memcpy(out->root, j.root, MERKLE_HASH);
	if (s == MLK_OK)
		s = verify_heads(a, &j, last, key, e);
	free(last);

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
		if (memcmp(root_at(&j, c->size), c->root, MERKLE_HASH) != 0) {
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

/* --- rotation ------------------------------------------------------ */

enum mlk_status auditlog_rotate(const struct lake *l,
				const struct identity *id,
				const struct audit_event *ev,
				const struct th_key *skey,
				const struct th_key *vkey, size_t min_bytes,
				unsigned *seg, struct tree_head *head,
				struct mlk_error *e)
{
	*seg = 0;
	char *lockp = lake_path(l, "audit/log.lock");
	char *cpf = lake_path(l, "audit/checkpoints.ndjson");
	char *segp = NULL, *hp = NULL, *tmp = NULL;
	int lock = -1;
	struct auditlog a;
	memset(&a, 0, sizeof a);
	struct tree_head *cp = NULL;
	size_t ncp = 0;
	enum mlk_status s = fsio_lock(lockp, &lock, e);
	if (s == MLK_OK)
		s = audit_recover(l, e);
	if (s == MLK_OK)
		s = open_locked(l, &a, e);
	if (s != MLK_OK || a.complete == 0 || a.size < min_bytes)
		goto out;
	struct audit_verify v;
	if ((s = auditlog_checkpoints(l, &cp, &ncp, e)) != MLK_OK ||
	    (s = auditlog_verify(&a, cp, ncp, vkey, cpf, &v, e)) != MLK_OK)
		goto out;
	unsigned n = (unsigned)v.segments + 1;
	/* The rotation's own event closes the segment. */
	struct audit_event rev = *ev;
	struct buf outs = BUF_INIT;
	buf_addf(&outs, "[{\"segment\":\"audit/segments/%06u.ndjson\","
		 "\"tree_size\":%llu}]", n,
		 (unsigned long long)v.events + 1);
	rev.outputs = outs.data;
	s = audit_append_locked(l, id, &rev, e);
	buf_release(&outs);
	if (s != MLK_OK)
		goto out;
	auditlog_close(&a);
	if ((s = open_locked(l, &a, e)) != MLK_OK)
		goto out;
	memset(head, 0, sizeof *head);
	head->size = v.events + 1;
	uint8_t none[1][MERKLE_HASH];
	if ((s = auditlog_subtrees(&a, head->size, NULL, 0, none, head->root,
				   e)) != MLK_OK)
		goto out;
	lake_time_iso(lake_now(l), head->time);
	if ((s = th_sign(skey, head, e)) != MLK_OK)
		goto out;
	segp = audit_segment_path(l, n, ".ndjson");
	hp = audit_segment_path(l, n, ".head.json");
	char *dir = lake_path(l, "audit/segments");
	s = fsio_mkdirs(dir, 0755, e);
	free(dir);
	if (s != MLK_OK)
		goto out;
	/*
	 * The order makes every crash harmless: a head without its segment
	 * is ignored and later replaced; a checkpoint is true of the log as
	 * it stands; a log linked but not yet replaced is finished by the
	 * next writer (audit_recover) and counted once by readers.
	 */
	struct buf b = BUF_INIT;
	th_format(head, &b);
	buf_addch(&b, '\n');
	s = fsio_write_atomic(hp, b.data, b.len, 0444, e);
	if (s == MLK_OK)
		s = checkpoint_append_locked(l, &b, e);
	buf_release(&b);
	if (s != MLK_OK)
		goto out;
	if (link(a.path, segp) != 0) {
		s = mlk_error_errno(e, segp, "cannot seal audit segment");
		goto out;
	}
	if ((s = fsio_fsync_parent(segp, e)) != MLK_OK)
		goto out;
	int fd;
	if ((s = fsio_temp_beside(a.path, &fd, &tmp, e)) != MLK_OK)
		goto out;
	if ((s = fsio_commit(fd, tmp, a.path, 0644, 0, e)) != MLK_OK) {
		unlink(tmp);
		goto out;
	}
	if (chmod(segp, 0444) != 0) {
		s = mlk_error_errno(e, segp, "cannot make read-only");
		goto out;
	}
	*seg = n;
out:
	free(cp);
	auditlog_close(&a);
	fsio_unlock(lock);
	free(tmp);
	free(hp);
	free(segp);
	free(cpf);
	free(lockp);
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
