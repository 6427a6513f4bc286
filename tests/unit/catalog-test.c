/*
 * catalog-test — unit checks for common/scan.c (--where conditions and
 * partition matching) and common/catalog.c (descriptor editing, YAML and
 * JSON writing, reloading what was written).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "catalog.h"
#include "scan.h"
#include "yamltree.h"
#include "tap.h"
#include "banned.h"

static int matches(const char *where, const char *part)
{
	struct scan_filter f;
	struct mlk_error e = MLK_ERROR_INIT;
	if (scan_filter_parse(where, &f, &e) != MLK_OK)
		return -1;
	int r = scan_filter_match(&f, part);
	scan_filter_release(&f);
	return r;
}

static int parses(const char *where)
{
	struct scan_filter f;
	struct mlk_error e = MLK_ERROR_INIT;
	enum mlk_status s = scan_filter_parse(where, &f, &e);
	if (s == MLK_OK)
		scan_filter_release(&f);
	return s == MLK_OK;
}

static void test_where(void)
{
	const char *p = "resourceType=Encounter/year=2021/month=03";
	check(matches("year>=2020", p) == 1, "year>=2020 holds for 2021");
	check(matches("year>2021", p) == 0, "year>2021 fails for 2021");
	check(matches("year<=2021 month=3", p) == 1,
	      "month=3 equals 03 as integers");
	check(matches("month==03", p) == 1, "== is =");
	check(matches("resourceType!=Patient", p) == 1, "!= on text");
	check(matches("resourceType<F", p) == 1, "text compares bytewise");
	check(matches("facility=north", p) == 0,
	      "a key the partition lacks fails");
	check(matches("year>=1900", "resourceType=X/year="
		      "__HIVE_DEFAULT_PARTITION__") == 0,
	      "the default partition fails every condition");
	check(!parses("ward=north east"),
	      "blanks separate conditions: a value cannot hold one");
	check(matches("ward=a/b", "ward=a%2Fb") == 1,
	      "escaped partition values are unescaped");
	check(matches("", p) == 1, "no condition holds");
	check(!parses("year"), "a condition without OP is refused");
	check(!parses("=2020"), "a condition without KEY is refused");
	check(!parses("year~2020"), "an unknown OP is refused");
	check(parses("  year>=2020\tmonth<06  "), "tabs and blanks");
}

static void test_descriptor(void)
{
	struct ynode *d = catalog_new("ehr/fhir", "alice", 0);
	struct mlk_error e = MLK_ERROR_INIT;
	check(catalog_set(d, "description=say \"hi\"\\ there", &e) == MLK_OK,
	      "a value with quotes and a backslash is accepted");
	check(catalog_set(d, "modality=CT", &e) == MLK_OK,
	      "a key of one's own is accepted");
	check(catalog_set(d, "derived=x", &e) == MLK_USAGE,
	      "derived cannot be set");
	check(catalog_set(d, "Bad=x", &e) == MLK_USAGE,
	      "keys are lowercase");
	check(catalog_set(d, "noequals", &e) == MLK_USAGE,
	      "KEY=VALUE is required");
	check(catalog_set(d, "legal_hold=yes", &e) == MLK_USAGE,
	      "legal_hold takes true or false");
	check(catalog_set(d, "legal_hold=true", &e) == MLK_OK,
	      "legal_hold=true");
	check(catalog_set(d, "consent=a\tb", &e) == MLK_USAGE,
	      "control characters are refused");

	struct buf y = BUF_INIT, j1 = BUF_INIT, j2 = BUF_INIT;
	catalog_yaml(d, &y);
	catalog_json(d, &j1);
	struct ynode *back = NULL;
	check(ynode_load_mem("t.yaml", y.data, y.len, &back, &e) == MLK_OK,
	      "the YAML written parses");
	if (back)
		catalog_json(back, &j2);
	check(j1.len && j2.len && !strcmp(j1.data, j2.data),
	      "YAML round trip keeps every value and type");
	check(strstr(j1.data, "\"legal_hold\":true") != NULL,
	      "booleans stay booleans");
	check(strstr(j1.data, "\"created\":\"1970-01-01T00:00:00Z\"") != NULL,
	      "created is ISO 8601 UTC");
	ynode_free(back);
	ynode_free(d);
	buf_release(&y);
	buf_release(&j1);
	buf_release(&j2);
}

int main(void)
{
	(void)mem_read;   /* tap.h's reader is not needed here */
	test_where();
	test_descriptor();
	return tap_done();
}
