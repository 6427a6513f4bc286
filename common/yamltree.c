#include "yamltree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <yaml.h>

#include "buf.h"
#include "xalloc.h"
#include "banned.h"

/*
 * The tree is built from libyaml's event stream without recursion: an
 * explicit stack holds the collections still open.  Recursion is used only
 * to copy and free finished subtrees, and the depth limit below keeps it
 * shallow.  Every limit is checked before the memory is spent, so an
 * alias bomb is refused rather than expanded.
 */

#define YNODE_MAX_NODES 100000
#define YNODE_MAX_DEPTH 256
/* Aliases may repeat at most this many bytes of scalar text in total. */
#define YNODE_MAX_ALIAS_BYTES ((size_t)64 << 20)
/* Configuration files are small; refuse to slurp a device or a dump. */
#define YNODE_MAX_FILE ((size_t)64 << 20)

struct anchor {
	char *name;
	const struct ynode *node;
	struct ynode *owned;    /* an anchored map key, kept only for aliases */
	size_t nodes, bytes, height;
	size_t next;            /* hash chain */
};

struct key_pos {
	const char *key;
	size_t line, col, order;
};

/* A collection still open, with what its anchor will need once closed. */
struct frame {
	struct ynode *node;
	size_t alloc;           /* room in items or keys/values */
	char *anchor;
	size_t nodes0, bytes0;  /* loader counters when it opened */
	size_t height;          /* of its tallest child */
	char *key;              /* map: key waiting for its value */
	size_t key_line, key_col;
	struct key_pos *pos;    /* map: where each key was, for duplicates */
};

struct loader {
	const char *name;
	const char *text;
	size_t len;
	struct mlk_error *e;
	struct frame *stack;
	size_t depth, stack_alloc;
	struct anchor *anchors;
	size_t nanchors, anchors_alloc;
	size_t *buckets, nbuckets;
	size_t nodes;           /* nodes created, copies included */
	size_t bytes;           /* scalar and key bytes, copies included */
	size_t alias_bytes;     /* bytes created by copying aliases */
	struct ynode *root;
	int done;
};

void ynode_free(struct ynode *n)
{
	if (!n)
		return;
	switch (n->type) {
	case YNODE_SCALAR:
		free(n->scalar);
		break;
	case YNODE_SEQ:
		for (size_t i = 0; i < n->n; i++)
			ynode_free(n->items[i]);
		free(n->items);
		break;
	case YNODE_MAP:
		for (size_t i = 0; i < n->n; i++) {
			free(n->keys[i]);
			ynode_free(n->values[i]);
		}
		free(n->keys);
		free(n->values);
		break;
	}
	free(n);
}

static struct ynode *new_node(enum ynode_type type, size_t line, size_t col)
{
	struct ynode *n = xcalloc(1, sizeof(*n));
	n->type = type;
	n->line = line;
	n->col = col;
	return n;
}

static struct ynode *copy_node(const struct ynode *src)
{
	struct ynode *n = new_node(src->type, src->line, src->col);

	n->quoted = src->quoted;
	n->n = src->n;
	switch (src->type) {
	case YNODE_SCALAR:
		n->scalar = xstrdup(src->scalar);
		break;
	case YNODE_SEQ:
		n->items = xcalloc(src->n, sizeof(*n->items));
		for (size_t i = 0; i < src->n; i++)
			n->items[i] = copy_node(src->items[i]);
		break;
	case YNODE_MAP:
		n->keys = xcalloc(src->n, sizeof(*n->keys));
		n->values = xcalloc(src->n, sizeof(*n->values));
		for (size_t i = 0; i < src->n; i++) {
			n->keys[i] = xstrdup(src->keys[i]);
			n->values[i] = copy_node(src->values[i]);
		}
		break;
	}
	return n;
}

static enum mlk_status fail_at(struct loader *l, size_t line, size_t col,
			       const char *what)
{
	return mlk_error_set(l->e, MLK_USAGE, l->name, (long long)line,
			     "column %zu: %s", col, what);
}

static enum mlk_status fail_mark(struct loader *l, yaml_mark_t m,
				 const char *what)
{
	return fail_at(l, m.line + 1, m.column + 1, what);
}

/* libyaml's reader errors carry a byte offset instead of a mark. */
static void offset_to_mark(const struct loader *l, size_t off, size_t *line,
			   size_t *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && i < l->len; i++) {
		unsigned char c = (unsigned char)l->text[i];
		if (c == '\n' || (c == '\r' && (i + 1 >= l->len ||
						  l->text[i + 1] != '\n'))) {
			(*line)++;
			*col = 1;
		} else if ((c & 0xC0) != 0x80 && c != '\r') {
			(*col)++;       /* columns count characters */
		}
	}
}

static enum mlk_status parser_error(struct loader *l, yaml_parser_t *p)
{
	size_t line, col;
	struct buf msg = BUF_INIT;
	enum mlk_status st;

	if (p->error == YAML_MEMORY_ERROR)
		return mlk_error_set(l->e, MLK_SYSTEM, l->name, 0,
				     "out of memory");
	if (p->error == YAML_READER_ERROR) {
		offset_to_mark(l, p->problem_offset, &line, &col);
	} else {
		line = p->problem_mark.line + 1;
		col = p->problem_mark.column + 1;
	}
	buf_addstr(&msg, p->problem ? p->problem : "syntax error");
	if (p->context && p->error != YAML_READER_ERROR)
		buf_addf(&msg, " (%s at line %zu, column %zu)", p->context,
			 p->context_mark.line + 1, p->context_mark.column + 1);
	st = fail_at(l, line, col, msg.data);
	buf_release(&msg);
	return st;
}

/*
 * Anchors are found through a small hash table, since a hostile document
 * can hold tens of thousands of anchors and aliases.  Chains run from the
 * newest anchor to the oldest, so the latest definition of a name wins,
 * as YAML wants.  Indexes are stored plus one, 0 ending a chain.
 */
static size_t anchor_hash(const char *name)
{
	size_t h = 5381;

	while (*name)
		h = h * 33 + (unsigned char)*name++;
	return h;
}

static const struct anchor *find_anchor(const struct loader *l,
					const char *name)
{
	size_t i;

	if (!l->nbuckets)
		return NULL;
	i = l->buckets[anchor_hash(name) & (l->nbuckets - 1)];
	while (i) {
		const struct anchor *a = &l->anchors[i - 1];
		if (strcmp(a->name, name) == 0)
			return a;
		i = a->next;
	}
	return NULL;
}

static void hash_anchor(struct loader *l, size_t i)
{
	size_t b = anchor_hash(l->anchors[i].name) & (l->nbuckets - 1);

	l->anchors[i].next = l->buckets[b];
	l->buckets[b] = i + 1;
}

static void grow_buckets(struct loader *l)
{
	free(l->buckets);
	l->nbuckets = l->nbuckets ? l->nbuckets * 2 : 64;
	l->buckets = xcalloc(l->nbuckets, sizeof(*l->buckets));
	/* Oldest first, so that newer anchors end up ahead in chains. */
	for (size_t i = 0; i < l->nanchors; i++)
		hash_anchor(l, i);
}

static void add_anchor(struct loader *l, char *name, const struct ynode *node,
		       size_t nodes, size_t bytes, size_t height)
{
	struct anchor *a;

	XGROW(l->anchors, l->anchors_alloc, l->nanchors + 1);
	a = &l->anchors[l->nanchors++];
	a->name = name;
	a->node = node;
	a->owned = NULL;
	a->nodes = nodes;
	a->bytes = bytes;
	a->height = height;
	if (l->nanchors > l->nbuckets)
		grow_buckets(l);
	else
		hash_anchor(l, l->nanchors - 1);
}

static enum mlk_status count_nodes(struct loader *l, size_t n, yaml_mark_t m)
{
	if (n > YNODE_MAX_NODES - l->nodes) {
		char what[80];
		snprintf(what, sizeof(what), "document has more than %d nodes",
			 YNODE_MAX_NODES);
		return fail_mark(l, m, what);
	}
	l->nodes += n;
	return MLK_OK;
}

/*
 * Hand a finished node to the collection on top of the stack (or make it
 * the root).  A node that an anchor points at must stay alive, so when
 * such a node is a map key the map gets a copy of its text.
 */
static enum mlk_status attach(struct loader *l, struct ynode *node,
			      size_t height, struct anchor *anchored)
{
	struct frame *f;

	if (l->depth == 0) {
		l->root = node;
		return MLK_OK;
	}
	f = &l->stack[l->depth - 1];
	if (height > f->height)
		f->height = height;

	if (f->node->type == YNODE_SEQ) {
		XGROW(f->node->items, f->alloc, f->node->n + 1);
		f->node->items[f->node->n++] = node;
		return MLK_OK;
	}

	if (f->key) {
		struct ynode *m = f->node;
		if (m->n + 1 > f->alloc) {
			size_t a = f->alloc;
			XGROW(m->keys, a, m->n + 1);
			a = f->alloc;
			XGROW(m->values, a, m->n + 1);
			a = f->alloc;
			XGROW(f->pos, a, m->n + 1);
			f->alloc = a;
		}
		f->pos[m->n].key = f->key;
		f->pos[m->n].line = f->key_line;
		f->pos[m->n].col = f->key_col;
		f->pos[m->n].order = m->n;
		m->keys[m->n] = f->key;
		m->values[m->n] = node;
		m->n++;
		f->key = NULL;
		return MLK_OK;
	}

	if (node->type != YNODE_SCALAR) {
		enum mlk_status st = fail_at(l, node->line, node->col,
					     "mapping key is not a scalar");
		if (anchored)
			anchored->owned = node;
		else
			ynode_free(node);
		return st;
	}
	f->key_line = node->line;
	f->key_col = node->col;
	if (anchored) {
		f->key = xstrdup(node->scalar);
		anchored->owned = node;
	} else {
		f->key = node->scalar;
		free(node);
	}
	return MLK_OK;
}

static int key_pos_cmp(const void *a, const void *b)
{
	const struct key_pos *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Keys are unique in YAML; a repeated key in a policy would silently
 * override the first, so it is an error.  Sorting keeps big maps fast. */
static enum mlk_status check_duplicates(struct loader *l, struct frame *f)
{
	size_t n = f->node->n;

	if (n < 2)
		return MLK_OK;
	qsort(f->pos, n, sizeof(*f->pos), key_pos_cmp);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(f->pos[i - 1].key, f->pos[i].key) == 0) {
			struct buf msg = BUF_INIT;
			enum mlk_status st;
			buf_addstr(&msg, "duplicate key '");
			buf_addstr(&msg, f->pos[i].key);
			buf_addstr(&msg, "'");
			st = fail_at(l, f->pos[i].line, f->pos[i].col,
				     msg.data);
			buf_release(&msg);
			return st;
		}
	}
	return MLK_OK;
}

static enum mlk_status open_collection(struct loader *l, yaml_event_t *ev)
{
	const yaml_char_t *anchor;
	enum ynode_type type;
	struct frame *f;
	enum mlk_status st;

	if (ev->type == YAML_MAPPING_START_EVENT) {
		type = YNODE_MAP;
		anchor = ev->data.mapping_start.anchor;
	} else {
		type = YNODE_SEQ;
		anchor = ev->data.sequence_start.anchor;
	}
	if (l->depth && l->stack[l->depth - 1].node->type == YNODE_MAP &&
	    !l->stack[l->depth - 1].key)
		return fail_mark(l, ev->start_mark,
				 "mapping key is not a scalar");
	if (l->depth >= YNODE_MAX_DEPTH) {
		char what[80];
		snprintf(what, sizeof(what), "nesting deeper than %d levels",
			 YNODE_MAX_DEPTH);
		return fail_mark(l, ev->start_mark, what);
	}
	st = count_nodes(l, 1, ev->start_mark);
	if (st)
		return st;

	XGROW(l->stack, l->stack_alloc, l->depth + 1);
	f = &l->stack[l->depth++];
	memset(f, 0, sizeof(*f));
	f->node = new_node(type, ev->start_mark.line + 1,
			   ev->start_mark.column + 1);
	f->anchor = anchor ? xstrdup((const char *)anchor) : NULL;
	f->nodes0 = l->nodes - 1;
	f->bytes0 = l->bytes;
	return MLK_OK;
}

static enum mlk_status close_collection(struct loader *l)
{
	struct frame f = l->stack[--l->depth];
	struct anchor *a = NULL;
	enum mlk_status st = MLK_OK;

	/* libyaml always pairs keys with values (an empty scalar at worst). */
	free(f.key);
	if (f.node->type == YNODE_MAP)
		st = check_duplicates(l, &f);
	free(f.pos);
	if (st) {
		ynode_free(f.node);
		free(f.anchor);
		return st;
	}
	if (f.anchor) {
		add_anchor(l, f.anchor, f.node, l->nodes - f.nodes0,
			   l->bytes - f.bytes0, f.height + 1);
		a = &l->anchors[l->nanchors - 1];
	}
	return attach(l, f.node, f.height + 1, a);
}

static enum mlk_status add_scalar(struct loader *l, yaml_event_t *ev)
{
	const char *value = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	struct ynode *n;
	struct anchor *a = NULL;
	enum mlk_status st;

	/* "\0" in a double-quoted scalar would silently cut the C string. */
	if (memchr(value, '\0', len))
		return fail_mark(l, ev->start_mark, "scalar contains a NUL byte");
	st = count_nodes(l, 1, ev->start_mark);
	if (st)
		return st;
	n = new_node(YNODE_SCALAR, ev->start_mark.line + 1,
		     ev->start_mark.column + 1);
	n->scalar = xstrndup(value, len);
	n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
	l->bytes += len;
	if (ev->data.scalar.anchor) {
		add_anchor(l, xstrdup((const char *)ev->data.scalar.anchor), n,
			   1, len, 1);
		a = &l->anchors[l->nanchors - 1];
	}
	return attach(l, n, 1, a);
}

static enum mlk_status add_alias(struct loader *l, yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	const struct anchor *a = find_anchor(l, name);
	struct ynode *copy;
	enum mlk_status st;

	if (!a) {
		/* Also the case of an alias inside its own anchor. */
		struct buf msg = BUF_INIT;
		buf_addstr(&msg, "undefined alias '");
		buf_addstr(&msg, name);
		buf_addstr(&msg, "'");
		st = fail_mark(l, ev->start_mark, msg.data);
		buf_release(&msg);
		return st;
	}
	/* The same bound as for nodes written out: MAX_DEPTH collections
	 * and a scalar inside the innermost. */
	if (l->depth + a->height > YNODE_MAX_DEPTH + 1) {
		char what[80];
		snprintf(what, sizeof(what), "nesting deeper than %d levels",
			 YNODE_MAX_DEPTH);
		return fail_mark(l, ev->start_mark, what);
	}
	st = count_nodes(l, a->nodes, ev->start_mark);
	if (st)
		return st;
	if (a->bytes > YNODE_MAX_ALIAS_BYTES - l->alias_bytes)
		return fail_mark(l, ev->start_mark,
				 "aliases expand to too much text");
	if (l->depth && l->stack[l->depth - 1].node->type == YNODE_MAP &&
	    !l->stack[l->depth - 1].key && a->node->type != YNODE_SCALAR)
		return fail_mark(l, ev->start_mark,
				 "mapping key is not a scalar");
	l->alias_bytes += a->bytes;
	l->bytes += a->bytes;
	copy = copy_node(a->node);
	/* The copy is placed where the alias was written; what is inside
	 * it keeps the positions of the text it came from. */
	copy->line = ev->start_mark.line + 1;
	copy->col = ev->start_mark.column + 1;
	return attach(l, copy, a->height, NULL);
}

static enum mlk_status handle_event(struct loader *l, yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return add_scalar(l, ev);
	case YAML_ALIAS_EVENT:
		return add_alias(l, ev);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		return open_collection(l, ev);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return close_collection(l);
	case YAML_DOCUMENT_END_EVENT:
	case YAML_STREAM_END_EVENT:
		l->done = 1;
		return MLK_OK;
	default:
		return MLK_OK;
	}
}

static void loader_release(struct loader *l)
{
	while (l->depth > 0) {
		struct frame *f = &l->stack[--l->depth];
		ynode_free(f->node);
		free(f->anchor);
		free(f->key);
		free(f->pos);
	}
	free(l->stack);
	for (size_t i = 0; i < l->nanchors; i++) {
		free(l->anchors[i].name);
		ynode_free(l->anchors[i].owned);
	}
	free(l->anchors);
	free(l->buckets);
}

enum mlk_status ynode_load_mem(const char *name, const char *text, size_t len,
			       struct ynode **out, struct mlk_error *e)
{
	struct loader l;
	yaml_parser_t parser;
	enum mlk_status st = MLK_OK;

	*out = NULL;
	memset(&l, 0, sizeof(l));
	l.name = name;
	l.text = text ? text : "";
	l.len = text ? len : 0;
	l.e = e;

	if (!yaml_parser_initialize(&parser))
		return mlk_error_set(e, MLK_SYSTEM, name, 0, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)l.text,
				     l.len);
	while (!l.done && st == MLK_OK) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&parser, &ev)) {
			st = parser_error(&l, &parser);
			break;
		}
		st = handle_event(&l, &ev);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);

	if (st == MLK_OK && (!l.root || ynode_is_null(l.root))) {
		/* No document, or one that is only "---" or "~": callers
		 * look keys up in the root, so give them an empty map. */
		size_t line = l.root ? l.root->line : 1;
		size_t col = l.root ? l.root->col : 1;
		ynode_free(l.root);
		l.root = new_node(YNODE_MAP, line, col);
	}
	if (st != MLK_OK) {
		ynode_free(l.root);
		l.root = NULL;
	}
	loader_release(&l);
	*out = l.root;
	return st;
}

enum mlk_status ynode_load_file(const char *path, struct ynode **out,
				struct mlk_error *e)
{
	struct buf text = BUF_INIT;
	enum mlk_status st;
	int fd;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mlk_error_errno(e, path, "cannot open");
	for (;;) {
		ssize_t n;
		buf_grow(&text, 65536);
		n = read(fd, text.data + text.len, text.alloc - text.len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			st = mlk_error_errno(e, path, "cannot read");
			close(fd);
			buf_release(&text);
			return st;
		}
		if (n == 0)
			break;
		text.len += (size_t)n;
		text.data[text.len] = '\0';
		if (text.len > YNODE_MAX_FILE) {
			close(fd);
			buf_release(&text);
			return mlk_error_set(e, MLK_USAGE, path, 0,
					     "file larger than %zu MiB",
					     YNODE_MAX_FILE >> 20);
		}
	}
	close(fd);
	st = ynode_load_mem(path, text.data ? text.data : "", text.len, out,
			    e);
	buf_release(&text);
	return st;
}

const struct ynode *ynode_get(const struct ynode *n, const char *key)
{
	if (!n || n->type != YNODE_MAP)
		return NULL;
	for (size_t i = 0; i < n->n; i++)
		if (strcmp(n->keys[i], key) == 0)
			return n->values[i];
	return NULL;
}

const char *ynode_str(const struct ynode *n, const char *key)
{
	const struct ynode *v = ynode_get(n, key);
	return v && v->type == YNODE_SCALAR ? v->scalar : NULL;
}

int ynode_bool(const struct ynode *n, const char *key, int def)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	const struct ynode *v = ynode_get(n, key);

	if (!v)
		return def;
	if (v->type != YNODE_SCALAR)
		return -1;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(v->scalar, yes[i]) == 0)
			return 1;
		if (strcasecmp(v->scalar, no[i]) == 0)
			return 0;
	}
	return -1;
}

int ynode_is_null(const struct ynode *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (!n || n->type != YNODE_SCALAR || n->quoted)
		return 0;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(n->scalar, nulls[i]) == 0)
			return 1;
	return 0;
}
