/*
 * vocab — the lake's controlled vocabulary, vocab.yaml (mlk-catalog(5)).
 *
 * Each preferred term has synonyms ("thoracic CT" and "CT chest" mean
 * CT).  Terms live in the general list `terms` or in named vocabularies
 * under `vocabularies` (modality, body_part, assay, ...).  `fields` says
 * which top-level record fields mlk-ingest normalises, and by which
 * vocabulary: their string values that are a term are rewritten to its
 * preferred term before the record is partitioned, so records and
 * partition folders hold preferred terms only.  Search and `vocab check`
 * use every term of every vocabulary.
 *
 * Terms compare case-insensitively; a value that is no term is left as
 * it is.  Nothing here prints or keeps a record value.
 *
 * Ownership: struct vocab is caller-owned (vocab_load / vocab_release)
 * and owns all its strings; returned terms live as long as it.
 */
#ifndef MLK_VOCAB_H
#define MLK_VOCAB_H

#include <stddef.h>

#include "buf.h"
#include "lake.h"
#include "status.h"
#include "yamltree.h"

struct vocab {
	char **term;      /* lowercased: preferred terms and synonyms */
	char **pref;      /* the preferred term each one means */
	char **cat;       /* its vocabulary, NULL for the general list */
	size_t n, alloc;
	char **field;     /* record fields normalised at ingest */
	char **fcat;      /* ... by this vocabulary (NULL: general) */
	size_t nfields;
};

/* Load vocab.yaml (none: an empty vocabulary).  A field naming a
 * vocabulary that does not exist is MLK_USAGE naming the line. */
enum mlk_status vocab_load(const struct lake *l, struct vocab *v,
			   struct mlk_error *e);
/* The same from a parsed vocab.yaml (name for messages). */
enum mlk_status vocab_from_tree(const struct ynode *y, const char *name,
				struct vocab *v, struct mlk_error *e);
void vocab_release(struct vocab *v);

/* The preferred term for s (any case) in any vocabulary, or NULL. */
const char *vocab_preferred(const struct vocab *v, const char *s, size_t n);

/* The preferred term for a value of record field `field` (n bytes),
 * or NULL when the field is not controlled or the value is no term. */
const char *vocab_field_preferred(const struct vocab *v, const char *field,
				  size_t fn, const char *s, size_t n);

/*
 * Append the JSON object text obj (from its '{'; its closing '}' may be
 * missing) to out with the string values of controlled top-level fields
 * replaced by their preferred terms.  Returns how many were replaced.
 * Text that is not an object is appended as it is.
 */
size_t vocab_apply(const struct vocab *v, const char *obj, size_t n,
		   struct buf *out);

#endif
