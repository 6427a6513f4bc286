/*
 * fuzz-record — libFuzzer target for rec_parse() and friends in
 * common/record.c.
 *
 * The whole input is one line.  A small recursive-descent validator below
 * (RFC 8259, a top-level object, valid UTF-8, no raw control characters in
 * strings, at most REC_MAX_DEPTH levels below the top object) decides
 * whether the line is a record; rec_parse() must agree, byte for byte,
 * including on NUL bytes (jsmn stops at one) and trailing whitespace.
 *
 * The validator also lists the tokens the line should produce, in jsmn's
 * pre-order (a key is a token, followed by its value), its compact form
 * (the line without whitespace outside strings) and every string decoded.
 * When the line is accepted, the record's tokens, rec_write(),
 * rec_write_open(), rec_str(), rec_str_eq(), rec_get() and rec_path() are
 * checked against those.  When it is rejected, the message must be one of
 * ours and printable ASCII: it may name a byte offset, never input bytes.
 *
 * Member names are compared raw, as record.h says for rec_key_eq(): a
 * name written with escapes ("_ml\u006b") is a different name here.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "banned.h"

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); \
	abort(); } } while (0)

/* ---- the reference validator ----------------------------------------- */

struct rtok {
	int type;               /* enum rec_type */
	size_t start, end;      /* as rec_raw: strings without quotes */
	int size;               /* members or items; 0 for scalars */
	int key;                /* a member name */
	size_t past;            /* index just past the subtree */
	size_t parent;          /* keys: their object */
	size_t dec, declen;     /* strings: decoded bytes in ref.dec */
};

struct ref {
	const unsigned char *p;
	size_t n, pos;
	struct rtok *tok;
	size_t ntok, alloc;
	unsigned char *dec;     /* decoded strings, one after another */
	size_t declen, decalloc;
};

static void ref_grow(void **p, size_t *alloc, size_t need, size_t sz)
{
	if (need <= *alloc)
		return;
	size_t n = *alloc ? *alloc : 64;
	while (n < need)
		n *= 2;
	*p = realloc(*p, n * sz);
	CHECK(*p != NULL);
	*alloc = n;
}

static size_t new_tok(struct ref *f, int type, size_t start)
{
	ref_grow((void **)&f->tok, &f->alloc, f->ntok + 1, sizeof *f->tok);
	struct rtok *t = &f->tok[f->ntok];
	memset(t, 0, sizeof *t);
	t->type = type;
	t->start = start;
	t->past = f->ntok + 1;
	return f->ntok++;
}

static void dec_put(struct ref *f, unsigned char c)
{
	ref_grow((void **)&f->dec, &f->decalloc, f->declen + 1, 1);
	f->dec[f->declen++] = c;
}

static void dec_cp(struct ref *f, uint32_t cp)
{
	if (cp < 0x80) {
		dec_put(f, (unsigned char)cp);
	} else if (cp < 0x800) {
		dec_put(f, (unsigned char)(0xc0 | (cp >> 6)));
		dec_put(f, (unsigned char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		dec_put(f, (unsigned char)(0xe0 | (cp >> 12)));
		dec_put(f, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
		dec_put(f, (unsigned char)(0x80 | (cp & 0x3f)));
	} else {
		dec_put(f, (unsigned char)(0xf0 | (cp >> 18)));
		dec_put(f, (unsigned char)(0x80 | ((cp >> 12) & 0x3f)));
		dec_put(f, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
		dec_put(f, (unsigned char)(0x80 | (cp & 0x3f)));
	}
}

static int ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(struct ref *f)
{
	while (f->pos < f->n && ws(f->p[f->pos]))
		f->pos++;
}

static int at(struct ref *f, unsigned char c)
{
	return f->pos < f->n && f->p[f->pos] == c;
}

static int digit(struct ref *f)
{
	return f->pos < f->n && f->p[f->pos] >= '0' && f->p[f->pos] <= '9';
}

/*
 * Length of the UTF-8 sequence at p (n bytes left), 0 if it is not a
 * valid one: the table in RFC 3629, section 4, written out.
 */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t k = 2; k < len; k++)
		if (p[k] < 0x80 || p[k] > 0xbf)
			return 0;
	return len;
}

static int utf8_ok(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t k = utf8_seq(p + i, n - i);
		if (!k)
			return 0;
		i += k;
	}
	return 1;
}

static int hex4(struct ref *f, uint32_t *cp)
{
	*cp = 0;
	for (int k = 0; k < 4; k++, f->pos++) {
		if (f->pos >= f->n)
			return 0;
		unsigned char c = f->p[f->pos];
		uint32_t v;
		if (c >= '0' && c <= '9')
			v = (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v = (uint32_t)(c - 'A' + 10);
		else
			return 0;
		*cp = *cp << 4 | v;
	}
	return 1;
}

static int string(struct ref *f, int key, size_t parent)
{
	if (!at(f, '"'))
		return 0;
	f->pos++;
	size_t t = new_tok(f, REC_STRING, f->pos);
	size_t dec = f->declen;
	for (;;) {
		if (f->pos >= f->n)
			return 0;
		unsigned char c = f->p[f->pos];
		if (c == '"')
			break;
		if (c < 0x20)
			return 0;
		if (c != '\\') {
			size_t k = utf8_seq(f->p + f->pos, f->n - f->pos);
			if (!k)
				return 0;
			for (size_t j = 0; j < k; j++)
				dec_put(f, f->p[f->pos + j]);
			f->pos += k;
			continue;
		}
		f->pos++;
		if (f->pos >= f->n)
			return 0;
		c = f->p[f->pos++];
		switch (c) {
		case '"': case '\\': case '/': dec_put(f, c); break;
		case 'b': dec_put(f, '\b'); break;
		case 'f': dec_put(f, '\f'); break;
		case 'n': dec_put(f, '\n'); break;
		case 'r': dec_put(f, '\r'); break;
		case 't': dec_put(f, '\t'); break;
		case 'u': {
			uint32_t cp, lo;
			if (!hex4(f, &cp))
				return 0;
			/* A high surrogate pairs with an escaped low one
			 * right after it; any other surrogate is U+FFFD. */
			if (cp >= 0xd800 && cp <= 0xdbff &&
			    f->pos + 6 <= f->n && f->p[f->pos] == '\\' &&
			    f->p[f->pos + 1] == 'u') {
				size_t save = f->pos;
				f->pos += 2;
				if (hex4(f, &lo) && lo >= 0xdc00 &&
				    lo <= 0xdfff)
					cp = 0x10000 + ((cp - 0xd800) << 10) +
					     (lo - 0xdc00);
				else
					f->pos = save;
			}
			if (cp >= 0xd800 && cp <= 0xdfff)
				cp = 0xfffd;
			dec_cp(f, cp);
			break;
		}
		default:
			return 0;
		}
	}
	f->tok[t].end = f->pos++;
	f->tok[t].key = key;
	f->tok[t].parent = parent;
	f->tok[t].dec = dec;
	f->tok[t].declen = f->declen - dec;
	return 1;
}

static int literal(struct ref *f, const char *word)
{
	size_t n = strlen(word);
	if (f->n - f->pos < n || memcmp(f->p + f->pos, word, n))
		return 0;
	f->pos += n;
	return 1;
}

static int number(struct ref *f)
{
	if (at(f, '-'))
		f->pos++;
	if (at(f, '0')) {
		f->pos++;
	} else if (digit(f)) {
		while (digit(f))
			f->pos++;
	} else {
		return 0;
	}
	if (at(f, '.')) {
		f->pos++;
		if (!digit(f))
			return 0;
		while (digit(f))
			f->pos++;
	}
	if (at(f, 'e') || at(f, 'E')) {
		f->pos++;
		if (at(f, '+') || at(f, '-'))
			f->pos++;
		if (!digit(f))
			return 0;
		while (digit(f))
			f->pos++;
	}
	return 1;
}

static int value(struct ref *f, int depth);

static int object(struct ref *f, int depth)
{
	size_t t = new_tok(f, REC_OBJECT, f->pos);
	f->pos++;
	skip_ws(f);
	if (!at(f, '}')) {
		for (;;) {
			if (!string(f, 1, t))
				return 0;
			skip_ws(f);
			if (!at(f, ':'))
				return 0;
			f->pos++;
			skip_ws(f);
			if (!value(f, depth + 1))
				return 0;
			f->tok[t].size++;
			skip_ws(f);
			if (!at(f, ','))
				break;
			f->pos++;
			skip_ws(f);
		}
		if (!at(f, '}'))
			return 0;
	}
	f->tok[t].end = ++f->pos;
	f->tok[t].past = f->ntok;
	return 1;
}

static int array(struct ref *f, int depth)
{
	size_t t = new_tok(f, REC_ARRAY, f->pos);
	f->pos++;
	skip_ws(f);
	if (!at(f, ']')) {
		for (;;) {
			if (!value(f, depth + 1))
				return 0;
			f->tok[t].size++;
			skip_ws(f);
			if (!at(f, ','))
				break;
			f->pos++;
			skip_ws(f);
		}
		if (!at(f, ']'))
			return 0;
	}
	f->tok[t].end = ++f->pos;
	f->tok[t].past = f->ntok;
	return 1;
}

/* The top-level object is at depth 0, as in record.c. */
static int value(struct ref *f, int depth)
{
	if (depth > REC_MAX_DEPTH || f->pos >= f->n)
		return 0;
	switch (f->p[f->pos]) {
	case '{': return object(f, depth);
	case '[': return array(f, depth);
	case '"': return string(f, 0, 0);
	default: break;
	}
	size_t start = f->pos;
	if (!literal(f, "true") && !literal(f, "false") &&
	    !literal(f, "null") && !number(f))
		return 0;
	size_t t = new_tok(f, REC_PRIMITIVE, start);
	f->tok[t].end = f->pos;
	return 1;
}

static int ref_record(struct ref *f, const unsigned char *p, size_t n)
{
	f->p = p;
	f->n = n;
	f->pos = 0;
	f->ntok = 0;
	f->declen = 0;
	skip_ws(f);
	if (!at(f, '{') || !object(f, 0))
		return 0;
	skip_ws(f);
	return f->pos == n;
}

/* The line without whitespace outside strings; drop names a member of
 * the top object to leave out (raw name), and then the '}' is left off
 * too, as rec_write_open does. */
static void ref_compact(const struct ref *f, const char *drop, struct buf *out,
			int *empty)
{
	size_t droplen = drop ? strlen(drop) : 0;
	int written = 0;
	size_t k = 1;

	buf_addch(out, '{');
	for (int m = 0; m < f->tok[0].size; m++) {
		/* k is a key, k + 1 its value; a string value's end is
		 * its closing quote. */
		const struct rtok *key = &f->tok[k], *val = &f->tok[k + 1];
		size_t vend = val->end + (val->type == REC_STRING);
		size_t next = val->past;
		if (drop && key->end - key->start == droplen &&
		    !memcmp(f->p + key->start, drop, droplen)) {
			k = next;
			continue;
		}
		if (written++)
			buf_addch(out, ',');
		int in_str = 0;
		for (size_t i = key->start - 1; i < vend; i++) {
			unsigned char c = f->p[i];
			if (in_str) {
				buf_addch(out, (char)c);
				if (c == '\\')
					buf_addch(out, (char)f->p[++i]);
				else if (c == '"')
					in_str = 0;
			} else if (!ws(c)) {
				buf_addch(out, (char)c);
				in_str = c == '"';
			}
		}
		k = next;
	}
	if (!drop)
		buf_addch(out, '}');
	*empty = !written;
}

/* ---- checks on an accepted record ------------------------------------ */

static int no_space_outside_strings(const char *p, size_t n)
{
	int in_str = 0;
	for (size_t i = 0; i < n; i++) {
		if (in_str) {
			if (p[i] == '\\')
				i++;
			else if (p[i] == '"')
				in_str = 0;
		} else if (ws((unsigned char)p[i])) {
			return 0;
		} else {
			in_str = p[i] == '"';
		}
	}
	return 1;
}

static void check_reparse(const char *p, size_t n)
{
	static struct rec r2;
	static int init;
	struct mlk_error e = MLK_ERROR_INIT;
	struct buf again = BUF_INIT;

	if (!init) {
		rec_init(&r2);
		init = 1;
	}
	CHECK(rec_parse(&r2, p, n, &e) == MLK_OK);
	CHECK(!r2.has_space);
	rec_write(&r2, 0, &again);
	CHECK(again.len == n && !memcmp(again.data, p, n));
	buf_release(&again);
}

/*
 * Same tokens, in the same order, over the same bytes; and skip[] as
 * record.h describes it: for any token that is not a member name, the
 * index just past its subtree.
 */
static void check_tokens(const struct rec *r, const struct ref *f)
{
	CHECK(r->ntok >= 0 && (size_t)r->ntok == f->ntok);
	for (size_t i = 0; i < f->ntok; i++) {
		const struct rtok *t = &f->tok[i];
		int ti = (int)i;
		size_t n, b, e;
		const char *raw = rec_raw(r, ti, &n);

		CHECK(rec_type(r, ti) == t->type);
		CHECK(raw == r->text + t->start && n == t->end - t->start);
		rec_span(r, ti, &b, &e);
		if (t->type == REC_STRING)
			CHECK(b == t->start - 1 && e == t->end + 1);
		else
			CHECK(b == t->start && e == t->end);
		if (t->type == REC_OBJECT || t->type == REC_ARRAY)
			CHECK(rec_size(r, ti) == t->size);
		if (!t->key)
			CHECK(r->skip[i] >= 0 && (size_t)r->skip[i] == t->past);
	}
}

static void check_strings(const struct rec *r, const struct ref *f)
{
	struct buf s = BUF_INIT;
	for (size_t i = 0; i < f->ntok; i++) {
		const struct rtok *t = &f->tok[i];
		if (t->type != REC_STRING) {
			CHECK(rec_str(r, (int)i, &s) == -1);
			CHECK(!rec_str_eq(r, (int)i, ""));
			continue;
		}
		buf_reset(&s);
		CHECK(rec_str(r, (int)i, &s) == 0);
		CHECK(s.len == t->declen);
		CHECK(!memcmp(s.data, f->dec + t->dec, s.len));
		CHECK(utf8_ok((const unsigned char *)s.data, s.len));
		/* U+0000 decodes to a NUL byte, which a C string cannot
		 * hold. */
		if (!memchr(s.data, '\0', s.len)) {
			CHECK(rec_str_eq(r, (int)i, s.data));
			buf_addch(&s, 'x');
			CHECK(!rec_str_eq(r, (int)i, s.data));
		}
	}
	buf_release(&s);
}


/* The member name of key token k, decoded, in out; 0 if it holds NUL. */
static int decoded_name(const struct rec *r, int k, struct buf *out)
{
	buf_reset(out);
	rec_str(r, k, out);
	return !memchr(out->data, '\0', out->len);
}

/*
 * Every member of every object is found by its name as decoded (so that
 * "_ml\u006b" is "_mlk" to a lookup), walking the members as record.h
 * shows; with duplicate names, an earlier member of that name may answer.
 */
static void check_lookup(const struct rec *r, const struct ref *f)
{
	struct buf name = BUF_INIT, got = BUF_INIT;
	for (size_t o = 0; o < f->ntok; o++) {
		if (f->tok[o].type != REC_OBJECT)
			continue;
		size_t k = o + 1;
		int m = 0;
		for (int rk = (int)o + 1; rk < r->skip[o]; rk = r->skip[rk + 1]) {
			CHECK((size_t)rk == k && m < f->tok[o].size);
			const struct rtok *key = &f->tok[k];
			CHECK(key->key && key->parent == o);
			if (!decoded_name(r, rk, &name)) {
				k = f->tok[k + 1].past;
				m++;
				continue;
			}
			CHECK(rec_key_eq(r, rk, name.data));
			int v = rec_get(r, (int)o, name.data);
			CHECK(v > (int)o && (size_t)v <= k + 1);
			CHECK(f->tok[v - 1].key && f->tok[v - 1].parent == o);
			CHECK(decoded_name(r, v - 1, &got) && got.len == name.len &&
			      !memcmp(got.data, name.data, name.len));
			if (!memchr(name.data, '.', name.len) && name.len > 0 &&
			    name.len < 256)
				CHECK(rec_path(r, (int)o, name.data) == v);
			if (rec_type(r, v) != REC_OBJECT)
				CHECK(rec_get(r, v, name.data) == -1);
			k = f->tok[k + 1].past;
			m++;
		}
		CHECK(m == f->tok[o].size && k == f->tok[o].past);
	}
	CHECK(rec_get(r, 0, "\x01 no such member") == -1);
	CHECK(rec_get(r, -1, "a") == -1);
	CHECK(rec_path(r, 0, "") == 0);
	buf_release(&name);
	buf_release(&got);
}

static void check_accepted(const struct rec *r, const struct ref *f)
{
	struct buf w = BUF_INIT, want = BUF_INIT;
	int empty, want_empty;

	check_tokens(r, f);

	/* rec_write: compact, re-parses, a fixed point. */
	rec_write(r, 0, &w);
	ref_compact(f, NULL, &want, &want_empty);
	CHECK(w.len == want.len && !memcmp(w.data, want.data, w.len));
	CHECK(no_space_outside_strings(w.data, w.len));
	check_reparse(w.data, w.len);
	if (!r->has_space)
		CHECK(w.len == r->len && !memcmp(w.data, r->text, w.len));

	/* rec_write_open without a name to drop, then the '}'. */
	buf_reset(&w);
	rec_write_open(r, 0, NULL, &w, &empty);
	buf_addch(&w, '}');
	CHECK(w.len == want.len && !memcmp(w.data, want.data, w.len));
	CHECK(empty == (f->tok[0].size == 0));

	/* rec_write_open dropping "_mlk", then a '}'. */
	buf_reset(&w);
	buf_reset(&want);
	rec_write_open(r, 0, "_mlk", &w, &empty);
	ref_compact(f, "_mlk", &want, &want_empty);
	CHECK(w.len == want.len && !memcmp(w.data, want.data, w.len));
	CHECK(empty == want_empty);
	buf_addch(&w, '}');
	check_reparse(w.data, w.len);
	{
		struct rec r3;
		struct mlk_error e = MLK_ERROR_INIT;
		rec_init(&r3);
		CHECK(rec_parse(&r3, w.data, w.len, &e) == MLK_OK);
		CHECK(rec_get(&r3, 0, "_mlk") == -1);
		rec_release(&r3);
	}

	check_strings(r, f);
	check_lookup(r, f);
	buf_release(&w);
	buf_release(&want);
}

/* ---- checks on a rejected line --------------------------------------- */

static void check_rejected(enum mlk_status st, const struct mlk_error *e)
{
	static const char *const known[] = {
		"invalid JSON", "invalid UTF-8 at byte ",
		"empty line where a record was expected",
		"record is not a JSON object", "record larger than 2 GiB",
	};
	int ok = 0;

	CHECK(st == MLK_PARTIAL);
	CHECK(e->status == MLK_PARTIAL);
	CHECK(e->msg[0] != '\0');
	for (const char *m = e->msg; *m; m++)
		CHECK(*m >= 0x20 && *m < 0x7f);
	for (size_t i = 0; i < sizeof known / sizeof *known; i++)
		if (!strncmp(e->msg, known[i], strlen(known[i])))
			ok = 1;
	CHECK(ok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* One rec for every run, so stale tokens and grown arrays from
	 * earlier lines are part of what is tested. */
	static struct rec r;
	static struct ref f;
	static int init;
	struct mlk_error e = MLK_ERROR_INIT;

	if (size > (1u << 20))
		return 0;
	if (!init) {
		rec_init(&r);
		init = 1;
	}
	int want = ref_record(&f, data, size);
	enum mlk_status st = rec_parse(&r, (const char *)data, size, &e);
	if (want != (st == MLK_OK)) {
		fprintf(stderr, "reference %s, rec_parse %s (%s)\n",
			want ? "accepts" : "rejects",
			st == MLK_OK ? "accepts" : "rejects", e.msg);
		CHECK(0);
	}
	if (st == MLK_OK)
		check_accepted(&r, &f);
	else
		check_rejected(st, &e);
	return 0;
}
