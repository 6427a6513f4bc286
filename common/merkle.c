#include "merkle.h"

#include <string.h>

#include "crypto.h"
#include "banned.h"

void merkle_sha256(const void *p, size_t n, uint8_t out[MERKLE_HASH])
{
	sha256_raw(p, n, out);
}

void merkle_leaf(const void *line, size_t n, uint8_t out[MERKLE_HASH])
{
	/* The prefix byte and the line's first 63 bytes make one whole
	 * block, so the rest is hashed in place rather than copied through
	 * SHA-256's buffer block by block. */
	uint8_t first[64];
	size_t k = n < 63 ? n : 63;
	first[0] = 0;
	if (k)
		memcpy(first + 1, line, k);
	sha256_raw2(first, 1 + k, (const uint8_t *)line + k, n - k, out);
}

void merkle_node(const uint8_t l[MERKLE_HASH], const uint8_t r[MERKLE_HASH],
		 uint8_t out[MERKLE_HASH])
{
	uint8_t b[1 + 2 * MERKLE_HASH];
	b[0] = 1;
	memcpy(b + 1, l, MERKLE_HASH);
	memcpy(b + 1 + MERKLE_HASH, r, MERKLE_HASH);
	merkle_sha256(b, sizeof b, out);
}

void merkle_acc_init(struct merkle_acc *a)
{
	a->n = 0;
	a->depth = 0;
}

/*
 * st[0..depth) holds the roots of the perfect subtrees that make up the
 * leaves so far, largest first; their sizes are the set bits of n.  A new
 * leaf merges with equal-sized neighbours like a binary carry.
 */
void merkle_acc_push(struct merkle_acc *a, const uint8_t leaf[MERKLE_HASH])
{
	uint8_t h[MERKLE_HASH];
	memcpy(h, leaf, MERKLE_HASH);
	for (uint64_t k = a->n; k & 1; k >>= 1) {
		merkle_node(a->st[a->depth - 1], h, h);
		a->depth--;
	}
	memcpy(a->st[a->depth++], h, MERKLE_HASH);
	a->n++;
}

/* RFC 6962 splits at the largest power of two below n, so folding the
 * perfect subtrees from the smallest up gives MTH. */
void merkle_acc_root(const struct merkle_acc *a, uint8_t out[MERKLE_HASH])
{
	if (a->depth == 0) {
		merkle_sha256("", 0, out);
		return;
	}
	uint8_t h[MERKLE_HASH];
	memcpy(h, a->st[a->depth - 1], MERKLE_HASH);
	for (int i = a->depth - 2; i >= 0; i--)
		merkle_node(a->st[i], h, h);
	memcpy(out, h, MERKLE_HASH);
}

/* Largest power of two strictly below n (n >= 2). */
static uint64_t split(uint64_t n)
{
	uint64_t k = 1;
	while (k << 1 < n)
		k <<= 1;
	return k;
}

int merkle_inclusion_ranges(uint64_t m, uint64_t n,
			    struct merkle_range out[MERKLE_MAX_PATH])
{
	if (m >= n)
		return -1;
	/* Walk down from the root, collecting siblings; then reverse, as
	 * the path lists them from the leaf up. */
	struct merkle_range tmp[MERKLE_MAX_PATH];
	int c = 0;
	uint64_t lo = 0, hi = n;
	while (hi - lo > 1) {
		uint64_t k = split(hi - lo);
		if (m - lo < k) {
			tmp[c++] = (struct merkle_range){ lo + k, hi };
			hi = lo + k;
		} else {
			tmp[c++] = (struct merkle_range){ lo, lo + k };
			lo += k;
		}
	}
	for (int i = 0; i < c; i++)
		out[i] = tmp[c - 1 - i];
	return c;
}

int merkle_consistency_ranges(uint64_t m, uint64_t n,
			      struct merkle_range out[MERKLE_MAX_PATH])
{
	if (m == 0 || m > n)
		return -1;
	struct merkle_range tmp[MERKLE_MAX_PATH];
	int c = 0, b = 1;
	uint64_t lo = 0, hi = n, mm = m;
	/* SUBPROOF(mm, D[lo:hi], b), unrolled; siblings collected top-down
	 * and emitted bottom-up. */
	for (;;) {
		if (mm == hi - lo) {
			if (!b)
				tmp[c++] = (struct merkle_range){ lo, hi };
			break;
		}
		uint64_t k = split(hi - lo);
		if (mm <= k) {
			tmp[c++] = (struct merkle_range){ lo + k, hi };
			hi = lo + k;
		} else {
			tmp[c++] = (struct merkle_range){ lo, lo + k };
			lo += k;
			mm -= k;
			b = 0;
		}
	}
	/* The innermost result comes first in the proof. */
	int j = 0;
	int inner = !b;
	if (inner)
		out[j++] = tmp[c - 1];
	for (int i = c - 1 - inner; i >= 0; i--)
		out[j++] = tmp[i];
	return j;
}

int merkle_verify_inclusion(uint64_t index, uint64_t size,
			    const uint8_t leaf[MERKLE_HASH],
			    const uint8_t (*path)[MERKLE_HASH], size_t npath,
			    const uint8_t root[MERKLE_HASH])
{
	if (index >= size)
		return 0;
	uint64_t fn = index, sn = size - 1;
	uint8_t r[MERKLE_HASH];
	memcpy(r, leaf, MERKLE_HASH);
	for (size_t i = 0; i < npath; i++) {
		if (sn == 0)
			return 0;
		if ((fn & 1) || fn == sn) {
			merkle_node(path[i], r, r);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			merkle_node(r, path[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(r, root, MERKLE_HASH) == 0;
}

int merkle_verify_consistency(uint64_t m, uint64_t n,
			      const uint8_t old_root[MERKLE_HASH],
			      const uint8_t new_root[MERKLE_HASH],
			      const uint8_t (*path)[MERKLE_HASH], size_t npath)
{
	if (m == 0 || m > n)
		return 0;
	if (m == n)
		return npath == 0 &&
		       memcmp(old_root, new_root, MERKLE_HASH) == 0;
	if (npath == 0)
		return 0;
	/* When m is a power of two the old root is itself the first node
	 * of the proof (RFC 9162 2.1.4.2 step 2). */
	int pow2 = (m & (m - 1)) == 0;
	size_t i = 0;
	uint8_t fr[MERKLE_HASH], sr[MERKLE_HASH];
	if (pow2) {
		memcpy(fr, old_root, MERKLE_HASH);
	} else {
		memcpy(fr, path[0], MERKLE_HASH);
		i = 1;
	}
	memcpy(sr, fr, MERKLE_HASH);
	uint64_t fn = m - 1, sn = n - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < npath; i++) {
		if (sn == 0)
			return 0;
		if ((fn & 1) || fn == sn) {
			merkle_node(path[i], fr, fr);
			merkle_node(path[i], sr, sr);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			merkle_node(sr, path[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(fr, old_root, MERKLE_HASH) == 0 &&
	       memcmp(sr, new_root, MERKLE_HASH) == 0;
}
