/*
 * unpack — reading zip and tar archives (plain, gzip, bzip2, xz, zstd)
 * member by member, through libarchive.
 *
 * This is the only module that reads archives (export.c writes them); no
 * other module includes <archive.h> for reading.  Members are handed out
 * one at a time: their names, made valid UTF-8, are provenance only and are
 * never used to make a path, so names with "../", absolute names and
 * links cannot write anywhere.  Only regular members have data; links,
 * directories and devices are reported and passed over.
 *
 * Bombs: every byte copied out counts against two limits, checked while
 * copying, so a bomb stops after at most one buffer past the limit: the
 * expanded bytes of everything unpacked in one run (shared by the archives
 * in an archive), and the expansion ratio of each archive, expanded bytes
 * over its own size (checked once more than 1 MiB has come out, so small
 * archives of zeros are not bombs).  Memory is one 64 KiB buffer plus
 * libarchive's own.
 *
 * Ownership: unpack_open() returns a handle the caller closes with
 * unpack_close(); an entry's name is the handle's until the next
 * unpack_next().
 */
#ifndef MLK_UNPACK_H
#define MLK_UNPACK_H

#include "status.h"

struct unpack_limits {
	unsigned long long max_bytes;    /* all expanded bytes of a run */
	unsigned long long max_ratio;    /* expanded / archive size */
	unsigned long long *expanded;    /* running total, shared */
};

/* Defaults for mlk.yaml ingest.archive_max_mb and archive_max_ratio. */
#define UNPACK_MAX_MB 65536ULL
#define UNPACK_MAX_RATIO 200ULL

/*
 * "zip", "tar", "tar.gz", "tar.bz2", "tar.xz" or "tar.zst" when the file
 * at path is such an archive (by content), else NULL.
 */
const char *unpack_detect(const char *path);

struct unpack;

struct unpack_entry {
	const char *name;      /* valid UTF-8, never a path to use */
	long long index;       /* 1-based position in the archive */
	int regular;           /* has data to read */
	const char *what;      /* otherwise: "directory", "symbolic link",
				  "hard link", "special file" */
};

/* name labels errors. */
enum mlk_status unpack_open(const char *path, const char *name,
			    const struct unpack_limits *lim,
			    struct unpack **out, struct mlk_error *e);
/*
 * 1 with the next member in *ent; 0 at the end; MLK_PARTIAL as -1 when
 * the archive is corrupt or truncated (reason in e).
 */
int unpack_next(struct unpack *u, struct unpack_entry *ent,
		struct mlk_error *e);
/*
 * Copy the current member's data to fd.  MLK_PARTIAL when the member is
 * corrupt, encrypted, or passes a limit (the rest of the archive is then
 * not read); MLK_SYSTEM when fd cannot be written.
 */
enum mlk_status unpack_copy(struct unpack *u, int fd, struct mlk_error *e);
void unpack_close(struct unpack *u);

#endif
