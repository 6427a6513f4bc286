/*
 * genomics — sequencing files described as one record each, through
 * htslib: VCF/BCF, SAM/BAM/CRAM, FASTQ (plain or gzip), and FASTA and the
 * index files (BAI, CRAI, CSI, TBI, FAI, FQI, GZI) that travel with them.
 *
 * This is the only module that includes htslib.  Nothing here parses a
 * genomics format by hand: the format is htslib's hts_detect_format(),
 * VCF/BCF headers come from bcf_hdr_read(), SAM/BAM/CRAM headers from
 * sam_hdr_read() and its tag look-ups, FASTQ reads from sam_read1().
 *
 * Memory is bounded by the header, never by the data: VCF/BCF and
 * SAM/BAM/CRAM stop after the header; FASTQ is read once, one read at a
 * time, for its statistics.  CRAM headers are read without a reference,
 * so no reference is ever looked up on disk or fetched from the network
 * (REF_PATH, REF_CACHE and the EBI server are never consulted).  htslib's
 * own messages are switched off: they may quote sample names.
 *
 * The reference build (genomics_build) is recorded for every file:
 * first from the length of chromosome 1 when a contig of that name is
 * declared (a fact about the data), else from an assembly name in the
 * header (VCF ##reference, ##assembly, contig assembly=; SAM @SQ AS: and
 * UR:), else "unknown".  See mlk-record(5).
 *
 * Ownership: genomics_describe() appends to the caller's buffer; a
 * struct genomics_meta loaded from a sidecar owns its strings
 * (genomics_meta_release).
 */
#ifndef MLK_GENOMICS_H
#define MLK_GENOMICS_H

#include "buf.h"
#include "status.h"

/* The sidecar file read from the folder of a genomics source. */
#define GENOMICS_SIDECAR "mlk-genomics.yaml"

struct genomics_meta {
	char *project;
	char *assay;
	char *pipeline_version;
};

void genomics_meta_release(struct genomics_meta *m);

/*
 * Load dir/mlk-genomics.yaml into m (fields absent stay NULL).  No file
 * is MLK_OK with nothing set; a file that is not a map of scalars is
 * MLK_USAGE naming it.
 */
enum mlk_status genomics_sidecar(const char *dir, struct genomics_meta *m,
				 struct mlk_error *e);

/*
 * The genomics type of the file at path ("vcf", "bcf", "sam", "bam",
 * "cram", "fastq", "fasta", "bai", "crai", "csi", "tbi", "fai", "fqi",
 * "gzi"), or NULL when it is none of them.  The content decides; hint,
 * the file's name as given (or NULL), only settles what content cannot
 * (a FASTA index is plain tab-separated text).
 */
const char *genomics_detect(const char *path, const char *hint);

struct genomics_info {
	const char *type;          /* as genomics_detect */
	char build[16];            /* "GRCh38", ..., "unknown" */
};

/*
 * Describe the file at path as a record body: "{" and its members, no
 * closing '}', appended to body; meta's fields become project, assay and
 * pipeline_version (null when absent).  hint is as for genomics_detect;
 * name labels errors.  A file htslib
 * cannot read (a broken header, a truncated FASTQ) is MLK_PARTIAL with a
 * reason that never quotes its content; body is then left as it was.
 */
enum mlk_status genomics_describe(const char *path, const char *hint,
				  const char *name,
				  const struct genomics_meta *meta,
				  struct buf *body, struct genomics_info *gi,
				  struct mlk_error *e);

/* The build told by a chromosome-1 length, or NULL. */
const char *genomics_build_by_length(long long chr1_length);
/* The build named by an assembly or reference text, or NULL. */
const char *genomics_build_by_name(const char *text);

#endif
