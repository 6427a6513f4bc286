#include "datareader.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include "record.h"
#include "banned.h"

struct gz_src {
	gzFile gz;
	size_t cap;             /* bytes to inflate per read at most */
};

static ssize_t gz_read_cb(void *ctx, void *p, size_t n)
{
	struct gz_src *src = ctx;
	gzFile gz = src->gz;
	if (n > src->cap)
		n = src->cap;
	int r = gzread(gz, p, (unsigned)n);
	if (r == 0) {
		int err = Z_OK;
		gzerror(gz, &err);
		if (err != Z_OK && err != Z_STREAM_END)
			return -1;
	}
	return r;
}

static enum mlk_status read_lines(const char *path, datareader_fn fn,
				  void *ctx, size_t cap, struct mlk_error *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mlk_error_errno(e, path, "cannot open");
	gzFile gz = gzdopen(fd, "rb");
	if (!gz) {
		close(fd);
		return mlk_error_set(e, MLK_SYSTEM, path, 0, "cannot read");
	}
	gzbuffer(gz, 1 << 17);
	struct linereader lr;
	struct gz_src src = { gz, cap };
	lr_init(&lr, gz_read_cb, &src);
	enum mlk_status s = MLK_OK;
	const char *line;
	size_t len;
	int got;
	while ((got = lr_next(&lr, &line, &len, e)) == 1) {
		int rc = fn(ctx, line, len, lr.lineno, e);
		if (rc) {
			s = (enum mlk_status)rc;
			break;
		}
	}
	if (got < 0 && s == MLK_OK)
		s = mlk_error_set(e, MLK_INTEGRITY, path, lr.lineno,
				  "cannot read stored records (not valid "
				  "gzip NDJSON)");
	lr_release(&lr);
	gzclose(gz);
	return s;
}

enum mlk_status datareader_lines(const char *path, datareader_fn fn,
				 void *ctx, struct mlk_error *e)
{
	return read_lines(path, fn, ctx, (size_t)1 << 30, e);
}

enum mlk_status datareader_lines_lazy(const char *path, datareader_fn fn,
				      void *ctx, struct mlk_error *e)
{
	return read_lines(path, fn, ctx, (size_t)16 << 10, e);
}
