/*
 * manifest — the one manifest format of the lake (see mlk-manifest(5)).
 *
 * A manifest is NDJSON: a header object on the first line, then one entry
 * object per line, sorted bytewise so that the same content always gives
 * the same bytes.  Batch manifests (mlk-ingest) and snapshot manifests
 * (mlk-snapshot) are both written and read here.
 *
 * Ownership: struct manifest is caller-owned (manifest_init/_release) and
 * owns copies of everything added to it.
 */
#ifndef MLK_MANIFEST_H
#define MLK_MANIFEST_H

#include <stddef.h>

#include "buf.h"
#include "crypto.h"
#include "record.h"
#include "status.h"

#define MANIFEST_VERSION 1

struct manifest {
	struct buf head;      /* header members, without braces */
	char **ent;           /* entry lines, compact JSON objects */
	size_t n, alloc;
};

/* Starts the header with {"mlk_manifest":1,"type":TYPE}. */
void manifest_init(struct manifest *m, const char *type);
void manifest_release(struct manifest *m);
void manifest_set_str(struct manifest *m, const char *key, const char *val);
void manifest_set_num(struct manifest *m, const char *key, long long val);
/* val is already JSON (an object, array, or literal). */
void manifest_set_json(struct manifest *m, const char *key, const char *val);
/* Add one entry (a compact JSON object, no newline). */
void manifest_add(struct manifest *m, const char *json, size_t len);
/* Sort the entries; serialize and digest sort first themselves. */
void manifest_sort(struct manifest *m);
/* SHA-256 over the sorted entry lines, each with its '\n'. */
void manifest_digest_entries(struct manifest *m, char hex[SHA256_HEX]);
void manifest_serialize(struct manifest *m, struct buf *out);

/*
 * Read a manifest: fn is called with the header (is_header=1) and then
 * each entry; a non-zero return from fn stops the walk and is returned.
 * Malformed lines: MLK_INTEGRITY naming file:line.
 */
typedef int (*manifest_fn)(void *ctx, const struct rec *r, int is_header);
enum mlk_status manifest_read(const char *path, manifest_fn fn, void *ctx,
			      struct mlk_error *e);

#endif
