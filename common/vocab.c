#include "vocab.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "fsio.h"
#include "xalloc.h"
#include "banned.h"

static char *lower_dup(const char *s, size_t n)
{
	char *r = xstrndup(s, n);
	for (char *p = r; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return r;
}

static void vocab_add(struct vocab *v, const char *term, const char *pref,
		      const char *cat)
{
	if (v->n == v->alloc) {
		v->alloc = v->alloc ? 2 * v->alloc : 16;
		v->term = xrealloc(v->term, v->alloc * sizeof *v->term);
		v->pref = xrealloc(v->pref, v->alloc * sizeof *v->pref);
		v->cat = xrealloc(v->cat, v->alloc * sizeof *v->cat);
	}
	v->term[v->n] = lower_dup(term, strlen(term));
	v->pref[v->n] = xstrdup(pref);
	v->cat[v->n++] = cat ? xstrdup(cat) : NULL;
}

/* A map of preferred term -> synonym or list of synonyms. */
static void add_terms(struct vocab *v, const struct ynode *t,
		      const char *cat)
{
	if (!t || t->type != YNODE_MAP)
		return;
	for (size_t i = 0; i < t->n; i++) {
		const char *pref = t->keys[i];
		vocab_add(v, pref, pref, cat);
		const struct ynode *syn = t->values[i];
		if (syn->type == YNODE_SCALAR && !ynode_is_null(syn))
			vocab_add(v, syn->scalar, pref, cat);
		else if (syn->type == YNODE_SEQ)
			for (size_t j = 0; j < syn->n; j++)
				if (syn->items[j]->type == YNODE_SCALAR)
					vocab_add(v, syn->items[j]->scalar,
						  pref, cat);
	}
}

enum mlk_status vocab_from_tree(const struct ynode *y, const char *name,
				struct vocab *v, struct mlk_error *e)
{
	memset(v, 0, sizeof *v);
	if (!y)
		return MLK_OK;
	add_terms(v, ynode_get(y, "terms"), NULL);
	const struct ynode *vs = ynode_get(y, "vocabularies");
	if (vs && vs->type == YNODE_MAP)
		for (size_t i = 0; i < vs->n; i++)
			add_terms(v, vs->values[i], vs->keys[i]);
	const struct ynode *fs = ynode_get(y, "fields");
	if (!fs || fs->type != YNODE_MAP)
		return MLK_OK;
	v->field = xcalloc(fs->n ? fs->n : 1, sizeof *v->field);
	v->fcat = xcalloc(fs->n ? fs->n : 1, sizeof *v->fcat);
	for (size_t i = 0; i < fs->n; i++) {
		const struct ynode *c = fs->values[i];
		const char *cat = c->type == YNODE_SCALAR &&
				  !ynode_is_null(c) ? c->scalar : "terms";
		if (strcmp(cat, "terms") &&
		    !(vs && ynode_get(vs, cat))) {
			enum mlk_status s = mlk_error_set(e, MLK_USAGE, name,
				(long long)c->line, "field '%s' names no "
				"vocabulary '%s'", fs->keys[i], cat);
			vocab_release(v);
			return s;
		}
		v->field[v->nfields] = xstrdup(fs->keys[i]);
		v->fcat[v->nfields++] = strcmp(cat, "terms") ? xstrdup(cat)
							     : NULL;
	}
	return MLK_OK;
}

enum mlk_status vocab_load(const struct lake *l, struct vocab *v,
			   struct mlk_error *e)
{
	memset(v, 0, sizeof *v);
	char *p = lake_path(l, "vocab.yaml");
	struct ynode *y = NULL;
	enum mlk_status s = MLK_OK;
	if (fsio_exists(p))
		s = ynode_load_file(p, &y, e);
	if (s == MLK_OK)
		s = vocab_from_tree(y, p, v, e);
	free(p);
	ynode_free(y);
	return s;
}

void vocab_release(struct vocab *v)
{
	for (size_t i = 0; i < v->n; i++) {
		free(v->term[i]);
		free(v->pref[i]);
		free(v->cat[i]);
	}
	for (size_t i = 0; i < v->nfields; i++) {
		free(v->field[i]);
		free(v->fcat[i]);
	}
	free(v->term);
	free(v->pref);
	free(v->cat);
	free(v->field);
	free(v->fcat);
	memset(v, 0, sizeof *v);
}

static int ieq(const char *a, const char *b, size_t bn)
{
	size_t i = 0;
	for (; i < bn; i++)
		if (!a[i] || a[i] != tolower((unsigned char)b[i]))
			return 0;
	return a[i] == '\0';
}

const char *vocab_preferred(const struct vocab *v, const char *s, size_t n)
{
	for (size_t i = 0; v && i < v->n; i++)
		if (ieq(v->term[i], s, n))
			return v->pref[i];
	return NULL;
}

static int same_cat(const char *a, const char *b)
{
	return a ? b && !strcmp(a, b) : !b;
}

const char *vocab_field_preferred(const struct vocab *v, const char *field,
				  size_t fn, const char *s, size_t n)
{
	for (size_t f = 0; v && f < v->nfields; f++) {
		if (strlen(v->field[f]) != fn ||
		    memcmp(v->field[f], field, fn))
			continue;
		for (size_t i = 0; i < v->n; i++)
			if (same_cat(v->cat[i], v->fcat[f]) &&
			    ieq(v->term[i], s, n))
				return v->pref[i];
		return NULL;
	}
	return NULL;
}

/* JSON scanning ----------------------------------------------------------- */

static size_t skip_ws(const char *p, size_t i, size_t n)
{
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' ||
			 p[i] == '\r'))
		i++;
	return i;
}

/* p[i] is '"': the index after the closing quote (n when unclosed). */
static size_t skip_string(const char *p, size_t i, size_t n)
{
	for (i++; i < n; i++) {
		if (p[i] == '\\')
			i++;
		else if (p[i] == '"')
			return i + 1;
	}
	return n;
}

/* The index after the value starting at p[i]. */
static size_t skip_value(const char *p, size_t i, size_t n)
{
	if (i >= n)
		return n;
	if (p[i] == '"')
		return skip_string(p, i, n);
	if (p[i] == '{' || p[i] == '[') {
		int depth = 0;
		while (i < n) {
			if (p[i] == '"') {
				i = skip_string(p, i, n);
				continue;
			}
			if (p[i] == '{' || p[i] == '[')
				depth++;
			else if (p[i] == '}' || p[i] == ']')
				if (--depth == 0)
					return i + 1;
			i++;
		}
		return n;
	}
	while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' &&
	       p[i] != ' ' && p[i] != '\n' && p[i] != '\t' && p[i] != '\r')
		i++;
	return i;
}

/*
 * The text of a JSON string p[a..b) (quotes excluded) into out when it
 * has no escapes other than \" \\ \/; 0 when it cannot be a term (then
 * it is left alone).
 */
static int plain_text(const char *p, size_t a, size_t b, char *out,
		      size_t cap, size_t *len)
{
	size_t k = 0;
	for (size_t i = a; i < b; i++) {
		char c = p[i];
		if (c == '\\') {
			if (++i >= b)
				return 0;
			c = p[i];
			if (c != '"' && c != '\\' && c != '/')
				return 0;
		}
		if (k + 1 >= cap)
			return 0;
		out[k++] = c;
	}
	*len = k;
	return 1;
}

size_t vocab_apply(const struct vocab *v, const char *obj, size_t n,
		   struct buf *out)
{
	size_t i = skip_ws(obj, 0, n), done = 0, changed = 0;
	if (!v || !v->nfields || i >= n || obj[i] != '{') {
		buf_add(out, obj, n);
		return 0;
	}
	char text[512];
	i++;
	for (;;) {
		i = skip_ws(obj, i, n);
		if (i >= n || obj[i] != '"')
			break;
		size_t k0 = i + 1;
		i = skip_string(obj, i, n);
		if (i >= n)
			break;
		size_t k1 = i - 1;
		i = skip_ws(obj, i, n);
		if (i >= n || obj[i] != ':')
			break;
		i = skip_ws(obj, i + 1, n);
		size_t v0 = i;
		i = skip_value(obj, i, n);
		size_t len;
		const char *pref;
		if (v0 < n && obj[v0] == '"' && i > v0 + 1 &&
		    plain_text(obj, v0 + 1, i - 1, text, sizeof text, &len) &&
		    (pref = vocab_field_preferred(v, obj + k0, k1 - k0, text,
						  len)) &&
		    (strlen(pref) != len || memcmp(pref, text, len))) {
			buf_add(out, obj + done, v0 - done);
			buf_add_json_cstr(out, pref);
			done = i;
			changed++;
		}
		i = skip_ws(obj, i, n);
		if (i >= n || obj[i] != ',')
			break;
		i++;
	}
	buf_add(out, obj + done, n - done);
	return changed;
}
