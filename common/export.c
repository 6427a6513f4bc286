#include "export.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsio.h"
#include "object.h"
#include "xalloc.h"
#include "banned.h"

int export_format_parse(const char *name)
{
	if (!strcmp(name, "tar"))
		return EXPORT_TAR;
	if (!strcmp(name, "tar.gz") || !strcmp(name, "tgz"))
		return EXPORT_TAR_GZ;
	if (!strcmp(name, "zip"))
		return EXPORT_ZIP;
	return -1;
}

/* "2026-11-25T15:42:13Z" as seconds since the epoch (UTC). */
static time_t iso_time(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
			 &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
			 &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

static enum mlk_status ar_fail(struct archive *a, const char *path,
			       struct mlk_error *e)
{
	return mlk_error_set(e, MLK_SYSTEM, path, 0, "cannot write archive: %s",
			     archive_error_string(a) ? archive_error_string(a)
						     : "unknown error");
}

static enum mlk_status add_entry(struct archive *a, const char *name,
				 const char *data, size_t len, int fd,
				 unsigned long long size, time_t mtime,
				 const char *path, struct mlk_error *e)
{
	struct archive_entry *en = archive_entry_new();
	archive_entry_set_pathname(en, name);
	archive_entry_set_size(en, (la_int64_t)size);
	archive_entry_set_filetype(en, AE_IFREG);
	archive_entry_set_perm(en, 0444);
	archive_entry_set_uid(en, 0);
	archive_entry_set_gid(en, 0);
	archive_entry_set_mtime(en, mtime, 0);
	enum mlk_status st = MLK_OK;
	if (archive_write_header(a, en) != ARCHIVE_OK)
		st = ar_fail(a, path, e);
	archive_entry_free(en);
	if (st != MLK_OK)
		return st;
	if (data) {
		if (len && archive_write_data(a, data, len) != (la_ssize_t)len)
			return ar_fail(a, path, e);
		return MLK_OK;
	}
	char *b = xmalloc(1 << 20);
	unsigned long long done = 0;
	for (;;) {
		ssize_t r = read(fd, b, 1 << 20);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			st = mlk_error_errno(e, path, "cannot read");
			break;
		}
		if (!r)
			break;
		done += (unsigned long long)r;
		if (done > size) {
			st = mlk_error_set(e, MLK_INTEGRITY, path, 0,
					   "larger than its manifest entry");
			break;
		}
		if (archive_write_data(a, b, (size_t)r) != (la_ssize_t)r) {
			st = ar_fail(a, path, e);
			break;
		}
	}
	free(b);
	if (st == MLK_OK && done != size)
		st = mlk_error_set(e, MLK_INTEGRITY, path, 0,
				   "smaller than its manifest entry");
	return st;
}

enum mlk_status export_snapshot(const struct lake *l,
				const struct snapshot *s,
				enum export_format fmt, const char *path,
				char sha256[SHA256_HEX],
				unsigned long long *size,
				struct mlk_error *e)
{
	int fd;
	char *tmp = NULL;
	enum mlk_status st = fsio_temp_beside(path, &fd, &tmp, e);
	if (st != MLK_OK)
		return st;
	struct archive *a = archive_write_new();
	int r = ARCHIVE_OK;
	if (fmt == EXPORT_ZIP) {
		/* The data files are gzip already: store, do not deflate. */
		r = archive_write_set_format_zip(a);
		if (r == ARCHIVE_OK)
			r = archive_write_zip_set_compression_store(a);
	} else {
		/* pax only where ustar cannot say it (long names). */
		r = archive_write_set_format_pax_restricted(a);
		if (r == ARCHIVE_OK && fmt == EXPORT_TAR_GZ) {
			r = archive_write_add_filter_gzip(a);
			if (r == ARCHIVE_OK)
				r = archive_write_set_filter_option(
					a, "gzip", "timestamp", NULL);
		}
	}
	if (r == ARCHIVE_OK)
		r = archive_write_set_bytes_in_last_block(a, 1);
	if (r == ARCHIVE_OK)
		r = archive_write_open_fd(a, fd);
	if (r != ARCHIVE_OK)
		st = ar_fail(a, path, e);
	time_t mtime = iso_time(s->created);
	char *dir = snap_dir(l, s);
	if (st == MLK_OK) {
		char *name = xasprintf("%s/_manifest.json", s->id);
		st = add_entry(a, name, s->bytes.data, s->bytes.len, -1,
			       s->bytes.len, mtime, path, e);
		free(name);
	}
	for (size_t i = 0; st == MLK_OK && i < s->nf; i++) {
		const struct snap_file *f = &s->f[i];
		char *src = xasprintf("%s/%s", dir, f->path);
		int in = open(src, O_RDONLY | O_CLOEXEC);
		if (in < 0) {
			st = mlk_error_errno(e, src, "cannot open");
		} else {
			char *name = xasprintf("%s/%s", s->id, f->path);
			st = add_entry(a, name, NULL, 0, in, f->size, mtime,
				       src, e);
			free(name);
			close(in);
		}
		free(src);
	}
	free(dir);
	if (st == MLK_OK && archive_write_close(a) != ARCHIVE_OK)
		st = ar_fail(a, path, e);
	archive_write_free(a);
	if (st == MLK_OK) {
		st = fsio_commit(fd, tmp, path, 0644, 0, e);
		fd = -1;
	}
	if (fd >= 0)
		close(fd);
	if (st != MLK_OK)
		unlink(tmp);
	free(tmp);
	if (st == MLK_OK)
		st = sha256_file(path, sha256, size, e);
	return st;
}
