/*
 * audit — appending events to the lake's tamper-evident audit log.
 *
 * The log is audit/log.ndjson (format in mlk-audit(5)): one compact JSON
 * event per line, each carrying "prev", the SHA-256 of the previous line's
 * bytes (64 zeros for the first), so an edit, deletion, insertion or
 * reordering breaks the chain.  Appends take an exclusive flock on
 * audit/log.lock, read the last line, and write the new line with one
 * write(2) on an O_APPEND descriptor followed by fsync, so concurrent
 * writers never interleave and a crash leaves at most a torn final line
 * (which verification reports and the next append refuses to chain to).
 *
 * Long-lived logs are rotated into sealed segments,
 * audit/segments/NNNNNN.ndjson (numbered from 000001, read-only), by
 * auditlog_rotate().  The active log then starts empty, and its first
 * event chains to (and numbers on from) the last event of the newest
 * segment.  Rotation links the log to its segment name and then renames an
 * empty file over the log, under the lock; a crash between the two leaves
 * the log and the newest segment as one file (same inode), which every
 * writer finishes rotating before it appends (audit_recover) and every
 * reader counts once.
 *
 * Events never carry protected health information: sources are named by
 * hash, never by path or content.
 *
 * Ownership: paths and segment arrays returned here are the caller's to
 * free.
 */
#ifndef MLK_AUDIT_H
#define MLK_AUDIT_H

#include "lake.h"
#include "policy.h"
#include "status.h"

struct audit_event {
	const char *tool;       /* "mlk-ingest" */
	const char *action;     /* "ingest", "init", "deny", ... */
	const char *purpose;    /* --purpose, or NULL */
	const char *zone;       /* or NULL */
	const char *dataset;    /* or NULL */
	const struct decision *decision;   /* or NULL */
	const char *inputs;     /* JSON array text, or NULL */
	const char *outputs;    /* JSON array text, or NULL */
	const char *detail;     /* JSON object text, or NULL */
	int status;             /* the exit status the action ends with */
};

enum mlk_status audit_append(const struct lake *l, const struct identity *id,
			     const struct audit_event *ev,
			     struct mlk_error *e);
/* The same, by a caller that holds audit/log.lock (rotation). */
enum mlk_status audit_append_locked(const struct lake *l,
				    const struct identity *id,
				    const struct audit_event *ev,
				    struct mlk_error *e);

/* audit/segments/NNNNNN<ext> (ext ".ndjson" or ".head.json"). */
char *audit_segment_path(const struct lake *l, unsigned n, const char *ext);

/* The numbers of the sealed segments, ascending; *nums is NULL when none. */
enum mlk_status audit_segments(const struct lake *l, unsigned **nums,
			       size_t *n, struct mlk_error *e);

/*
 * With audit/log.lock held: finish a rotation a crash interrupted (the log
 * is still the newest segment's file: give the log a new, empty file) and
 * make the newest segment read-only.  Nothing to do is MLK_OK.
 */
enum mlk_status audit_recover(const struct lake *l, struct mlk_error *e);

#endif
