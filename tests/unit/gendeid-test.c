/*
 * gendeid-test — common/gendeid.c on the real genomics samples in
 * ../shared/data/genomics (read in place), judged by bcftools and
 * samtools: `bcftools query -l` lists only tokens (a mapped sample gets
 * its patient's EHR token), the cleaned header keeps no command line,
 * source, date, reference path or comment, `bcftools view -H` and
 * `samtools view` print the same records before and after, @RG SM is a
 * token and LB/DS/PU/CN are gone, @PG CL holds no path, @SQ UR is gone;
 * two runs give identical bytes; CRAM is refused.
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
	struct gendeid_params p = { patient_of, tok, NULL };
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
	struct gendeid_params p = { patient_of, tok, NULL };
	struct gendeid_counts c;
	struct mlk_error e = MLK_ERROR_INIT;
	enum mlk_status st = gendeid_file(&p, in, out, &c, &e);
	check(st == MLK_OK && c.records > 0, "%s: de-identified (%llu reads)%s%s",
	      name, c.records, st ? ": " : "", st ? e.msg : "");
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

	struct gendeid_params p = { NULL, tok, NULL };
	enum mlk_status st = gendeid_file(&p, DATA "/pysam_ex3.cram",
					  OUT "/x.cram", NULL, &e);
	check(st == MLK_PARTIAL && strstr(e.msg, "cram") &&
	      access(OUT "/x.cram", F_OK) != 0, "cram refused, nothing written");
	st = gendeid_file(&p, DATA "/pysam_ex1.fa", OUT "/x.fa", NULL, &e);
	check(st == MLK_PARTIAL, "fasta refused");

	deid_free(deid);
	profile_release(&prof);
	(void)mem_read;   /* tap.h's reader: not needed here */
	return tap_done();
}
