/*
 * kanon — k-anonymity over quasi-identifiers: counting the equivalence
 * classes of records (records that agree on every quasi-identifier) and
 * finding those smaller than k.
 *
 * A class is keyed by the compact JSON of each quasi-identifier's value
 * (a dotted path; missing is null).  Memory grows with the number of
 * distinct classes, not with records.
 *
 * Ownership: struct kanon is made by kanon_new, freed by kanon_free; it
 * copies the field names.
 */
#ifndef MLK_KANON_H
#define MLK_KANON_H

#include <stddef.h>

#include "buf.h"

struct kanon;

struct kanon *kanon_new(char *const *fields, size_t n, unsigned long long k);
void kanon_free(struct kanon *ka);
/* Count a record (one NDJSON line); -1 when it is not a record. */
int kanon_add(struct kanon *ka, const char *line, size_t len);
/* The size of a counted record's class; 0 when it is not a record. */
unsigned long long kanon_class(struct kanon *ka, const char *line,
			       size_t len);
/* The JSON report: classes, the small ones (values and sizes, smallest
 * first, at most 100 listed), records in them, and suppressed. */
void kanon_report(const struct kanon *ka, unsigned long long suppressed,
		  struct buf *out);

#endif
