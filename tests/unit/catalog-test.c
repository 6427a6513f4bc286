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
#include "vocab.h"
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


/* vocab.c: which fields are normalised, by which vocabulary, and how
 * vocab_apply rewrites a record's text. */
static const char vocab_text[] =
	"version: 1\n"
	"fields: {modality: modality, assay: assay, dept: terms}\n"
	"terms:\n"
	"  cardiology: [cardiac]\n"
	"vocabularies:\n"
	"  modality:\n"
	"    CT: [computed tomography, thoracic CT, CT chest]\n"
	"    MR: [MRI]\n"
	"  assay:\n"
	"    WGS: whole genome sequencing\n";

static char *applied(const struct vocab *v, const char *obj, size_t *n)
{
	struct buf b = BUF_INIT;
	*n = vocab_apply(v, obj, strlen(obj), &b);
	buf_addch(&b, '\0');
	return buf_detach(&b);
}

static void test_vocab(void)
{
	struct ynode *y = NULL;
	struct mlk_error e = MLK_ERROR_INIT;
	struct vocab v;
	check(ynode_load_mem("vocab.yaml", vocab_text, sizeof vocab_text - 1,
			     &y, &e) == MLK_OK, "vocab.yaml parses");
	check(vocab_from_tree(y, "vocab.yaml", &v, &e) == MLK_OK &&
	      v.nfields == 3, "three controlled fields");
	ynode_free(y);
	const char *p = vocab_field_preferred(&v, "modality", 8, "ct CHEST",
					      8);
	check(p && !strcmp(p, "CT"), "a synonym in any case gives its term");
	check(!vocab_field_preferred(&v, "modality", 8, "cardiac", 7),
	      "another vocabulary's term is not the field's");
	p = vocab_field_preferred(&v, "dept", 4, "Cardiac", 7);
	check(p && !strcmp(p, "cardiology"), "terms: the general list");
	check(!vocab_field_preferred(&v, "other", 5, "MRI", 3),
	      "an uncontrolled field is left alone");
	p = vocab_preferred(&v, "whole genome sequencing", 23);
	check(p && !strcmp(p, "WGS"), "search sees every vocabulary");

	size_t n;
	char *out = applied(&v, "{\"id\":\"x\",\"modality\":\"thoracic CT\","
			    "\"note\":{\"modality\":\"MRI\"},\"assay\":"
			    "\"whole genome sequencing\",\"n\":[1,{\"a\":\"}\"}]",
			    &n);
	check(n == 2 && !strcmp(out, "{\"id\":\"x\",\"modality\":\"CT\","
				"\"note\":{\"modality\":\"MRI\"},\"assay\":"
				"\"WGS\",\"n\":[1,{\"a\":\"}\"}]"),
	      "top-level synonyms rewritten, nested ones and the rest kept "
	      "(the object's closing brace may be missing)");
	free(out);
	out = applied(&v, "{\"modality\":\"CT\",\"x\":1}", &n);
	check(n == 0 && !strcmp(out, "{\"modality\":\"CT\",\"x\":1}"),
	      "a preferred term stays as it is");
	free(out);
	out = applied(&v, "{\"modality\":7,\"assay\":null,\"dept\":\"x\\\"y\"}",
		      &n);
	check(n == 0 && !strcmp(out, "{\"modality\":7,\"assay\":null,"
				"\"dept\":\"x\\\"y\"}"),
	      "numbers, nulls and non-terms are kept");
	free(out);
	out = applied(&v, "{\"modality\":\"MRI\"", &n);
	check(n == 1 && !strcmp(out, "{\"modality\":\"MR\""),
	      "a body without its closing brace");
	free(out);
	out = applied(&v, "{", &n);
	check(n == 0 && !strcmp(out, "{"), "an empty body");
	free(out);
	vocab_release(&v);

	y = NULL;
	static const char bad[] = "fields:\n  modality: imaging\n";
	ynode_load_mem("vocab.yaml", bad, sizeof bad - 1, &y, &e);
	check(vocab_from_tree(y, "vocab.yaml", &v, &e) == MLK_USAGE &&
	      e.line == 2, "a field naming no vocabulary is refused, by line");
	ynode_free(y);
}

int main(void)
{
	(void)mem_read;   /* tap.h's reader is not needed here */
	test_where();
	test_descriptor();
	test_vocab();
	return tap_done();
}
