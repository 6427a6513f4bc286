/*
 * csv-yaml-test — unit checks for common/csv.c and common/yamltree.c.
 *
 * Prints "ok N - what" or "not ok N - what" per check and exits 1 if any
 * failed.  CSV inputs are fed through a callback that hands out a few
 * bytes at a time as well as all at once, because most reader bugs live
 * where a record straddles two reads.
 *
 * The Synthea CSV sample is read from $MLK_SYNTHEA_CSV, by default
 * ../shared/data/synthea-csv; the check is skipped when it is absent.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csv.h"
#include "yamltree.h"
#include "tap.h"
#include "banned.h"


/* ---- CSV ------------------------------------------------------------ */


/* One record flattened to text: fields joined by '|', a quoted field in
 * brackets, an error as "ERR:<line>:<msg>", end as "EOF". */
struct got {
	char text[512];
	long long line;
	unsigned long long offset;
	size_t raw_len;
	char raw[128];
	size_t nf;
};

static int next(struct csv_reader *r, struct got *g)
{
	struct csv_field *f;
	size_t nf, len = 0;
	struct mlk_error e = MLK_ERROR_INIT;
	int rc = csv_next(r, &f, &nf, &e);

	memset(g, 0, sizeof(*g));
	g->line = r->line;
	g->offset = r->offset;
	g->raw_len = r->raw_len;
	if (r->raw && r->raw_len < sizeof(g->raw))
		memcpy(g->raw, r->raw, r->raw_len);
	if (rc == 0) {
		snprintf(g->text, sizeof(g->text), "EOF");
		return rc;
	}
	if (rc < 0) {
		snprintf(g->text, sizeof(g->text), "ERR:%lld:%.400s", e.line,
			 e.msg);
		return rc;
	}
	g->nf = nf;
	for (size_t i = 0; i < nf && len < sizeof(g->text) - 8; i++) {
		int n = snprintf(g->text + len, sizeof(g->text) - len,
				 "%s%s%.*s%s", i ? "|" : "",
				 f[i].quoted ? "[" : "", (int)f[i].len,
				 f[i].p, f[i].quoted ? "]" : "");
		if (n > 0)
			len += (size_t)n;
		if (len >= sizeof(g->text))
			len = sizeof(g->text) - 1;
	}
	return rc;
}

/*
 * Read all of in and compare with want, one entry per csv_next() call
 * ("<line>@<offset>:<text>").  Runs once with reads of one byte, once
 * with reads of 3 and once whole.
 */
static void csv_case(const char *desc, const char *in, size_t len,
		     const char *const *want, size_t nwant)
{
	static const size_t chunks[] = { 1, 3, 1 << 20 };

	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		struct mem m = { in, len, 0, chunks[c], 0 };
		struct csv_reader r;
		char seen[2048];
		size_t i, slen = 0;
		int ok = 1;

		csv_init(&r, mem_read, &m);
		seen[0] = '\0';
		for (i = 0; i < nwant + 1; i++) {
			struct got g;
			char one[600];
			int rc = next(&r, &g);

			if (rc == 0)
				snprintf(one, sizeof(one), "EOF");
			else
				snprintf(one, sizeof(one), "%lld@%llu:%s",
					 g.line, g.offset, g.text);
			if (i >= nwant || strcmp(one, want[i]) != 0)
				ok = 0;
			if (slen < sizeof(seen) - 1) {
				int n = snprintf(seen + slen,
						 sizeof(seen) - slen, " {%s}",
						 one);
				if (n > 0)
					slen += (size_t)n;
			}
			if (rc == 0)
				break;
		}
		if (i != nwant - 1)
			ok = 0;
		csv_release(&r);
		if (!check(ok, "csv %s (reads of %zu)", desc, chunks[c]))
			printf("# got:%s\n", seen);
	}
}

#define CASE(desc, in, ...) do { \
	static const char *const w_[] = { __VA_ARGS__ }; \
	csv_case(desc, in, sizeof(in) - 1, w_, sizeof(w_) / sizeof(w_[0])); \
} while (0)

static void test_csv_cases(void)
{
	CASE("plain records", "a,b,c\n1,2,3\n",
	     "1@0:a|b|c", "2@6:1|2|3", "EOF");
	CASE("last record without newline", "a,b\nc,d",
	     "1@0:a|b", "2@4:c|d", "EOF");
	CASE("quoted newline keeps one record",
	     "id,note\n1,\"line one\nline two\"\n2,x\n",
	     "1@0:id|note", "2@8:1|[line one\nline two]", "4@30:2|x", "EOF");
	CASE("crlf records", "a,b\r\n\"x\r\ny\",z\r\nlast\r\n",
	     "1@0:a|b", "2@5:[x\r\ny]|z", "4@15:last", "EOF");
	CASE("lone cr ends a record", "a\rb,\"c\rd\"\re",
	     "1@0:a", "2@2:b|[c\rd]", "4@10:e", "EOF");
	CASE("bom skipped", "\xEF\xBB\xBFh1,h2\nv1,v2\n",
	     "1@3:h1|h2", "2@9:v1|v2", "EOF");
	CASE("bom only at the start", "a\n\xEF\xBB\xBF" "b\n",
	     "1@0:a", "2@2:\xEF\xBB\xBF" "b", "EOF");
	CASE("doubled quotes", "\"say \"\"hi\"\"\",\"\"\"\",\"\"\n",
	     "1@0:[say \"hi\"]|[\"]|[]", "EOF");
	CASE("empty fields", ",a,,\n,\n",
	     "1@0:|a||", "2@5:|", "EOF");
	CASE("trailing delimiter at end of input", "a,",
	     "1@0:a|", "EOF");
	CASE("blank lines skipped", "a\n\n\r\n\rb\n\n",
	     "1@0:a", "5@6:b", "EOF");
	CASE("quoted empty field is not blank", "\"\"\n",
	     "1@0:[]", "EOF");
	CASE("ragged rows are not an error", "a,b,c\n1\n1,2,3,4\n",
	     "1@0:a|b|c", "2@6:1", "3@8:1|2|3|4", "EOF");
	CASE("quote in unquoted field, then recovery",
	     "a,b\"c,d\nok,1\n",
	     "1@0:ERR:1:field 2: quote in unquoted field", "2@8:ok|1", "EOF");
	CASE("character after closing quote, then recovery",
	     "\"ab\"x,1\nnext\n",
	     "1@0:ERR:1:field 1: character after closing quote", "2@8:next",
	     "EOF");
	CASE("recovery keeps later quoted newlines in the bad record",
	     "a,b\"c,\"x\ny\"\nz\n",
	     "1@0:ERR:1:field 2: quote in unquoted field", "3@12:z", "EOF");
	CASE("unterminated quote at end of input", "a\n\"open,\nmore",
	     "1@0:a", "2@2:ERR:2:field 1: unterminated quoted field", "EOF");
	CASE("empty input", "", "EOF");
	CASE("only blank lines", "\n\r\n\n", "EOF");
}

static void test_csv_raw(void)
{
	static const char in[] = "x,\"a\"\"b\nc\"\r\nbad\"q,1\r\n";
	struct mem m = { in, sizeof(in) - 1, 0, 2, 0 };
	struct csv_reader r;
	struct got g;

	csv_init(&r, mem_read, &m);
	next(&r, &g);
	check(g.raw_len == 10 && memcmp(g.raw, "x,\"a\"\"b\nc\"", 10) == 0,
	      "csv raw is the record as written, without its terminator");
	next(&r, &g);
	check(strncmp(g.text, "ERR:", 4) == 0 && g.raw_len == 7 &&
	      memcmp(g.raw, "bad\"q,1", 7) == 0 && g.offset == 12,
	      "csv raw and offset of a malformed record");
	csv_release(&r);
}

static void test_csv_delim_and_nul(void)
{
	static const char in[] = "a\tb,c\t\"x\0y\"\n";
	struct mem m = { in, sizeof(in) - 1, 0, 1 << 20, 0 };
	struct csv_reader r;
	struct csv_field *f;
	size_t nf;
	struct mlk_error e = MLK_ERROR_INIT;
	int rc;

	csv_init(&r, mem_read, &m);
	r.delim = '\t';
	rc = csv_next(&r, &f, &nf, &e);
	check(rc == 1 && nf == 3 && f[1].len == 3 &&
	      memcmp(f[1].p, "b,c", 3) == 0,
	      "csv tab delimiter leaves commas alone");
	check(rc == 1 && nf == 3 && f[2].len == 3 &&
	      memcmp(f[2].p, "x\0y", 3) == 0 && f[2].p[3] == '\0',
	      "csv NUL inside a quoted field is kept; length counts it");
	csv_release(&r);
}

static void test_csv_read_error(void)
{
	static const char in[] = "a,b\nc,d\n";
	struct mem m = { in, sizeof(in) - 1, 0, 4, 4 };
	struct csv_reader r;
	struct csv_field *f;
	size_t nf;
	struct mlk_error e = MLK_ERROR_INIT;
	int rc1, rc2, rc3;

	csv_init(&r, mem_read, &m);
	rc1 = csv_next(&r, &f, &nf, &e);
	rc2 = csv_next(&r, &f, &nf, &e);
	check(rc1 == 1 && rc2 == -1 && e.status == MLK_SYSTEM,
	      "csv read error gives -1 with MLK_SYSTEM");
	rc3 = csv_next(&r, &f, &nf, &e);
	check(rc3 == 0, "csv reader stops after a read error");
	csv_release(&r);
}

/* A 5 MB unquoted field, a quoted one with line breaks, then a normal
 * record; read 64 KiB at a time as from a pipe. */
static void test_csv_big_record(void)
{
	const size_t big = 5 * 1000 * 1000;
	struct buf_s {
		char *p;
		size_t len;
	} b;
	struct mem m;
	struct csv_reader r;
	struct csv_field *f;
	size_t nf, i;
	struct mlk_error e = MLK_ERROR_INIT;
	int rc, ok;

	b.p = malloc(2 * big + 64);
	if (!b.p) {
		check(0, "csv 5 MB record (out of memory)");
		return;
	}
	b.len = 0;
	memset(b.p, 'x', big);
	b.len = big;
	b.p[b.len++] = ',';
	b.p[b.len++] = '"';
	for (i = 0; i < big; i++)
		b.p[b.len++] = i % 1000 == 999 ? '\n' : 'q';
	b.p[b.len++] = '"';
	memcpy(b.p + b.len, "\nafter,1\n", 9);
	b.len += 9;

	m = (struct mem){ b.p, b.len, 0, 65536, 0 };
	csv_init(&r, mem_read, &m);
	rc = csv_next(&r, &f, &nf, &e);
	ok = rc == 1 && nf == 2 && f[0].len == big && f[1].len == big &&
	     f[1].quoted && f[0].p[big - 1] == 'x' && f[1].p[999] == '\n';
	check(ok, "csv 5 MB fields read whole");
	check(rc == 1 && r.raw_len == 2 * big + 3 &&
	      memcmp(r.raw, b.p, r.raw_len) == 0,
	      "csv raw of a 5 MB record matches the input");
	rc = csv_next(&r, &f, &nf, &e);
	check(rc == 1 && nf == 2 && r.line == (long long)(big / 1000) + 2 &&
	      memcmp(f[0].p, "after", 5) == 0,
	      "csv line count after embedded newlines in a big record");
	csv_release(&r);

	/* The same over a small limit: refused, memory not spent, and the
	 * reader carries on with the next record. */
	m = (struct mem){ b.p, b.len, 0, 65536, 0 };
	csv_init(&r, mem_read, &m);
	r.max_record = 100000;
	rc = csv_next(&r, &f, &nf, &e);
	check(rc == -1 && e.line == 1 && r.raw == NULL &&
	      strstr(e.msg, "longer than 100000") != NULL,
	      "csv record over max_record is an error");
	rc = csv_next(&r, &f, &nf, &e);
	check(rc == 1 && nf == 2 && memcmp(f[0].p, "after", 5) == 0 &&
	      r.offset == 2 * big + 4 && r.raw_len == 7,
	      "csv reader recovers after an over-long record");
	csv_release(&r);
	free(b.p);
}

static ssize_t fd_read(void *ctx, void *p, size_t n)
{
	ssize_t k;

	do
		k = read(*(int *)ctx, p, n);
	while (k < 0 && errno == EINTR);
	return k;
}

/* Every record of each Synthea file has as many fields as its header. */
static void test_csv_synthea(void)
{
	const char *dir = getenv("MLK_SYNTHEA_CSV");
	struct dirent *de;
	DIR *d;
	int files = 0;

	if (!dir)
		dir = "../shared/data/synthea-csv";
	d = opendir(dir);
	if (!d) {
		ntests++;
		printf("ok %d - # SKIP synthea csv: no %s\n", ntests, dir);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name);
		char path[4096];
		struct csv_reader r;
		struct csv_field *f;
		size_t nf, header = 0;
		struct mlk_error e = MLK_ERROR_INIT;
		long long records = 0, bad = 0, bad_line = 0;
		int fd, rc;

		if (nl < 5 || strcmp(de->d_name + nl - 4, ".csv") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0) {
			check(0, "synthea %s: cannot open", de->d_name);
			continue;
		}
		files++;
		csv_init(&r, fd_read, &fd);
		while ((rc = csv_next(&r, &f, &nf, &e)) != 0) {
			if (rc < 0 || (records && nf != header)) {
				if (!bad++)
					bad_line = r.line;
			} else if (!records) {
				header = nf;
			}
			records++;
		}
		csv_release(&r);
		close(fd);
		if (!check(records > 1 && bad == 0 && header > 1,
			   "synthea %s: %lld records, each of %zu fields",
			   de->d_name, records, header))
			printf("# %lld bad records, the first at line %lld\n",
			       bad, bad_line);
	}
	closedir(d);
	check(files > 0, "synthea csv: found %d files in %s", files, dir);
}

/* ---- YAML ----------------------------------------------------------- */

static struct ynode *yload(const char *text, struct mlk_error *e)
{
	struct ynode *root = NULL;

	mlk_error_clear(e);
	if (ynode_load_mem("t.yaml", text, strlen(text), &root, e) != MLK_OK)
		return NULL;
	return root;
}

/* The load must fail at line:col with a message containing what. */
static void yaml_error(const char *desc, const char *text, long long line,
		       int col, const char *what)
{
	struct mlk_error e;
	struct ynode *root = yload(text, &e);
	char prefix[32];
	int ok;

	snprintf(prefix, sizeof(prefix), "column %d: ", col);
	ok = !root && e.status == MLK_USAGE && e.line == line &&
	     strcmp(e.file, "t.yaml") == 0 &&
	     strncmp(e.msg, prefix, strlen(prefix)) == 0 &&
	     strstr(e.msg, what) != NULL;
	if (!check(ok, "yaml %s: error at %lld:%d", desc, line, col))
		printf("# got %lld: %s\n", e.line, e.msg);
	ynode_free(root);
}

static void test_yaml_basic(void)
{
	struct mlk_error e;
	struct ynode *root = yload("name: demo\n"
				   "list:\n"
				   "  - one\n"
				   "  - \"two\"\n"
				   "nested: {a: {b: deep}}\n"
				   "text: |\n"
				   "  kept\n", &e);
	const struct ynode *list, *nested;

	if (!check(root != NULL, "yaml loads a small document")) {
		printf("# %lld: %s\n", e.line, e.msg);
		return;
	}
	check(root->type == YNODE_MAP && root->n == 4 &&
	      root->line == 1 && root->col == 1, "yaml root is a map at 1:1");
	check(ynode_str(root, "name") &&
	      strcmp(ynode_str(root, "name"), "demo") == 0,
	      "yaml ynode_str finds a scalar");
	list = ynode_get(root, "list");
	check(list && list->type == YNODE_SEQ && list->n == 2 &&
	      !list->items[0]->quoted && list->items[1]->quoted &&
	      strcmp(list->items[1]->scalar, "two") == 0 &&
	      list->items[1]->line == 4 && list->items[1]->col == 5,
	      "yaml sequence items, quoting and positions");
	nested = ynode_get(ynode_get(root, "nested"), "a");
	check(ynode_str(nested, "b") &&
	      strcmp(ynode_str(nested, "b"), "deep") == 0,
	      "yaml nested flow maps");
	check(ynode_str(root, "list") == NULL && ynode_get(root, "nope") ==
	      NULL && ynode_get(list, "x") == NULL,
	      "yaml lookups of absent keys and on non-maps give NULL");
	check(ynode_str(root, "text") &&
	      strcmp(ynode_str(root, "text"), "kept\n") == 0 &&
	      ynode_get(root, "text")->quoted,
	      "yaml block scalar counts as quoted");
	ynode_free(root);

	root = yload("", &e);
	check(root && root->type == YNODE_MAP && root->n == 0,
	      "yaml empty input gives an empty map");
	ynode_free(root);
	root = yload("# only a comment\n---\n", &e);
	check(root && root->type == YNODE_MAP && root->n == 0,
	      "yaml a null document gives an empty map");
	ynode_free(root);
	root = yload("a: 1\n---\n[unclosed\n", &e);
	check(root && ynode_str(root, "a") && root->n == 1,
	      "yaml only the first document is read");
	ynode_free(root);
}

static void test_yaml_bool_null(void)
{
	struct mlk_error e;
	struct ynode *root = yload("t1: true\nt2: YES\nt3: On\n"
				   "f1: False\nf2: no\nf3: OFF\n"
				   "q: \"yes\"\nbad: maybe\nnum: 1\n"
				   "map: {a: b}\nnul:\n"
				   "n1: ~\nn2: null\nn3: NULL\nn4:\n"
				   "s1: \"\"\ns2: 'null'\ns3: nil\n", &e);

	if (!check(root != NULL, "yaml loads booleans and nulls"))
		return;
	check(ynode_bool(root, "t1", 0) == 1 && ynode_bool(root, "t2", 0) == 1 &&
	      ynode_bool(root, "t3", 0) == 1,
	      "yaml true/yes/on in any case are true");
	check(ynode_bool(root, "f1", 1) == 0 && ynode_bool(root, "f2", 1) == 0 &&
	      ynode_bool(root, "f3", 1) == 0,
	      "yaml false/no/off in any case are false");
	check(ynode_bool(root, "q", 0) == 1, "yaml a quoted \"yes\" is true");
	check(ynode_bool(root, "absent", 7) == 7 &&
	      ynode_bool(root, "absent", 0) == 0,
	      "yaml an absent boolean gives the default");
	check(ynode_bool(root, "bad", 0) == -1 &&
	      ynode_bool(root, "num", 0) == -1 &&
	      ynode_bool(root, "map", 0) == -1 &&
	      ynode_bool(root, "nul", 0) == -1,
	      "yaml maybe, 1, a map and null are not booleans");
	check(ynode_is_null(ynode_get(root, "n1")) &&
	      ynode_is_null(ynode_get(root, "n2")) &&
	      ynode_is_null(ynode_get(root, "n3")) &&
	      ynode_is_null(ynode_get(root, "n4")),
	      "yaml ~, null, NULL and empty are null");
	check(!ynode_is_null(ynode_get(root, "s1")) &&
	      !ynode_is_null(ynode_get(root, "s2")) &&
	      !ynode_is_null(ynode_get(root, "s3")) &&
	      !ynode_is_null(ynode_get(root, "map")) && !ynode_is_null(NULL),
	      "yaml quoted empty, quoted null, nil and maps are not null");
	ynode_free(root);
}

static void test_yaml_aliases(void)
{
	struct mlk_error e;
	struct ynode *root = yload("base: &b {x: 1, y: [a, b]}\n"
				   "copy: *b\n"
				   "&k name: v\n"
				   "keycopy: *k\n"
				   "&s one: &s two\n"
				   "latest: *s\n", &e);
	const struct ynode *base, *copy;

	if (!check(root != NULL, "yaml loads anchors and aliases")) {
		printf("# %lld: %s\n", e.line, e.msg);
		return;
	}
	base = ynode_get(root, "base");
	copy = ynode_get(root, "copy");
	check(copy && copy != base && copy->type == YNODE_MAP &&
	      copy->n == 2 && ynode_str(copy, "x") &&
	      strcmp(ynode_str(copy, "x"), "1") == 0 &&
	      ynode_get(copy, "y")->n == 2 &&
	      ynode_get(copy, "y") != ynode_get(base, "y"),
	      "yaml an alias is a deep copy");
	check(copy && copy->line == 2 && copy->col == 7 &&
	      ynode_get(copy, "y")->line == 1,
	      "yaml an alias copy sits where the alias was written");
	check(ynode_str(root, "keycopy") &&
	      strcmp(ynode_str(root, "keycopy"), "name") == 0,
	      "yaml an anchored key can be aliased");
	check(ynode_str(root, "latest") &&
	      strcmp(ynode_str(root, "latest"), "two") == 0,
	      "yaml a redefined anchor takes its latest value");
	ynode_free(root);

	/* 10^6 nodes from a few lines: refused, not expanded. */
	yaml_error("alias bomb",
		   "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
		   "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
		   "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
		   "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
		   "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
		   5, 36, "more than 100000 nodes");
	/* Few nodes but much text: 70 copies of a 1 MB scalar. */
	{
		size_t big = 1 << 20, n = 0;
		char *text = malloc(big + 400);

		if (text) {
			memcpy(text, "a: &a ", 6);
			n = 6;
			memset(text + n, 'x', big);
			n += big;
			memcpy(text + n, "\nb: [", 5);
			n += 5;
			for (int i = 0; i < 70; i++) {
				memcpy(text + n, i ? ", *a" : "*a", i ? 4 : 2);
				n += i ? 4 : 2;
			}
			memcpy(text + n, "]\n", 3);
			yaml_error("aliases of a long scalar", text, 2, 261,
				   "aliases expand to too much text");
			free(text);
		}
	}
	yaml_error("undefined alias", "a: 1\nb: [1, *nope]\n", 2, 8,
		   "undefined alias 'nope'");
	yaml_error("alias inside its own anchor", "a: &x [1, *x]\n", 1, 11,
		   "undefined alias");
}

static void test_yaml_errors(void)
{
	yaml_error("unclosed flow sequence", "a: 1\nb: [1, 2\nc: 3\n", 3, 2,
		   "did not find expected ',' or ']'");
	yaml_error("bad indentation", "a: 1\n b: 2\n", 2, 3,
		   "mapping values are not allowed");
	yaml_error("tab indentation", "a:\n\tb: 2\n", 2, 1,
		   "cannot start any token");
	yaml_error("missing colon", "a: b\nc\n", 3, 1,
		   "could not find expected ':'");
	yaml_error("control character", "a: ok\nb: \x01\n", 2, 4,
		   "control characters");
	yaml_error("invalid utf-8", "a: ok\nbb: x\xff\n", 2, 6, "UTF-8");
	yaml_error("map key that is a sequence", "? [1, 2]\n: v\n", 1, 3,
		   "mapping key is not a scalar");
	yaml_error("map key that is a map", "{a: 1}: v\n", 1, 1,
		   "mapping key is not a scalar");
	yaml_error("map key aliasing a sequence", "a: &s [1]\n*s : v\n", 2, 1,
		   "mapping key is not a scalar");
	yaml_error("duplicate key", "a: 1\nb: 2\n  \nb: 3\n", 4, 1,
		   "duplicate key 'b'");
	yaml_error("NUL in a scalar", "a: \"x\\0y\"\n", 1, 4, "NUL");

	{
		char deep[2100];
		size_t n = 0;
		for (int i = 0; i < 1000; i++)
			deep[n++] = '[';
		for (int i = 0; i < 1000; i++)
			deep[n++] = ']';
		deep[n] = '\0';
		yaml_error("nesting too deep", deep, 1, 257, "nesting deeper");
	}
}

static void test_yaml_file(void)
{
	char path[] = "/tmp/mlk-yaml-test-XXXXXX";
	struct mlk_error e = MLK_ERROR_INIT;
	struct ynode *root = NULL;
	enum mlk_status st;
	int fd = mkstemp(path);
	static const char text[] = "ok: yes\nbroken: [\n";

	if (fd < 0 || write(fd, text, sizeof(text) - 1) !=
	    (ssize_t)(sizeof(text) - 1)) {
		check(0, "yaml file: cannot write %s", path);
		if (fd >= 0)
			close(fd);
		return;
	}
	close(fd);
	st = ynode_load_file(path, &root, &e);
	check(st == MLK_USAGE && !root && strcmp(e.file, path) == 0 &&
	      e.line == 3 && strncmp(e.msg, "column 1: ", 10) == 0,
	      "yaml file error names the file, line and column");
	unlink(path);

	st = ynode_load_file(path, &root, &e);
	check(st == MLK_SYSTEM && !root && strcmp(e.file, path) == 0,
	      "yaml missing file is MLK_SYSTEM");
}

int main(void)
{
	test_csv_cases();
	test_csv_raw();
	test_csv_delim_and_nul();
	test_csv_read_error();
	test_csv_big_record();
	test_csv_synthea();
	test_yaml_basic();
	test_yaml_bool_null();
	test_yaml_aliases();
	test_yaml_errors();
	test_yaml_file();
	return tap_done();
}
