/*
 * object — the content-addressed object store, objects/sha256/XX/HEX.
 *
 * Every original byte that enters the lake is stored here once, named by
 * its SHA-256, shared by all zones and versions.  Objects are written
 * through a temp file in objects/, hashed while copied (one pass), fsynced,
 * made read-only (0444) and renamed into place; storing bytes that are
 * already present costs the copy and changes nothing.
 */
#ifndef MLK_OBJECT_H
#define MLK_OBJECT_H

#include <sys/types.h>

#include "crypto.h"
#include "lake.h"
#include "status.h"

struct object_info {
	char sha256[SHA256_HEX];
	unsigned long long size;
	int existed;            /* the store already held these bytes */
};

/* Store everything read from fd.  src names the input in errors. */
enum mlk_status object_put_fd(const struct lake *l, int fd, const char *src,
			      struct object_info *info, struct mlk_error *e);

/* Path of an object (malloc'd), whether it exists or not. */
char *object_path(const struct lake *l, const char *sha256_hex);

int object_exists(const struct lake *l, const char *sha256_hex);

#endif
