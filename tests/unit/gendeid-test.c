/*
 * gendeid-test — common/gendeid.c on the real genomics samples in
 * ../shared/data/genomics (read in place), judged by bcftools and
 * samtools: `bcftools query -l` lists only tokens (a mapped sample gets
 * its patient's EHR token), the cleaned header keeps no command line,
 * source, date, reference path or comment, `bcftools view -H` and
 * `samtools view` print the same records before and after, @RG SM is a
 * token and LB/DS/PU/CN are gone, @PG CL holds no path, @SQ UR is gone;
 * two runs give identical bytes.  CRAM is copied without its reference:
 * same version, a complete file (samtools quickcheck), the same reads;
 * a truncated one is refused.  gendeid_index() builds the index that
 * fits each output (.tbi, .csi, .bai, .crai), byte for byte what
 * bcftools and samtools build, and none for SAM, plain VCF or a
 * name-sorted BAM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deid.h"
#include "fsio.h"
#include "gendeid.h"
#include "profile.h"
#include "tap.h"
#include "banned.h"

#define DATA "../shared/data/genomics"
#define OUT "build/unit/gendeid"

static struct deid *deid;

static const char *patient_of(void *ctx, const char *sample)
{
	(void)ctx;
	return !strcmp(sample, "A") ? "PAT-0001" : NULL;
}

static void tok(void *ctx, const char *v, size_t n,
		char out[GENDEID_TOKEN_LEN + 1])
{
	(void)ctx;
	deid_token(deid, v, n, out);
}

static int sh(const char *fmt, const char *a, const char *b)
{
	char inner[4000], cmd[4096];
	snprintf(inner, sizeof inner, fmt, a, b);
	/* htslib warns about the inputs' own header quirks: not ours */
	snprintf(cmd, sizeof cmd, "{ %s; } 2>/dev/null", inner);
	return system(cmd) == 0;
}

static void clean_checks(void)
{
	char out[256];
	gendeid_clean_command("bwa mem -t 8 /home/alice/ref.fa ~/r1.fq "
			      "alice@host:x.fq  -R x", out, sizeof out);
	check(!strcmp(out, "bwa mem -t 8 * * *  -R x"),
	      "@PG CL: paths, home folders and user@host replaced");
	gendeid_clean_command("", out, sizeof out);
	check(!strcmp(out, ""), "@PG CL: empty stays empty");
}

static void vcf_checks(const char *name, int mapped)
{
	char in[512], out[512], out2[512];
	snprintf(in, sizeof in, "%s/%s", DATA, name);
	snprintf(out, sizeof out, "%s/%s", OUT, name);
	snprintf(out2, sizeof out2, "%s/again-%s", OUT, name);
	struct gendeid_params p = { patient_of, tok, NULL, NULL };
	struct gendeid_counts c;
	struct mlk_error e = MLK_ERROR_INIT;
	enum mlk_status st = gendeid_file(&p, in, out, &c, &e);
	check(st == MLK_OK && c.records > 0 && c.samples > 0,
	      "%s: de-identified (%llu records, %u samples)%s%s", name,
	      c.records, c.samples, st ? ": " : "", st ? e.msg : "");
	check(gendeid_file(&p, in, out2, NULL, &e) == MLK_OK &&
	      sh("cmp -s %s %s", out, out2), "%s: second run identical", name);
	check(sh("test \"$(bcftools query -l %1$s | wc -l)\" = "
		 "\"$(bcftools query -l %2$s | wc -l)\" && "
		 "test -z \"$(bcftools query -l %2$s | grep -vxE "
		 "'[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
		 "[0-9a-f]{12}(-[0-9]+)?')\"", in, out),
	      "%s: bcftools query -l lists only tokens, as many as before",
	      name);
	check(sh("test \"$(bcftools view -H --no-version %s | md5sum)\" = "
		 "\"$(bcftools view -H --no-version %s | md5sum)\"",
		 in, out), "%s: records unchanged (bcftools view -H)", name);
	check(sh("! bcftools view -h --no-version %s | grep -qiE "
		 "'^##(commandline|source|fileDate|reference|GATK|SnpEff|"
		 "bcftools)|/home|/scratch'", out, in),
	      "%s: no command line, source, date or path in the header",
	      name);
	if (mapped) {
		char t[GENDEID_TOKEN_LEN + 1], cmd[1024];
		deid_token(deid, "PAT-0001", 8, t);
		snprintf(cmd, sizeof cmd, "test \"$(bcftools query -l %s 2>/dev/null | "
			 "head -1)\" = %s", out, t);
		check(system(cmd) == 0, "%s: sample A is the EHR token of its "
		      "patient", name);
	}
}

static void sam_checks(const char *name)
{
	char in[512], out[512];
	snprintf(in, sizeof in, "%s/%s", DATA, name);
	snprintf(out, sizeof out, "%s/%s", OUT, name);
	struct gendeid_params p = { patient_of, tok, NULL, NULL };
	struct gendeid_counts c;
	struct mlk_error e = MLK_ERROR_INIT;
	enum mlk_status st = gendeid_file(&p, in, out, &c, &e);
	check(st == MLK_OK && c.records > 0, "%s: de-identified (%llu %s)%s%s",
	      name, c.records, strstr(name, ".cram") ? "containers"
			       : strstr(name, ".bam") ? "blocks" : "reads",
	      st ? ": " : "", st ? e.msg : "");
	check(sh("test \"$(samtools view --no-PG %s | md5sum)\" = "
		 "\"$(samtools view --no-PG %s | md5sum)\"", in, out),
	      "%s: reads unchanged (samtools view)", name);
	check(sh("h=$(samtools view -H --no-PG %s); "
		 "! echo \"$h\" | grep -qE '^@CO|	(LB|DS|PU|CN|UR):' && "
		 "! echo \"$h\" | grep '^@PG' | grep -q '/' && "
		 "test -z \"$(echo \"$h\" | grep '^@RG' | grep -oE 'SM:[^	]*' "
		 "| grep -vxE 'SM:[0-9a-f-]{36}')\"", out, in),
	      "%s: samtools view -H: SM tokens, no @CO, LB, DS, PU, CN, UR, "
	      "paths", name);
}

static void cram_checks(void)
{
	struct gendeid_params p = { patient_of, tok, NULL, NULL };
	struct gendeid_counts c;
	struct mlk_error e = MLK_ERROR_INIT;
	const char *out = OUT "/pysam_ex3.cram";
	enum mlk_status st = gendeid_file(&p, DATA "/pysam_ex3.cram",
					  OUT "/again.cram", &c, &e);
	check(st == MLK_OK && c.records == 2 && c.samples == 2,
	      "cram: 2 containers copied, 2 read groups' samples renamed");
	check(sh("cmp -s %s %s", out, OUT "/again.cram"),
	      "cram: second run identical");
	check(sh("samtools quickcheck %s && htsfile %s | grep -q "
		 "'CRAM version 3.0'", out, out),
	      "cram: complete (quickcheck), version 3.0 as the input");
	check(sh("test \"$(grep -c EOF %s)\" = 1 && test -z \"$(head -c 26 "
		 "%s | tail -c 20 | tr -d '\\0')\"", out, out),
	      "cram: one EOF container; no file name in the file id");
	check(sh("test \"$(samtools view -H %s | grep -E '^@(SQ|RG)' | "
		 "cut -f1,2 | tr '\\n\\t' '  ')\" = "
		 "'@SQ SN:chr1 @SQ SN:chr2 @RG ID:L1 @RG ID:L2 '", out, NULL),
	      "cram: @SQ and @RG lines in order with their ids");

	/* a cut container: refused, nothing left behind */
	check(sh("head -c 1000 %s > %s", DATA "/pysam_ex3.cram",
		 OUT "/cut.cram"), "cram: cut copy made");
	st = gendeid_file(&p, OUT "/cut.cram", OUT "/x.cram", NULL, &e);
	check(st == MLK_PARTIAL && strstr(e.msg, "container") &&
	      access(OUT "/x.cram", F_OK) != 0,
	      "cram: a truncated one refused, nothing written");
}

/* BAM: blocks after the header's are copied, never recompressed. */
static void bam_checks(void)
{
	struct gendeid_params p = { patient_of, tok, NULL, NULL };
	struct mlk_error e = MLK_ERROR_INIT;
	const char *in = DATA "/pysam_ex1.sorted.bam";
	const char *out = OUT "/pysam_ex1.sorted.bam";
	check(gendeid_file(&p, in, OUT "/again.bam", NULL, &e) == MLK_OK &&
	      sh("cmp -s %s %s", out, OUT "/again.bam"),
	      "bam: second run identical");
	/* the EOF marker: 28 fixed bytes, once, at the end */
	check(sh("samtools quickcheck %1$s && test \"$(tail -c 56 %1$s | "
		 "head -c 28 | od -An -tx1 | tr -d ' \\n')\" != "
		 "\"$(tail -c 28 %1$s | od -An -tx1 | tr -d ' \\n')\"", out,
		 NULL),
	      "bam: complete (quickcheck), one end-of-file marker");
	/* the input's last data block is in the copy byte for byte */
	check(sh("python3 -c 'import sys; a=open(sys.argv[1],\"rb\").read();"
		 " b=open(sys.argv[2],\"rb\").read(); i=len(a)-28; j=a.rfind("
		 "b\"\\x1f\\x8b\\x08\\x04\", 0, i); sys.exit(a[j:i] not in b)'"
		 " %s %s", in, out),
	      "bam: the last block of reads copied verbatim");
	/* cut short, or with something else between its blocks: refused */
	check(sh("head -c 2000 %s > %s", in, OUT "/cut.bam") &&
	      sh("cat %1$s > %2$s && echo junk >> %2$s && "
		 "tail -c 28 %1$s >> %2$s", in,
		 OUT "/junk.bam"), "bam: cut and spliced copies made");
	enum mlk_status st = gendeid_file(&p, OUT "/cut.bam", OUT "/x.bam",
					  NULL, &e);
	check(st == MLK_PARTIAL && strstr(e.msg, "end-of-file marker") &&
	      access(OUT "/x.bam", F_OK) != 0,
	      "bam: a truncated one refused, nothing written");
	st = gendeid_file(&p, OUT "/junk.bam", OUT "/x.bam", NULL, &e);
	check(st == MLK_PARTIAL && strstr(e.msg, "not a BGZF block") &&
	      access(OUT "/x.bam", F_OK) != 0,
	      "bam: bytes that are not a block refused, nothing written");
	unlink(OUT "/cut.bam");
	unlink(OUT "/junk.bam");
	unlink(OUT "/again.bam");
}

/* gendeid_index() on out, expecting an index with suffix ext (NULL:
 * none); tool builds the reference index from %1$s into %2$s. */
static void index_check(const char *name, const char *ext, const char *tool)
{
	char out[512], want[512];
	snprintf(out, sizeof out, "%s/%s", OUT, name);
	char *idx = NULL;
	struct mlk_error e = MLK_ERROR_INIT;
	enum mlk_status st = gendeid_index(out, &idx, &e);
	if (!ext) {
		check(st == MLK_OK && !idx, "%s: no index, no error", name);
		free(idx);
		return;
	}
	snprintf(want, sizeof want, "%s%s", out, ext);
	check(st == MLK_OK && idx && !strcmp(idx, want),
	      "%s: index %s built%s%s", name, ext, st ? ": " : "",
	      st ? e.msg : "");
	char ref[600];
	snprintf(ref, sizeof ref, "%s.ref", want);
	char cmd[2048];
	snprintf(cmd, sizeof cmd, tool, out, ref);
	check(sh("%s", cmd, NULL) && sh("cmp -s %s %s", ref, want),
	      "%s: the same bytes as %.14s builds", name, tool);
	free(idx);
}

static void index_checks(void)
{
	struct gendeid_params p = { NULL, tok, NULL, NULL };
	struct mlk_error e = MLK_ERROR_INIT;
	check(sh("bcftools view --no-version -Ob -o %s %s", OUT "/in.bcf",
		 DATA "/pysam_ex1.vcf.gz") &&
	      sh("bcftools view --no-version -Ov -o %s %s", OUT "/in.vcf",
		 DATA "/pysam_ex1.vcf.gz") &&
	      sh("samtools sort -n -o %s %s", OUT "/byname-in.bam",
		 DATA "/pysam_ex1.sorted.bam") &&
	      gendeid_file(&p, OUT "/in.bcf", OUT "/x.bcf", NULL, &e) == 0 &&
	      gendeid_file(&p, OUT "/in.vcf", OUT "/x.vcf", NULL, &e) == 0 &&
	      gendeid_file(&p, OUT "/byname-in.bam", OUT "/byname.bam", NULL,
			   &e) == 0, "BCF, plain VCF and name-sorted BAM "
	      "de-identified");
	index_check("pysam_ex1.vcf.gz", ".tbi", "bcftools index -t -o %2$s %1$s");
	index_check("cyvcf2_test.vcf.gz", ".tbi",
		    "bcftools index -t -o %2$s %1$s");
	index_check("x.bcf", ".csi", "bcftools index -o %2$s %1$s");
	index_check("pysam_ex1.sorted.bam", ".bai", "samtools index -o %2$s %1$s");
	index_check("pysam_ex3.bam", ".bai", "samtools index -o %2$s %1$s");
	index_check("pysam_ex3.cram", ".crai", "samtools index -o %2$s %1$s");
	index_check("pysam_ex3.sam", NULL, NULL);
	index_check("x.vcf", NULL, NULL);
	index_check("byname.bam", NULL, NULL);
	check(access(OUT "/byname.bam.bai", F_OK) != 0 &&
	      sh("test \"$(ls -a %s | grep -c '^\\.')\" = 2", OUT, NULL),
	      "no index and no temp file left behind");
	char *idx = NULL;
	check(gendeid_index(OUT "/missing.bam", &idx, &e) == MLK_PARTIAL &&
	      !idx, "a missing file: MLK_PARTIAL");
}

int main(void)
{
	struct profile prof;
	struct mlk_error e = MLK_ERROR_INIT;
	clean_checks();
	if (access(DATA, R_OK) != 0 ||
	    system("command -v bcftools >/dev/null && command -v samtools "
		   ">/dev/null") != 0) {
		check(0, "sample data and bcftools, samtools installed");
		return tap_done();
	}
	if (profile_load("research-pseudonymized", NULL, &prof, &e) != MLK_OK)
		return 1;
	uint8_t key[MLK_KEY_LEN];
	for (int i = 0; i < MLK_KEY_LEN; i++)
		key[i] = (uint8_t)(5 * i + 1);
	struct deid_params dp = { &prof, "genomics", 0, 2026, "k-test", 0, 0 };
	deid = deid_new(&dp, key, &e);
	fsio_remove_tree(OUT);
	fsio_mkdirs(OUT, 0755, &e);

	vcf_checks("cyvcf2_test.vcf.gz", 0);
	vcf_checks("pysam_ex1.vcf.gz", 1);
	sam_checks("pysam_ex3.sam");
	sam_checks("pysam_ex3.bam");
	sam_checks("pysam_ex1.sorted.bam");

	sam_checks("pysam_ex3.cram");
	cram_checks();
	bam_checks();
	index_checks();

	struct gendeid_params p = { NULL, tok, NULL, NULL };
	enum mlk_status st;
	st = gendeid_file(&p, DATA "/pysam_ex1.fa", OUT "/x.fa", NULL, &e);
	check(st == MLK_PARTIAL, "fasta refused");

	deid_free(deid);
	profile_release(&prof);
	(void)mem_read;   /* tap.h's reader: not needed here */
	return tap_done();
}
