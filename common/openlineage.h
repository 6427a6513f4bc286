/*
 * openlineage — audit events as OpenLineage RunEvents (spec 2-0-2), so that
 * Marquez, DataHub or any OpenLineage consumer can take mlk's lineage.
 *
 * One event becomes one RunEvent when it made or read data: it was not a
 * denial, and its inputs or outputs name at least one dataset (a batch,
 * snapshot, sample, model, dataset, or content by SHA-256).  The mapping is
 * fixed and documented in mlk-audit(1): eventType COMPLETE (status 0 or
 * 1) or FAIL; eventTime the event's time; run.runId a UUID (version 8,
 * RFC 9562) made of the first 16 bytes of the SHA-256 of the event line,
 * so the same event always has the same run; job.namespace
 * "mlk://<lake id>"; job.name "<tool>.<action>"; inputs and outputs as
 * datasets in the same namespace named "batch:<id>", "source:<sha256>",
 * ... as mlk-audit trace names its nodes.
 *
 * Ownership: output is appended to the caller's buffer; nothing is kept.
 */
#ifndef MLK_OPENLINEAGE_H
#define MLK_OPENLINEAGE_H

#include <stddef.h>

#include "buf.h"
#include "lake.h"

#define OPENLINEAGE_SCHEMA_URL \
	"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
/* mlk has no public home yet: a URI that names it and its version. */
#define OPENLINEAGE_PRODUCER "https://mlk.invalid/mlk/v" MLK_VERSION

/* "mlk://" and mlk.yaml's lake.id, else "path-" and 16 hex digits of
 * the SHA-256 of the lake's absolute path. */
void openlineage_namespace(const struct lake *l, struct buf *out);

/*
 * Append the RunEvent of one event line (and '\n') to out: 1 when one was
 * written, 0 when the event made and read no data, -1 when the line is not
 * an audit event.
 */
int openlineage_event(const char *ns, const char *line, size_t len,
		      struct buf *out);

#endif
