/*
 * gendeid — de-identified copies of genomics files: the header cleaned,
 * sample names replaced by patient tokens, every record streamed through
 * htslib untouched.
 *
 * Beside common/genomics.c (which reads headers to describe files), this
 * is the one other module that includes htslib, and it writes: nothing
 * here parses or prints a genomics format by hand.  htslib's own messages
 * are switched off (they may quote sample names).
 *
 * VCF/BCF (plain, bgzip or BCF, written back the same way):
 * - each sample name becomes the token of its patient: the caller's
 *   patient_of() maps a sample name to a patient id (a mapping file, a
 *   column of the records), else the sample name is the id; token() gives
 *   the project's token of that id (mlk-deid: deid_token()), so a
 *   patient's VCF columns carry the token his EHR records carry;
 * - header lines are kept by allowlist: fileformat, INFO, FILTER, FORMAT,
 *   ALT, and contig reduced to ID, length and md5.  Everything else goes
 *   (##commandline, ##source, ##fileDate, ##reference=file:///home/...,
 *   ##GATKCommandLine, ##bcftools_*Command, ##SAMPLE, ##PEDIGREE...): such
 *   lines carry paths, user names and dates, and a de-identified file
 *   does not need them;
 * - records are read, translated to the new header's ids (bcf_translate)
 *   and written; genotypes stay in their columns.
 *
 * SAM/BAM/CRAM (written back in the same format):
 * - @RG lines keep ID, PL, PM, PI, KS, FO and PG; SM becomes the token
 *   (as above); LB, DS, DT, CN, PU, BC and every other tag go;
 * - @CO lines go; @PG lines keep ID, PN, PP and VN, and CL with every
 *   word that holds a '/', '~' or '@' (paths, home folders, user@host)
 *   replaced by "*"; @SQ lines lose UR (a path or URL to the reference);
 * - @SQ and @RG lines keep their order and IDs (reads name references
 *   and, in CRAM, read groups by their index);
 * - SAM reads are copied record by record; BAM reads are not decoded:
 *   the rest of the header's last BGZF block is recompressed, then every
 *   later block copied verbatim (samtools reheader's way); a BAM without
 *   the BGZF end-of-file marker, or with bytes that are not a block, is
 *   refused (MLK_PARTIAL).
 *
 * CRAM is copied without decoding, so without the reference, which mlk
 * never looks up (REF_PATH, REF_CACHE and the EBI server are never
 * consulted): the cleaned header, then every container and its blocks
 * verbatim, in the input's CRAM version; the input's EOF container is
 * replaced by the one htslib writes on close.  The file definition's
 * file id (a file name in htslib's output) is left empty.
 *
 * Indexes: an index of the input (.tbi, .csi, .bai, .crai) does not fit
 * the output, whose header's size changed.  gendeid_index() builds the
 * output's own, byte for byte what bcftools index and samtools index
 * build.
 *
 * Errors: MLK_PARTIAL for input htslib cannot read (a truncated CRAM
 * container) or a format not handled (message names the file, never a
 * sample name); MLK_SYSTEM for output that cannot be written.  The
 * output is written through a temp file beside it and renamed only on
 * success.
 *
 * Ownership: nothing is kept between calls; strings passed in are
 * borrowed; the index name gendeid_index() returns is the caller's.
 */
#ifndef MLK_GENDEID_H
#define MLK_GENDEID_H

#include <stddef.h>

#include "status.h"

#define GENDEID_TOKEN_LEN 36

struct gendeid_params {
	/* The patient id of a sample, or NULL: the sample name is the id. */
	const char *(*patient_of)(void *ctx, const char *sample);
	/* The project's token of an id. */
	void (*token)(void *ctx, const char *v, size_t n,
		      char out[GENDEID_TOKEN_LEN + 1]);
	void *ctx;
	/* The token of the file's patient (from a column of its record), or
	 * NULL: its sample's when the file has exactly one (one VCF column,
	 * one SM among the @RG lines) and patient_of() does not list it. */
	const char *patient_token;
};

struct gendeid_counts {
	unsigned long long records;  /* variants, reads; BAM: blocks of reads;
				      * CRAM: containers */
	unsigned samples;        /* renamed */
	unsigned lines_dropped;  /* header lines removed */
	unsigned tags_dropped;   /* SAM header tags removed or cleaned */
};

/* De-identify the VCF/BCF or SAM/BAM/CRAM at in into out (same
 * format). */
enum mlk_status gendeid_file(const struct gendeid_params *p, const char *in,
			     const char *out, struct gendeid_counts *c,
			     struct mlk_error *e);

/*
 * Build the index that fits the de-identified file at path, beside it:
 * path.tbi (bgzip VCF), path.csi (BCF), path.bai (BAM), path.crai
 * (CRAM); *index_path is then that name (the caller frees it).  A file
 * no index fits (plain VCF or BCF, SAM, an unsorted BAM or CRAM) is
 * MLK_OK with *index_path NULL.  MLK_SYSTEM when the index cannot be
 * written; written through a temp file and renamed, like the data.
 */
enum mlk_status gendeid_index(const char *path, char **index_path,
			      struct mlk_error *e);

/* A @PG CL command line with paths and user names replaced by "*"
 * (appended to out, at most n bytes with the NUL; exposed for tests). */
void gendeid_clean_command(const char *cl, char *out, size_t n);

#endif
