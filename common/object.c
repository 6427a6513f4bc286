#include "object.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsio.h"
#include "xalloc.h"
#include "banned.h"

char *object_path(const struct lake *l, const char *hex)
{
	return lake_path(l, "objects/sha256/%.2s/%s", hex, hex);
}

int object_exists(const struct lake *l, const char *hex)
{
	char *p = object_path(l, hex);
	int ok = fsio_exists(p);
	free(p);
	return ok;
}

enum mlk_status object_put_fd(const struct lake *l, int fd, const char *src,
			      struct object_info *info, struct mlk_error *e)
{
	char *tmpl = lake_path(l, "objects/incoming");
	int out;
	char *tmp;
	enum mlk_status s = fsio_temp_beside(tmpl, &out, &tmp, e);
	free(tmpl);
	if (s != MLK_OK)
		return s;
	struct sha256_ctx c;
	sha256_init(&c);
	size_t cap = 1 << 20;
	char *chunk = xmalloc(cap);
	unsigned long long total = 0;
	for (;;) {
		ssize_t r = read(fd, chunk, cap);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			s = mlk_error_errno(e, src, "read error");
			break;
		}
		if (r == 0)
			break;
		sha256_update(&c, chunk, (size_t)r);
		s = fsio_write_all(out, chunk, (size_t)r, tmp, e);
		if (s != MLK_OK)
			break;
		total += (unsigned long long)r;
	}
	free(chunk);
	if (s != MLK_OK) {
		sha256_abort(&c);
		close(out);
		unlink(tmp);
		free(tmp);
		return s;
	}
	uint8_t d[SHA256_LEN];
	sha256_final(&c, d);
	hex_encode(d, SHA256_LEN, info->sha256);
	info->size = total;
	char *final = object_path(l, info->sha256);
	info->existed = fsio_exists(final);
	if (info->existed) {
		close(out);
		unlink(tmp);
	} else {
		char *dir = lake_path(l, "objects/sha256/%.2s", info->sha256);
		s = fsio_mkdirs(dir, 0755, e);
		free(dir);
		if (s == MLK_OK)
			s = fsio_commit(out, tmp, final, 0444, 0, e);
		else
			close(out);
		if (s != MLK_OK)
			unlink(tmp);
	}
	free(final);
	free(tmp);
	return s;
}
