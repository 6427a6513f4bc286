/*
 * metrics — the platform measures of mlk-audit(1) metrics, computed from
 * the audit log and the lake on disk (definitions in mlk-audit(1)):
 *
 *   lineage     share of datasets whose every batch has its ingest event,
 *               with sources recorded, and a manifest whose SHA-256 is
 *               the one the event recorded;
 *   ownership   datasets whose descriptor (catalog/datasets/<name>.yaml)
 *               lacks owner or steward, or that have none;
 *   access      seconds from "access.request" to "access.decide" events
 *               with the same detail.request;
 *   exports     "export" events;
 *   sandboxes   sandboxes/<id>/sandbox.yaml past "expires" whose status
 *               is not expired or deleted;
 *   rebuilds    detail.seconds of events with detail.rebuild_of.
 *
 * A measure whose data does not exist yet reports zero, with the count of
 * what was examined; nothing here fails on a lake that lacks it.  Only I/O
 * errors reading the lake are errors.  One pass over the log, with a
 * substring filter before any event is parsed; memory grows with the
 * number of batches, datasets and access requests, never with events.
 *
 * Ownership: struct audit_metrics is caller-owned (audit_metrics_release
 * frees its name lists).
 */
#ifndef MLK_METRICS_H
#define MLK_METRICS_H

#include <stddef.h>

#include "auditlog.h"
#include "buf.h"
#include "lake.h"
#include "status.h"

struct metric_names {
	char **v;
	size_t n, alloc;
};

struct metric_times {
	long long n;            /* values */
	double median, max;     /* seconds; meaningful when n > 0 */
};

struct audit_metrics {
	long long events;
	/* lineage */
	long long datasets, complete;
	struct metric_names incomplete;
	/* ownership */
	long long owned_examined;
	struct metric_names unowned;
	/* access requests */
	long long requests, decided;
	struct metric_times access;
	/* exports out of the lake */
	long long exports, exports_denied;
	/* sandboxes */
	long long sandboxes, sandboxes_bad;
	struct metric_names overdue;
	/* rebuilds */
	struct metric_times rebuild;
};

enum mlk_status audit_metrics(const struct lake *l, const struct auditlog *a,
			      struct audit_metrics *m, struct mlk_error *e);
void audit_metrics_json(const struct audit_metrics *m, struct buf *out);
void audit_metrics_release(struct audit_metrics *m);

#endif
