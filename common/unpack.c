#include "unpack.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "buf.h"
#include "record.h"
#include "xalloc.h"
#include "banned.h"

struct unpack {
	struct archive *a;
	char *name;
	unsigned long long size;        /* of the archive itself */
	unsigned long long out;         /* expanded from this archive */
	struct unpack_limits lim;
	long long index;
	int stopped;                    /* a limit was passed */
	struct buf ename;
};

static struct archive *reader(void)
{
	struct archive *a = archive_read_new();
	archive_read_support_format_zip(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_bzip2(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_zstd(a);
	return a;
}

const char *unpack_detect(const char *path)
{
	struct archive *a = reader();
	const char *t = NULL;
	struct archive_entry *ent;
	if (archive_read_open_filename(a, path, 1 << 16) == ARCHIVE_OK) {
		int r = archive_read_next_header(a, &ent);
		/* An archive with no members at all is still one. */
		if (r == ARCHIVE_OK || r == ARCHIVE_WARN || r == ARCHIVE_EOF ||
		    (r == ARCHIVE_FATAL && archive_format(a) != 0)) {
			int fmt = archive_format(a) & ARCHIVE_FORMAT_BASE_MASK;
			int flt = archive_filter_code(a, 0);
			if (fmt == ARCHIVE_FORMAT_ZIP)
				t = "zip";
			else if (fmt == ARCHIVE_FORMAT_TAR)
				t = flt == ARCHIVE_FILTER_GZIP ? "tar.gz"
				  : flt == ARCHIVE_FILTER_BZIP2 ? "tar.bz2"
				  : flt == ARCHIVE_FILTER_XZ ? "tar.xz"
				  : flt == ARCHIVE_FILTER_ZSTD ? "tar.zst"
				  : "tar";
		}
	}
	archive_read_free(a);
	return t;
}

/* libarchive's message, short and valid UTF-8 (it names formats and
 * problems, never member contents). */
static const char *why(struct archive *a, char out[128])
{
	const char *m = archive_error_string(a);
	if (!m)
		m = "unknown error";
	size_t n = strlen(m);
	if (n > 120)
		n = 120;
	long long bad = utf8_invalid_at(m, n);
	if (bad >= 0)
		n = (size_t)bad;
	memcpy(out, m, n);
	out[n] = 0;
	if (n > 1 && out[0] >= 'A' && out[0] <= 'Z' && out[1] >= 'a' &&
	    out[1] <= 'z')
		out[0] = (char)(out[0] - 'A' + 'a');
	return out;
}

enum mlk_status unpack_open(const char *path, const char *name,
			    const struct unpack_limits *lim,
			    struct unpack **out, struct mlk_error *e)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return mlk_error_errno(e, name, "cannot read archive");
	struct unpack *u = xcalloc(1, sizeof *u);
	u->a = reader();
	u->name = xstrdup(name);
	u->size = (unsigned long long)st.st_size;
	u->lim = *lim;
	if (archive_read_open_filename(u->a, path, 1 << 16) != ARCHIVE_OK) {
		char w[128];
		mlk_error_set(e, MLK_PARTIAL, name, 0, "archive cannot be "
			      "opened: %s", why(u->a, w));
		unpack_close(u);
		return MLK_PARTIAL;
	}
	*out = u;
	return MLK_OK;
}

/* The member's name as valid UTF-8: bytes that are not become U+FFFD. */
static void entry_name(struct unpack *u, struct archive_entry *ent)
{
	const char *n = archive_entry_pathname_utf8(ent);
	if (!n)
		n = archive_entry_pathname(ent);
	if (!n)
		n = "";
	buf_reset(&u->ename);
	size_t len = strlen(n);
	long long bad;
	while ((bad = utf8_invalid_at(n, len)) >= 0) {
		buf_add(&u->ename, n, (size_t)bad);
		buf_addstr(&u->ename, "\xef\xbf\xbd");
		n += bad + 1;
		len -= (size_t)bad + 1;
	}
	buf_add(&u->ename, n, len);
}

int unpack_next(struct unpack *u, struct unpack_entry *ent,
		struct mlk_error *e)
{
	if (u->stopped)
		return 0;
	struct archive_entry *ae;
	int r = archive_read_next_header(u->a, &ae);
	if (r == ARCHIVE_EOF)
		return 0;
	if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
		char w[128];
		mlk_error_set(e, MLK_PARTIAL, u->name, 0, "archive is corrupt "
			      "or truncated after member %lld: %s", u->index,
			      why(u->a, w));
		return -1;
	}
	u->index++;
	entry_name(u, ae);
	ent->name = u->ename.data;
	ent->index = u->index;
	ent->regular = 0;
	ent->what = NULL;
	mode_t type = archive_entry_filetype(ae);
	if (archive_entry_hardlink(ae))
		ent->what = "hard link";
	else if (type == AE_IFLNK || archive_entry_symlink(ae))
		ent->what = "symbolic link";
	else if (type == AE_IFDIR)
		ent->what = "directory";
	else if (type == AE_IFREG)
		ent->regular = 1;
	else
		ent->what = "special file";
	return 1;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

enum mlk_status unpack_copy(struct unpack *u, int fd, struct mlk_error *e)
{
	static const unsigned long long floor_bytes = 1ULL << 20;
	char *blk = xmalloc(1 << 16);
	enum mlk_status s = MLK_OK;
	for (;;) {
		la_ssize_t n = archive_read_data(u->a, blk, 1 << 16);
		if (n == 0)
			break;
		if (n < 0) {
			char w[128];
			s = mlk_error_set(e, MLK_PARTIAL, u->name, 0,
					  "member cannot be read: %s",
					  why(u->a, w));
			break;
		}
		u->out += (unsigned long long)n;
		*u->lim.expanded += (unsigned long long)n;
		if (*u->lim.expanded > u->lim.max_bytes) {
			u->stopped = 1;
			s = mlk_error_set(e, MLK_PARTIAL, u->name, 0,
					  "archive bomb: expands past %llu "
					  "MiB (ingest.archive_max_mb); not "
					  "unpacked further",
					  u->lim.max_bytes >> 20);
			break;
		}
		if (u->out > floor_bytes &&
		    u->out / (u->size ? u->size : 1) >= u->lim.max_ratio) {
			u->stopped = 1;
			s = mlk_error_set(e, MLK_PARTIAL, u->name, 0,
					  "archive bomb: expands more than "
					  "%llu times its size "
					  "(ingest.archive_max_ratio); not "
					  "unpacked further", u->lim.max_ratio);
			break;
		}
		if (write_all(fd, blk, (size_t)n) != 0) {
			s = mlk_error_errno(e, u->name, "cannot write member "
					    "%lld to a temporary file",
					    u->index);
			break;
		}
	}
	free(blk);
	return s;
}

void unpack_close(struct unpack *u)
{
	if (!u)
		return;
	if (u->a)
		archive_read_free(u->a);
	buf_release(&u->ename);
	free(u->name);
	free(u);
}
