/* sync_file_range(2) is a Linux call. */
#define _GNU_SOURCE
#include "datawriter.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libdeflate.h>

#include "buf.h"
#include "fsio.h"
#include "xalloc.h"
#include "banned.h"

/* Past this many open data files (set from the descriptor limit, which
 * dw_open raises to its hard maximum), a file is closed after each write
 * and reopened for the next one, so the limit is never reached. */
static int max_open = 128;


struct part {
	char *key;               /* the partition path */
	struct buf data;         /* records not yet compressed */
	char *path;              /* DIR/<key>/<name> */
	int fd;                  /* -1 when closed */
	int created;
	struct sha256_ctx sha;
	struct dw_file info;
};

/* One partition's chunk: compressed into one gzip member. */
struct piece {
	struct part *p;
	char *in;
	size_t in_len, in_alloc;
	char *out;
	size_t out_len;
};

/* A job is one chunk, or many small ones when everything is flushed at
 * once, so that a thousand tiny partitions cost a few wake-ups, not a
 * thousand. */
struct job {
	struct piece *pc;
	size_t n;
	size_t in_alloc;
	int done;
};

struct dwriter {
	char *dir;
	char *name;
	struct dw_opts o;
	struct part **parts;
	size_t nparts, parts_alloc;
	size_t *table;           /* open addressing: index + 1, 0 = empty */
	size_t table_size;
	size_t buffered;
	int open_files;
	struct dw_file *files;

	/*
	 * The pipeline: the caller submits chunks into a ring; compression
	 * threads take them in turn; one writer thread appends the finished
	 * members to their files strictly in submission order, so the
	 * caller never waits on the disk and each file's members keep
	 * their order.
	 */
	pthread_t *tids;
	int nthreads;
	pthread_t writer;
	int have_writer;
	pthread_mutex_t mu;
	pthread_cond_t work, done, space;
	struct job *ring;
	size_t ring_size, head, submitted, taken;
	size_t inflight, inflight_max;   /* input bytes in the ring */
	int quit;
	struct libdeflate_compressor *inline_c;
	enum mlk_status werr;        /* the writer's first error */
	struct mlk_error werrinfo;
	struct job pending;          /* pieces not yet submitted */
	size_t pending_alloc;
};

static size_t hash_key(const char *p, size_t n)
{
	size_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
	return h;
}

static void compress_job(struct libdeflate_compressor *c, struct job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		struct piece *q = &j->pc[i];
		size_t bound = libdeflate_gzip_compress_bound(c, q->in_len);
		q->out = xmalloc(bound);
		q->out_len = libdeflate_gzip_compress(c, q->in, q->in_len,
						      q->out, bound);
		free(q->in);
		q->in = NULL;
	}
}

static void free_job(struct job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		free(j->pc[i].in);
		free(j->pc[i].out);
	}
	free(j->pc);
	j->pc = NULL;
	j->n = 0;
}

static void *worker(void *arg)
{
	struct dwriter *w = arg;
	struct libdeflate_compressor *c =
		libdeflate_alloc_compressor(w->o.level);
	if (!c)
		xmalloc((size_t)-1);
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->taken == w->submitted && !w->quit)
			pthread_cond_wait(&w->work, &w->mu);
		if (w->taken == w->submitted && w->quit)
			break;
		struct job *j = &w->ring[w->taken++ % w->ring_size];
		pthread_mutex_unlock(&w->mu);
		compress_job(c, j);
		pthread_mutex_lock(&w->mu);
		j->done = 1;
		pthread_cond_broadcast(&w->done);
	}
	pthread_mutex_unlock(&w->mu);
	libdeflate_free_compressor(c);
	return NULL;
}

static enum mlk_status open_part(struct dwriter *w, struct part *p,
				 struct mlk_error *e)
{
	if (p->fd >= 0)
		return MLK_OK;
	int flags = O_WRONLY | O_CLOEXEC | O_NOFOLLOW;
	if (!p->created) {
		char *slash = strrchr(p->path, '/');
		char *d = xstrndup(p->path, (size_t)(slash - p->path));
		enum mlk_status s = fsio_mkdirs(d, 0755, e);
		free(d);
		if (s != MLK_OK)
			return s;
		flags |= O_CREAT | O_TRUNC;
	} else {
		flags |= O_APPEND;
	}
	p->fd = open(p->path, flags, 0644);
	if (p->fd < 0)
		return mlk_error_errno(e, p->path, "cannot open data file");
	p->created = 1;
	w->open_files++;
	return MLK_OK;
}

static void close_part(struct dwriter *w, struct part *p)
{
	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
		w->open_files--;
	}
}

static enum mlk_status write_job(struct dwriter *w, struct job *j,
				 struct mlk_error *e)
{
	enum mlk_status s = MLK_OK;
	for (size_t i = 0; i < j->n && s == MLK_OK; i++) {
		struct piece *q = &j->pc[i];
		struct part *p = q->p;
		s = open_part(w, p, e);
		if (s == MLK_OK)
			s = fsio_write_all(p->fd, q->out, q->out_len, p->path,
					   e);
		if (s == MLK_OK) {
			sha256_update(&p->sha, q->out, q->out_len);
			p->info.size += q->out_len;
			if (w->open_files > max_open)
				close_part(w, p);
		}
	}
	free_job(j);
	return s;
}

static void *writer(void *arg)
{
	struct dwriter *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct job *j = &w->ring[w->head % w->ring_size];
		if (w->head == w->submitted) {
			if (w->quit)
				break;
			pthread_cond_wait(&w->done, &w->mu);
			continue;
		}
		if (!j->done) {
			pthread_cond_wait(&w->done, &w->mu);
			continue;
		}
		pthread_mutex_unlock(&w->mu);
		struct mlk_error e = MLK_ERROR_INIT;
		enum mlk_status s = MLK_OK;
		if (w->werr == MLK_OK)
			s = write_job(w, j, &e);
		else
			free_job(j);
		pthread_mutex_lock(&w->mu);
		if (s != MLK_OK && w->werr == MLK_OK) {
			w->werr = s;
			w->werrinfo = e;
		}
		j->done = 0;
		w->inflight -= j->in_alloc;
		w->head++;
		pthread_cond_broadcast(&w->space);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static enum mlk_status writer_error(struct dwriter *w, struct mlk_error *e)
{
	*e = w->werrinfo;
	return w->werr;
}

/* Hand the pending pieces to the compression threads as one job. */
static enum mlk_status submit(struct dwriter *w, struct mlk_error *e)
{
	struct job j = w->pending;
	if (!j.n)
		return MLK_OK;
	memset(&w->pending, 0, sizeof w->pending);
	w->pending_alloc = 0;
	if (!w->nthreads) {
		compress_job(w->inline_c, &j);
		return write_job(w, &j, e);
	}
	pthread_mutex_lock(&w->mu);
	/* Bounded by count and by bytes: a burst of small chunks flows on
	 * while one slow file creation holds the writer up. */
	while ((w->submitted - w->head == w->ring_size ||
		(w->inflight && w->inflight + j.in_alloc > w->inflight_max)) &&
	       w->werr == MLK_OK)
		pthread_cond_wait(&w->space, &w->mu);
	if (w->werr != MLK_OK) {
		pthread_mutex_unlock(&w->mu);
		free_job(&j);
		return writer_error(w, e);
	}
	w->ring[w->submitted % w->ring_size] = j;
	w->submitted++;
	w->inflight += j.in_alloc;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
	return MLK_OK;
}

/* Move a partition's buffer into the pending job; submit when it holds
 * a chunk's worth. */
static enum mlk_status flush_part(struct dwriter *w, struct part *p,
				  struct mlk_error *e)
{
	if (!p->data.len)
		return MLK_OK;
	w->buffered -= p->data.alloc;
	struct job *j = &w->pending;
	XGROW(j->pc, w->pending_alloc, j->n + 1);
	j->pc[j->n++] = (struct piece){ p, p->data.data, p->data.len,
					p->data.alloc, NULL, 0 };
	j->in_alloc += p->data.alloc;
	buf_init(&p->data);
	if (j->in_alloc >= w->o.chunk_bytes)
		return submit(w, e);
	return MLK_OK;
}

enum mlk_status dw_open(struct dwriter **out, const char *dir,
			const char *name, const struct dw_opts *opts,
			struct mlk_error *e)
{
	struct dwriter *w = xcalloc(1, sizeof *w);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
			getrlimit(RLIMIT_NOFILE, &rl);
		}
		if (rl.rlim_cur > 256)
			max_open = rl.rlim_cur > 8448 ? 8192
						       : (int)rl.rlim_cur - 256;
	}
	w->dir = xstrdup(dir);
	w->name = xstrdup(name);
	w->o.buffer_bytes = opts && opts->buffer_bytes ? opts->buffer_bytes
						       : (size_t)16 << 20;
	w->o.chunk_bytes = opts && opts->chunk_bytes ? opts->chunk_bytes
						     : (size_t)1 << 20;
	w->o.level = opts && opts->level ? opts->level : 1;
	w->o.threads = opts ? opts->threads : 2;
	if (w->o.level < 1 || w->o.level > 12)
		w->o.level = 1;
	if (w->o.threads < 0 || w->o.threads > 64)
		w->o.threads = 2;
	w->table_size = 64;
	w->table = xcalloc(w->table_size, sizeof *w->table);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->done, NULL);
	pthread_cond_init(&w->space, NULL);
	w->ring_size = w->o.threads ? 1024 : 1;
	w->inflight_max = (size_t)(w->o.threads + 2) * w->o.chunk_bytes;
	w->ring = xcalloc(w->ring_size, sizeof *w->ring);
	if (!w->o.threads) {
		w->inline_c = libdeflate_alloc_compressor(w->o.level);
		if (!w->inline_c)
			xmalloc((size_t)-1);
	}
	w->tids = xcalloc((size_t)(w->o.threads ? w->o.threads : 1),
			  sizeof *w->tids);
	for (int i = 0; i < w->o.threads; i++) {
		if (pthread_create(&w->tids[i], NULL, worker, w) != 0) {
			*out = w;
			return mlk_error_set(e, MLK_SYSTEM, NULL, 0,
					     "cannot start compression thread");
		}
		w->nthreads++;
	}
	if (w->nthreads) {
		if (pthread_create(&w->writer, NULL, writer, w) != 0) {
			*out = w;
			return mlk_error_set(e, MLK_SYSTEM, NULL, 0,
					     "cannot start writer thread");
		}
		w->have_writer = 1;
	}
	*out = w;
	return MLK_OK;
}

static struct part *find_part(struct dwriter *w, const char *key, size_t n)
{
	size_t h = hash_key(key, n);
	size_t mask = w->table_size - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		size_t v = w->table[i];
		if (!v)
			break;
		struct part *p = w->parts[v - 1];
		if (strlen(p->key) == n && !memcmp(p->key, key, n))
			return p;
	}
	if (2 * (w->nparts + 1) > w->table_size) {
		size_t ns = w->table_size * 2;
		size_t *nt = xcalloc(ns, sizeof *nt);
		for (size_t k = 0; k < w->nparts; k++) {
			struct part *q = w->parts[k];
			size_t hh = hash_key(q->key, strlen(q->key));
			size_t j = hh & (ns - 1);
			while (nt[j])
				j = (j + 1) & (ns - 1);
			nt[j] = k + 1;
		}
		free(w->table);
		w->table = nt;
		w->table_size = ns;
		mask = ns - 1;
	}
	struct part *p = xcalloc(1, sizeof *p);
	p->key = xstrndup(key, n);
	p->fd = -1;
	if (n)
		p->path = xasprintf("%s/%s/%s", w->dir, p->key, w->name);
	else
		p->path = xasprintf("%s/%s", w->dir, w->name);
	sha256_init(&p->sha);
	p->info.partition = p->key;
	p->info.path = n ? xasprintf("%s/%s", p->key, w->name)
			 : xstrdup(w->name);
	XGROW(w->parts, w->parts_alloc, w->nparts + 1);
	w->parts[w->nparts++] = p;
	size_t i = h & mask;
	while (w->table[i])
		i = (i + 1) & mask;
	w->table[i] = w->nparts;
	return p;
}

enum mlk_status dw_add(struct dwriter *w, const char *partition, size_t plen,
		       const char *rec, size_t len, const char *tail,
		       size_t tlen, struct mlk_error *e)
{
	struct part *p = find_part(w, partition, plen);
	size_t before = p->data.alloc;
	buf_add(&p->data, rec, len);
	buf_add(&p->data, tail, tlen);
	p->info.records++;
	p->info.bytes += len + tlen;
	/* Count what is allocated, not what is used: that is the memory. */
	w->buffered += p->data.alloc - before;
	if (p->data.len >= w->o.chunk_bytes)
		return flush_part(w, p, e);
	if (w->buffered >= w->o.buffer_bytes) {
		/* Flushing everything keeps this O(1) amortised however many
		 * tiny partitions there are. */
		for (size_t i = 0; i < w->nparts; i++) {
			enum mlk_status s = flush_part(w, w->parts[i], e);
			if (s != MLK_OK)
				return s;
		}
		return submit(w, e);
	}
	return MLK_OK;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct dw_file *)a)->path,
		      ((const struct dw_file *)b)->path);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum mlk_status dw_finish(struct dwriter *w, const struct dw_file **files,
			  size_t *nfiles, struct mlk_error *e)
{
	enum mlk_status s = MLK_OK;
	for (size_t i = 0; i < w->nparts && s == MLK_OK; i++)
		s = flush_part(w, w->parts[i], e);
	if (s == MLK_OK)
		s = submit(w, e);
	if (w->nthreads) {
		pthread_mutex_lock(&w->mu);
		while (w->head < w->submitted && w->werr == MLK_OK)
			pthread_cond_wait(&w->space, &w->mu);
		if (s == MLK_OK && w->werr != MLK_OK)
			s = writer_error(w, e);
		pthread_mutex_unlock(&w->mu);
	}
	if (s != MLK_OK)
		return s;
	/* Make every file durable, then every directory that gained an
	 * entry, deepest first, so the caller's rename publishes a tree
	 * that is entirely on disk. */
	char **dirs = NULL;
	size_t ndirs = 0, dirs_alloc = 0;
	w->files = xcalloc(w->nparts + 1, sizeof *w->files);
	/* Start write-back of every file at once; the fsyncs below then
	 * mostly wait on I/O already under way. */
	for (size_t i = 0; i < w->nparts; i++)
		if (w->parts[i]->fd >= 0)
			sync_file_range(w->parts[i]->fd, 0, 0,
					SYNC_FILE_RANGE_WRITE);
	for (size_t i = 0; i < w->nparts; i++) {
		struct part *p = w->parts[i];
		if ((s = open_part(w, p, e)) != MLK_OK)
			break;
		if (fsync(p->fd) != 0) {
			s = mlk_error_errno(e, p->path, "cannot sync");
			break;
		}
		close_part(w, p);
		uint8_t d[SHA256_LEN];
		sha256_final(&p->sha, d);
		hex_encode(d, SHA256_LEN, p->info.sha256);
		w->files[i] = p->info;
		/* Every directory level from the partition up to DIR. */
		char *dp = xstrdup(p->path);
		for (;;) {
			char *slash = strrchr(dp, '/');
			if (!slash)
				break;
			*slash = '\0';
			if (strlen(dp) < strlen(w->dir))
				break;
			XGROW(dirs, dirs_alloc, ndirs + 1);
			dirs[ndirs++] = xstrdup(dp);
			if (!strcmp(dp, w->dir))
				break;
		}
		free(dp);
	}
	if (s == MLK_OK && ndirs) {
		qsort(dirs, ndirs, sizeof *dirs, cmp_str);
		for (size_t i = ndirs; i-- > 0 && s == MLK_OK;) {
			if (i + 1 < ndirs && !strcmp(dirs[i], dirs[i + 1]))
				continue;
			s = fsio_fsync_dir(dirs[i], e);
		}
	}
	for (size_t i = 0; i < ndirs; i++)
		free(dirs[i]);
	free(dirs);
	if (s != MLK_OK)
		return s;
	qsort(w->files, w->nparts, sizeof *w->files, cmp_file);
	*files = w->files;
	*nfiles = w->nparts;
	return MLK_OK;
}

void dw_free(struct dwriter *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->quit = 1;
	pthread_cond_broadcast(&w->work);
	pthread_cond_broadcast(&w->done);
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < w->nthreads; i++)
		pthread_join(w->tids[i], NULL);
	if (w->have_writer)
		pthread_join(w->writer, NULL);
	for (size_t i = w->head; i < w->submitted; i++)
		free_job(&w->ring[i % w->ring_size]);
	free_job(&w->pending);
	for (size_t i = 0; i < w->nparts; i++) {
		struct part *p = w->parts[i];
		close_part(w, p);
		if (p->sha.md)
			sha256_abort(&p->sha);
		buf_release(&p->data);
		free(p->key);
		free(p->path);
		free(p->info.path);
		free(p);
	}
	if (w->inline_c)
		libdeflate_free_compressor(w->inline_c);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->work);
	pthread_cond_destroy(&w->done);
	pthread_cond_destroy(&w->space);
	free(w->parts);
	free(w->table);
	free(w->ring);
	free(w->tids);
	free(w->files);
	free(w->dir);
	free(w->name);
	free(w);
}
