/*
 * partition — Hive-style partition specs and the path components they make.
 *
 * A spec is a list of fields written as in mlk.yaml: `source` (identity),
 * `year(source)`, `month(source)`, `day(source)`, `bucket[N](source)`,
 * `truncate[W](source)`, optionally named: `name=transform(source)`.  The
 * default column names are the source for identity, `year`, `month`, `day`
 * for the date transforms, `source_bucket` and `source_trunc` otherwise.
 * Date transforms read ISO 8601 text ("2020-11-03", "2020-11-03T10:00:00Z")
 * literally, without time-zone conversion.  bucket[N] is Iceberg's: 32-bit
 * Murmur3 of the UTF-8 bytes, masked positive, modulo N.
 *
 * A value becomes one safe path component: bytes outside [A-Za-z0-9._-],
 * and a leading '.', are written %XX; an empty or missing value, or one the
 * transform cannot read, is `__HIVE_DEFAULT_PARTITION__`; a value longer
 * than 180 bytes after escaping is cut there and ends "~" + 16 hex digits
 * of its SHA-256, so distinct values stay distinct.
 *
 * Ownership: a struct pspec owns its fields (pspec_release).
 */
#ifndef MLK_PARTITION_H
#define MLK_PARTITION_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "status.h"

#define PARTITION_DEFAULT "__HIVE_DEFAULT_PARTITION__"
#define PSPEC_MAX 16

enum ptransform { PT_IDENTITY, PT_YEAR, PT_MONTH, PT_DAY, PT_BUCKET,
		  PT_TRUNCATE };

struct pfield {
	char *name;
	char *source;
	enum ptransform t;
	int arg;
};

struct pspec {
	struct pfield *f;
	size_t n, alloc;
};

void pspec_init(struct pspec *s);
void pspec_release(struct pspec *s);
/* Parse one field and append it; MLK_USAGE naming the problem. */
enum mlk_status pspec_add(struct pspec *s, const char *text,
			  struct mlk_error *e);
/* The spec as text, "a, year(b), ..." (for manifests and messages). */
void pspec_describe(const struct pspec *s, struct buf *out);

/*
 * Append "name=value" for field f to out.  val/len is the source value
 * (NULL when missing); is_number says it was a JSON number.
 */
void partition_add(const struct pfield *f, const char *val, size_t len,
		   int is_number, struct buf *out);

/* Escape one value as a path component (no default handling). */
void partition_escape(const char *val, size_t len, struct buf *out);

uint32_t murmur3_32(const void *p, size_t n, uint32_t seed);

#endif
