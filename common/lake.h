/*
 * lake — finding a lake, its layout on disk, and its configuration.
 *
 * A lake is found like git finds a repository: an explicit directory
 * (--lake), else $MLK_LAKE, else the nearest ancestor of the working
 * directory holding mlk.yaml.  The layout (see mlk-layout(5)) is fixed
 * here and nowhere else: zones raw/, curated/, training/; objects/,
 * snapshots/, catalog/, sandboxes/, quarantine/, audit/, keys/.
 *
 * Ownership: struct lake is caller-owned (lake_open/lake_close) and owns
 * its root path and parsed mlk.yaml.  lake_path() returns malloc'd paths.
 */
#ifndef MLK_LAKE_H
#define MLK_LAKE_H

#include <stddef.h>
#include <time.h>

#include "partition.h"
#include "status.h"
#include "yamltree.h"

struct lake {
	char *root;             /* absolute path, no trailing slash */
	struct ynode *conf;     /* mlk.yaml */
	char *key_id;           /* keys.default, or NULL */
};

/* Open the lake named by dir (may be NULL: $MLK_LAKE, then search). */
enum mlk_status lake_open(const char *dir, struct lake *l,
			  struct mlk_error *e);
void lake_close(struct lake *l);

/*
 * The key of a keyed tool (tokens, samples): keyfile when given, else the
 * default key of the lake.  The lake (dir, else found as lake_open finds
 * it) is opened into l when there is one, and *have_lake says so; the
 * caller closes it.  With neither, MLK_USAGE saying to name a key.  The
 * caller wipes key (crypto_wipe) when done with it.
 */
enum mlk_status lake_key_load(const char *dir, const char *keyfile,
			      struct lake *l, int *have_lake,
			      unsigned char key[32], struct mlk_error *e);

/*
 * Create a lake in dir (made if missing; must not already hold mlk.yaml):
 * mlk.yaml, policy.yaml (owner: the calling user), vocab.yaml, the zone
 * folders, keys/ (0700) with a fresh 256-bit key (0600).
 */
enum mlk_status lake_create(const char *dir, struct mlk_error *e);

/* root + "/" + printf(fmt, ...) */
char *lake_path(const struct lake *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Zone names: raw, curated, training.  1 when valid. */
int lake_zone_valid(const char *zone);
/*
 * Dataset names: 1 to 4 segments of [a-z0-9][a-z0-9._-]* joined by '/',
 * at most 128 bytes.  1 when valid.
 */
int lake_dataset_valid(const char *name);

/*
 * The partition spec for a dataset and source format ("fhir", "csv",
 * "ndjson", ...): datasets.<name>.partitions.<format> in mlk.yaml, else
 * partitions.<format>, else the built-in default.
 */
enum mlk_status lake_pspec(const struct lake *l, const char *dataset,
			   const char *format, struct pspec *out,
			   struct mlk_error *e);

/* datasets.<name>.<key> as a node, or NULL. */
const struct ynode *lake_dataset_conf(const struct lake *l,
				      const char *dataset, const char *key);
/* A top-level mlk.yaml setting section.key as a number, or def. */
long long lake_conf_num(const struct lake *l, const char *section,
			const char *key, long long def);

/*
 * The current time.  Tests may set MLK_TEST_NOW (seconds since the epoch)
 * to age data artificially; it is honoured only when mlk.yaml says
 * `test_clock: true`, and every use is a test's.
 */
time_t lake_now(const struct lake *l);
/* "2026-11-25T15:42:13Z" */
void lake_time_iso(time_t t, char out[32]);

#endif
