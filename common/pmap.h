/*
 * pmap — an ordered parallel map over the lines of a stream.
 *
 * The calling thread reads the input in blocks of whole lines; worker
 * threads run `map` on every line of a block, each appending its results
 * (items) to the block's output; the calling thread then hands the blocks
 * to `reduce` strictly in input order.  So output order, and everything
 * derived from it, is the same as a serial run's, whatever the thread
 * count: determinism does not depend on scheduling.
 *
 * map runs concurrently on different blocks and must only touch its own
 * per-thread state (made by tls_new) and the output it is given; reduce
 * runs on the calling thread only.
 *
 * Memory: at most threads + 2 blocks in flight, each about block_bytes
 * of input plus its output, and the longest line.
 *
 * Ownership: everything is owned by pmap_run for the duration of the call;
 * item data pointers are valid only inside reduce.
 */
#ifndef MLK_PMAP_H
#define MLK_PMAP_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "status.h"

enum pmap_kind { PMAP_RECORD, PMAP_REJECT };

/*
 * A record's output line is in data, so that the lines of a block are
 * contiguous there (one write for all of them); everything else is in aux.
 */
struct pmap_item {
	int kind;                  /* enum pmap_kind */
	size_t off, len;           /* record: its line in data */
	size_t aux_off, aux_len;   /* record: partition; reject: reason */
	size_t raw_off, raw_len;   /* reject: the raw bytes in aux */
	size_t keep;               /* record: caller's own use */
	long long line;
	unsigned long long offset;
	int has_raw;               /* reject: raw bytes were kept */
};

struct pmap_out {
	struct buf data;
	struct buf aux;
	struct pmap_item *items;
	size_t n, alloc;
};

/* Append a record whose line and partition the caller has just appended
 * to out->data (from off) and out->aux (from aux_off). */
void pmap_add_record(struct pmap_out *out, size_t off, size_t aux_off,
		     long long line, size_t keep);
/* Append a reject; raw (may be NULL) and reason are copied into aux. */
void pmap_add_reject(struct pmap_out *out, const char *raw, size_t rawlen,
		     const char *reason, long long line,
		     unsigned long long offset);

struct pmap_ops {
	void *ctx;
	void *(*tls_new)(void *ctx);
	void (*tls_free)(void *ctx, void *tls);
	/* One line (without '\n'); blank lines are not passed. */
	void (*map)(void *ctx, void *tls, const char *line, size_t len,
		    long long lineno, unsigned long long offset,
		    struct pmap_out *out);
	/* Non-zero stops the run and is returned. */
	int (*reduce)(void *ctx, const struct pmap_out *out);
};

typedef ssize_t (*pmap_read_fn)(void *ctx, void *p, size_t n);

/*
 * Run over everything read returns.  threads 0 maps on the calling
 * thread.  A line longer than max_line is not mapped: it becomes a reject
 * item of its own (reason "line longer than N bytes", no raw bytes), and
 * memory stays bounded however long it is.
 * Returns MLK_OK, a reduce status, or MLK_SYSTEM on a read error.
 */
enum mlk_status pmap_run(pmap_read_fn read, void *rctx, int threads,
			 size_t max_line, const struct pmap_ops *ops,
			 struct mlk_error *e);

#endif
