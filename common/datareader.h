/*
 * datareader — reading the lake's data files (gzip NDJSON micro-batches,
 * as datawriter.c writes them) back, line by line, with bounded memory.
 *
 * A damaged file (bad gzip, a line over the reader's limit) is an
 * integrity failure naming the file and line.  The callback sees each
 * line without its '\n'; a non-zero return stops the read and is returned
 * as the status (the callback fills e when it wants a message).
 *
 * Ownership: nothing outlives the call; line bytes are valid only inside
 * the callback.
 */
#ifndef MLK_DATAREADER_H
#define MLK_DATAREADER_H

#include <stddef.h>

#include "status.h"

typedef int (*datareader_fn)(void *ctx, const char *line, size_t len,
			     long long lineno, struct mlk_error *e);

enum mlk_status datareader_lines(const char *path, datareader_fn fn,
				 void *ctx, struct mlk_error *e);
/* The same, inflating 16 KiB at a time, for callers that stop after a
 * few lines (a sample): what they never see is never decompressed. */
enum mlk_status datareader_lines_lazy(const char *path, datareader_fn fn,
				      void *ctx, struct mlk_error *e);

#endif
