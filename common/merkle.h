/*
 * merkle — the Merkle tree hash of RFC 6962 / RFC 9162 over audit events,
 * its inclusion and consistency proofs, and their verification.
 *
 *   leaf  = SHA-256(0x00 || event line without its '\n')
 *   node  = SHA-256(0x01 || left || right)
 *   MTH({}) = SHA-256("")
 *
 * The tree is never held in memory: struct merkle_acc folds leaves into a
 * stack of at most 64 perfect subtree roots (O(log n) memory), and a proof
 * is a list of disjoint leaf ranges whose subtree hashes one streaming pass
 * over the leaves computes (merkle_*_ranges, then merkle_acc per range).
 *
 * Hashing goes through crypto's one-shot sha256_raw*(), the fast path
 * without per-call EVP set-up that short audit lines need.
 *
 * Ownership: everything here works on caller-owned fixed-size arrays;
 * nothing is allocated.
 */
#ifndef MLK_MERKLE_H
#define MLK_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH 32
#define MERKLE_MAX_PATH 64

/* Plain SHA-256 (the chain's "prev" hash of a line). */
void merkle_sha256(const void *p, size_t n, uint8_t out[MERKLE_HASH]);
void merkle_leaf(const void *line, size_t n, uint8_t out[MERKLE_HASH]);
void merkle_node(const uint8_t l[MERKLE_HASH], const uint8_t r[MERKLE_HASH],
		 uint8_t out[MERKLE_HASH]);

struct merkle_acc {
	uint64_t n;                         /* leaves pushed */
	uint8_t st[64][MERKLE_HASH];        /* roots of perfect subtrees */
	int depth;
};

void merkle_acc_init(struct merkle_acc *a);
void merkle_acc_push(struct merkle_acc *a, const uint8_t leaf[MERKLE_HASH]);
/* MTH of the leaves pushed so far (SHA-256("") for none). */
void merkle_acc_root(const struct merkle_acc *a, uint8_t out[MERKLE_HASH]);

/* A leaf range [lo, hi) whose subtree hash is one element of a proof. */
struct merkle_range {
	uint64_t lo, hi;
};

/*
 * The ranges of PATH(m, D[0:n]) (inclusion, RFC 6962 2.1.1) and of
 * PROOF(m, D[0:n]) (consistency, 2.1.2), in proof order.  Return the
 * number of ranges, or -1 when the arguments are out of bounds
 * (inclusion: m < n; consistency: 0 < m <= n).
 */
int merkle_inclusion_ranges(uint64_t m, uint64_t n,
			    struct merkle_range out[MERKLE_MAX_PATH]);
int merkle_consistency_ranges(uint64_t m, uint64_t n,
			      struct merkle_range out[MERKLE_MAX_PATH]);

/* RFC 9162 2.1.3.2 and 2.1.4.2; 1 when the proof holds, else 0. */
int merkle_verify_inclusion(uint64_t index, uint64_t size,
			    const uint8_t leaf[MERKLE_HASH],
			    const uint8_t (*path)[MERKLE_HASH], size_t npath,
			    const uint8_t root[MERKLE_HASH]);
int merkle_verify_consistency(uint64_t m, uint64_t n,
			      const uint8_t old_root[MERKLE_HASH],
			      const uint8_t new_root[MERKLE_HASH],
			      const uint8_t (*path)[MERKLE_HASH], size_t npath);

#endif
