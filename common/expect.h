/*
 * expect — quality gates: a dataset's expectations (mlk-expect(5)),
 * evaluated over a stream of records, and the JSON report they give.
 *
 * An expectation set is loaded from YAML (a file, or one of the built-in
 * defaults), prepared against a lake (reference snapshots for psi,
 * target ids for references, vocab.yaml for in_vocab), fed one record at
 * a time with its position (a source line or a record number), finished,
 * and reported.  The report names expectations, counts and positions,
 * never a value.
 *
 * Memory is bounded per expectation and does not grow with the number of
 * records, except for two kinds: unique keeps 32 bytes per distinct key
 * up to EXPECT_UNIQUE_RAM keys and then spills sorted runs to an unlinked
 * temporary file, merged at the end; references keeps a 16-byte digest
 * per target id and per distinct unresolved reference, up to
 * EXPECT_KEYS_MAX each (beyond that, expect_finish fails).
 *
 * Ownership: expect_load_*() returns a set freed by expect_free(); the
 * lake and vocabulary given to expect_prepare() must outlive the set's
 * use.  Nothing here prints or exits.
 */
#ifndef MLK_EXPECT_H
#define MLK_EXPECT_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "lake.h"
#include "status.h"

#define EXPECT_FIRST 10               /* offending positions reported */
#define EXPECT_UNIQUE_RAM (1u << 19)  /* unique: keys in memory per run */
#define EXPECT_KEYS_MAX (1u << 22)    /* references: ids held */

struct expect_set;

/* Load from a file / from memory (name is used in errors).  Errors are
 * MLK_USAGE naming the file and line of the node at fault. */
enum mlk_status expect_load_file(const char *path, struct expect_set **out,
				 struct mlk_error *e);
enum mlk_status expect_load_mem(const char *name, const char *text,
				size_t len, struct expect_set **out,
				struct mlk_error *e);
/* The YAML text of a built-in default set ("fhir", "synthea"), or NULL. */
const char *expect_default(const char *name);
void expect_free(struct expect_set *s);
size_t expect_count(const struct expect_set *s);

/* May the caller read zone/dataset?  0 yes; non-zero: an exit status. */
typedef int (*expect_read_fn)(void *ctx, const char *zone,
			      const char *dataset);

struct expect_env {
	const struct lake *l;     /* NULL: kinds needing a lake are errors */
	time_t now;               /* the clock for future dates and ages */
	const char *reference;    /* overrides every psi reference, or NULL */
	expect_read_fn may_read;  /* asked before each read of the lake */
	void *rctx;
};

/* Load what the set needs from the lake (reference distributions,
 * target ids, the vocabulary). */
enum mlk_status expect_prepare(struct expect_set *s,
			       const struct expect_env *env,
			       struct mlk_error *e);
/* One record line (without '\n') at position pos (1-based). */
void expect_record(struct expect_set *s, const char *line, size_t len,
		   long long pos);
/* Merge spilled runs, resolve references, compute shares and PSI. */
enum mlk_status expect_finish(struct expect_set *s, struct mlk_error *e);

struct expect_summary {
	unsigned long long records, invalid;
	size_t expectations, failed_blocking, failed_warning;
	int pass;                 /* every blocking expectation holds */
};

/*
 * The report, one JSON object and '\n'.  positions names the kind of
 * position ("lines" or "records"); extra, when not NULL, is JSON members
 * text put first (",\"dataset\":...") without the leading comma.
 */
void expect_report(const struct expect_set *s, const char *positions,
		   const char *extra, struct buf *out,
		   struct expect_summary *sum);

/* The names of the failed blocking expectations as a JSON array. */
void expect_failed_names(const struct expect_set *s, struct buf *out);

/* Where a dataset's expectations live: catalog/expectations/<dataset>.yaml
 * (malloc'd). */
char *expect_path(const struct lake *l, const char *dataset);

/* Every line of fd through expect_record, positions being line numbers;
 * name is used in errors.  MLK_SYSTEM on a read error. */
enum mlk_status expect_run_fd(struct expect_set *s, int fd, const char *name,
			      struct mlk_error *e);

#endif
