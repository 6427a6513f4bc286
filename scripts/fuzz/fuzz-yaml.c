/*
 * fuzz-yaml — libFuzzer target for common/yamltree.c.
 *
 * Loads the input as a YAML document and, when it loads, walks the tree
 * checking what the header promises: positions are 1-based, maps hold
 * only scalar keys, the node count stays under the alias-bomb limit, and
 * the lookup helpers agree with the tree.  On an error the message must
 * name the input and a column.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yamltree.h"
#include "banned.h"

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); \
	abort(); } } while (0)

static size_t walk(const struct ynode *n, size_t depth)
{
	size_t count = 1;

	CHECK(n != NULL);
	CHECK(n->line >= 1 && n->col >= 1);
	CHECK(depth <= 300);
	switch (n->type) {
	case YNODE_SCALAR:
		CHECK(n->scalar != NULL);
		CHECK(n->items == NULL && n->keys == NULL);
		if (ynode_is_null(n))
			CHECK(!n->quoted);
		break;
	case YNODE_SEQ:
		CHECK(n->scalar == NULL);
		CHECK(ynode_get(n, "a") == NULL);
		for (size_t i = 0; i < n->n; i++)
			count += walk(n->items[i], depth + 1);
		break;
	case YNODE_MAP:
		CHECK(n->scalar == NULL);
		for (size_t i = 0; i < n->n; i++) {
			const struct ynode *v = n->values[i];
			int b;

			CHECK(n->keys[i] != NULL);
			/* Keys are unique, so lookup finds this very value. */
			CHECK(ynode_get(n, n->keys[i]) == v);
			if (v->type == YNODE_SCALAR)
				CHECK(ynode_str(n, n->keys[i]) == v->scalar);
			else
				CHECK(ynode_str(n, n->keys[i]) == NULL);
			b = ynode_bool(n, n->keys[i], 7);
			CHECK(b == -1 || b == 0 || b == 1);
			count += 1 + walk(v, depth + 1);
		}
		break;
	default:
		CHECK(0);
	}
	return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mlk_error e = MLK_ERROR_INIT;
	struct ynode *root = (struct ynode *)1;
	enum mlk_status st;

	if (size > 200000)
		return 0;
	st = ynode_load_mem("fuzz.yaml", (const char *)data, size, &root, &e);
	if (st != MLK_OK) {
		CHECK(root == NULL);
		CHECK(st == MLK_USAGE || st == MLK_SYSTEM);
		CHECK(strcmp(e.file, "fuzz.yaml") == 0);
		if (st == MLK_USAGE) {
			CHECK(e.line >= 1);
			CHECK(strncmp(e.msg, "column ", 7) == 0);
		}
		return 0;
	}
	CHECK(root != NULL);
	/* Keys count as nodes too, so the walk may count a little more
	 * than the loader's own limit, but never wildly more. */
	CHECK(walk(root, 0) <= 200000);
	CHECK(ynode_bool(root, "\x01no such key", 3) == 3);
	ynode_free(root);
	return 0;
}
