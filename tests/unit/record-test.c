/*
 * record-test — unit checks for common/record.c.
 *
 * Prints "ok N - what" or "not ok N - what" per check and exits 1 if any
 * failed.  Covers what rec_parse() accepts and rejects (the cases jsmn
 * alone lets through are the point), the strings rec_str() decodes,
 * rec_write() and rec_write_open(), rec_get() and rec_path(), and the line
 * reader, which is fed a few bytes at a time as well as all at once
 * because line-length limits are easy to get right for one and not the
 * other.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "tap.h"
#include "banned.h"


static int printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return 0;
	return 1;
}

/* ---- rec_parse: accept and reject ------------------------------------ */

static struct rec r;

static enum mlk_status parse(const char *text, size_t len,
			     struct mlk_error *e)
{
	mlk_error_clear(e);
	return rec_parse(&r, text, len, e);
}

static void accept(const char *desc, const char *text, size_t len)
{
	struct mlk_error e = MLK_ERROR_INIT;
	enum mlk_status st = parse(text, len, &e);

	if (!check(st == MLK_OK, "accepts %s", desc))
		printf("# %s\n", e.msg);
}

/* Rejected as MLK_PARTIAL, with a message naming a byte at most, never
 * the input's bytes. */
static void reject(const char *desc, const char *text, size_t len)
{
	struct mlk_error e = MLK_ERROR_INIT;
	enum mlk_status st = parse(text, len, &e);

	if (!check(st == MLK_PARTIAL && e.msg[0] && printable(e.msg),
		   "rejects %s", desc))
		printf("# status %d, message '%s'\n", st, e.msg);
}

#define ACCEPT(desc, lit) accept(desc, lit, sizeof(lit) - 1)
#define REJECT(desc, lit) reject(desc, lit, sizeof(lit) - 1)

static void test_parse(void)
{
	ACCEPT("a flat object", "{\"a\":1,\"b\":\"x\",\"c\":true}");
	ACCEPT("the empty object", "{}");
	ACCEPT("whitespace between tokens",
	       " { \"a\" : [ 1 , 2 ] ,\t\"b\" : { } }");
	ACCEPT("a trailing CR", "{\"a\":1}\r");
	ACCEPT("trailing whitespace", "{\"a\":1} \t\r\n");
	ACCEPT("every literal and number form",
	       "{\"n\":[0,-0,1.5,-2e10,3E+2,4e-2,true,false,null]}");
	ACCEPT("every escape",
	       "{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u0000\"}");
	ACCEPT("raw UTF-8 up to U+10FFFF",
	       "{\"a\":\"\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"}");
	ACCEPT("a lone surrogate escape", "{\"a\":\"\\ud800\"}");

	REJECT("a missing comma between members", "{\"a\":1 \"b\":2}");
	REJECT("a missing comma between items", "{\"a\":[1 2]}");
	REJECT("a doubled comma", "{\"a\":[1,,2]}");
	REJECT("a trailing comma", "{\"a\":1,}");
	REJECT("a doubled colon", "{\"a\"::1}");
	REJECT("a member without a value", "{\"a\"}");
	REJECT("a number as a member name", "{1:2}");
	REJECT("a leading zero", "{\"a\":01}");
	REJECT("a bare minus", "{\"a\":-}");
	REJECT("a fraction without digits", "{\"a\":1.}");
	REJECT("an exponent without digits", "{\"a\":1e+}");
	REJECT("a truncated literal", "{\"a\":tru}");
	REJECT("a literal in capitals", "{\"a\":True}");
	REJECT("a raw tab in a string", "{\"a\":\"x\ty\"}");
	REJECT("a raw newline in a member name", "{\"a\nb\":1}");
	REJECT("an unknown escape", "{\"a\":\"\\x41\"}");
	REJECT("a short \\u escape", "{\"a\":\"\\u12\"}");
	REJECT("overlong UTF-8 (2 bytes)", "{\"a\":\"\xc0\xaf\"}");
	REJECT("overlong UTF-8 (3 bytes)", "{\"a\":\"\xe0\x80\xaf\"}");
	REJECT("overlong UTF-8 (4 bytes)", "{\"a\":\"\xf0\x80\x80\xaf\"}");
	REJECT("a UTF-8 surrogate", "{\"a\":\"\xed\xa0\x80\"}");
	REJECT("UTF-8 past U+10FFFF", "{\"a\":\"\xf4\x90\x80\x80\"}");
	REJECT("a truncated UTF-8 sequence", "{\"a\":\"\xe6\x97\"}");
	REJECT("a stray continuation byte", "{\"a\":\"\x80\"}");
	REJECT("bad UTF-8 in a member name", "{\"\xff\":1}");
	REJECT("text after the object", "{\"a\":1} x");
	REJECT("a second object", "{\"a\":1}{\"b\":2}");
	REJECT("a number after the object", "{\"a\":1} 2");
	REJECT("a NUL byte after the object", "{\"a\":1}\0");
	REJECT("a NUL byte inside a string", "{\"a\":\"x\0y\"}");
	REJECT("a NUL byte between tokens", "{\"a\":1,\0\"b\":2}");
	REJECT("an array at the top", "[1,2]");
	REJECT("a string at the top", "\"a\"");
	REJECT("an empty line", "");
	REJECT("a blank line", " \t\r");
	REJECT("a truncated object", "{\"a\":[1,2");
	REJECT("a mismatched bracket", "{\"a\":[1,2}}");
	REJECT("an extra closing brace", "{\"a\":1}}");

	/* Nesting: the top object is level 0, and 512 levels below it are
	 * allowed (REC_MAX_DEPTH). */
	struct buf deep = BUF_INIT;
	buf_addstr(&deep, "{\"a\":");
	for (int i = 0; i < REC_MAX_DEPTH - 1; i++)
		buf_addch(&deep, '[');
	buf_addstr(&deep, "{}");
	for (int i = 0; i < REC_MAX_DEPTH - 1; i++)
		buf_addch(&deep, ']');
	buf_addch(&deep, '}');
	accept("nesting at the limit", deep.data, deep.len);
	buf_reset(&deep);
	buf_addstr(&deep, "{\"a\":");
	for (int i = 0; i < REC_MAX_DEPTH; i++)
		buf_addch(&deep, '[');
	buf_addstr(&deep, "1");
	for (int i = 0; i < REC_MAX_DEPTH; i++)
		buf_addch(&deep, ']');
	buf_addch(&deep, '}');
	reject("nesting past the limit", deep.data, deep.len);
	buf_release(&deep);

	/* Many tokens: the token array grows while parsing. */
	struct buf big = BUF_INIT;
	buf_addstr(&big, "{\"a\":[0");
	for (int i = 1; i < 5000; i++)
		buf_addstr(&big, ",0");
	buf_addstr(&big, "]}");
	accept("5000 items (token array grows)", big.data, big.len);
	check(r.ntok == 5003 && rec_size(&r, 2) == 5000,
	      "all 5000 items are tokens");
	buf_release(&big);

	/* The message names a byte offset, not the bytes. */
	struct mlk_error e = MLK_ERROR_INIT;
	static const char secret[] = "{\"ssn\":\"123-45-6789\",\"x\":\"\xff\"}";
	parse(secret, sizeof(secret) - 1, &e);
	check(printable(e.msg) && !strstr(e.msg, "123") &&
	      !strstr(e.msg, "ssn") && strstr(e.msg, "byte 27"),
	      "error message names the byte, not the value ('%s')", e.msg);
}

/* ---- rec_str ---------------------------------------------------------- */

static int str_is(const char *json, const char *key, const char *want,
		  size_t wantlen)
{
	struct mlk_error e = MLK_ERROR_INIT;
	struct buf b = BUF_INIT;
	int ok;

	if (parse(json, strlen(json), &e) != MLK_OK)
		return 0;
	int t = rec_get(&r, 0, key);
	ok = t > 0 && rec_str(&r, t, &b) == 0 && b.len == wantlen &&
	     !memcmp(b.data, want, wantlen);
	buf_release(&b);
	return ok;
}

static void test_str(void)
{
	check(str_is("{\"a\":\"\\u00e9\"}", "a", "\xc3\xa9", 2),
	      "rec_str decodes \\u00e9 to UTF-8");
	check(str_is("{\"a\":\"x\\\"\\\\\\/\\b\\f\\n\\r\\ty\"}", "a",
		     "x\"\\/\b\f\n\r\ty", 10),
	      "rec_str decodes the short escapes");
	check(str_is("{\"a\":\"\\ud83d\\ude00\"}", "a", "\xf0\x9f\x98\x80", 4),
	      "rec_str joins a surrogate pair");
	check(str_is("{\"a\":\"\\ud800\"}", "a", "\xef\xbf\xbd", 3),
	      "rec_str gives U+FFFD for a lone high surrogate");
	check(str_is("{\"a\":\"\\udc00x\"}", "a", "\xef\xbf\xbdx", 4),
	      "rec_str gives U+FFFD for a lone low surrogate");
	check(str_is("{\"a\":\"\\ud800\\ud800\\udc00\"}", "a",
		     "\xef\xbf\xbd\xf0\x90\x80\x80", 7),
	      "rec_str: a high surrogate before a pair is U+FFFD");
	check(str_is("{\"a\":\"\\u0000\"}", "a", "\0", 1),
	      "rec_str decodes \\u0000 to a NUL byte");
	check(str_is("{\"a\":\"plain\"}", "a", "plain", 5),
	      "rec_str copies a string without escapes");

	struct mlk_error e = MLK_ERROR_INIT;
	struct buf b = BUF_INIT;
	static const char j[] = "{\"a\":1,\"b\":\"caf\\u00e9\"}";
	parse(j, sizeof(j) - 1, &e);
	check(rec_str(&r, rec_get(&r, 0, "a"), &b) == -1,
	      "rec_str of a number is -1");
	check(rec_str_eq(&r, rec_get(&r, 0, "b"), "caf\xc3\xa9") &&
	      !rec_str_eq(&r, rec_get(&r, 0, "b"), "cafe") &&
	      !rec_str_eq(&r, rec_get(&r, 0, "a"), "1"),
	      "rec_str_eq compares the decoded string");
	buf_release(&b);
}

/* ---- rec_write and rec_write_open ------------------------------------- */

static void write_is(const char *desc, const char *json, const char *want)
{
	struct mlk_error e = MLK_ERROR_INIT;
	struct buf b = BUF_INIT;

	if (parse(json, strlen(json), &e) == MLK_OK)
		rec_write(&r, 0, &b);
	if (!check(b.data && !strcmp(b.data, want), "rec_write %s", desc))
		printf("# got '%s'\n", b.data ? b.data : "(nothing)");
	buf_release(&b);
}

static void open_is(const char *desc, const char *json, const char *drop,
		    const char *want, int want_empty)
{
	struct mlk_error e = MLK_ERROR_INIT;
	struct buf b = BUF_INIT;
	int empty = -1;

	if (parse(json, strlen(json), &e) == MLK_OK)
		rec_write_open(&r, 0, drop, &b, &empty);
	if (!check(b.data && !strcmp(b.data, want) && empty == want_empty,
		   "rec_write_open %s", desc))
		printf("# got '%s', empty %d\n", b.data ? b.data : "(nothing)",
		       empty);
	buf_release(&b);
}

static void test_write(void)
{
	write_is("drops whitespace outside strings",
		 " { \"a\" : [ 1 , { \"b\" : \"x y\" } ] ,\t\"c\" : null }\r",
		 "{\"a\":[1,{\"b\":\"x y\"}],\"c\":null}");
	write_is("keeps a compact record as it is",
		 "{\"a\":[1,{\"b\":\"x\\ty\"}],\"c\":\"\\u00e9\"}",
		 "{\"a\":[1,{\"b\":\"x\\ty\"}],\"c\":\"\\u00e9\"}");
	write_is("keeps escapes as written",
		 "{ \"k\\u0065y\" : \"a\\\"b\" }", "{\"k\\u0065y\":\"a\\\"b\"}");
	write_is("writes empty containers", "{ \"a\" : { } , \"b\" : [ ] }",
		 "{\"a\":{},\"b\":[]}");

	struct mlk_error e = MLK_ERROR_INIT;
	struct buf b = BUF_INIT;
	static const char j[] = "{ \"a\" : { \"b\" : [ 1 , 2 ] } }";
	parse(j, sizeof(j) - 1, &e);
	rec_write(&r, rec_get(&r, 0, "a"), &b);
	check(!strcmp(b.data, "{\"b\":[1,2]}"),
	      "rec_write of an inner object");
	buf_release(&b);

	open_is("without a name to drop", "{\"a\":1,\"b\":2}", NULL,
		"{\"a\":1,\"b\":2", 0);
	open_is("when the name is absent", "{\"a\":1}", "_mlk", "{\"a\":1", 0);
	open_is("drops the member", "{\"a\":1,\"_mlk\":{\"x\":2},\"b\":3}",
		"_mlk", "{\"a\":1,\"b\":3", 0);
	open_is("drops every duplicate",
		"{\"_mlk\":1,\"a\":2,\"_mlk\":{\"x\":3},\"b\":4,\"_mlk\":5}",
		"_mlk", "{\"a\":2,\"b\":4", 0);
	open_is("drops from a spaced record",
		"{ \"_mlk\" : 1 , \"a\" : [ 2 ] }", "_mlk", "{\"a\":[2]", 0);
	open_is("leaves nested members of that name",
		"{\"a\":{\"_mlk\":1}}", "_mlk", "{\"a\":{\"_mlk\":1}", 0);
	open_is("is empty when only the dropped name was there",
		"{\"_mlk\":1,\"_mlk\":2}", "_mlk", "{", 1);
	open_is("of the empty object", "{}", NULL, "{", 1);
	open_is("of the spaced empty object", " { } ", "_mlk", "{", 1);
}

/* ---- rec_get and rec_path --------------------------------------------- */

static void test_lookup(void)
{
	struct mlk_error e = MLK_ERROR_INIT;
	static const char j[] =
		"{\"period\":{\"start\":\"2020-01-01\",\"end\":null},"
		"\"a\":{\"b\":{\"c\":1}},\"x.y\":2,\"list\":[{\"k\":1}],"
		"\"dup\":1,\"dup\":2}";

	check(parse(j, sizeof(j) - 1, &e) == MLK_OK, "lookup record parses");
	int t = rec_path(&r, 0, "period.start");
	check(t > 0 && rec_type(&r, t) == REC_STRING &&
	      rec_str_eq(&r, t, "2020-01-01"), "rec_path period.start");
	t = rec_path(&r, 0, "period.end");
	size_t n;
	check(t > 0 && rec_type(&r, t) == REC_PRIMITIVE &&
	      !memcmp(rec_raw(&r, t, &n), "null", 4) && n == 4,
	      "rec_path period.end is the null literal");
	t = rec_path(&r, 0, "a.b.c");
	check(t > 0 && rec_type(&r, t) == REC_PRIMITIVE &&
	      !memcmp(rec_raw(&r, t, &n), "1", 1) && n == 1,
	      "rec_path three levels down");
	check(rec_path(&r, 0, "a.b") == rec_get(&r, rec_get(&r, 0, "a"), "b"),
	      "rec_path agrees with rec_get step by step");
	check(rec_path(&r, 0, "period.missing") == -1,
	      "rec_path to a missing member is -1");
	check(rec_path(&r, 0, "period.start.x") == -1,
	      "rec_path through a string is -1");
	check(rec_path(&r, 0, "list.k") == -1,
	      "rec_path does not step into arrays");
	check(rec_path(&r, 0, "x.y") == -1 && rec_get(&r, 0, "x.y") > 0,
	      "rec_path splits at every dot; rec_get does not");
	check(rec_path(&r, 0, "") == 0, "rec_path of nothing is where it starts");
	t = rec_get(&r, 0, "dup");
	check(t > 0 && !memcmp(rec_raw(&r, t, &n), "1", 1),
	      "rec_get finds the first of duplicate members");
	check(rec_get(&r, 0, "start") == -1,
	      "rec_get does not look inside members");
	check(rec_get(&r, rec_get(&r, 0, "list"), "k") == -1,
	      "rec_get on an array is -1");
	check(rec_get(&r, -1, "a") == -1, "rec_get on no token is -1");

	/* The walk record.h shows visits every member once, in order. */
	static const char *const keys[] = {
		"period", "a", "x.y", "list", "dup", "dup",
	};
	size_t m = 0;
	int ok = 1;
	for (int k = 1; k < r.skip[0]; k = r.skip[k + 1], m++)
		ok = ok && m < 6 && rec_key_eq(&r, k, keys[m]);
	check(ok && m == 6 && rec_size(&r, 0) == 6,
	      "walking members with skip[] visits each once");
}

/* ---- the line reader -------------------------------------------------- */


/*
 * Read all of in with lr_next and compare with want, one entry per call:
 * "<lineno>@<offset>:<line>", "ERR:<line>:<msg>" or "EOF".  Runs with
 * reads of 1, 3 and 7 bytes and with everything in one read.
 */
static void lr_case(const char *desc, const char *in, size_t len,
		    size_t max_line, const char *const *want, size_t nwant)
{
	static const size_t chunks[] = { 1, 3, 7, 1 << 20 };

	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		struct mem m = { in, len, 0, chunks[c], 0 };
		struct linereader lr;
		char seen[2048];
		size_t i, slen = 0;
		int ok = 1;

		lr_init(&lr, mem_read, &m);
		if (max_line)
			lr.max_line = max_line;
		seen[0] = '\0';
		for (i = 0; i < nwant + 2; i++) {
			struct mlk_error e = MLK_ERROR_INIT;
			const char *line;
			size_t n;
			char one[600];
			int rc = lr_next(&lr, &line, &n, &e);

			if (rc == 0)
				snprintf(one, sizeof(one), "EOF");
			else if (rc < 0)
				snprintf(one, sizeof(one), "ERR:%lld:%s",
					 e.line, e.msg);
			else
				snprintf(one, sizeof(one), "%lld@%llu:%.*s",
					 lr.lineno, lr.offset, (int)n, line);
			if (rc > 0 && line[n] != '\0')
				ok = 0;
			if (i >= nwant || strcmp(one, want[i]) != 0)
				ok = 0;
			if (slen < sizeof(seen) - 1) {
				int k = snprintf(seen + slen,
						 sizeof(seen) - slen, " {%s}",
						 one);
				if (k > 0)
					slen += (size_t)k;
				if (slen >= sizeof(seen))
					slen = sizeof(seen) - 1;
			}
			if (rc == 0)
				break;
		}
		if (i != nwant - 1)
			ok = 0;
		lr_release(&lr);
		if (!check(ok, "lr_next %s (reads of %zu)", desc, chunks[c]))
			printf("# got:%s\n", seen);
	}
}

#define LR(desc, in, max, ...) do { \
	static const char *const w_[] = { __VA_ARGS__ }; \
	lr_case(desc, in, sizeof(in) - 1, max, w_, \
		sizeof(w_) / sizeof(w_[0])); \
} while (0)

static void test_linereader(void)
{
	LR("plain lines", "a\nbc\n", 0, "1@0:a", "2@2:bc", "EOF");
	LR("last line without newline", "a\nbc", 0, "1@0:a", "2@2:bc", "EOF");
	LR("keeps CR and blank lines", "a\r\n\nb\r\n", 0,
	   "1@0:a\r", "2@3:", "3@4:b\r", "EOF");
	LR("empty input", "", 0, "EOF");
	LR("a line of exactly max_line bytes", "0123456789\nab\n", 10,
	   "1@0:0123456789", "2@11:ab", "EOF");
	LR("a line over max_line is one error, then skipped",
	   "short\n0123456789abcdefghij\nafter\n", 10,
	   "1@0:short", "ERR:2:line longer than 10 bytes", "3@27:after",
	   "EOF");
	LR("a line just over max_line", "0123456789a\nok\n", 10,
	   "ERR:1:line longer than 10 bytes", "2@12:ok", "EOF");
	LR("two long lines in a row", "0123456789ab\n0123456789ab\nok\n", 10,
	   "ERR:1:line longer than 10 bytes",
	   "ERR:2:line longer than 10 bytes", "3@26:ok", "EOF");
	LR("a long last line without newline", "ok\n0123456789abcdef", 10,
	   "1@0:ok", "ERR:2:line longer than 10 bytes", "EOF");
}

int main(void)
{
	rec_init(&r);
	test_parse();
	test_str();
	test_write();
	test_lookup();
	test_linereader();
	rec_release(&r);
	return tap_done();
}
