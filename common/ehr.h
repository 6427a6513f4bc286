/*
 * ehr — EHR source formats turned into records: FHIR R4 Bulk Data NDJSON,
 * FHIR Bundles (entries split into resources), CSV exports with a header
 * row, NDJSON of plain objects, and HL7 v2 messages (one record per
 * message, see hl7.h).  Input may be gzip-compressed.
 *
 * The format is read from the content, never the file name: see
 * ehr_detect().  Each record goes to the caller through a sink with what
 * partitioning needs (type, clinical date, table); each bad piece (invalid
 * JSON, invalid UTF-8, a CSV row with the wrong field count) goes to the
 * sink's reject callback with its line and a reason that never quotes the
 * content, and parsing carries on with the next piece.
 *
 * Clinical dates: FHIR by resource type (Encounter.period.start,
 * Condition.onsetDateTime or recordedDate, Observation.effectiveDateTime,
 * MedicationRequest.authoredOn, Procedure.performedPeriod.start,
 * Immunization.occurrenceDateTime, ...; see fhir_dates in ehr.c); CSV by
 * the table's date column (configured, else detected from the header);
 * plain NDJSON by a configured field, else the first of a list of usual
 * names; HL7 v2 by MSH-7.  A record without one goes to the default
 * partition.
 *
 * Memory: one line, CSV record or HL7 message at a time, except a JSON
 * document that is not NDJSON (a Bundle), which is read whole.
 */
#ifndef MLK_EHR_H
#define MLK_EHR_H

#include <stddef.h>

#include "buf.h"
#include "record.h"
#include "status.h"
#include "yamltree.h"

enum ehr_format {
	EHR_AUTO = 0,
	EHR_FHIR_NDJSON,
	EHR_FHIR_BUNDLE,
	EHR_CSV,
	EHR_NDJSON,
	EHR_HL7V2,
	EHR_UNKNOWN,
};

const char *ehr_format_name(enum ehr_format f);
/* "auto", "fhir-ndjson", "fhir-bundle", "csv", "ndjson", "hl7v2"; -1 if
 * none. */
int ehr_format_parse(const char *name);
/* The partition-spec family: "fhir", "csv", "ndjson" or "hl7v2". */
const char *ehr_format_family(enum ehr_format f);

struct ehr_item {
	const char *type;         /* "fhir:Encounter", "csv:encounters", "ndjson",
				     "hl7v2:ADT^A01" */
	/* The record as compact JSON without its closing '}'. */
	const char *body;
	size_t body_len;
	int empty;                /* body is just "{" */
	long long line;           /* 1-based line where the record starts */
	long long entry;          /* Bundle entry index, or -1 */
	/* Partition sources.  Returns 1 and sets the value when present. */
	int (*lookup)(const struct ehr_item *it, const char *name,
		      const char **val, size_t *len, int *is_number);
	void *priv;
};

/*
 * Records are delivered in two steps so that NDJSON sources can be parsed
 * on several threads: format() turns an item into its output line and
 * partition path and may run on any thread at once (it must only read
 * ctx; it appends to line and part); output(), commit() and reject() run
 * on the calling thread, in input order.
 */
struct ehr_sink {
	void *ctx;
	/* Once the format is known, before the first record. */
	void (*begin)(void *ctx, enum ehr_format used);
	/* Returns how many of the bytes it appended to line the lake
	 * stores before a closing "}}\n" (fields implied by the file's
	 * place are left out there, as Hive leaves out partition values). */
	size_t (*format)(void *ctx, const struct ehr_item *it,
			 struct buf *line, struct buf *part);
	/* Records' output lines, in order, several at a time. */
	void (*output)(void *ctx, const char *lines, size_t len);
	/* One record into the lake; non-zero stops (a system error). */
	int (*commit)(void *ctx, const char *line, size_t len, size_t keep,
		      const char *part, size_t plen);
	int (*reject)(void *ctx, long long line, unsigned long long offset,
		      const char *raw, size_t rawlen, const char *reason);
	int threads;              /* parse threads for NDJSON; 0: serial */
};

struct ehr_conf {
	const char *table;                /* CSV table name (from file name) */
	const char *date_field;           /* NDJSON date field, or NULL */
	const struct ynode *date_columns; /* CSV {table: column|none}, or NULL */
};

/*
 * Guess the format of a source from its first bytes (already decompressed;
 * whole says p holds the entire source).  *why explains EHR_UNKNOWN.
 */
enum ehr_format ehr_detect(const char *p, size_t n, int whole,
			   const char **why);

/*
 * Parse the source at path, or read from fd when fd >= 0 (from offset 0;
 * path then only names it in errors), in format fmt (EHR_AUTO
 * detects).  *used receives the format used.  Returns MLK_OK when the
 * whole source was read (rejects included), MLK_PARTIAL when the source
 * as a whole is unusable (reason in e, nothing emitted), MLK_SYSTEM on I/O
 * errors; a non-zero return of a sink callback is returned as is.
 */
enum mlk_status ehr_parse(const char *path, int fd, enum ehr_format fmt,
			  const struct ehr_conf *conf,
			  const struct ehr_sink *sink, enum ehr_format *used,
			  struct mlk_error *e);

/* CSV table name from a file name: base name without extensions,
 * lowercased, characters outside [a-z0-9_] as '_'.  Caller frees. */
char *ehr_table_name(const char *path);

/*
 * A FHIR reference to a patient, as text in b ("Patient/123",
 * "https://x/fhir/Patient/123/_history/2", "urn:uuid:X"), cut down to
 * the patient's id.  Returns 1 when it was such a reference; otherwise 0
 * and b is left as it was.
 */
int ehr_patient_ref(struct buf *b);

#endif
