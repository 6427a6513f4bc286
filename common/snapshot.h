/*
 * snapshot — immutable, content-addressed versions of curated and
 * training datasets (see mlk-snapshot(1) and mlk-manifest(5)).
 *
 * A snapshot is a manifest, snapshots/<id>.json, whose entries list its
 * data files (path, partition, records, bytes, size, sha256), its inputs
 * (source batches and parent snapshots), the de-identification and sample
 * parameters of its records, and its layout (zone, dataset, partition
 * spec, compression).  The id is "s" and the first 24 hex digits of the
 * SHA-256 over the sorted entry lines: the same records with the same
 * lineage and layout always give the same id, whoever makes them and
 * whenever.  The header says who, when and why, and is not part of the id.
 *
 * Data files are gzip NDJSON written by datawriter, stored once in the
 * object store (objects/sha256/XX/HEX, read-only) and shared by every
 * version that holds them; each version's directory,
 * ZONE/DATASET/snapshot=<id>/, holds hard links to them (copies where the
 * file system refuses links) beside a copy of the manifest, so that Hive
 * readers see it.  A version is published by one rename of that directory
 * and then one atomic write of snapshots/<id>.json, the commit point for
 * mlk: a crash leaves the previous versions intact and no half version.
 *
 * Stored records are the input record with "_mlk" moved last and without
 * its members dataset, zone, partition and snapshot, which the file's
 * place says; snap_cat() puts them back.
 *
 * Ownership: struct snapshot and struct snap_build are caller-owned
 * (snap_load/snap_release, snap_prepare/snap_build_release) and own all
 * their strings.  Nothing here prints or exits.
 */
#ifndef MLK_SNAPSHOT_H
#define MLK_SNAPSHOT_H

#include <stddef.h>
#include <stdio.h>

#include "buf.h"
#include "crypto.h"
#include "lake.h"
#include "status.h"

#define SNAP_ID_LEN 26  /* "s" + 24 hex digits + NUL */

struct snap_file {
	char *path;             /* relative to the version's directory */
	char *partition;
	unsigned long long records, bytes, size;
	char sha256[SHA256_HEX];
};

struct snapshot {
	char id[SNAP_ID_LEN];
	char *zone, *dataset;
	char *created, *actor, *note, *parent;   /* note, parent may be NULL */
	long long version;
	unsigned long long records;
	struct snap_file *f;    /* sorted by path */
	size_t nf, falloc;
	char **ent;             /* every entry line, sorted */
	size_t nent, entalloc;
	char *partitions;       /* the layout's spec text */
	char manifest_sha256[SHA256_HEX];
	struct buf bytes;       /* the manifest as stored */
};

/* 1 when id looks like a snapshot id. */
int snap_id_valid(const char *id);
/* Split "zone/dataset" (curated or training); MLK_USAGE saying why. */
enum mlk_status snap_target(const char *arg, char **zone, char **dataset,
			    struct mlk_error *e);

/* Load snapshots/<id>.json; MLK_USAGE when there is no such snapshot,
 * MLK_INTEGRITY when its entries do not hash to its id. */
enum mlk_status snap_load(const struct lake *l, const char *id,
			  struct snapshot *s, struct mlk_error *e);
void snap_release(struct snapshot *s);
/* Every snapshot, sorted by zone, dataset and version (*v malloc'd,
 * each released with snap_release). */
enum mlk_status snap_list(const struct lake *l, struct snapshot **v,
			  size_t *n, struct mlk_error *e);
/* The latest version of a dataset: *found 0 when it has none. */
enum mlk_status snap_latest(const struct lake *l, const char *zone,
			    const char *dataset, struct snapshot *s,
			    int *found, struct mlk_error *e);

/* Paths (malloc'd): a version's directory and a file's stored copy. */
char *snap_dir(const struct lake *l, const struct snapshot *s);

/* ---- create and compact ---- */

struct snap_opts {
	const char *zone, *dataset;
	const char *note;
	const char *actor, *tool;
	int append;             /* keep the latest version's entries too */
	int threads;            /* parse threads (pmap) */
	const char *quality;    /* the quality gate's result (a JSON object,
				 * mlk-expect(5)) for the header, or NULL */
};

/* A record left out: line and reason (never a value). */
typedef void (*snap_reject_fn)(void *ctx, long long line, const char *why);

struct snap_build {
	const struct lake *l;
	char *zone, *dataset;
	char *staging;          /* staging/snap-... (ours to remove) */
	char id[SNAP_ID_LEN];
	char manifest_sha256[SHA256_HEX];
	struct buf manifest;    /* the bytes to publish */
	char *inputs_json;      /* [{"batch":..},{"snapshot":..}] */
	long long version;
	char *parent;           /* previous version's id, or NULL */
	unsigned long long records, rejected, files, new_files, bytes, size;
	int existed;            /* that version is already published */
	int by_input;           /* ... known from the input's digest alone */
	int by_stat;            /* ... whose file the kernel says unchanged */
	long long denied_line;  /* MLK_DENIED: first record without deid */
	char input_sha256[SHA256_HEX]; /* the input digest (pieces) */
	char *cache;            /* input cache marker to write, or NULL */
	char *stat_cache;       /* its file-identity marker, or NULL */
	int lock;
};

/*
 * Read records from fd and prepare a new version in staging: data files
 * stored as objects, the manifest made, nothing visible yet.  MLK_DENIED
 * (b->denied_line set) when a record has no _mlk.deid.  When the version
 * already exists, b->existed is set and there is nothing to publish.
 */
enum mlk_status snap_prepare(struct snap_build *b, const struct lake *l,
			     const struct snap_opts *o, int fd,
			     snap_reject_fn reject, void *rctx,
			     struct mlk_error *e);
/* Rewrite the latest version's small files into files of up to
 * target_bytes (uncompressed) as a new version; b->existed when there
 * is nothing to merge. */
enum mlk_status snap_prepare_compact(struct snap_build *b,
				     const struct lake *l,
				     const struct snap_opts *o,
				     unsigned long long target_bytes,
				     struct mlk_error *e);
enum mlk_status snap_publish(struct snap_build *b, struct mlk_error *e);
void snap_build_release(struct snap_build *b);

/* ---- reading ---- */

/* A partition filter: "col=v1,v2 col>=v col!=v ..." (all must hold). */
struct snap_where;
enum mlk_status snap_where_parse(const char *text, struct snap_where **w,
				 struct mlk_error *e);
void snap_where_free(struct snap_where *w);
/* 1 when a partition path passes (w NULL: always). */
int snap_where_match(const struct snap_where *w, const char *partition);
/* A column the filter names that the partitions lack, or NULL. */
const char *snap_where_unknown(const struct snap_where *w,
			       const struct snapshot *s);

/* Records out, envelope restored; write returns non-zero to stop. */
typedef int (*snap_write_fn)(void *ctx, const char *p, size_t n);
enum mlk_status snap_cat(const struct lake *l, const struct snapshot *s,
			 const struct snap_where *w, snap_write_fn out,
			 void *octx, unsigned long long *records,
			 struct mlk_error *e);

/* Each file's stored lines, decompressed, one callback per line
 * (without '\n'); a non-zero return stops and is returned. */
typedef int (*snap_line_fn)(void *ctx, const char *line, size_t len);
enum mlk_status snap_each_line(const struct lake *l,
			       const struct snapshot *s, snap_line_fn fn,
			       void *ctx, struct mlk_error *e);

/*
 * Re-hash everything: the manifest against its id and the version's copy,
 * each file in the version's directory and in the object store.  Each
 * problem goes to bad(ctx, file, what); MLK_INTEGRITY when there was any.
 */
typedef void (*snap_bad_fn)(void *ctx, const char *file, const char *what);
enum mlk_status snap_verify(const struct lake *l, const struct snapshot *s,
			    int threads, snap_bad_fn bad, void *ctx,
			    unsigned long long *bytes, struct mlk_error *e);

/*
 * Materialise a version in dir (which must not exist): its manifest and
 * its files, hard-linked from the store where the file system allows,
 * copied elsewhere.  *linked and *copied count them.
 */
enum mlk_status snap_checkout(const struct lake *l, const struct snapshot *s,
			      const char *dir, size_t *linked,
			      size_t *copied, struct mlk_error *e);

#endif
