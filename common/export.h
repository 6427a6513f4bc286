/*
 * export — reproducible archives of a snapshot through libarchive.
 *
 * The only module that includes <archive.h>.  An archive holds the
 * snapshot's manifest and then its data files in manifest order, under
 * the directory "<id>/", with every entry's owner (0:0, no names), mode
 * (0444) and time (the snapshot's creation time) fixed and gzip headers
 * without a timestamp, so the same snapshot always gives the same bytes.
 * The archive is written to a temp file beside the output, fsynced and
 * renamed: a reader never sees half of it.
 */
#ifndef MLK_EXPORT_H
#define MLK_EXPORT_H

#include "lake.h"
#include "snapshot.h"
#include "status.h"

enum export_format { EXPORT_TAR, EXPORT_TAR_GZ, EXPORT_ZIP };

/* "tar", "tar.gz" (or "tgz"), "zip"; -1 when none. */
int export_format_parse(const char *name);

/* Write the archive to path; *sha256 gets the archive's hash. */
enum mlk_status export_snapshot(const struct lake *l,
				const struct snapshot *s,
				enum export_format fmt, const char *path,
				char sha256[SHA256_HEX],
				unsigned long long *size,
				struct mlk_error *e);

#endif
