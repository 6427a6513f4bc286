/*
 * drift — how two sets of records differ: records added and removed, and
 * per-field distribution drift as the population stability index (PSI).
 *
 * Fields are the top-level members holding a scalar, and _mlk.split.
 * Strings and booleans are categorical, one bin per value plus one for
 * records without the field; a field with more than DRIFT_MAX_CATEGORIES
 * values (identifiers, free text, exact dates) is reported as high
 * cardinality and not scored.  Numbers get DRIFT_BINS equal-width bins
 * over the range both sides share, found in a first pass over the
 * records; the second pass fills the bins.  PSI = sum over bins of
 * (b - a) * ln(b / a), a and b the bin shares of A and B, with empty bins
 * counted as 0.0001 so the sum stays finite.
 *
 * Records are compared without their _mlk envelope (a re-sampled record is
 * the same record), by a 64-bit prefix of their SHA-256: memory is 8
 * bytes per record plus the field tables, bounded by the caps above.
 *
 * Ownership: drift_new() returns a struct freed by drift_free().
 */
#ifndef MLK_DRIFT_H
#define MLK_DRIFT_H

#include <stddef.h>

#include "buf.h"

#define DRIFT_BINS 10
#define DRIFT_MAX_CATEGORIES 200
#define DRIFT_MAX_FIELDS 512

struct drift;

struct drift_totals {
	unsigned long long records[2];
	unsigned long long added, removed;   /* in B not A; in A not B */
	size_t fields, flagged;
};

struct drift *drift_new(void);
void drift_free(struct drift *d);
/* One record of side 0 (A) or 1 (B), in pass 0 and again in pass 1. */
void drift_record(struct drift *d, int pass, int side, const char *line,
		  size_t len);
/* One NDJSON line per field, sorted by name, flagged when psi > threshold. */
void drift_report(struct drift *d, double threshold, struct buf *out,
		  struct drift_totals *t);

#endif
