/*
 * catalog — dataset descriptors, their search index, and the parts of a
 * descriptor derived from the lake (see mlk-catalog(5)).
 *
 * A descriptor is catalog/datasets/<dataset>.yaml, a YAML map held in
 * memory as a yamltree (struct ynode).  People edit its plain keys
 * (owner, steward, sensitivity, ...; catalog_set); `derived` is rebuilt
 * from the raw zone's batch manifests and data files (catalog_refresh);
 * `models` is kept by the model registry.  The YAML files are the truth:
 * catalog/index.ndjson, one compact JSON line per descriptor sorted by
 * dataset, is rebuilt from them atomically (catalog_reindex) and updated
 * under catalog/.lock by every catalog_save, and is what list and search
 * read.  Descriptors hold no record values: a schema names fields, JSON
 * types and null shares only.
 *
 * Vocabulary (vocab.h): a search term matches a value when both name
 * the same preferred term (case-insensitively), or as text otherwise.
 *
 * Ownership: descriptor trees are the caller's (ynode_free); strings
 * returned are malloc'd and the caller's.
 */
#ifndef MLK_CATALOG_H
#define MLK_CATALOG_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "lake.h"
#include "status.h"
#include "vocab.h"
#include "yamltree.h"

/* catalog/datasets/<dataset>.yaml */
char *catalog_desc_path(const struct lake *l, const char *dataset);
int catalog_exists(const struct lake *l, const char *dataset);

/* A new descriptor with every person-edited key in its place. */
struct ynode *catalog_new(const char *dataset, const char *owner,
			  time_t now);
/* Load; MLK_USAGE "not in the catalog" when absent. */
enum mlk_status catalog_load(const struct lake *l, const char *dataset,
			     struct ynode **out, struct mlk_error *e);
/* Write the YAML atomically and update the index (under the lock). */
enum mlk_status catalog_save(const struct lake *l, const struct ynode *d,
			     struct mlk_error *e);

/*
 * Save only the given top-level keys of d into the descriptor as it is
 * on disk now, under the lock, so that what a tool changed since d was
 * loaded (derived, versions, models) is kept.  No descriptor yet: d is
 * saved whole.
 */
enum mlk_status catalog_save_keys(const struct lake *l, const struct ynode *d,
				  char **keys, size_t nkeys,
				  struct mlk_error *e);

/*
 * Change a descriptor in place: load it, let fn change d, save it, all
 * under catalog/.lock, so that no other writer's change is lost between
 * the load and the save.  MLK_USAGE "not in the catalog" when absent;
 * fn's status when it fails (nothing saved).
 */
enum mlk_status catalog_update(const struct lake *l, const char *dataset,
			       enum mlk_status (*fn)(struct ynode *d,
						     void *ctx,
						     struct mlk_error *e),
			       void *ctx, struct mlk_error *e);

/*
 * Set one person-edited key from "KEY=VALUE" (a new key must be
 * [a-z][a-z0-9_]*, at most 32 bytes; dataset, created, derived, models
 * and versions are not editable).  MLK_USAGE naming the key otherwise.
 */
enum mlk_status catalog_set(struct ynode *d, const char *assignment,
			    struct mlk_error *e);
/* Replace (or add) map[key]; takes ownership of v. */
void catalog_map_put(struct ynode *map, const char *key, struct ynode *v);
struct ynode *catalog_scalar(const char *text, int quoted);
struct ynode *catalog_seq(void);
void catalog_seq_push(struct ynode *seq, struct ynode *item);

/* The tree as YAML text (block maps, flow items) / as compact JSON. */
void catalog_yaml(const struct ynode *n, struct buf *out);
void catalog_json(const struct ynode *n, struct buf *out);

/*
 * Rebuild `derived` from raw/<dataset>/: batches, records, partition
 * keys, record types, and the schema (field, JSON types, null share) of
 * every data file's records.  now stamps derived.refreshed.
 */
enum mlk_status catalog_refresh(const struct lake *l, struct ynode *d,
				time_t now, struct mlk_error *e);

/*
 * Keep a descriptor's derived parts current as the lake changes, under
 * catalog/.lock, touching no person-edited key; a dataset without a
 * descriptor gets a new one (owner: user).
 *
 * catalog_note_batch: raw batch `batch` of dataset was just published.
 * Its records, batch id, partition keys, record types and schema are
 * merged into `derived` (null shares weighted by records) without
 * reading the other batches; the schema is read from at most 20,000
 * of the batch's records, spread over its files.  A descriptor without
 * `derived` is refreshed whole when the dataset holds other batches.
 * Noting a batch twice changes nothing.
 *
 * catalog_note_snapshot: snapshot id was just published; it is added
 * to `versions` (snapshot, zone, version, records, created), and a
 * dataset without raw batches gets `derived` from it.
 */
enum mlk_status catalog_note_batch(const struct lake *l, const char *dataset,
				   const char *batch, const char *user,
				   time_t now, struct mlk_error *e);
enum mlk_status catalog_note_snapshot(const struct lake *l, const char *id,
				      const char *user, time_t now,
				      struct mlk_error *e);

/* Rebuild catalog/index.ndjson from every descriptor; *n: how many. */
enum mlk_status catalog_reindex(const struct lake *l, size_t *n,
				struct mlk_error *e);

/*
 * Search the index: terms "key=value" must equal the descriptor's key
 * (case-insensitively, through the vocabulary); other terms must occur
 * in some value as whole words (case-insensitively; a vocabulary term
 * also as any of its synonyms).  No terms lists everything.  fn gets each matching
 * index line (without '\n'); a non-zero return stops.
 */
typedef int (*catalog_fn)(void *ctx, const char *line, size_t len);
enum mlk_status catalog_search(const struct lake *l, const struct vocab *v,
			       char **terms, size_t nterms, catalog_fn fn,
			       void *ctx, struct mlk_error *e);

#endif
