#include "record.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "xalloc.h"
#include "banned.h"

#define TOK(r) ((jsmntok_t *)(r)->tok)

void rec_init(struct rec *r)
{
	memset(r, 0, sizeof *r);
	r->parser = xmalloc(sizeof(jsmn_parser));
}

void rec_release(struct rec *r)
{
	free(r->tok);
	free(r->skip);
	free(r->parser);
	memset(r, 0, sizeof *r);
}

long long utf8_invalid_at(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		/* ASCII fast path, eight bytes at a time. */
		while (i + 8 <= n) {
			uint64_t w;
			memcpy(&w, p + i, 8);
			if (w & 0x8080808080808080ULL)
				break;
			i += 8;
		}
		if (i >= n)
			break;
		unsigned char c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t need;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return (long long)i;
		}
		if (i + need >= n)
			return (long long)i;
		for (size_t k = 1; k <= need; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return (long long)i;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates and values past U+10FFFF. */
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return (long long)i;
		i += need + 1;
	}
	return -1;
}

/*
 * True when the text holds no byte below 0x20 and none at or above 0x80:
 * then no string in it can hold a control character or bad UTF-8, and
 * check_string has nothing to do.  Most records are like that, so one
 * fast pass over the line replaces a pass over every string.
 */
static int plain_ascii(const char *text, size_t n)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t i = 0;
#ifdef __SSE2__
	const __m128i space = _mm_set1_epi8(0x20);
	__m128i acc = _mm_setzero_si128();
	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(p + i));
		/* Signed compare: bytes >= 0x80 are negative, so both kinds
		 * of byte compare below 0x20. */
		acc = _mm_or_si128(acc, _mm_cmpgt_epi8(space, v));
	}
	if (_mm_movemask_epi8(acc))
		return 0;
#endif
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		if ((w | ((w - 0x2020202020202020ULL) & ~w)) &
		    0x8080808080808080ULL)
			return 0;
	}
	for (; i < n; i++)
		if (p[i] < 0x20 || p[i] >= 0x80)
			return 0;
	return 1;
}

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int valid_number(const char *p, size_t n)
{
	size_t i = 0;
	if (i < n && p[i] == '-')
		i++;
	if (i >= n)
		return 0;
	if (p[i] == '0') {
		i++;
	} else if (p[i] >= '1' && p[i] <= '9') {
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++;
	} else {
		return 0;
	}
	if (i < n && p[i] == '.') {
		i++;
		if (i >= n || p[i] < '0' || p[i] > '9')
			return 0;
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++;
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		if (i >= n || p[i] < '0' || p[i] > '9')
			return 0;
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++;
	}
	return i == n;
}

static int valid_primitive(const char *p, size_t n)
{
	switch (p[0]) {
	case 't': return n == 4 && !memcmp(p, "true", 4);
	case 'f': return n == 5 && !memcmp(p, "false", 5);
	case 'n': return n == 4 && !memcmp(p, "null", 4);
	default: return valid_number(p, n);
	}
}

/* Where token i begins and ends in the text, quotes included. */
static void span(const jsmntok_t *t, size_t *b, size_t *e)
{
	if (t->type == JSMN_STRING) {
		*b = (size_t)t->start - 1;
		*e = (size_t)t->end + 1;
	} else {
		*b = (size_t)t->start;
		*e = (size_t)t->end;
	}
}

struct vstate {
	struct rec *r;
	struct mlk_error *e;
	const char *text;
	int plain;          /* plain_ascii() held for the whole text */
};

static enum mlk_status bad(struct vstate *v, size_t at, const char *what)
{
	return mlk_error_set(v->e, MLK_PARTIAL, NULL, 0,
			     "invalid JSON at byte %zu: %s", at + 1, what);
}

/*
 * The bytes between two tokens must be whitespace around exactly one
 * expected separator (or none).  This is where jsmn's leniency about
 * missing or doubled commas and colons is closed.
 */
static int gap_ok(struct vstate *v, size_t from, size_t to, char sep)
{
	int seen = sep ? 0 : 1;
	for (size_t i = from; i < to; i++) {
		char c = v->text[i];
		if (is_ws(c)) {
			v->r->has_space = 1;
			continue;
		}
		if (!seen && c == sep) {
			seen = 1;
			continue;
		}
		return 0;
	}
	return seen;
}

static enum mlk_status check_string(struct vstate *v, const jsmntok_t *t)
{
	if (v->plain)
		return MLK_OK;
	const unsigned char *p = (const unsigned char *)v->text + t->start;
	size_t n = (size_t)(t->end - t->start);
	size_t i = 0;
	/* Plain ASCII without control characters, eight bytes at a time:
	 * no byte has its top bit set and none is below 0x20. */
	while (i + 8 <= n) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		if ((w | ((w - 0x2020202020202020ULL) & ~w)) &
		    0x8080808080808080ULL)
			break;
		i += 8;
	}
	for (size_t k = i; k < n; k++)
		if (p[k] < 0x20)
			return bad(v, (size_t)t->start + k,
				   "control character in string");
	if (i == n)
		return MLK_OK;
	long long at = utf8_invalid_at((const char *)p + i, n - i);
	if (at >= 0)
		return mlk_error_set(v->e, MLK_PARTIAL, NULL, 0,
				     "invalid UTF-8 at byte %lld",
				     (long long)t->start + (long long)i + at + 1);
	return MLK_OK;
}

/* Validate the subtree at token i; returns the index past it, or -1. */
static int validate(struct vstate *v, int i, int depth)
{
	struct rec *r = v->r;
	jsmntok_t *tok = TOK(r);
	jsmntok_t *t = &tok[i];
	size_t b, e;

	if (depth > REC_MAX_DEPTH) {
		bad(v, (size_t)t->start, "nesting deeper than 512 levels");
		return -1;
	}
	span(t, &b, &e);
	switch (t->type) {
	case JSMN_PRIMITIVE:
		if (!valid_primitive(v->text + t->start,
				     (size_t)(t->end - t->start))) {
			bad(v, b, "not a valid number or literal");
			return -1;
		}
		r->skip[i] = i + 1;
		return i + 1;
	case JSMN_STRING:
		if (t->size != 0) {
			bad(v, b, "unexpected string");
			return -1;
		}
		if (check_string(v, t) != MLK_OK)
			return -1;
		r->skip[i] = i + 1;
		return i + 1;
	case JSMN_OBJECT:
	case JSMN_ARRAY: {
		int is_obj = t->type == JSMN_OBJECT;
		int k = i + 1;
		size_t prev = b + 1;
		for (int m = 0; m < t->size; m++) {
			if (k >= r->ntok) {
				bad(v, b, "truncated");
				return -1;
			}
			size_t kb, ke;
			span(&tok[k], &kb, &ke);
			if (!gap_ok(v, prev, kb, m ? ',' : 0)) {
				bad(v, prev, "unexpected character");
				return -1;
			}
			if (is_obj) {
				if (tok[k].type != JSMN_STRING ||
				    tok[k].size != 1) {
					bad(v, kb, "expected a member name");
					return -1;
				}
				if (check_string(v, &tok[k]) != MLK_OK)
					return -1;
				r->skip[k] = k + 1;
				size_t vb, ve;
				if (k + 1 >= r->ntok) {
					bad(v, kb, "truncated");
					return -1;
				}
				span(&tok[k + 1], &vb, &ve);
				if (!gap_ok(v, ke, vb, ':')) {
					bad(v, ke, "expected ':'");
					return -1;
				}
				/* A key token's skip covers its value. */
				int nx = validate(v, k + 1, depth + 1);
				if (nx < 0)
					return -1;
				r->skip[k] = nx;
				prev = ve;
				k = nx;
			} else {
				int nx = validate(v, k, depth + 1);
				if (nx < 0)
					return -1;
				size_t ib, ie;
				span(&tok[k], &ib, &ie);
				prev = ie;
				k = nx;
			}
		}
		if (!gap_ok(v, prev, e - 1, 0)) {
			bad(v, prev, "unexpected character");
			return -1;
		}
		r->skip[i] = k;
		return k;
	}
	default:
		bad(v, b, "unexpected token");
		return -1;
	}
}

enum mlk_status rec_parse(struct rec *r, const char *text, size_t len,
			  struct mlk_error *e)
{
	jsmn_parser *p = r->parser;
	r->text = text;
	r->len = len;
	r->ntok = 0;
	r->has_space = 0;
	r->has_escape = 1;

	/* Strip trailing whitespace (including a CRLF's '\r'). */
	size_t n = len;
	while (n && is_ws(text[n - 1]))
		n--;
	size_t s = 0;
	while (s < n && is_ws(text[s]))
		s++;
	if (s == n)
		return mlk_error_set(e, MLK_PARTIAL, NULL, 0,
				     "empty line where a record was expected");
	if (text[s] != '{')
		return mlk_error_set(e, MLK_PARTIAL, NULL, 0,
				     "record is not a JSON object");
	if (n > (size_t)INT32_MAX - 2)
		return mlk_error_set(e, MLK_PARTIAL, NULL, 0,
				     "record larger than 2 GiB");
	if (s || n != len)
		r->has_space = 1;

	if (!r->tok_alloc) {
		r->tok_alloc = 1024;
		r->tok = xmalloc(r->tok_alloc * sizeof(jsmntok_t));
	}
	jsmn_init(p);
	int ret;
	for (;;) {
		ret = jsmn_parse(p, text, n, TOK(r), (unsigned)r->tok_alloc);
		if (ret != JSMN_ERROR_NOMEM)
			break;
		r->tok_alloc *= 2;
		r->tok = xrealloc(r->tok, r->tok_alloc * sizeof(jsmntok_t));
	}
	if (ret == JSMN_ERROR_PART)
		return mlk_error_set(e, MLK_PARTIAL, NULL, 0,
				     "invalid JSON: record is truncated");
	if (ret < 0)
		return mlk_error_set(e, MLK_PARTIAL, NULL, 0,
				     "invalid JSON at byte %u", p->pos + 1);
	r->ntok = (int)p->toknext;
	if (p->pos < n)
		/* jsmn stops at a NUL byte. */
		return mlk_error_set(e, MLK_PARTIAL, NULL, 0,
				     "invalid JSON at byte %u: NUL byte",
				     p->pos + 1);
	if (r->ntok < 1 || TOK(r)[0].type != JSMN_OBJECT)
		return mlk_error_set(e, MLK_PARTIAL, NULL, 0,
				     "record is not a JSON object");
	if ((size_t)r->ntok > r->skip_alloc) {
		r->skip_alloc = r->tok_alloc;
		free(r->skip);
		r->skip = xmalloc(r->skip_alloc * sizeof(int));
	}
	/* Without a backslash no string needs decoding: lookups and
	 * callers skip their per-string search for one. */
	r->has_escape = memchr(text, '\\', n) != NULL;
	struct vstate v = { r, e, text, plain_ascii(text, n) };
	int end = validate(&v, 0, 0);
	if (end < 0)
		return MLK_PARTIAL;
	if (end != r->ntok || (size_t)TOK(r)[0].end != n)
		return mlk_error_set(e, MLK_PARTIAL, NULL, 0,
				     "invalid JSON at byte %d: text after the "
				     "record", TOK(r)[0].end + 1);
	return MLK_OK;
}

int rec_type(const struct rec *r, int i)
{
	switch (TOK(r)[i].type) {
	case JSMN_OBJECT: return REC_OBJECT;
	case JSMN_ARRAY: return REC_ARRAY;
	case JSMN_STRING: return REC_STRING;
	default: return REC_PRIMITIVE;
	}
}

int rec_size(const struct rec *r, int i)
{
	return TOK(r)[i].size;
}

const char *rec_raw(const struct rec *r, int i, size_t *n)
{
	const jsmntok_t *t = &TOK(r)[i];
	*n = (size_t)(t->end - t->start);
	return r->text + t->start;
}

/* What the inline accessors of record.h (MLK_REC_INLINE) take for
 * granted. */
_Static_assert(sizeof(jsmntok_t) == REC_TOK_INTS * sizeof(int) &&
	       sizeof(jsmntype_t) == sizeof(int) &&
	       offsetof(jsmntok_t, type) == 0 &&
	       offsetof(jsmntok_t, start) == 1 * sizeof(int) &&
	       offsetof(jsmntok_t, end) == 2 * sizeof(int) &&
	       offsetof(jsmntok_t, size) == 3 * sizeof(int),
	       "jsmntok_t is not five ints");
_Static_assert((int)JSMN_OBJECT == (int)REC_OBJECT &&
	       (int)JSMN_ARRAY == (int)REC_ARRAY &&
	       (int)JSMN_STRING == (int)REC_STRING &&
	       (int)JSMN_PRIMITIVE == (int)REC_PRIMITIVE,
	       "jsmn's types are not numbered as enum rec_type");

void rec_span(const struct rec *r, int i, size_t *begin, size_t *end)
{
	span(&TOK(r)[i], begin, end);
}

/* A member name written with escapes ("_ml\u006b") compares by its
 * decoded text, so no record can hide a name from a lookup. */
static int key_eq_decoded(const struct rec *r, int k, const char *s)
{
	struct buf b = BUF_INIT;
	rec_str(r, k, &b);
	int eq = b.len == strlen(s) && !memcmp(b.data, s, b.len);
	buf_release(&b);
	return eq;
}

int rec_key_eq(const struct rec *r, int k, const char *s)
{
	const jsmntok_t *t = &TOK(r)[k];
	size_t n = (size_t)(t->end - t->start);
	const char *p = r->text + t->start;
	if (r->has_escape && memchr(p, '\\', n))
		return key_eq_decoded(r, k, s);
	return strlen(s) == n && !memcmp(p, s, n);
}

int rec_get(const struct rec *r, int obj, const char *key)
{
	if (obj < 0 || obj >= r->ntok || TOK(r)[obj].type != JSMN_OBJECT)
		return -1;
	size_t kn = strlen(key);
	const jsmntok_t *tok = TOK(r);
	for (int k = obj + 1; k < r->skip[obj]; k = r->skip[k]) {
		size_t n = (size_t)(tok[k].end - tok[k].start);
		const char *p = r->text + tok[k].start;
		if (n == kn && !memcmp(p, key, n))
			return k + 1;
		/* An escaped name is never shorter than its text. */
		if (n > kn && r->has_escape && memchr(p, '\\', n) &&
		    key_eq_decoded(r, k, key))
			return k + 1;
	}
	return -1;
}

int rec_path(const struct rec *r, int from, const char *path)
{
	int cur = from;
	char key[256];
	while (*path && cur >= 0) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		if (n >= sizeof key)
			return -1;
		memcpy(key, path, n);
		key[n] = '\0';
		cur = rec_get(r, cur, key);
		path += n + (dot ? 1 : 0);
	}
	return cur;
}

static unsigned hexval(char c)
{
	if (c >= '0' && c <= '9')
		return (unsigned)(c - '0');
	if (c >= 'a' && c <= 'f')
		return (unsigned)(c - 'a' + 10);
	return (unsigned)(c - 'A' + 10);
}

static void put_utf8(struct buf *out, uint32_t cp)
{
	char u[4];
	if (cp < 0x80) {
		buf_addch(out, (char)cp);
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		buf_add(out, u, 2);
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		buf_add(out, u, 3);
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		buf_add(out, u, 4);
	}
}

int rec_str(const struct rec *r, int i, struct buf *out)
{
	const jsmntok_t *t = &TOK(r)[i];
	if (t->type != JSMN_STRING)
		return -1;
	const char *p = r->text + t->start;
	size_t n = (size_t)(t->end - t->start);
	const char *bs = memchr(p, '\\', n);
	if (!bs) {
		buf_add(out, p, n);
		return 0;
	}
	size_t i0 = 0;
	while (i0 < n) {
		const char *q = memchr(p + i0, '\\', n - i0);
		if (!q) {
			buf_add(out, p + i0, n - i0);
			break;
		}
		size_t at = (size_t)(q - p);
		buf_add(out, p + i0, at - i0);
		char c = p[at + 1];
		i0 = at + 2;
		switch (c) {
		case 'n': buf_addch(out, '\n'); break;
		case 't': buf_addch(out, '\t'); break;
		case 'r': buf_addch(out, '\r'); break;
		case 'b': buf_addch(out, '\b'); break;
		case 'f': buf_addch(out, '\f'); break;
		case 'u': {
			uint32_t cp = 0;
			for (int k = 0; k < 4; k++)
				cp = (cp << 4) | hexval(p[at + 2 + k]);
			i0 = at + 6;
			if (cp >= 0xd800 && cp <= 0xdbff && i0 + 6 <= n &&
			    p[i0] == '\\' && p[i0 + 1] == 'u') {
				uint32_t lo = 0;
				for (int k = 0; k < 4; k++)
					lo = (lo << 4) | hexval(p[i0 + 2 + k]);
				if (lo >= 0xdc00 && lo <= 0xdfff) {
					cp = 0x10000 + ((cp - 0xd800) << 10) +
					     (lo - 0xdc00);
					i0 += 6;
				}
			}
			/* A lone surrogate cannot be UTF-8: U+FFFD. */
			if (cp >= 0xd800 && cp <= 0xdfff)
				cp = 0xfffd;
			put_utf8(out, cp);
			break;
		}
		default: buf_addch(out, c); break;
		}
	}
	return 0;
}

int rec_str_eq(const struct rec *r, int i, const char *s)
{
	if (i < 0 || TOK(r)[i].type != JSMN_STRING)
		return 0;
	size_t n;
	const char *p = rec_raw(r, i, &n);
	if (!memchr(p, '\\', n))
		return strlen(s) == n && !memcmp(p, s, n);
	struct buf b = BUF_INIT;
	rec_str(r, i, &b);
	int eq = b.len == strlen(s) && !memcmp(b.data, s, b.len);
	buf_release(&b);
	return eq;
}

void rec_write(const struct rec *r, int i, struct buf *out)
{
	const jsmntok_t *tok = TOK(r);
	size_t b, e;
	span(&tok[i], &b, &e);
	if (!r->has_space) {
		buf_add(out, r->text + b, e - b);
		return;
	}
	switch (tok[i].type) {
	case JSMN_OBJECT:
		buf_addch(out, '{');
		for (int k = i + 1, m = 0; k < r->skip[i]; k = r->skip[k], m++) {
			if (m)
				buf_addch(out, ',');
			rec_write(r, k, out);
			buf_addch(out, ':');
			rec_write(r, k + 1, out);
		}
		buf_addch(out, '}');
		break;
	case JSMN_ARRAY:
		buf_addch(out, '[');
		for (int k = i + 1, m = 0; k < r->skip[i]; k = r->skip[k], m++) {
			if (m)
				buf_addch(out, ',');
			rec_write(r, k, out);
		}
		buf_addch(out, ']');
		break;
	default:
		/* A key token's skip covers its value; write only itself. */
		buf_add(out, r->text + b, e - b);
	}
}

void rec_write_open(const struct rec *r, int obj, const char *drop,
		    struct buf *out, int *empty)
{
	const jsmntok_t *tok = TOK(r);
	int dropk = -1;
	if (drop) {
		int v = rec_get(r, obj, drop);
		if (v > 0)
			dropk = v - 1;
	}
	if (!r->has_space && dropk < 0) {
		/* The common case: one copy of everything before the '}'. */
		size_t b = (size_t)tok[obj].start, e = (size_t)tok[obj].end;
		buf_add(out, r->text + b, e - b - 1);
		*empty = tok[obj].size == 0;
		return;
	}
	buf_addch(out, '{');
	int m = 0;
	for (int k = obj + 1; k < r->skip[obj]; k = r->skip[k]) {
		/* Every member of that name goes, duplicates included. */
		if (dropk >= 0 && rec_key_eq(r, k, drop))
			continue;
		if (m++)
			buf_addch(out, ',');
		rec_write(r, k, out);
		buf_addch(out, ':');
		rec_write(r, k + 1, out);
	}
	*empty = m == 0;
}

/* Line reader */

#define LR_CHUNK (1u << 20)

void lr_init(struct linereader *lr, lr_read_fn fn, void *ctx)
{
	memset(lr, 0, sizeof *lr);
	lr->read = fn;
	lr->ctx = ctx;
	lr->max_line = (size_t)256 << 20;
}

void lr_release(struct linereader *lr)
{
	free(lr->buf);
	lr->buf = NULL;
}

ssize_t lr_read_fd(void *ctx, void *p, size_t n)
{
	int fd = *(int *)ctx;
	for (;;) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		return r;
	}
}

/* Read more bytes after lr->end; returns bytes read, 0 at EOF, -1. */
static ssize_t fill(struct linereader *lr)
{
	if (lr->start > 0 && (lr->alloc - lr->end < LR_CHUNK)) {
		size_t keep = lr->end - lr->start;
		memmove(lr->buf, lr->buf + lr->start, keep);
		lr->base += lr->start;
		lr->start = 0;
		lr->end = keep;
	}
	if (lr->alloc - lr->end < LR_CHUNK) {
		size_t n = lr->alloc ? lr->alloc * 2 : 4 * LR_CHUNK;
		while (n - lr->end < LR_CHUNK)
			n *= 2;
		lr->buf = xrealloc(lr->buf, n + 1);
		lr->alloc = n;
	}
	ssize_t r = lr->read(lr->ctx, lr->buf + lr->end, lr->alloc - lr->end);
	if (r > 0)
		lr->end += (size_t)r;
	return r;
}

int lr_next(struct linereader *lr, const char **line, size_t *len,
	    struct mlk_error *e)
{
	size_t scanned = lr->start;
	for (;;) {
		char *nl = NULL;
		if (lr->end > scanned)
			nl = memchr(lr->buf + scanned, '\n', lr->end - scanned);
		if (nl) {
			size_t at = (size_t)(nl - lr->buf);
			size_t s = lr->start;
			lr->start = at + 1;
			lr->lineno++;
			lr->offset = lr->base + s;
			if (lr->skipping) {
				lr->skipping = 0;
				scanned = lr->start;
				continue;
			}
			/* The limit holds per line, however reads fell. */
			if (at - s > lr->max_line)
				return mlk_error_set(e, MLK_PARTIAL, NULL,
						     lr->lineno,
						     "line longer than %zu "
						     "bytes", lr->max_line),
				       -1;
			*line = lr->buf + s;
			*len = at - s;
			lr->buf[at] = '\0';
			return 1;
		}
		scanned = lr->end;
		if (lr->end - lr->start > lr->max_line) {
			/* Drop what we hold and skip to the next newline. */
			if (!lr->skipping) {
				lr->skipping = 1;
				mlk_error_set(e, MLK_PARTIAL, NULL,
					      lr->lineno + 1,
					      "line longer than %zu bytes",
					      lr->max_line);
				lr->base += lr->end;
				lr->start = lr->end = scanned = 0;
				return -1;
			}
			lr->base += lr->end;
			lr->start = lr->end = scanned = 0;
		}
		if (lr->eof) {
			if (lr->end > lr->start && !lr->skipping) {
				size_t s = lr->start;
				*line = lr->buf + s;
				*len = lr->end - s;
				lr->buf[lr->end] = '\0';
				lr->lineno++;
				lr->offset = lr->base + s;
				lr->start = lr->end;
				return 1;
			}
			return 0;
		}
		size_t before_start = lr->start;
		ssize_t r = fill(lr);
		scanned -= before_start - lr->start;
		if (r < 0)
			return mlk_error_errno(e, NULL, "read error"), -1;
		if (r == 0)
			lr->eof = 1;
	}
}
