#include "fsio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "par.h"
#include "xalloc.h"
#include "banned.h"

enum mlk_status fsio_mkdirs(const char *path, mode_t mode,
			    struct mlk_error *e)
{
	/* Most calls find the directory there, or only its last level
	 * missing: try the whole path first, then walk up. */
	if (mkdir(path, mode) == 0)
		return MLK_OK;
	if (errno == EEXIST) {
		if (fsio_is_dir(path))
			return MLK_OK;
		return mlk_error_set(e, MLK_SYSTEM, path, 0,
				     "not a directory");
	}
	if (errno != ENOENT)
		return mlk_error_errno(e, path, "cannot create directory");
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return mlk_error_errno(e, path, "cannot create directory");
	char *parent = xstrndup(path, (size_t)(slash - path));
	enum mlk_status s = fsio_mkdirs(parent, mode, e);
	free(parent);
	if (s != MLK_OK)
		return s;
	if (mkdir(path, mode) != 0 && errno != EEXIST)
		return mlk_error_errno(e, path, "cannot create directory");
	return MLK_OK;
}

enum mlk_status fsio_fsync_dir(const char *dir, struct mlk_error *e)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return mlk_error_errno(e, dir, "cannot open directory");
	if (fsync(fd) != 0 && errno != EINVAL) {
		close(fd);
		return mlk_error_errno(e, dir, "cannot sync directory");
	}
	close(fd);
	return MLK_OK;
}

enum mlk_status fsio_fsync_parent(const char *path, struct mlk_error *e)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return fsio_fsync_dir(".", e);
	char *d = xstrndup(path, slash == path ? 1 : (size_t)(slash - path));
	enum mlk_status s = fsio_fsync_dir(d, e);
	free(d);
	return s;
}

enum mlk_status fsio_write_all(int fd, const void *p, size_t n,
			       const char *what, struct mlk_error *e)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return mlk_error_errno(e, what, "write error");
		c += w;
		n -= (size_t)w;
	}
	return MLK_OK;
}

enum mlk_status fsio_temp_beside(const char *final_path, int *fd,
				 char **tmp_path, struct mlk_error *e)
{
	const char *slash = strrchr(final_path, '/');
	const char *base = slash ? slash + 1 : final_path;
	size_t dirlen = slash ? (size_t)(slash - final_path) + 1 : 0;
	for (int attempt = 0; attempt < 100; attempt++) {
		/* getrandom(2), not /dev/urandom: an open per temp file
		 * is a cost when thousands of objects land at once. */
		unsigned r;
		if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
			r = (unsigned)getpid() * 2654435761u + (unsigned)attempt;
		char *t = xasprintf("%.*s.tmp-%s.%08x", (int)dirlen, final_path,
				    base, r);
		int f = open(t, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
				O_CLOEXEC, 0600);
		if (f >= 0) {
			*fd = f;
			*tmp_path = t;
			return MLK_OK;
		}
		if (errno != EEXIST) {
			enum mlk_status s = mlk_error_errno(e, final_path,
						"cannot create temp file");
			free(t);
			return s;
		}
		free(t);
	}
	return mlk_error_set(e, MLK_SYSTEM, final_path, 0,
			     "cannot create a unique temp file");
}

enum mlk_status fsio_commit(int fd, const char *tmp, const char *final,
			    mode_t mode, int nodirsync, struct mlk_error *e)
{
	if (fsync(fd) != 0) {
		close(fd);
		return mlk_error_errno(e, final, "cannot sync");
	}
	if (fchmod(fd, mode) != 0) {
		close(fd);
		return mlk_error_errno(e, final, "cannot set mode");
	}
	if (close(fd) != 0)
		return mlk_error_errno(e, final, "cannot close");
	if (rename(tmp, final) != 0)
		return mlk_error_errno(e, final, "cannot rename into place");
	if (!nodirsync)
		return fsio_fsync_parent(final, e);
	return MLK_OK;
}

struct sync_job {
	const int *fds;
	int err;
	size_t bad;
	pthread_mutex_t mu;
};

static void sync_one(void *ctx, size_t i)
{
	struct sync_job *j = ctx;
	if (fsync(j->fds[i]) != 0 && errno != EINVAL) {
		int err = errno;
		pthread_mutex_lock(&j->mu);
		if (!j->err || i < j->bad) {
			j->err = err;
			j->bad = i;
		}
		pthread_mutex_unlock(&j->mu);
	}
}

int fsio_fsync_many(const int *fds, size_t n, size_t *bad)
{
	struct sync_job j = { fds, 0, 0, PTHREAD_MUTEX_INITIALIZER };
	par_for(n, 17, sync_one, &j);
	pthread_mutex_destroy(&j.mu);
	*bad = j.bad;
	return j.err;
}

struct write_job {
	char *const *paths;
	const void *data;
	size_t len;
	int *fds;               /* -1: nothing to write (exists, or failed) */
	char **tmps;
	struct mlk_error *errs; /* per path, status MLK_OK unless it failed */
};

static void write_one(void *ctx, size_t i)
{
	struct write_job *j = ctx;
	if (fsio_exists(j->paths[i]))
		return;
	int fd;
	char *tmp;
	if (fsio_temp_beside(j->paths[i], &fd, &tmp, &j->errs[i]) != MLK_OK)
		return;
	if (fsio_write_all(fd, j->data, j->len, j->paths[i], &j->errs[i]) !=
	    MLK_OK) {
		close(fd);
		unlink(tmp);
		free(tmp);
		return;
	}
	j->fds[i] = fd;
	j->tmps[i] = tmp;
}

enum mlk_status fsio_write_many(char *const *paths, size_t n,
				const void *data, size_t len, mode_t mode,
				int threads, struct mlk_error *e)
{
	if (!n)
		return MLK_OK;
	struct write_job j = { paths, data, len, NULL, NULL, NULL };
	j.fds = xcalloc(n, sizeof *j.fds);
	j.tmps = xcalloc(n, sizeof *j.tmps);
	j.errs = xcalloc(n, sizeof *j.errs);
	for (size_t i = 0; i < n; i++)
		j.fds[i] = -1;
	par_for(n, threads < 8 ? threads : 8, write_one, &j);

	enum mlk_status s = MLK_OK;
	for (size_t i = 0; i < n && s == MLK_OK; i++)
		if (j.errs[i].status != MLK_OK) {
			*e = j.errs[i];
			s = e->status;
		}
	/* The written ones, packed, synced together. */
	int *fds = xcalloc(n, sizeof *fds);
	size_t *at = xcalloc(n, sizeof *at);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (j.fds[i] >= 0) {
			at[k] = i;
			fds[k++] = j.fds[i];
		}
	size_t bad;
	int err = s == MLK_OK && k ? fsio_fsync_many(fds, k, &bad) : 0;
	if (err) {
		errno = err;
		s = mlk_error_errno(e, paths[at[bad]], "cannot sync");
	}
	for (size_t m = 0; m < k; m++) {
		size_t i = at[m];
		if (s == MLK_OK && fchmod(fds[m], mode) != 0)
			s = mlk_error_errno(e, paths[i], "cannot set mode");
		if (close(fds[m]) != 0 && s == MLK_OK)
			s = mlk_error_errno(e, paths[i], "cannot close");
		if (s == MLK_OK && rename(j.tmps[i], paths[i]) != 0)
			s = mlk_error_errno(e, paths[i], "cannot rename "
					    "into place");
		if (s != MLK_OK)
			unlink(j.tmps[i]);
		free(j.tmps[i]);
	}
	free(at);
	free(fds);
	free(j.fds);
	free(j.tmps);
	free(j.errs);
	return s;
}

enum mlk_status fsio_write_atomic(const char *path, const void *data,
				  size_t len, mode_t mode,
				  struct mlk_error *e)
{
	int fd;
	char *tmp;
	if (fsio_temp_beside(path, &fd, &tmp, e) != MLK_OK)
		return e->status;
	if (fsio_write_all(fd, data, len, path, e) != MLK_OK) {
		close(fd);
		unlink(tmp);
		free(tmp);
		return e->status;
	}
	enum mlk_status s = fsio_commit(fd, tmp, path, mode, 0, e);
	if (s != MLK_OK)
		unlink(tmp);
	free(tmp);
	return s;
}

enum mlk_status fsio_read_file(const char *path, char **data, size_t *len,
			       struct mlk_error *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mlk_error_errno(e, path, "cannot open");
	struct buf b = BUF_INIT;
	char chunk[65536];
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof chunk);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			close(fd);
			buf_release(&b);
			return mlk_error_errno(e, path, "read error");
		}
		if (r == 0)
			break;
		buf_add(&b, chunk, (size_t)r);
	}
	close(fd);
	if (len)
		*len = b.len;
	buf_grow(&b, 0);
	*data = buf_detach(&b);
	return MLK_OK;
}

enum mlk_status fsio_lock(const char *path, int *fd, struct mlk_error *e)
{
	int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (f < 0)
		return mlk_error_errno(e, path, "cannot open lock file");
	while (flock(f, LOCK_EX) != 0) {
		if (errno == EINTR)
			continue;
		close(f);
		return mlk_error_errno(e, path, "cannot lock");
	}
	*fd = f;
	return MLK_OK;
}

void fsio_unlock(int fd)
{
	if (fd >= 0) {
		flock(fd, LOCK_UN);
		close(fd);
	}
}

int fsio_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

int fsio_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

void fsio_remove_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlink(path);
		return;
	}
	DIR *d = opendir(path);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") ||
			    !strcmp(de->d_name, ".."))
				continue;
			char *c = xasprintf("%s/%s", path, de->d_name);
			fsio_remove_tree(c);
			free(c);
		}
		closedir(d);
	}
	rmdir(path);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum mlk_status fsio_list(const char *dir, const char *suffix,
			  char ***names, size_t *n, struct mlk_error *e)
{
	*names = NULL;
	*n = 0;
	DIR *dp = opendir(dir);
	if (!dp)
		return errno == ENOENT ? MLK_OK
		       : mlk_error_errno(e, dir, "cannot read directory");
	size_t alloc = 0, sl = strlen(suffix);
	struct dirent *de;
	while ((de = readdir(dp))) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len <= sl ||
		    strcmp(de->d_name + len - sl, suffix))
			continue;
		XGROW(*names, alloc, *n + 1);
		(*names)[(*n)++] = xstrndup(de->d_name, len - sl);
	}
	closedir(dp);
	if (*n)
		qsort(*names, *n, sizeof **names, cmp_name);
	return MLK_OK;
}

void fsio_list_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
