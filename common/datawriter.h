/*
 * datawriter — partitioned, gzip-compressed NDJSON data files.
 *
 * Records are appended per partition into memory; a partition's buffer is
 * compressed (libdeflate, as one gzip member) and appended to that
 * partition's file when it reaches chunk_bytes, and every buffer is
 * flushed when all of them together pass buffer_bytes.  A data file is
 * thus a concatenation of gzip members, which gunzip, zlib, DuckDB, Spark
 * and Python read as one stream.  Compression runs on `threads` worker
 * threads while the caller keeps parsing; members are written in order.
 *
 * Memory is bounded by buffer_bytes plus threads + 2 chunks in flight (and
 * the largest single record), whatever the input size or partition count.
 *
 * Files are written as DIR/<partition>/<name> below a staging directory
 * the caller owns; dw_finish() fsyncs every file and directory so that the
 * caller can make the whole tree visible with one rename.
 *
 * Ownership: dw_open() returns a writer freed by dw_free(); the file list
 * from dw_finish() belongs to the writer.
 */
#ifndef MLK_DATAWRITER_H
#define MLK_DATAWRITER_H

#include <stddef.h>

#include "crypto.h"
#include "status.h"

struct dw_opts {
	size_t buffer_bytes;   /* default 16 MiB */
	size_t chunk_bytes;    /* default 1 MiB */
	int level;             /* libdeflate level 1..12, default 1 */
	int threads;           /* 0: compress inline; default 2 */
};

struct dw_file {
	char *partition;                /* "resourceType=X/year=2020" or "" */
	char *path;                     /* relative to DIR */
	unsigned long long size;        /* compressed bytes */
	unsigned long long bytes;       /* uncompressed bytes */
	unsigned long long records;
	char sha256[SHA256_HEX];        /* of the compressed file */
};

struct dwriter;

/* name: the file name used in every partition ("b123.ndjson.gz"). */
enum mlk_status dw_open(struct dwriter **w, const char *dir, const char *name,
			const struct dw_opts *opts, struct mlk_error *e);
/* Append one record: rec then tail (together a line ending in '\n'). */
enum mlk_status dw_add(struct dwriter *w, const char *partition, size_t plen,
		       const char *rec, size_t len, const char *tail,
		       size_t tlen, struct mlk_error *e);
/* Flush, fsync files and directories; files sorted by path. */
enum mlk_status dw_finish(struct dwriter *w, const struct dw_file **files,
			  size_t *nfiles, struct mlk_error *e);
void dw_free(struct dwriter *w);

#endif
