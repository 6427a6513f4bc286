/*
 * deid — the de-identification engine of mlk-deid: records in, records out
 * under a profile (profile.h), with keyed tokens, per-patient date shifts
 * and free-text scrubbing.
 *
 * Records are FHIR resources, flat rows (CSV, NDJSON) or HL7 v2 messages
 * (mlk-record(5)); the kind comes from _mlk.type, else from the shape.
 * Each record is walked once per pass (twice when the profile scrubs free
 * text: the first pass collects the record's own identifiers so that the
 * scrubber removes them from its text).  Untouched values are copied as
 * bytes; containers whose members are all dropped are left out.
 *
 * Keys: the lake key never leaves deid_new().  A project key is derived
 * from it (HMAC-SHA256 of the project name); tokens, date offsets and
 * noise come from the project key, so two projects never share a token.
 * A token is the first 128 bits of HMAC(project key, value) written as a
 * UUID (version 8), which is a valid FHIR id, urn:uuid and CSV key.
 *
 * Determinism: output depends only on input, key, project, seed, the
 * profile and ref_year, never on the thread count.
 *
 * Memory: per thread, one record, the path cache (one entry per distinct
 * field path seen, capped at DEID_MAX_PATHS, then paths are matched
 * without caching), the dropped-field counts (one per distinct path) and
 * two fixed token caches (ids: 1,024 entries; patients: 16,384, about
 * 1.8 MB), wiped when the thread's work ends.
 *
 * Ownership: struct deid is made by deid_new and freed by deid_free; it
 * borrows the profile, which must outlive it.
 */
#ifndef MLK_DEID_H
#define MLK_DEID_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "profile.h"
#include "status.h"

#define DEID_MAX_PATHS 200000
#define DEID_TOKEN_LEN 36

struct deid_params {
	const struct profile *prof;
	const char *project;
	uint64_t seed;          /* perturb noise */
	int ref_year;           /* the year ages are counted to */
	const char *key_id;
	int vault;              /* encrypt: hand originals to sink->vault */
	/* Records of objects the caller de-identifies (_mlk.type dicom,
	 * _mlk.kind genomics) leave with their envelope alone, and
	 * genomics records with their project, assay and pipeline_version
	 * (labels of the operator's choosing, not of the patient) and their
	 * patient column (the first string of patient_id, patient,
	 * subject_id, person_id) as the token his EHR records get: the
	 * caller rebuilds their fields from the de-identified object
	 * (objdeid.h), so no rule of the profile applies to them and none
	 * of their fields is reported dropped. */
	int objects_rebuilt;
};

struct deid_sink {
	void *ctx;
	/* Output records, in input order, several lines at a time. */
	int (*write)(void *ctx, const char *p, size_t n);
	void (*reject)(void *ctx, long long line, const char *reason);
	/* encrypt: an original value and its token, in input order. */
	int (*vault)(void *ctx, const char *token, const char *value,
		     size_t n);
};

struct deid_counts {
	unsigned long long records, rejected, no_patient, scrubbed;
	unsigned long long tokens, shifted, dropped_values;
	long long first_reject_line;
};

struct deid *deid_new(const struct deid_params *p,
		      const uint8_t key[MLK_KEY_LEN], struct mlk_error *e);
void deid_free(struct deid *d);

enum mlk_status deid_run(struct deid *d, int fd, int threads,
			 const struct deid_sink *sink, struct mlk_error *e);

const struct deid_counts *deid_counts(const struct deid *d);

/* Fields dropped because no rule names them: path names (never values)
 * and how many values each lost, sorted by path. */
void deid_dropped(const struct deid *d,
		  void (*cb)(void *ctx, const char *path,
			     unsigned long long n),
		  void *ctx);

/* The token of a value under the project (what pseudonymize writes). */
void deid_token(struct deid *d, const char *v, size_t n,
		char out[DEID_TOKEN_LEN + 1]);

/* The date offset in days of a patient id under the project: what a
 * dateshift rule adds to that patient's dates (in [-shift_days,
 * shift_days] of the profile, never 0).  Objects of the same patient
 * (DICOM, Modified Dates) move by the same days as his records. */
int deid_shift_days(struct deid *d, const char *pid, size_t n);

/* deid_token() and deid_shift_days() for another thread: each thread
 * its own struct deid_keys (a copy of the keyed HMAC), made from a struct
 * deid that outlives it. */
struct deid_keys;
struct deid_keys *deid_keys_new(const struct deid *d);
void deid_keys_free(struct deid_keys *k);
void deid_keys_token(struct deid_keys *k, const char *v, size_t n,
		     char out[DEID_TOKEN_LEN + 1]);
int deid_keys_shift(struct deid_keys *k, const char *pid, size_t n);

/* The vault key of a project, derived from the lake key.  Wipe it. */
void deid_vault_key(const uint8_t key[MLK_KEY_LEN], const char *project,
		    uint8_t out[MLK_KEY_LEN]);

#endif
