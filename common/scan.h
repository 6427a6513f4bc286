/*
 * scan — reading a dataset's records back out of the raw zone, opening
 * only the data files whose partition a filter allows (partition
 * pruning).
 *
 * Which files exist, and their partitions, come from each batch's
 * manifest (mlk-manifest(5)), never from walking the partition folders,
 * so a pruned partition is never opened, listed or even stat'ed.  Batches
 * are read in id order and files in manifest order, so the output is
 * deterministic.
 *
 * Stored records lack the envelope members their place implies
 * (mlk-record(5), "Stored records"); scan puts back dataset, batch, zone
 * and partition, so each line is byte-identical to what mlk-ingest
 * printed for it.
 *
 * A filter is a list of conditions KEY OP VALUE (OP one of = != < <= >
 * >=) on partition keys, all of which must hold.  Values compare as
 * integers when both sides are integers, else bytewise; a missing or
 * default (__HIVE_DEFAULT_PARTITION__) value fails every condition.
 *
 * Ownership: struct scan_filter is caller-owned (scan_filter_parse /
 * scan_filter_release).
 */
#ifndef MLK_SCAN_H
#define MLK_SCAN_H

#include <stddef.h>

#include "lake.h"
#include "status.h"

struct scan_cond {
	char *key;
	char *val;        /* unescaped */
	int op;           /* private */
	int seen;         /* some file's partition had the key */
};

struct scan_filter {
	struct scan_cond *c;
	size_t n;
};

/* "year>=2022 facility=north" (blank-separated); MLK_USAGE naming the
 * bad condition by position. */
enum mlk_status scan_filter_parse(const char *text, struct scan_filter *f,
				  struct mlk_error *e);
void scan_filter_release(struct scan_filter *f);
/* 1 when the partition path ("k=v/k=v") passes every condition. */
int scan_filter_match(struct scan_filter *f, const char *partition);

struct scan_stats {
	unsigned long long batches, files, pruned, records;
};

/* Each record line, with its '\n'; a non-zero return stops the scan and
 * is returned as the status. */
typedef int (*scan_fn)(void *ctx, const char *line, size_t len);

enum mlk_status scan_dataset(const struct lake *l, const char *dataset,
			     struct scan_filter *f, scan_fn fn, void *ctx,
			     struct scan_stats *st, struct mlk_error *e);

#endif
