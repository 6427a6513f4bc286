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
 * Events never carry protected health information: sources are named by
 * hash, never by path or content.
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

#endif
