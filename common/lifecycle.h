/*
 * lifecycle — retention classes, storage tiers, legal holds, tiering and
 * garbage collection of the object store (see mlk-layout(5)).
 *
 * Tiers are directories, each laid out as the object store,
 * TIER/sha256/XX/HEX: "hot" is always the lake's objects/, further tiers
 * are named in mlk.yaml `tiers` (relative to the lake or absolute), in
 * order from hot to cold.  A blob is found by looking in the tiers in
 * that order (lc_object_find); a blob present in two tiers is the same
 * bytes, because a move publishes the new copy only after its SHA-256 was
 * checked, and removes the old copy last.  So a move killed at any point
 * leaves a readable blob, and the next run finishes it.
 *
 * Retention classes come from policy.yaml `retention_classes` (built-in
 * defaults: active-clinical, research-ready, training-approved,
 * archive-only): the tier a blob belongs in once it is tier_after_days
 * old, a minimum and an optional maximum retention, and a deletion rule
 * (never, after-min).  A dataset's class is its catalog descriptor's
 * `retention`, else the default of its zone.
 *
 * Legal holds are files holds/TARGET@REASONHASH.json, one per target
 * (a snapshot id or ZONE/DATASET) and reason; nothing removes or expires
 * what a hold covers.
 *
 * Ownership: struct lifecycle is caller-owned (lc_open/lc_close); plan and
 * hold arrays are malloc'd and freed with their _free functions.  Nothing
 * here prints or exits.
 */
#ifndef MLK_LIFECYCLE_H
#define MLK_LIFECYCLE_H

#include <stddef.h>
#include <time.h>

#include "crypto.h"
#include "lake.h"
#include "status.h"
#include "yamltree.h"

struct lc_class {
	char name[64];
	char tier[64];          /* where it belongs after tier_after_days */
	long long tier_after_days;
	long long min_days;
	long long max_days;     /* -1: no maximum */
	int deletable;          /* rule after-min (1) or never (0) */
};

struct lc_tier {
	char name[64];
	char *dir;              /* absolute; holds sha256/XX/HEX */
};

struct lifecycle {
	const struct lake *l;
	struct lc_tier *tier;   /* tier[0] is hot, objects/ */
	size_t ntier;
	struct lc_class *cls;
	size_t ncls;
	long long gc_grace_days;
};

enum mlk_status lc_open(const struct lake *l, struct lifecycle *lc,
			struct mlk_error *e);
void lc_close(struct lifecycle *lc);

/* The class named, or NULL. */
const struct lc_class *lc_class_find(const struct lifecycle *lc,
				     const char *name);
/* A tier's index by name, or -1. */
int lc_tier_find(const struct lifecycle *lc, const char *name);

/*
 * Where a blob is now (malloc'd path), looking in the tiers in order; NULL
 * when no tier holds it.  With no tier but hot configured, NULL without
 * looking (the caller's hot path is the answer).
 */
char *lc_object_find(const struct lake *l, const char *hex);

/* ---- holds ---- */

struct lc_hold {
	char *target;           /* snapshot id or ZONE/DATASET */
	char *zone, *dataset;   /* of the target */
	char *reason, *by, *since;
};

enum mlk_status lc_holds_load(const struct lake *l, struct lc_hold **v,
			      size_t *n, struct mlk_error *e);
void lc_holds_free(struct lc_hold *v, size_t n);
/* Place a hold; *existed when that target already had that reason. */
enum mlk_status lc_hold_add(const struct lake *l, const char *target,
			    const char *zone, const char *dataset,
			    const char *reason, const char *by, time_t now,
			    int *existed, struct mlk_error *e);
/* Release one hold; *found 0 when there was none with that reason. */
enum mlk_status lc_hold_release(const struct lake *l, const char *target,
				const char *reason, int *found,
				struct mlk_error *e);
/* How many holds cover a snapshot (id) or a dataset (id NULL). */
size_t lc_held(const struct lc_hold *v, size_t n, const char *id,
	       const char *zone, const char *dataset);

/* ---- retention status ---- */

struct lc_status {
	char cls[64];
	char jurisdiction[256];
	size_t holds;
	time_t created;         /* 0 when unknown */
	time_t min_until, max_until;  /* max_until 0: no maximum */
	const char *deletion;   /* held, never, retained, eligible, due */
};

/*
 * The status of a dataset's version made at created (0: unknown) that
 * holds cover: its class and jurisdiction from the catalog descriptor
 * (whose legal_hold: true counts as a hold too), and deletion
 * eligibility.
 */
void lc_status_of(const struct lifecycle *lc, const char *zone,
		  const char *dataset, time_t created, size_t holds,
		  time_t now, struct lc_status *st);
/* Put the live lifecycle state into a catalog descriptor (for show):
 * legal_hold, and a `lifecycle` map. */
enum mlk_status lc_describe(const struct lake *l, struct ynode *desc,
			    time_t now, struct mlk_error *e);

/* ---- tiering and gc ---- */

struct lc_move {
	char sha256[SHA256_HEX];
	int from, to;           /* tier indexes */
	unsigned long long size;
	char reason[160];
};

/* Every move the classes ask for now, sorted by blob. */
enum mlk_status lc_tier_plan(const struct lifecycle *lc, time_t now,
			     struct lc_move **v, size_t *n,
			     struct mlk_error *e);
/* Carry out one move: copy, fsync, verify, rename, remove the old copy.
 * Done already: MLK_OK.  The hash does not match: MLK_INTEGRITY. */
enum mlk_status lc_tier_move(const struct lifecycle *lc,
			     const struct lc_move *m, struct mlk_error *e);
/* Remove temp copies a killed move left in any tier; *n: how many. */
enum mlk_status lc_tier_cleanup(const struct lifecycle *lc, size_t *n,
				struct mlk_error *e);

struct lc_gc {
	char *path;             /* absolute */
	char sha256[SHA256_HEX];        /* "" for a stale temp file */
	int tier;
	unsigned long long size;
	long long age_days;
	const char *reason;
};

/* Blobs no snapshot, batch or sandbox references, unheld, older than
 * the grace period; and stale temp files.  Sorted by path. */
enum mlk_status lc_gc_plan(const struct lifecycle *lc, time_t now,
			   struct lc_gc **v, size_t *n, struct mlk_error *e);
void lc_gc_free(struct lc_gc *v, size_t n);
enum mlk_status lc_gc_remove(const struct lc_gc *g, struct mlk_error *e);

/* objects/.lifecycle.lock: one tier or gc run at a time. */
enum mlk_status lc_lock(const struct lake *l, int *fd, struct mlk_error *e);

/* "72h", "3d", "90m", "3600s" -> seconds; -1 when malformed. */
long long lc_duration(const char *s);
/* ISO 8601 UTC "YYYY-MM-DDTHH:MM:SSZ" -> time; 0 when malformed. */
time_t lc_time_parse(const char *s);

#endif
