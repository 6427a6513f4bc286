/*
 * auditlog — reading the audit log: a consistent snapshot of it, chain and
 * checkpoint verification, Merkle subtree hashes for proofs, and the
 * checkpoints file.  Writing events stays in audit.c.
 *
 * A snapshot is the log's bytes up to its size when it was opened, taken
 * under audit/log.lock so that no append is half-way through; later
 * appends are not seen.  The bytes are mapped read-only.  A rotated log
 * is several parts: the sealed segments in order, then the active log
 * (see audit.h); auditlog_next() walks all of them as one sequence of
 * events, and an offset is opaque (the part in its top 16 bits).
 * auditlog_view() gives one part as an auditlog of its own, for code that
 * searches the bytes of a single mapping.
 *
 * Rotation (auditlog_rotate) seals the active log as the next segment,
 * with its signed tree head beside it (NNNNNN.head.json, also appended to
 * the checkpoints), all under the lock.
 *
 * Verification hashes every line twice, for the chain (SHA-256 of the
 * line) and for the Merkle tree (SHA-256 of 0x00 and the line): the chain
 * runs on the calling thread and the tree on a second one, each over the
 * whole mapping, so the two cores of a small machine share the work.
 *
 * Ownership: struct auditlog is caller-owned (auditlog_open/_close) and
 * owns its parts; a view borrows them and is never closed.  Checkpoint
 * arrays from auditlog_checkpoints() are the caller's to free.
 */
#ifndef MLK_AUDITLOG_H
#define MLK_AUDITLOG_H

#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "buf.h"
#include "lake.h"
#include "merkle.h"
#include "status.h"
#include "treehead.h"

struct auditlog_part {
	char *path;
	const char *data;     /* NULL when empty */
	size_t size;          /* bytes in the snapshot */
	size_t complete;      /* bytes up to the last '\n' */
	size_t map_len;
	unsigned seg;         /* segment number; 0 for the active log */
	int head;             /* segments: 1 head parsed, 0 none, -1 bad */
	struct tree_head th;  /* the segment's tree head, when head == 1 */
};

struct auditlog {
	/* The active log, audit/log.ndjson (as its part, or empty). */
	char *path;
	const char *data;
	size_t size, complete;
	/* Every part: the segments in order, then the active log. */
	struct auditlog_part *part;
	size_t nparts;
	int view;             /* borrowed parts (auditlog_view) */
};

enum mlk_status auditlog_open(const struct lake *l, struct auditlog *a,
			      struct mlk_error *e);
void auditlog_close(struct auditlog *a);
/* Part i as a log of its own (for searching one mapping). */
void auditlog_view(const struct auditlog *a, size_t i, struct auditlog *v);

/* Iterate complete lines: *off starts at 0; 1 with line/len, 0 at end. */
int auditlog_next(const struct auditlog *a, size_t *off, const char **line,
		  size_t *len);

/* Checkpoints, in file order; *cp is NULL when there are none. */
enum mlk_status auditlog_checkpoints(const struct lake *l,
				     struct tree_head **cp, size_t *n,
				     struct mlk_error *e);

/* Append one checkpoint line (with its '\n') to audit/checkpoints.ndjson,
 * under audit/log.lock, with one write and fsync. */
enum mlk_status auditlog_checkpoint_append(const struct lake *l,
					   const struct buf *line,
					   struct mlk_error *e);

struct audit_verify {
	uint64_t events;                /* complete lines */
	uint8_t root[MERKLE_HASH];      /* MTH of all events */
	uint64_t covered;               /* largest checkpoint size */
	size_t segments;
};

/*
 * Check the chain (seq from 1, "prev" of each event = SHA-256 of the line
 * before, across segments), a torn tail, the segments (numbered from 1
 * without a gap, none empty or torn, each with a tree head whose size is
 * its last seq, signed by key and matching its root), and every
 * checkpoint (signature by key, when key is not NULL; size within the
 * log; root).  MLK_INTEGRITY naming the first bad line of the log or
 * segment (or of audit/checkpoints.ndjson) and seq.
 */
enum mlk_status auditlog_verify(const struct auditlog *a,
				const struct tree_head *cp, size_t ncp,
				const struct th_key *key, const char *cpfile,
				struct audit_verify *out, struct mlk_error *e);

/*
 * The subtree hashes MTH(D[lo:hi]) of n disjoint ranges, and the root of
 * the first `size` events, in one pass.  MLK_USAGE when the log has fewer
 * than `size` events.
 */
enum mlk_status auditlog_subtrees(const struct auditlog *a, uint64_t size,
				  const struct merkle_range *r, size_t n,
				  uint8_t (*out)[MERKLE_HASH],
				  uint8_t root[MERKLE_HASH],
				  struct mlk_error *e);

/* Event number seq (from 1): its line, or 0 when past the end. */
int auditlog_event(const struct auditlog *a, uint64_t seq, const char **line,
		   size_t *len);

/*
 * Seal the active log as the next segment: under the lock, verify
 * everything (as auditlog_verify with vkey), append ev (by id; its
 * outputs are set here to the segment and its number of events) as the
 * segment's last event, sign a tree head of all events with skey, write
 * it beside the segment and append it to the checkpoints, link the log to
 * audit/segments/NNNNNN.ndjson, and put an empty log in its place.  *seg
 * is the new segment's number, 0 when the active log had fewer than
 * min_bytes bytes or no event (nothing done, nothing appended).
 */
enum mlk_status auditlog_rotate(const struct lake *l,
				const struct identity *id,
				const struct audit_event *ev,
				const struct th_key *skey,
				const struct th_key *vkey, size_t min_bytes,
				unsigned *seg, struct tree_head *head,
				struct mlk_error *e);

/* A query: every member set must match (NULL: any). */
struct audit_query {
	const char *who;       /* actor.user */
	const char *action;
	const char *dataset;   /* the dataset or one under it ("ehr") */
	const char *since;     /* ISO 8601 UTC, inclusive */
	const char *until;     /* ISO 8601 UTC, inclusive */
};

/* 1 when the event line matches q; 0 when not (or not an event). */
int auditlog_match(const char *line, size_t len, const struct audit_query *q);

#endif
