/*
 * sample — reproducible, stratified, leak-free sampling of records.
 *
 * Every decision comes from a keyed hash of the record's unit (by default
 * the patient): HMAC-SHA256 under the lake's key of the 8-byte big-endian
 * seed followed by the unit's bytes.  Its first 8 bytes, big-endian, are u
 * (fraction and bottom-k); the next 8 are v (the split), so that a split
 * of a bottom-k sample is not biased by the smallness of its u.  Nothing
 * depends on input order, sharding or thread scheduling.
 *
 * Modes: fraction (u < P * 2^64) and split stream, in input order, holding
 * nothing; per-stratum (bottom-k over distinct units) and min-per-stratum
 * (fraction, plus the bottom-k of each stratum) hold the sample in heaps,
 * one per stratum, and write it at the end sorted by (stratum, u, unit,
 * record bytes).  Memory beyond the sample: the stratum table (one entry
 * per distinct stratum) and, with audit fields, one histogram per field
 * capped at SAMPLE_MAX_VALUES distinct values.
 *
 * This module includes OpenSSL for HMAC (EVP_MAC), which crypto does not
 * offer yet; the key is copied into OpenSSL's context in sample_new() and
 * the caller wipes its own copy right after.
 *
 * Ownership: struct sample_params and its arrays are the caller's and
 * must outlive the struct sample made from them; struct sample is
 * sample_new()'s, freed with sample_free().  Output and rejects go
 * through the caller's sink; the library never prints.
 */
#ifndef MLK_SAMPLE_H
#define MLK_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "crypto.h"
#include "status.h"

#define SAMPLE_MAX_VALUES 4096
#define SAMPLE_MAX_SPLITS 16

enum sample_bins { BINS_NONE = 0, BINS_MONTH, BINS_QUARTER, BINS_YEAR };

struct sample_params {
	uint64_t seed;
	const char *unit;           /* dotted field path, or NULL: default */
	int has_fraction;
	double fraction;
	unsigned long long per_stratum;     /* 0: not given */
	unsigned long long min_per_stratum; /* 0: not given */
	char **stratify;
	size_t nstratify;
	const char *time_field;     /* or NULL */
	enum sample_bins time_bins;
	char *split_name[SAMPLE_MAX_SPLITS];
	double split_w[SAMPLE_MAX_SPLITS];
	size_t nsplit;
	char **audit;               /* --audit-fields */
	size_t naudit;
	char key_id[32];
};

struct sample_sink {
	void *ctx;
	/* Records, whole lines; non-zero stops the run (MLK_SYSTEM). */
	int (*output)(void *ctx, const char *p, size_t n);
	/* A line that is not a record, or not one this tool can stamp. */
	void (*reject)(void *ctx, long long line, const char *reason);
};

struct sample_counts {
	unsigned long long in_records;   /* valid records read */
	unsigned long long out_records;
	unsigned long long no_unit;      /* left out: no unit */
	long long no_unit_line;          /* the first of them */
	unsigned long long rejected;
	char sha256[SHA256_HEX];         /* of the input bytes */
};

struct sample;

/* Parse "month", "quarter", "year"; BINS_NONE when unknown. */
enum sample_bins sample_bins_parse(const char *s);
/* Parse "train=0.8,val=0.1,test=0.1" into p; MLK_USAGE with e->msg. */
enum mlk_status sample_split_parse(struct sample_params *p, const char *s,
				   struct mlk_error *e);
/* The _mlk.sample object for p, compact, members in a fixed order. */
void sample_params_json(const struct sample_params *p, struct buf *out);

struct sample *sample_new(const struct sample_params *p,
			  const uint8_t key[MLK_KEY_LEN], struct mlk_error *e);
/*
 * Read every line of fd, decide and write.  Returns MLK_OK (rejects and
 * unit-less records are counted, not errors), MLK_SYSTEM on a read or
 * output failure.
 */
enum mlk_status sample_run(struct sample *s, int fd, int threads,
			   const struct sample_sink *sink,
			   struct mlk_error *e);
const struct sample_counts *sample_counts(const struct sample *s);
/* The JSON report (see mlk-sample(1)), one line with a newline. */
void sample_report(const struct sample *s, struct buf *out);
/* The per-field total variation distances, as a JSON object. */
void sample_distances(const struct sample *s, struct buf *out);
void sample_free(struct sample *s);

#endif
