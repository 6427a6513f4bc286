/*
 * expect-test — unit checks for common/expect.c: dates, paths, each kind's
 * counts, the spill of unique keys to disk, references in either order,
 * and errors naming the YAML line.
 *
 * Prints "ok N - what" or "not ok N - what" per check and exits 1 if any
 * failed.  No lake is needed: the kinds that read one are not used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "expect.h"
#include "tap.h"
#include "banned.h"

/* 2026-06-01T00:00:00Z */
#define NOW 1780272000

/* Run YAML over NDJSON lines; the report in out.  0 or a status. */
static int run(const char *yaml, const char *lines, struct buf *out,
	       struct expect_summary *sum, struct mlk_error *e)
{
	struct expect_set *s;
	enum mlk_status st = expect_load_mem("t.yaml", yaml, strlen(yaml), &s,
					     e);
	if (st != MLK_OK)
		return st;
	struct expect_env env = { NULL, NOW, NULL, NULL, NULL };
	st = expect_prepare(s, &env, e);
	long long pos = 0;
	for (const char *p = lines; st == MLK_OK && *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		expect_record(s, p, n, ++pos);
		p += n + (nl != NULL);
	}
	if (st == MLK_OK)
		st = expect_finish(s, e);
	if (st == MLK_OK) {
		buf_reset(out);
		expect_report(s, "lines", NULL, out, sum);
	}
	expect_free(s);
	return st;
}

/* The "failed" count and first lines of expectation NAME in a report. */
static const char *entry(const struct buf *out, const char *name)
{
	static char got[256];
	char key[80];
	snprintf(key, sizeof key, "{\"name\":\"%s\"", name);
	const char *p = strstr(out->data, key);
	if (!p)
		return "absent";
	const char *f = strstr(p, "\"failed\":");
	const char *l = strstr(p, "\"first_lines\":");
	const char *end = l ? strchr(l, ']') : NULL;
	if (!f || !l || !end)
		return "malformed";
	snprintf(got, sizeof got, "%lld %.*s", strtoll(f + 9, NULL, 10),
		 (int)(end - l - 15), l + 15);
	return got;
}

static void dates(void)
{
	struct buf out = BUF_INIT;
	struct expect_summary sum;
	struct mlk_error e = MLK_ERROR_INIT;
	const char *yaml =
		"expectations:\n"
		"  - {name: d, kind: type, field: v, type: date}\n"
		"  - {name: dt, kind: type, field: v, type: datetime}\n"
		"  - {name: past, kind: range, field: v, max: now}\n"
		"  - {name: after, kind: range, field: v, min: '2000-01-01'}\n";
	const char *lines =
		"{\"v\":\"2024-02-29\"}\n"                  /* 1 ok */
		"{\"v\":\"2023-02-29\"}\n"                  /* 2 no such day */
		"{\"v\":\"2024-13-01\"}\n"                  /* 3 no month 13 */
		"{\"v\":\"2024-01-01T10:00:00.123+02:00\"}\n" /* 4 datetime */
		"{\"v\":\"2026-06-01T01:00:00+02:00\"}\n"   /* 5 23:00Z: past */
		"{\"v\":\"2026-06-01T00:00:01Z\"}\n"        /* 6 a second on */
		"{\"v\":\"1999\"}\n"                        /* 7 partial */
		"{\"v\":\"2024-01-01T25:00\"}\n"            /* 8 no hour 25 */
		"{\"v\":null}\n";                           /* 9 null: skipped */
	check(run(yaml, lines, &out, &sum, &e) == MLK_OK, "dates: runs");
	check(!strcmp(entry(&out, "d"), "6 2,3,4,5,6,8"),
	      "date: real days only, no time (%s)", entry(&out, "d"));
	check(!strcmp(entry(&out, "dt"), "3 2,3,8"),
	      "datetime: date or instant with zone (%s)", entry(&out, "dt"));
	check(!strcmp(entry(&out, "past"), "4 2,3,6,8"),
	      "max: now compares instants in UTC (%s)", entry(&out, "past"));
	check(!strcmp(entry(&out, "after"), "4 2,3,7,8"),
	      "min: a date; partial dates by their first day (%s)",
	      entry(&out, "after"));
	check(sum.records == 9 && !sum.pass && sum.failed_blocking == 4,
	      "summary counts");
	buf_release(&out);
}

static void ages_and_paths(void)
{
	struct buf out = BUF_INIT;
	struct expect_summary sum;
	struct mlk_error e = MLK_ERROR_INIT;
	const char *yaml =
		"expectations:\n"
		"  - {name: age, kind: age, field: b, min: 0, max: 120}\n"
		"  - {name: codes, kind: in_set, field: 'c.coding[*].code',\n"
		"     values: [x, y], where: {t: C}}\n"
		"  - {name: second, kind: required, field: 'c.coding[1].code',\n"
		"     where: {t: C}}\n"
		"  - {name: num, kind: range, field: n, min: 1, max: 2}\n"
		"  - {name: share, kind: null_share, field: n, max: 0.5}\n";
	const char *lines =
		"{\"b\":\"1906-06-01\",\"t\":\"C\",\"c\":{\"coding\":"
		"[{\"code\":\"x\"},{\"code\":\"y\"}]},\"n\":1}\n"
		"{\"b\":\"1905-06-01\",\"t\":\"C\",\"c\":{\"coding\":"
		"[{\"code\":\"z\"}]},\"n\":\"2.5\"}\n"
		"{\"b\":\"2026-06-02\",\"t\":\"D\",\"c\":{\"coding\":"
		"[{\"code\":\"z\"}]}}\n"
		"{\"b\":\"2026-06-01\",\"n\":true}\n";
	check(run(yaml, lines, &out, &sum, &e) == MLK_OK, "ages: runs");
	check(!strcmp(entry(&out, "age"), "2 2,3"),
	      "120 on the day, 121 a year before, unborn fails (%s)",
	      entry(&out, "age"));
	check(!strcmp(entry(&out, "codes"), "1 2"),
	      "[*] reaches every item, where selects (%s)",
	      entry(&out, "codes"));
	check(!strcmp(entry(&out, "second"), "1 2"),
	      "[1] is the second item (%s)", entry(&out, "second"));
	check(!strcmp(entry(&out, "num"), "2 2,4"),
	      "numeric strings count, booleans do not (%s)",
	      entry(&out, "num"));
	check(strstr(out.data, "\"share\":0.25") != NULL &&
	      strstr(out.data, "\"name\":\"share\",\"kind\":\"null_share\","
		     "\"severity\":\"blocking\",\"field\":\"n\",\"pass\":true")
	      != NULL, "null share 1 of 4 is under 0.5");
	check(!strstr(out.data, "1906") && !strstr(out.data, "\"z\""),
	      "the report holds no value");
	buf_release(&out);
}

static void unique_spill(void)
{
	struct buf out = BUF_INIT, in = BUF_INIT;
	struct expect_summary sum;
	struct mlk_error e = MLK_ERROR_INIT;
	const char *yaml =
		"expectations:\n"
		"  - {name: u, kind: unique, field: k}\n"
		"  - {name: uu, kind: unique, fields: [k, j]}\n";
	/* 1000 keys, then key 3 again at line 1001 and key 999 at 1002. */
	for (int i = 0; i < 1000; i++)
		buf_addf(&in, "{\"k\":\"key%d\",\"j\":%d}\n", i, i % 7);
	buf_addstr(&in, "{\"k\":\"key3\",\"j\":3}\n{\"k\":\"key999\",\"j\":0}\n");
	check(run(yaml, in.data, &out, &sum, &e) == MLK_OK, "unique: runs");
	char mem[64];
	snprintf(mem, sizeof mem, "%s", entry(&out, "u"));
	setenv("MLK_TEST_UNIQUE_RAM", "16", 1);
	check(run(yaml, in.data, &out, &sum, &e) == MLK_OK,
	      "unique: runs with 16 keys in memory");
	unsetenv("MLK_TEST_UNIQUE_RAM");
	check(!strcmp(mem, "2 1001,1002"), "in memory: both duplicates (%s)",
	      mem);
	check(!strcmp(entry(&out, "u"), "2 1001,1002"),
	      "spilled in 63 runs: the same answer (%s)", entry(&out, "u"));
	check(!strcmp(entry(&out, "uu"), "1 1001"),
	      "a composite key (%s)", entry(&out, "uu"));
	buf_release(&in);
	buf_release(&out);
}

static void references(void)
{
	struct buf out = BUF_INIT;
	struct expect_summary sum;
	struct mlk_error e = MLK_ERROR_INIT;
	const char *yaml =
		"expectations:\n"
		"  - {name: r, kind: references, field: s.reference,\n"
		"     where: {rt: E}, target: {where: {rt: P}, prefix: P/}}\n";
	const char *lines =
		"{\"rt\":\"E\",\"s\":{\"reference\":\"P/1\"}}\n"
		"{\"rt\":\"E\",\"s\":{\"reference\":\"P/2\"}}\n"
		"{\"rt\":\"E\",\"s\":{\"reference\":\"Q/1\"}}\n"
		"{\"rt\":\"E\",\"s\":{\"reference\":\"P/2\"}}\n"
		"{\"rt\":\"P\",\"id\":\"1\"}\n"
		"{\"rt\":\"X\",\"id\":\"2\"}\n";
	check(run(yaml, lines, &out, &sum, &e) == MLK_OK, "references: runs");
	check(!strcmp(entry(&out, "r"), "3 2,3"),
	      "targets after referrers; each dangling use counts (%s)",
	      entry(&out, "r"));
	buf_release(&out);
}

static void errors(void)
{
	struct buf out = BUF_INIT;
	struct expect_summary sum;
	struct mlk_error e = MLK_ERROR_INIT;
	int st = run("expectations:\n  - {name: a, kind: required, field: x}\n"
		     "  - {name: a, kind: required, field: y}\n", "", &out,
		     &sum, &e);
	check(st == MLK_USAGE && e.line == 3 &&
	      strstr(e.msg, "a name used twice"), "a name used twice, line 3");
	mlk_error_clear(&e);
	st = run("expectations:\n  - {name: a, kind: type, field: x, "
		 "type: str}\n", "", &out, &sum, &e);
	check(st == MLK_USAGE && e.line == 2 && !strcmp(e.file, "t.yaml"),
	      "an unknown type names file and line");
	mlk_error_clear(&e);
	st = run("expectations:\n  - {name: a, kind: required, field: 'x..y'}\n",
		 "", &out, &sum, &e);
	check(st == MLK_USAGE && strstr(e.msg, "not a path"),
	      "an empty path step");
	mlk_error_clear(&e);
	st = run("expectations:\n  - {name: a, kind: in_vocab, field: x}\n",
		 "", &out, &sum, &e);
	check(st == MLK_USAGE && strstr(e.msg, "needs a lake"),
	      "in_vocab without a lake");
	mlk_error_clear(&e);
	st = run("expectations:\n  - {name: a, kind: required, field: x,\n"
		 "     colour: red}\n", "", &out, &sum, &e);
	check(st == MLK_USAGE && e.line == 3 && strstr(e.msg, "'colour'"),
	      "an unknown key names its line");
	check(expect_default("fhir") && expect_default("synthea") &&
	      !expect_default("hl7"), "the built-in defaults");
	struct expect_set *s;
	mlk_error_clear(&e);
	const char *d = expect_default("fhir");
	check(expect_load_mem("fhir", d, strlen(d), &s, &e) == MLK_OK &&
	      expect_count(s) == 17, "the FHIR defaults load");
	if (e.status == MLK_OK)
		expect_free(s);
	buf_release(&out);
}

int main(void)
{
	(void)mem_read;         /* tap.h's reader: not needed here */
	dates();
	ages_and_paths();
	unique_spill();
	references();
	errors();
	return tap_done();
}
