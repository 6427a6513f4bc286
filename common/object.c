/* copy_file_range(2) is a Linux call. */
#define _GNU_SOURCE
#include "object.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsio.h"
#include "lifecycle.h"
#include "xalloc.h"
#include "banned.h"

/* Where new objects are written: the hot tier, objects/. */
static char *hot_path(const struct lake *l, const char *hex)
{
	return lake_path(l, "objects/sha256/%.2s/%s", hex, hex);
}

/* An object may sit in any storage tier (lifecycle.h): the first tier
 * holding it, else its place in the hot tier. */
char *object_path(const struct lake *l, const char *hex)
{
	char *p = lc_object_find(l, hex);
	return p ? p : hot_path(l, hex);
}

int object_exists(const struct lake *l, const char *hex)
{
	char *p = object_path(l, hex);
	int ok = fsio_exists(p);
	free(p);
	return ok;
}

/* Same file, unchanged: size, modification and change times agree. */
static int same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/*
 * Read all of fd (from offset 0 with pread when positional, else from
 * where it stands), hash it and, when out >= 0, write it there as well:
 * one pass.  Fills info->sha256 and info->size.
 */
static enum mlk_status hash_all(int fd, int positional, int out,
				const char *outname, const char *src,
				struct object_info *info, struct mlk_error *e)
{
	struct sha256_ctx c;
	sha256_init(&c);
	size_t cap = 1 << 20;
	char *chunk = xmalloc(cap);
	unsigned long long total = 0;
	enum mlk_status s = MLK_OK;
	for (;;) {
		ssize_t r = positional ? pread(fd, chunk, cap, (off_t)total)
				       : read(fd, chunk, cap);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			s = mlk_error_errno(e, src, "read error");
			break;
		}
		if (r == 0)
			break;
		sha256_update(&c, chunk, (size_t)r);
		if (out >= 0) {
			s = fsio_write_all(out, chunk, (size_t)r, outname, e);
			if (s != MLK_OK)
				break;
		}
		total += (unsigned long long)r;
	}
	free(chunk);
	if (s != MLK_OK) {
		sha256_abort(&c);
		return s;
	}
	uint8_t d[SHA256_LEN];
	sha256_final(&c, d);
	hex_encode(d, SHA256_LEN, info->sha256);
	info->size = total;
	return MLK_OK;
}

struct copy {
	pthread_t tid;
	int joined;
	int in, out;
	unsigned long long total;
	struct stat before;
	int err;                 /* errno of a failed copy, or 0 */
};

/* Copy in->out: by the kernel (copy_file_range: no trip through user
 * memory, a reflink where the file system can), else read and write. */
static void *copy_main(void *arg)
{
	struct copy *cp = arg;
	off_t in_off = 0;
	unsigned long long done = 0;
	while (done < cp->total) {
		ssize_t n = copy_file_range(cp->in, &in_off, cp->out, NULL,
					    (size_t)(cp->total - done), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (unsigned long long)n;
	}
	if (done < cp->total) {
		size_t cap = 1 << 20;
		char *chunk = xmalloc(cap);
		while (done < cp->total) {
			ssize_t n = pread(cp->in, chunk, cap, (off_t)done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				cp->err = n < 0 ? errno : EIO;
				break;
			}
			ssize_t w = pwrite(cp->out, chunk, (size_t)n,
					   (off_t)done);
			if (w != n) {
				cp->err = w < 0 ? errno : EIO;
				break;
			}
			done += (unsigned long long)n;
		}
		free(chunk);
	}
	/* Start write-back now; object_publish() waits for it. */
	if (!cp->err)
		sync_file_range(cp->out, 0, 0, SYNC_FILE_RANGE_WRITE);
	return NULL;
}

/* Wait for a copy; 0 when it is whole and the source unchanged. */
static int copy_finish(struct copy *cp, const char **why)
{
	if (!cp->joined) {
		pthread_join(cp->tid, NULL);
		cp->joined = 1;
	}
	struct stat after;
	int rc = 0;
	if (cp->err) {
		*why = strerror(cp->err);
		rc = -1;
	} else if (fstat(cp->in, &after) != 0 ||
		   !same_stat(&cp->before, &after)) {
		*why = "source changed while it was being ingested";
		rc = -1;
	}
	if (cp->in >= 0)
		close(cp->in);
	cp->in = -1;
	return rc;
}

/*
 * A regular file: hash it reading only, then copy it into a temp object
 * on a thread of its own, so the caller can parse meanwhile.  Returns 1
 * when started (or the object already exists), 0 when fd is not a
 * regular file, -1 on error.
 */
static int put_regular(const struct lake *l, int fd, const char *src,
		       struct object_info *info, struct mlk_error *e)
{
	struct stat before, after;
	if (fstat(fd, &before) != 0 || !S_ISREG(before.st_mode))
		return 0;
	if (hash_all(fd, 1, -1, NULL, src, info, e) != MLK_OK)
		return -1;
	unsigned long long total = info->size;
	char *final = object_path(l, info->sha256);
	info->existed = fsio_exists(final);
	if (info->existed) {
		free(final);
		if (fstat(fd, &after) != 0 || !same_stat(&before, &after)) {
			mlk_error_set(e, MLK_INTEGRITY, src, 0,
				      "source changed while it was being "
				      "ingested");
			return -1;
		}
		return 1;
	}
	char *dir = lake_path(l, "objects/sha256/%.2s", info->sha256);
	enum mlk_status s = fsio_mkdirs(dir, 0755, e);
	free(dir);
	int out = -1;
	char *tmp = NULL;
	if (s == MLK_OK)
		s = fsio_temp_beside(final, &out, &tmp, e);
	free(final);
	if (s != MLK_OK)
		return -1;
	/* The copy runs beside the caller's parsing; object_publish()
	 * waits for it and checks that the source did not change. */
	struct copy *cp = xcalloc(1, sizeof *cp);
	cp->in = dup(fd);
	cp->out = out;
	cp->total = total;
	cp->before = before;
	info->tmp = tmp;
	info->fd = out;
	info->copy = cp;
	/* Small files are copied at once: a thread would cost more. */
	if (cp->in < 0 || total < OBJECT_ASYNC_MIN ||
	    pthread_create(&cp->tid, NULL, copy_main, cp) != 0) {
		/* No thread: copy now. */
		if (cp->in >= 0)
			copy_main(cp);
		else
			cp->err = errno;
		cp->joined = 1;
	}
	return 1;
}

enum mlk_status object_put_fd(const struct lake *l, int fd, const char *src,
			      struct object_info *info, struct mlk_error *e)
{
	info->tmp = NULL;
	info->fd = -1;
	info->copy = NULL;
	info->synced = 0;
	int done = put_regular(l, fd, src, info, e);
	if (done < 0)
		return e->status;
	/* A copy made at once is checked at once. */
	if (done && info->copy && ((struct copy *)info->copy)->joined)
		return object_wait(info, src, e);
	if (done)
		return MLK_OK;
	if (lseek(fd, 0, SEEK_SET) < 0 && errno != ESPIPE)
		return mlk_error_errno(e, src, "cannot rewind");

	char *tmpl = lake_path(l, "objects/incoming");
	int out;
	char *tmp;
	enum mlk_status s = fsio_temp_beside(tmpl, &out, &tmp, e);
	free(tmpl);
	if (s != MLK_OK)
		return s;
	s = hash_all(fd, 0, out, tmp, src, info, e);
	if (s != MLK_OK) {
		close(out);
		unlink(tmp);
		free(tmp);
		return s;
	}
	char *final = object_path(l, info->sha256);
	info->existed = fsio_exists(final);
	if (info->existed) {
		close(out);
		unlink(tmp);
		free(tmp);
	} else {
		sync_file_range(out, 0, 0, SYNC_FILE_RANGE_WRITE);
		info->tmp = tmp;
		info->fd = out;
	}
	free(final);
	return MLK_OK;
}

enum mlk_status object_create(const struct lake *l, struct object_info *info,
			      struct mlk_error *e)
{
	memset(info, 0, sizeof *info);
	info->fd = -1;
	char *tmpl = lake_path(l, "objects/incoming");
	enum mlk_status s = fsio_temp_beside(tmpl, &info->fd, &info->tmp, e);
	free(tmpl);
	return s;
}

void object_seal(const struct lake *l, struct object_info *info,
		 const char sha256[SHA256_HEX], unsigned long long size)
{
	memcpy(info->sha256, sha256, SHA256_HEX);
	info->size = size;
	char *final = object_path(l, info->sha256);
	info->existed = fsio_exists(final);
	free(final);
	if (info->existed) {
		object_discard(info);
		free(info->tmp);
		info->tmp = NULL;
	} else {
		/* the disk starts now; publishing waits for it */
		sync_file_range(info->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	}
}

enum mlk_status object_temp_name(const struct lake *l, char **path,
				 struct mlk_error *e)
{
	char *tmpl = lake_path(l, "objects/made");
	int fd;
	enum mlk_status s = fsio_temp_beside(tmpl, &fd, path, e);
	free(tmpl);
	if (s == MLK_OK)
		close(fd);
	return s;
}

enum mlk_status object_adopt(const struct lake *l, char *path,
			     struct object_info *info, struct mlk_error *e)
{
	memset(info, 0, sizeof *info);
	info->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (info->fd < 0) {
		enum mlk_status s = mlk_error_errno(e, path, "cannot open");
		unlink(path);
		free(path);
		return s;
	}
	info->tmp = path;
	enum mlk_status s = hash_all(info->fd, 1, -1, NULL, path, info, e);
	if (s != MLK_OK) {
		object_discard(info);
		return s;
	}
	char *final = object_path(l, info->sha256);
	info->existed = fsio_exists(final);
	free(final);
	if (info->existed)
		object_discard(info);
	else
		sync_file_range(info->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	return MLK_OK;
}

enum mlk_status object_wait(struct object_info *info, const char *src,
			    struct mlk_error *e)
{
	if (!info->copy)
		return MLK_OK;
	const char *why = NULL;
	struct copy *cp = info->copy;
	int rc = copy_finish(cp, &why);
	free(cp);
	info->copy = NULL;
	if (rc) {
		mlk_error_set(e, MLK_INTEGRITY, src, 0,
			      "cannot store its bytes: %s", why);
		object_discard(info);
		return MLK_INTEGRITY;
	}
	return MLK_OK;
}

enum mlk_status object_publish(const struct lake *l, struct object_info *info,
			       struct mlk_error *e)
{
	if (!info->tmp)
		return MLK_OK;
	enum mlk_status ws = object_wait(info, info->tmp, e);
	if (ws != MLK_OK)
		return ws;
	char *final = hot_path(l, info->sha256);
	char *dir = lake_path(l, "objects/sha256/%.2s", info->sha256);
	enum mlk_status s = fsio_mkdirs(dir, 0755, e);
	if (s == MLK_OK) {
		s = fsio_commit(info->fd, info->tmp, final, 0444, 0, e);
		info->fd = -1;
	}
	free(dir);
	free(final);
	if (s != MLK_OK)
		object_discard(info);
	free(info->tmp);
	info->tmp = NULL;
	return s;
}

static unsigned hexval(char c)
{
	if (c <= '9')
		return (unsigned)(c - '0');
	return (unsigned)((c | 0x20) - 'a' + 10);
}

enum mlk_status object_publish_many(const struct lake *l,
				    struct object_info *const *v, size_t n,
				    struct mlk_error *e)
{
	struct object_info **p = xcalloc(n ? n : 1, sizeof *p);
	struct object_info **unsynced = xcalloc(n ? n : 1, sizeof *unsynced);
	int *fds = xcalloc(n ? n : 1, sizeof *fds);
	size_t k = 0, ns = 0;
	enum mlk_status s = MLK_OK;
	for (size_t i = 0; i < n && s == MLK_OK; i++) {
		if (!v[i]->tmp)
			continue;
		s = object_wait(v[i], v[i]->tmp, e);
		p[k++] = v[i];
		if (!v[i]->synced) {
			unsynced[ns] = v[i];
			fds[ns++] = v[i]->fd;
		}
	}
	size_t bad;
	int err = s == MLK_OK ? fsio_fsync_many(fds, ns, &bad) : 0;
	if (err) {
		errno = err;
		s = mlk_error_errno(e, unsynced[bad]->tmp, "cannot sync");
	}
	free(unsynced);
	/* Renamed one by one; each of the 256 directories synced once. */
	unsigned char seen[256] = { 0 };
	size_t ndirs = 0;
	for (size_t i = 0; i < k && s == MLK_OK; i++) {
		struct object_info *o = p[i];
		char *final = object_path(l, o->sha256);
		/* A pipe's temp file is not in its directory yet. */
		char *xx = lake_path(l, "objects/sha256/%.2s", o->sha256);
		s = fsio_mkdirs(xx, 0755, e);
		free(xx);
		if (s != MLK_OK) {
			free(final);
			break;
		}
		if (fchmod(o->fd, 0444) != 0 || close(o->fd) != 0) {
			s = mlk_error_errno(e, final, "cannot close");
		} else {
			o->fd = -1;
			if (rename(o->tmp, final) != 0)
				s = mlk_error_errno(e, final, "cannot rename "
						    "into place");
		}
		free(final);
		if (s != MLK_OK)
			break;
		free(o->tmp);
		o->tmp = NULL;
		unsigned hi = hexval(o->sha256[0]) << 4 | hexval(o->sha256[1]);
		if (!seen[hi & 255]) {
			seen[hi & 255] = 1;
			char *dir = lake_path(l, "objects/sha256/%.2s",
					      o->sha256);
			int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd < 0)
				s = mlk_error_errno(e, dir, "cannot open");
			else
				fds[ndirs++] = fd;
			free(dir);
		}
	}
	err = fsio_fsync_many(fds, ndirs, &bad);
	for (size_t i = 0; i < ndirs; i++)
		close(fds[i]);
	if (err && s == MLK_OK) {
		errno = err;
		s = mlk_error_errno(e, "objects/sha256", "cannot sync");
	}
	free(fds);
	free(p);
	return s;
}

struct object_sync {
	pthread_t tid;
	int started, err;
	struct object_info **v;
	int *fds;
	size_t n, bad;
};

static void *sync_main(void *arg)
{
	struct object_sync *os = arg;
	os->err = fsio_fsync_many(os->fds, os->n, &os->bad);
	return NULL;
}

struct object_sync *object_sync_start(struct object_info *const *v,
				      size_t n)
{
	struct object_sync *os = xcalloc(1, sizeof *os);
	os->v = xcalloc(n ? n : 1, sizeof *os->v);
	os->fds = xcalloc(n ? n : 1, sizeof *os->fds);
	for (size_t i = 0; i < n; i++)
		if (v[i]->tmp && !v[i]->copy && v[i]->fd >= 0 &&
		    !v[i]->synced) {
			os->v[os->n] = v[i];
			os->fds[os->n++] = v[i]->fd;
		}
	if (os->n && pthread_create(&os->tid, NULL, sync_main, os) == 0)
		os->started = 1;
	return os;
}

void object_sync_finish(struct object_sync *os)
{
	if (!os)
		return;
	if (os->started) {
		pthread_join(os->tid, NULL);
		/* On an error none is marked: object_publish_many()
		 * syncs them again and reports it. */
		for (size_t i = 0; i < os->n && !os->err; i++)
			os->v[i]->synced = 1;
	}
	free(os->v);
	free(os->fds);
	free(os);
}

void object_discard(struct object_info *info)
{
	if (info->copy) {
		const char *why;
		copy_finish(info->copy, &why);
		free(info->copy);
		info->copy = NULL;
	}
	if (info->fd >= 0)
		close(info->fd);
	info->fd = -1;
	if (info->tmp) {
		unlink(info->tmp);
		free(info->tmp);
		info->tmp = NULL;
	}
}

char *object_read_path(const struct lake *l, const struct object_info *info)
{
	if (info->copy)
		return NULL;
	if (info->tmp)
		return xstrdup(info->tmp);
	return object_path(l, info->sha256);
}
