/*
 * model — the model registry, catalog/models/ (see mlk-catalog(5)).
 *
 * Each registered version of a model is catalog/models/<name>/<N>.json
 * (N = 1, 2, ...), written once atomically and replaced atomically when
 * promoted, with the hyperparameters and validation metrics stored as
 * given beside it (<N>.params, <N>.metrics; their SHA-256s in the entry).
 * An entry names its exact snapshot, its code reference, the datasets it
 * was trained on, its stage and the history of its stages.  Stages go
 * registered -> validated -> approved -> deployed, one step at a time;
 * any stage may go to deprecated, which is final.  Versions are numbered
 * under catalog/models/.lock so concurrent registrations never collide.
 *
 * Ownership: entries are yamltree maps owned by the caller (ynode_free).
 */
#ifndef MLK_MODEL_H
#define MLK_MODEL_H

#include <stddef.h>
#include <time.h>

#include "lake.h"
#include "status.h"
#include "yamltree.h"

/* [a-z0-9][a-z0-9._-]*, at most 64 bytes. */
int model_name_valid(const char *name);
/* A snapshot id: [A-Za-z0-9][A-Za-z0-9._-]*, at most 128 bytes. */
int model_snapshot_valid(const char *id);
/* "NAME@N" into name (65 bytes) and version; 0 when malformed. */
int model_ref_parse(const char *ref, char name[65], long long *version);

struct model_reg {
	const char *name, *snapshot, *code;
	const char *params_path, *metrics_path;
	const char *const *datasets;
	size_t ndatasets;
	const char *user;
	time_t now;
};

/* Register a new version; *version receives its number. */
enum mlk_status model_register(const struct lake *l,
			       const struct model_reg *m, long long *version,
			       struct mlk_error *e);
/* Load NAME@N (version 0: the latest). MLK_USAGE when absent. */
enum mlk_status model_load(const struct lake *l, const char *name,
			   long long version, struct ynode **out,
			   struct mlk_error *e);
/* Move NAME@N to stage; *from receives the old stage (static text). */
enum mlk_status model_promote(const struct lake *l, const char *name,
			      long long version, const char *stage,
			      const char *user, time_t now, char from[32],
			      struct mlk_error *e);
/* Every entry, by name then version; a non-zero return stops. */
typedef int (*model_fn)(void *ctx, const struct ynode *entry);
enum mlk_status model_list(const struct lake *l, model_fn fn, void *ctx,
			   struct mlk_error *e);

#endif
