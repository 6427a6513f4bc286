/*
 * lineage — tracing what the audit log and the manifests record about
 * where data came from and where it went.
 *
 * Nodes are named "source:<sha256>", "batch:<id>", "manifest:<sha256>"
 * and "dataset:<name>"; an edge runs from what was used to what was made
 * (source -> batch, manifest -> batch, batch -> dataset).  Today the lake
 * records batches (mlk-ingest); snapshots, samples and models join the
 * same graph when their tools append events naming them.
 *
 * The log is searched for the id's bytes first (memmem over the mapped
 * snapshot), and only events that hold them are parsed, so a trace over a
 * million events stays well under a second.  A batch's manifest is checked
 * against the manifest_sha256 its ingest event recorded before any of its
 * entries is believed.
 *
 * Ownership: struct lineage is caller-owned (lineage_init/_release) and
 * owns its edges' strings.
 */
#ifndef MLK_LINEAGE_H
#define MLK_LINEAGE_H

#include <stddef.h>

#include "auditlog.h"
#include "buf.h"
#include "lake.h"
#include "status.h"

struct lineage_edge {
	char *from, *to;
	const char *relation;   /* "ingested_into", "describes", "part_of" */
	char *path;             /* source path or manifest path, or NULL */
	long long bytes;        /* source size, or -1 */
	long long seq;          /* the event that recorded it */
};

struct lineage {
	struct lineage_edge *v;
	size_t n, alloc;
};

void lineage_init(struct lineage *g);
void lineage_release(struct lineage *g);

/*
 * Trace id: a batch id (back to its manifest and sources), a source's
 * SHA-256 (forward to the batches that used it, and their sources'
 * paths), or a dataset name (its batches and their sources).  MLK_USAGE
 * when the log names no such thing; MLK_INTEGRITY when a manifest does not
 * match its event.
 */
enum mlk_status lineage_trace(const struct lake *l, const struct auditlog *a,
			      const char *id, struct lineage *g,
			      struct mlk_error *e);

/* The edges as NDJSON, or as a Graphviz digraph. */
void lineage_ndjson(const struct lineage *g, struct buf *out);
void lineage_dot(const struct lineage *g, struct buf *out);

#endif
