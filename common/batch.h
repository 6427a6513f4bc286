/*
 * batch — landing records in the raw zone as one atomic batch.
 *
 * A batch is everything one mlk-ingest run adds to one dataset.  Its data
 * files and its manifest are written under staging/<id>/ and published
 * with a single rename to raw/<dataset>/batch=<id>/, so readers (mlk and
 * DuckDB/Spark/Trino alike) see the whole batch or none of it, whenever
 * the writer is killed.  A rerun computes the same id from the same
 * sources and replaces whatever a killed run left in staging/.
 *
 * After publishing, raw/<dataset>/_sources/<sha256> markers record which
 * source bytes the dataset holds, so ingesting them again changes nothing.
 * Markers are repaired from the manifest when a run died between the
 * rename and writing them.
 *
 * Bad pieces go to quarantine/<dataset>/<id>/qNNNNNN.json (the reason
 * record) and qNNNNNN.bad (the bytes), written atomically one by one;
 * reason records name source, hash, line and offset, never content.
 *
 * Ownership: struct batch is caller-owned (batch_begin ... batch_commit or
 * batch_abort, then batch_release).
 */
#ifndef MLK_BATCH_H
#define MLK_BATCH_H

#include <stddef.h>

#include "crypto.h"
#include "datawriter.h"
#include "lake.h"
#include "status.h"

#define BATCH_ID_LEN 26  /* "b" + 24 hex digits + NUL */

struct batch_source {
	char *path;
	char sha256[SHA256_HEX];
	unsigned long long size;
	char format[32];
	unsigned long long records, rejected;
	char *whole_reason;     /* the whole source was quarantined */
};

struct batch {
	const struct lake *lake;
	char *dataset;
	char *kind;
	int kind_noted;         /* kind set by batch_kind(), not guessed */
	char id[BATCH_ID_LEN];
	char *staging;
	char *final;
	struct dwriter *dw;
	struct batch_source *src;
	size_t nsrc, src_alloc;
	unsigned long long records, rejected, quarantined;
	const struct dw_file *files;
	size_t nfiles;
	char manifest_sha256[SHA256_HEX];
};

/*
 * The batch id: a hash of the dataset, the ingest options that change the
 * records (opts: a string), and the sorted SHA-256s of the new sources.
 */
void batch_make_id(const char *dataset, const char *opts, char **shas,
		   size_t n, char id[BATCH_ID_LEN]);

/* 1 when the dataset already holds source bytes sha (batch id in id). */
int batch_source_known(const struct lake *l, const char *dataset,
		       const char *sha, char id[BATCH_ID_LEN]);

/* 1 when batch id is already published (and its markers repaired). */
int batch_published(const struct lake *l, const char *dataset,
		    const char *id, struct mlk_error *e);

enum mlk_status batch_begin(struct batch *b, const struct lake *l,
			    const char *dataset, const char *kind,
			    const char *id, const struct dw_opts *opts,
			    struct mlk_error *e);
/* Register a source; returns its index for batch_source_done. */
/* The kind of a record landed ("ehr", "imaging", "genomics"): the
 * manifest's kind is the one kind of its records, "mixed" when they are
 * of several, and the kind given to batch_begin() (a guess from the
 * dataset's name) when no record landed. */
void batch_kind(struct batch *b, const char *kind);

size_t batch_add_source(struct batch *b, const char *path, const char *sha,
			unsigned long long size);
/* Add a record: line then tail make one line ending in '\n'. */
enum mlk_status batch_add(struct batch *b, const char *partition, size_t plen,
			  const char *line, size_t len, const char *tail,
			  size_t tlen, struct mlk_error *e);
/* Quarantine one bad piece of source si (raw may be NULL). */
enum mlk_status batch_quarantine(struct batch *b, size_t si, long long line,
				 unsigned long long offset, const char *raw,
				 size_t rawlen, const char *reason,
				 struct mlk_error *e);
/*
 * Finish the batch in staging: data files durable and read-only, the
 * manifest written (header_extra: more header members, "k":v,...).
 * Nothing is visible yet; batch_publish() makes it so with one rename.
 */
enum mlk_status batch_prepare(struct batch *b, const char *actor,
			      const char *tool, const char *header_extra,
			      struct mlk_error *e);
enum mlk_status batch_publish(struct batch *b, struct mlk_error *e);
void batch_abort(struct batch *b);
void batch_release(struct batch *b);

#endif
