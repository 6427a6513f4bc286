/*
 * genomics-test — common/genomics.c: the reference-build rule, records
 * that are valid JSON whatever bytes a header holds, and the refusals;
 * common/unpack.c: member names and limits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "genomics.h"
#include "record.h"
#include "tap.h"
#include "unpack.h"
#include "xalloc.h"
#include "banned.h"

static char dir[] = "/tmp/mlk-genomics-test.XXXXXX";

static char *put(const char *name, const char *text, size_t n)
{
	char *p = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(p, "wb");
	fwrite(text, 1, n, f);
	fclose(f);
	return p;
}

/* The body closed, parsed: 1 when it is one valid JSON object. */
static int valid(struct buf *b, struct rec *r)
{
	struct mlk_error e = MLK_ERROR_INIT;
	buf_addch(b, '}');
	return rec_parse(r, b->data, b->len, &e) == MLK_OK;
}

static void builds(void)
{
	check(!strcmp(genomics_build_by_length(248956422), "GRCh38"),
	      "chr1 248956422 is GRCh38");
	check(!strcmp(genomics_build_by_length(249250621), "GRCh37"),
	      "chr1 249250621 is GRCh37");
	check(!genomics_build_by_length(1575), "a toy chr1 is no build");
	check(!strcmp(genomics_build_by_name("hg19"), "GRCh37"), "hg19");
	check(!strcmp(genomics_build_by_name(
		"file:///refs/human_g1k_v37_decoy.fasta"), "GRCh37"),
	      "a 1000 Genomes reference path");
	check(!strcmp(genomics_build_by_name("/ref/GRCh38.primary.fa"),
		      "GRCh38"), "GRCh38 inside a path");
	check(!strcmp(genomics_build_by_name("HG38"), "GRCh38"),
	      "names are matched case aside");
	check(!genomics_build_by_name("hg190"), "hg190 is not hg19");
	check(!genomics_build_by_name("xb37"), "xb37 is not b37");
	check(!genomics_build_by_name(NULL), "no text, no build");
}

static void describe(void)
{
	struct rec r;
	rec_init(&r);
	struct buf b = BUF_INIT;
	struct genomics_info gi;
	struct mlk_error e = MLK_ERROR_INIT;
	struct genomics_meta m = { "p\"1", NULL, "2.0" };

	/* Latin-1 and control bytes in a header still make valid JSON. */
	static const char sam[] = "@HD\tVN:1.6\tSO:coordinate\n"
		"@SQ\tSN:chr1\tLN:249250621\tAS:GRCh37\n"
		"@RG\tID:r1\tSM:caf\xe9\tPL:ILLUMINA\n"
		"@CO\ta \"quoted\" comment\n";
	char *p = put("a.sam", sam, sizeof sam - 1);
	check(!strcmp(genomics_detect(p, NULL), "sam"), "SAM detected");
	check(genomics_describe(p, NULL, "a.sam", &m, &b, &gi, &e) == MLK_OK,
	      "SAM described");
	check(!strcmp(gi.build, "GRCh37"), "SAM build from chr1's length");
	check(valid(&b, &r), "SAM record is valid JSON");
	check(strstr(b.data, "\"SM\":\"caf\xef\xbf\xbd\"") != NULL,
	      "a Latin-1 byte becomes U+FFFD");
	check(strstr(b.data, "\"project\":\"p\\\"1\"") != NULL,
	      "project escaped");
	check(strstr(b.data, "\"assay\":null") != NULL, "no assay is null");
	free(p);

	static const char vcf[] = "##fileformat=VCFv4.2\n"
		"##assembly=hg38\n"
		"##contig=<ID=chrQ,length=100>\n"
		"##INFO=<ID=DP,Number=1,Type=Integer,Description=\"Depth\">\n"
		"##bcftools_viewCommand=view x.vcf\n"
		"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\n";
	p = put("a.vcf", vcf, sizeof vcf - 1);
	buf_reset(&b);
	check(genomics_describe(p, NULL, "a.vcf", NULL, &b, &gi, &e) ==
	      MLK_OK, "VCF described");
	check(!strcmp(gi.build, "GRCh38"), "VCF build from ##assembly");
	check(valid(&b, &r), "VCF record is valid JSON");
	check(strstr(b.data, "\"samples\":[\"S1\",\"S2\"]") != NULL,
	      "VCF samples in column order");
	check(strstr(b.data, "\"Description\":\"Depth\"") != NULL,
	      "INFO description unquoted");
	check(strstr(b.data, "\"commandline\":[{\"key\":"
			     "\"bcftools_viewCommand\"") != NULL,
	      "a tool's Command line is a command line");
	free(p);

	static const char dup[] = "##fileformat=VCFv4.2\n"
		"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t"
		"SECRET\tSECRET\n";
	p = put("dup.vcf", dup, sizeof dup - 1);
	buf_reset(&b);
	check(genomics_describe(p, NULL, "dup.vcf", NULL, &b, &gi, &e) ==
	      MLK_PARTIAL, "a sample named twice is refused");
	check(b.len == 0, "a refused file leaves the body as it was");
	check(!strstr(e.msg, "SECRET"), "the reason names no sample");
	free(p);

	p = put("x.json", "{\"a\":1}\n", 8);
	check(genomics_detect(p, "x.json") == NULL, "JSON is not genomics");
	free(p);
	p = put("x.csv", "a,b\n1,2\n", 8);
	check(genomics_detect(p, "x.csv") == NULL, "CSV is not genomics");
	check(unpack_detect(p) == NULL, "CSV is not an archive");
	free(p);
	buf_release(&b);
	rec_release(&r);
}

int main(void)
{
	(void)mem_read;
	if (!mkdtemp(dir))
		return 1;
	builds();
	describe();
	char *cmd = xasprintf("rm -rf %s", dir);
	if (system(cmd) != 0)
		check(0, "clean up");
	free(cmd);
	return tap_done();
}
