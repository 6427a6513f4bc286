/*
 * yamltree — YAML documents (mlk.yaml, policy.yaml, vocab.yaml, profiles)
 * loaded through libyaml into a small tree.
 *
 * This is the only module that includes <yaml.h>.  A loaded tree is owned
 * by the caller and freed with ynode_free() on the root; nodes returned by
 * the lookup helpers point into the tree and live as long as it does.
 * Every node remembers its 1-based line and column so that errors can say
 * "'policy.yaml':12:5: ...".  Anchors and aliases are resolved by copying;
 * a document with more than 100,000 nodes is refused (alias bombs).
 */
#ifndef MLK_YAMLTREE_H
#define MLK_YAMLTREE_H

#include <stddef.h>

#include "status.h"

enum ynode_type { YNODE_SCALAR, YNODE_SEQ, YNODE_MAP };

struct ynode {
	enum ynode_type type;
	size_t line, col;        /* 1-based position of the node's start */
	char *scalar;            /* YNODE_SCALAR: the text, NUL-terminated */
	int quoted;              /* YNODE_SCALAR: quoted or a block scalar */
	size_t n;                /* YNODE_SEQ: items; YNODE_MAP: pairs */
	struct ynode **items;    /* YNODE_SEQ: n items */
	char **keys;             /* YNODE_MAP: n keys (scalar keys only) */
	struct ynode **values;   /* YNODE_MAP: n values */
};

/*
 * Load the first document of a file.  An empty file (or a document that is
 * only null) gives an empty map.  Repeated map keys are an error.
 * On a syntax error: MLK_USAGE with e->file, e->line and "column N: what"
 * in e->msg.  Unreadable: MLK_SYSTEM.
 */
enum mlk_status ynode_load_file(const char *path, struct ynode **out,
				struct mlk_error *e);
/* The same from memory; name is used in errors. */
enum mlk_status ynode_load_mem(const char *name, const char *text, size_t len,
			       struct ynode **out, struct mlk_error *e);
void ynode_free(struct ynode *n);

/* Map lookup; NULL when n is not a map or the key is absent. */
const struct ynode *ynode_get(const struct ynode *n, const char *key);
/* The scalar text of map[key], or NULL if absent or not a scalar. */
const char *ynode_str(const struct ynode *n, const char *key);
/* map[key] as a boolean (true/false/yes/no/on/off); def when absent.
 * Returns -1 when present but not a boolean. */
int ynode_bool(const struct ynode *n, const char *key, int def);
/* True when the scalar is null (~, null, empty and unquoted). */
int ynode_is_null(const struct ynode *n);

#endif
