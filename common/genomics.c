#include "genomics.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <htslib/hfile.h>
#include <htslib/hts.h>
#include <htslib/hts_log.h>
#include <htslib/kstring.h>
#include <htslib/sam.h>
#include <htslib/vcf.h>

#include "record.h"
#include "xalloc.h"
#include "yamltree.h"
#include "banned.h"

void genomics_meta_release(struct genomics_meta *m)
{
	free(m->project);
	free(m->assay);
	free(m->pipeline_version);
	m->project = m->assay = m->pipeline_version = NULL;
}

enum mlk_status genomics_sidecar(const char *dir, struct genomics_meta *m,
				 struct mlk_error *e)
{
	char *p = xasprintf("%s/%s", dir, GENOMICS_SIDECAR);
	FILE *f = fopen(p, "r");
	if (!f) {
		free(p);
		return MLK_OK;
	}
	fclose(f);
	struct ynode *y = NULL;
	enum mlk_status s = ynode_load_file(p, &y, e);
	if (s == MLK_OK && y->type != YNODE_MAP)
		s = mlk_error_set(e, MLK_USAGE, p, 1, "sidecar must be a map "
				  "of project, assay and pipeline_version");
	static const char *const keys[3] = { "project", "assay",
					     "pipeline_version" };
	char **dst[3] = { &m->project, &m->assay, &m->pipeline_version };
	for (int i = 0; i < 3 && s == MLK_OK; i++) {
		const struct ynode *n = ynode_get(y, keys[i]);
		if (!n || ynode_is_null(n))
			continue;
		if (n->type != YNODE_SCALAR || utf8_invalid_at(n->scalar,
				strlen(n->scalar)) >= 0) {
			s = mlk_error_set(e, MLK_USAGE, p, (long long)n->line,
					  "'%s' must be text", keys[i]);
			break;
		}
		free(*dst[i]);
		*dst[i] = xstrdup(n->scalar);
	}
	ynode_free(y);
	free(p);
	return s;
}

/* htslib prints header problems with the offending text: never let it. */
static void quiet_htslib(void)
{
	hts_set_log_level(HTS_LOG_OFF);
}

static const char *type_of(const htsFormat *f)
{
	switch (f->format) {
	case vcf: return "vcf";
	case bcf: return "bcf";
	case sam: return "sam";
	case bam: return "bam";
	case cram: return "cram";
	case fastq_format: return "fastq";
	case fasta_format: return "fasta";
	case bai: return "bai";
	case crai: return "crai";
	case csi: return "csi";
	case tbi: return "tbi";
	case fai_format: return "fai";
	case fqi_format: return "fqi";
	case gzi: return "gzi";
	default: return NULL;
	}
}

/*
 * htslib reads "http:...", "s3:..." and the like as URLs: a relative
 * path is given as "./path" so that a file name is never fetched.
 */
static char *local(const char *path)
{
	return path[0] == '/' ? xstrdup(path) : xasprintf("./%s", path);
}

static int detect(const char *path, const char *name, htsFormat *f)
{
	quiet_htslib();
	memset(f, 0, sizeof *f);
	char *lp = local(path);
	hFILE *h = hopen(lp, "r");
	free(lp);
	if (!h)
		return -1;
	/* The name only settles what content cannot (a .fai is text). */
	int r = hts_detect_format2(h, name, f);
	hclose_abruptly(h);
	return r;
}

const char *genomics_detect(const char *path, const char *name)
{
	htsFormat f;
	return detect(path, name, &f) == 0 ? type_of(&f) : NULL;
}

/* Text from a file as a JSON string: bytes that are not UTF-8 become
 * U+FFFD, so a Latin-1 header cannot make the record invalid. */
static void json_text(struct buf *b, const char *s)
{
	size_t n = strlen(s);
	long long bad = utf8_invalid_at(s, n);
	if (bad < 0) {
		buf_add_json_str(b, s, n);
		return;
	}
	struct buf t = BUF_INIT;
	while (bad >= 0) {
		buf_add(&t, s, (size_t)bad);
		buf_addstr(&t, "\xef\xbf\xbd");
		s += bad + 1;
		n -= (size_t)bad + 1;
		bad = utf8_invalid_at(s, n);
	}
	buf_add(&t, s, n);
	buf_add_json_str(b, t.data, t.len);
	buf_release(&t);
}

static void json_key(struct buf *b, const char *k)
{
	json_text(b, k);
	buf_addch(b, ':');
}

/* A value that is all digits becomes a JSON number. */
static void json_num_or_text(struct buf *b, const char *v)
{
	size_t n = strlen(v);
	int digits = n > 0 && n < 19 && (v[0] != '0' || n == 1);
	for (size_t i = 0; digits && i < n; i++)
		digits = v[i] >= '0' && v[i] <= '9';
	if (digits)
		buf_add(b, v, n);
	else
		json_text(b, v);
}

static void json_opt(struct buf *b, const char *k, const char *v)
{
	buf_addch(b, ',');
	json_key(b, k);
	if (v)
		json_text(b, v);
	else
		buf_addstr(b, "null");
}

/* --- reference builds --- */

static const struct {
	long long len;
	const char *build;
} chr1_lengths[] = {
	{ 248956422, "GRCh38" },
	{ 249250621, "GRCh37" },
	{ 247249719, "NCBI36" },
	{ 245522847, "NCBI35" },
	{ 248387328, "T2T-CHM13" },
	{ 195154279, "GRCm39" },
	{ 195471971, "GRCm38" },
	{ 197195432, "NCBI37-mouse" },
};

const char *genomics_build_by_length(long long len)
{
	for (size_t i = 0; i < sizeof chr1_lengths / sizeof *chr1_lengths; i++)
		if (chr1_lengths[i].len == len)
			return chr1_lengths[i].build;
	return NULL;
}

/* Case-insensitive: does the alias occur in s, not inside a longer run
 * of letters and digits? */
static int has_word(const char *s, const char *w)
{
	size_t n = strlen(w);
	for (const char *p = s; *p; p++) {
		if (strncasecmp(p, w, n))
			continue;
		int before = p > s && ((p[-1] >= 'a' && p[-1] <= 'z') ||
				       (p[-1] >= 'A' && p[-1] <= 'Z') ||
				       (p[-1] >= '0' && p[-1] <= '9'));
		char c = p[n];
		int after = (c >= '0' && c <= '9') ||
			    (c >= 'a' && c <= 'z' && n > 3);
		if (!before && !after)
			return 1;
	}
	return 0;
}

const char *genomics_build_by_name(const char *text)
{
	static const struct {
		const char *alias, *build;
	} names[] = {
		{ "GRCh38", "GRCh38" }, { "hg38", "GRCh38" },
		{ "hs38", "GRCh38" }, { "hs38DH", "GRCh38" },
		{ "GCA_000001405.15", "GRCh38" },
		{ "GRCh37", "GRCh37" }, { "hg19", "GRCh37" },
		{ "b37", "GRCh37" }, { "hs37d5", "GRCh37" },
		{ "hs37", "GRCh37" }, { "g1k_v37", "GRCh37" },
		{ "GCF_000001405.25", "GRCh37" },
		{ "NCBI36", "NCBI36" }, { "hg18", "NCBI36" },
		{ "b36", "NCBI36" },
		{ "T2T-CHM13", "T2T-CHM13" }, { "chm13", "T2T-CHM13" },
		{ "hs1", "T2T-CHM13" },
		{ "GRCm39", "GRCm39" }, { "mm39", "GRCm39" },
		{ "GRCm38", "GRCm38" }, { "mm10", "GRCm38" },
	};
	if (!text)
		return NULL;
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (has_word(text, names[i].alias))
			return names[i].build;
	return NULL;
}

static int is_chr1(const char *name)
{
	if (!strncasecmp(name, "chr", 3))
		name += 3;
	return !strcmp(name, "1") || !strncmp(name, "NC_000001.", 10) ||
	       !strncmp(name, "CM000663.", 9);
}

struct build_guess {
	const char *by_length;
	const char *by_name;
	char *assembly;          /* first assembly text seen (malloc'd) */
};

static void guess_length(struct build_guess *g, const char *name,
			 long long len)
{
	if (!g->by_length && name && is_chr1(name))
		g->by_length = genomics_build_by_length(len);
}

static void guess_name(struct build_guess *g, const char *text, int keep)
{
	if (!text || !*text)
		return;
	if (keep && !g->assembly)
		g->assembly = xstrdup(text);
	if (!g->by_name)
		g->by_name = genomics_build_by_name(text);
}

static void add_build(struct buf *b, struct build_guess *g,
		      struct genomics_info *gi)
{
	const char *build = g->by_length ? g->by_length
			  : g->by_name ? g->by_name : "unknown";
	const char *from = g->by_length ? "contig-length"
			 : g->by_name ? "assembly-name" : "none";
	snprintf(gi->build, sizeof gi->build, "%s", build);
	json_opt(b, "assembly", g->assembly);
	json_opt(b, "reference_build", build);
	json_opt(b, "reference_build_from", from);
	free(g->assembly);
	g->assembly = NULL;
}

/* --- VCF / BCF --- */

static const char *unquote(const char *v, struct buf *t)
{
	size_t n = strlen(v);
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		buf_reset(t);
		buf_add(t, v + 1, n - 2);
		return t->data;
	}
	return v;
}

static void hrec_object(struct buf *b, const bcf_hrec_t *r, const char *key)
{
	struct buf t = BUF_INIT;
	buf_addch(b, '{');
	int first = 1;
	if (key) {
		json_key(b, "key");
		json_text(b, key);
		first = 0;
	}
	for (int k = 0; k < r->nkeys; k++) {
		if (!strcmp(r->keys[k], "IDX"))
			continue;  /* htslib's dictionary index, not the file's */
		if (!first)
			buf_addch(b, ',');
		first = 0;
		json_key(b, r->keys[k]);
		if (!strcmp(r->keys[k], "length"))
			json_num_or_text(b, r->vals[k]);
		else
			json_text(b, unquote(r->vals[k], &t));
	}
	buf_addch(b, '}');
	buf_release(&t);
}

static const char *hrec_val(const bcf_hrec_t *r, const char *key)
{
	for (int k = 0; k < r->nkeys; k++)
		if (!strcmp(r->keys[k], key))
			return r->vals[k];
	return NULL;
}

static int is_commandline(const char *key)
{
	size_t n = strlen(key);
	return !strcasecmp(key, "commandline") ||
	       (n >= 7 && !strcasecmp(key + n - 7, "Command")) ||
	       (n >= 11 && !strcasecmp(key + n - 11, "CommandLine"));
}

/* One JSON array of the header lines that pass keep(). */
static void vcf_list(struct buf *b, const char *name, const bcf_hdr_t *h,
		     int want)
{
	buf_addch(b, ',');
	json_key(b, name);
	buf_addch(b, '[');
	int n = 0;
	for (int i = 0; i < h->nhrec; i++) {
		const bcf_hrec_t *r = h->hrec[i];
		int match;
		switch (want) {
		case 0: /* source */
			match = r->type == BCF_HL_GEN &&
				!strcmp(r->key, "source");
			break;
		case 1: /* command lines, plain or structured */
			match = (r->type == BCF_HL_GEN ||
				 r->type == BCF_HL_STR) &&
				is_commandline(r->key);
			break;
		case 2: /* other plain lines */
			match = r->type == BCF_HL_GEN &&
				strcmp(r->key, "fileformat") &&
				strcmp(r->key, "reference") &&
				strcmp(r->key, "assembly") &&
				strcmp(r->key, "source") &&
				!is_commandline(r->key);
			break;
		default: /* other structured lines: ALT, META, SAMPLE... */
			match = r->type == BCF_HL_STR &&
				!is_commandline(r->key);
			break;
		}
		if (!match)
			continue;
		if (n++)
			buf_addch(b, ',');
		if (want == 0) {
			json_text(b, r->value);
		} else if (r->type == BCF_HL_GEN) {
			buf_addch(b, '{');
			json_key(b, "key");
			json_text(b, r->key);
			buf_addch(b, ',');
			json_key(b, "value");
			json_text(b, r->value);
			buf_addch(b, '}');
		} else {
			hrec_object(b, r, r->key);
		}
	}
	buf_addch(b, ']');
}

static void vcf_defs(struct buf *b, const char *name, const bcf_hdr_t *h,
		     int type)
{
	buf_addch(b, ',');
	json_key(b, name);
	buf_addch(b, '[');
	int n = 0;
	for (int i = 0; i < h->nhrec; i++) {
		if (h->hrec[i]->type != type)
			continue;
		if (n++)
			buf_addch(b, ',');
		hrec_object(b, h->hrec[i], NULL);
	}
	buf_addch(b, ']');
}

static enum mlk_status describe_vcf(htsFile *fp, const char *name,
				    struct buf *b, struct genomics_info *gi,
				    struct mlk_error *e)
{
	bcf_hdr_t *h = bcf_hdr_read(fp);
	if (!h)
		return mlk_error_set(e, MLK_PARTIAL, name, 0,
				     "%s header cannot be parsed (htslib)",
				     gi->type);
	struct build_guess g = { NULL, NULL, NULL };
	const char *ref = NULL, *fileformat = NULL;
	for (int i = 0; i < h->nhrec; i++) {
		const bcf_hrec_t *r = h->hrec[i];
		if (r->type == BCF_HL_GEN && !strcmp(r->key, "fileformat"))
			fileformat = r->value;
		else if (r->type == BCF_HL_GEN && !strcmp(r->key, "reference"))
			ref = r->value;
		else if (r->type == BCF_HL_GEN && !strcmp(r->key, "assembly"))
			guess_name(&g, r->value, 1);
	}
	for (int i = 0; i < h->nhrec; i++) {
		const bcf_hrec_t *r = h->hrec[i];
		if (r->type != BCF_HL_CTG)
			continue;
		const char *id = hrec_val(r, "ID"), *len = hrec_val(r, "length");
		if (id && len)
			guess_length(&g, id, strtoll(len, NULL, 10));
		guess_name(&g, hrec_val(r, "assembly"), 1);
	}
	guess_name(&g, ref, 0);

	json_opt(b, "fileformat", fileformat);
	json_opt(b, "reference", ref);
	add_build(b, &g, gi);
	int ns = bcf_hdr_nsamples(h);
	buf_addf(b, ",\"sample_count\":%d,\"samples\":[", ns);
	for (int i = 0; i < ns; i++) {
		if (i)
			buf_addch(b, ',');
		json_text(b, h->samples[i]);
	}
	buf_addch(b, ']');
	vcf_defs(b, "contigs", h, BCF_HL_CTG);
	vcf_defs(b, "info_fields", h, BCF_HL_INFO);
	vcf_defs(b, "format_fields", h, BCF_HL_FMT);
	vcf_defs(b, "filters", h, BCF_HL_FLT);
	vcf_list(b, "source", h, 0);
	vcf_list(b, "commandline", h, 1);
	vcf_list(b, "header_lines", h, 2);
	vcf_list(b, "structured_lines", h, 3);
	bcf_hdr_destroy(h);
	return MLK_OK;
}

/* --- SAM / BAM / CRAM --- */

static const char *const hd_tags[] = { "VN", "SO", "GO", "SS", NULL };
static const char *const sq_tags[] = { "SN", "LN", "AH", "AN", "AS", "DS",
				       "M5", "SP", "TP", "UR", NULL };
static const char *const rg_tags[] = { "ID", "BC", "CN", "DS", "DT", "FO",
				       "KS", "LB", "PG", "PI", "PL", "PM",
				       "PU", "SM", NULL };
static const char *const pg_tags[] = { "ID", "PN", "CL", "PP", "DS", "VN",
				       NULL };

/* One header line as an object of its standard tags (SAM spec 1.6). */
static void sam_line(struct buf *b, sam_hdr_t *h, const char *type, int pos,
		     const char *const *tags, kstring_t *ks)
{
	buf_addch(b, '{');
	int n = 0;
	for (const char *const *t = tags; *t; t++) {
		int r = pos < 0 ? sam_hdr_find_tag_hd(h, *t, ks)
				: sam_hdr_find_tag_pos(h, type, pos, *t, ks);
		if (r != 0)
			continue;
		if (n++)
			buf_addch(b, ',');
		json_key(b, *t);
		if (!strcmp(*t, "LN"))
			json_num_or_text(b, ks->s);
		else
			json_text(b, ks->s);
	}
	buf_addch(b, '}');
}

static void sam_lines(struct buf *b, sam_hdr_t *h, const char *type,
		      const char *name, const char *const *tags,
		      kstring_t *ks)
{
	buf_addch(b, ',');
	json_key(b, name);
	buf_addch(b, '[');
	int n = sam_hdr_count_lines(h, type);
	for (int i = 0; i < n; i++) {
		if (i)
			buf_addch(b, ',');
		sam_line(b, h, type, i, tags, ks);
	}
	buf_addch(b, ']');
}

static enum mlk_status describe_sam(htsFile *fp, const char *name,
				    struct buf *b, struct genomics_info *gi,
				    struct mlk_error *e)
{
	/* Only the header is read, so a CRAM's reference is never needed;
	 * say so to htslib as well. */
	if (fp->format.format == cram)
		hts_set_opt(fp, CRAM_OPT_REQUIRED_FIELDS, 0);
	sam_hdr_t *h = sam_hdr_read(fp);
	if (!h)
		return mlk_error_set(e, MLK_PARTIAL, name, 0,
				     "%s header cannot be parsed (htslib)",
				     gi->type);
	kstring_t ks = KS_INITIALIZE;
	struct build_guess g = { NULL, NULL, NULL };
	int nsq = sam_hdr_count_lines(h, "SQ");
	for (int i = 0; i < nsq; i++) {
		if (sam_hdr_find_tag_pos(h, "SQ", i, "AS", &ks) == 0)
			guess_name(&g, ks.s, 1);
		if (sam_hdr_find_tag_pos(h, "SQ", i, "UR", &ks) == 0)
			guess_name(&g, ks.s, 0);
		if (sam_hdr_find_tag_pos(h, "SQ", i, "LN", &ks) == 0) {
			long long len = strtoll(ks.s, NULL, 10);
			if (sam_hdr_find_tag_pos(h, "SQ", i, "SN", &ks) == 0)
				guess_length(&g, ks.s, len);
		}
	}
	const htsFormat *f = hts_get_format(fp);
	if (f->format == cram || f->format == bam)
		buf_addf(b, ",\"format_version\":\"%d.%d\"", f->version.major,
			 f->version.minor < 0 ? 0 : f->version.minor);
	else
		buf_addstr(b, ",\"format_version\":null");
	add_build(b, &g, gi);
	buf_addch(b, ',');
	json_key(b, "hd");
	if (sam_hdr_count_lines(h, "HD") > 0)
		sam_line(b, h, "HD", -1, hd_tags, &ks);
	else
		buf_addstr(b, "null");
	sam_lines(b, h, "SQ", "sq", sq_tags, &ks);
	sam_lines(b, h, "RG", "rg", rg_tags, &ks);
	sam_lines(b, h, "PG", "pg", pg_tags, &ks);

	/* Distinct @RG SM values, in header order. */
	buf_addstr(b, ",\"samples\":[");
	int nrg = sam_hdr_count_lines(h, "RG"), nsm = 0;
	char **seen = nrg > 0 ? xcalloc((size_t)nrg, sizeof *seen) : NULL;
	for (int i = 0; i < nrg; i++) {
		if (sam_hdr_find_tag_pos(h, "RG", i, "SM", &ks) != 0)
			continue;
		int dup = 0;
		for (int k = 0; k < nsm && !dup; k++)
			dup = !strcmp(seen[k], ks.s);
		if (dup)
			continue;
		seen[nsm] = xstrdup(ks.s);
		if (nsm++)
			buf_addch(b, ',');
		json_text(b, ks.s);
	}
	buf_addf(b, "],\"sample_count\":%d", nsm);
	for (int k = 0; k < nsm; k++)
		free(seen[k]);
	free(seen);

	buf_addstr(b, ",\"co\":[");
	int nco = sam_hdr_count_lines(h, "CO");
	for (int i = 0; i < nco; i++) {
		if (sam_hdr_find_line_pos(h, "CO", i, &ks) != 0)
			continue;
		const char *t = ks.s;
		if (!strncmp(t, "@CO\t", 4))
			t += 4;
		if (i)
			buf_addch(b, ',');
		json_text(b, t);
	}
	buf_addch(b, ']');
	ks_free(&ks);
	sam_hdr_destroy(h);
	return MLK_OK;
}

/* --- FASTQ --- */

static enum mlk_status describe_fastq(htsFile *fp, const char *name,
				      struct buf *b, struct genomics_info *gi,
				      struct mlk_error *e)
{
	sam_hdr_t *h = sam_hdr_read(fp);
	if (!h)
		return mlk_error_set(e, MLK_PARTIAL, name, 0,
				     "fastq cannot be read (htslib)");
	bam1_t *r = bam_init1();
	unsigned long long reads = 0, bases = 0;
	long long lmin = 0, lmax = 0;
	int rc;
	while ((rc = sam_read1(fp, h, r)) >= 0) {
		long long l = r->core.l_qseq;
		if (!reads || l < lmin)
			lmin = l;
		if (!reads || l > lmax)
			lmax = l;
		reads++;
		bases += (unsigned long long)l;
	}
	bam_destroy1(r);
	sam_hdr_destroy(h);
	if (rc < -1)
		return mlk_error_set(e, MLK_PARTIAL, name, 0,
				     "fastq is truncated or corrupt after "
				     "read %llu (htslib)", reads);
	struct build_guess g = { NULL, NULL, NULL };
	add_build(b, &g, gi);
	buf_addf(b, ",\"reads\":%llu,\"bases\":%llu,\"read_length\":", reads,
		 bases);
	if (reads)
		buf_addf(b, "{\"min\":%lld,\"max\":%lld,\"mean\":%.2f}", lmin,
			 lmax, (double)bases / (double)reads);
	else
		buf_addstr(b, "null");
	return MLK_OK;
}

enum mlk_status genomics_describe(const char *path, const char *hint,
				  const char *name,
				  const struct genomics_meta *meta,
				  struct buf *body, struct genomics_info *gi,
				  struct mlk_error *e)
{
	memset(gi, 0, sizeof *gi);
	snprintf(gi->build, sizeof gi->build, "unknown");
	htsFormat df;
	if (detect(path, hint, &df) != 0 || !(gi->type = type_of(&df)))
		return mlk_error_set(e, MLK_PARTIAL, name, 0,
				     "not a genomics format htslib knows");
	/* Only formats with records are opened as such; FASTA and
	 * indexes are described by their type. */
	int open_it = df.format == vcf || df.format == bcf ||
		      df.format == sam || df.format == bam ||
		      df.format == cram || df.format == fastq_format;
	char *lp = local(path);
	htsFile *fp = open_it ? hts_open(lp, "r") : NULL;
	free(lp);
	if (open_it && !fp)
		return mlk_error_set(e, MLK_PARTIAL, name, 0,
				     "%s cannot be opened (htslib)", gi->type);
	const htsFormat *f = fp ? hts_get_format(fp) : &df;
	size_t len0 = body->len;
	const char *comp = f->compression == bgzf ? "bgzf"
			 : f->compression == gzip ? "gzip"
			 : f->compression == no_compression ? "none"
			 : f->compression == custom ? "native" : "other";
	buf_addstr(body, "{");
	json_key(body, "project");
	if (meta && meta->project)
		json_text(body, meta->project);
	else
		buf_addstr(body, "null");
	json_opt(body, "assay", meta ? meta->assay : NULL);
	json_opt(body, "pipeline_version", meta ? meta->pipeline_version
						: NULL);
	json_opt(body, "file_format", gi->type);
	json_opt(body, "compression", comp);

	enum mlk_status s = MLK_OK;
	/* A BGZF or CRAM file cut short lacks its end-of-file block: the
	 * header may still read well, but the file is not whole. */
	if (fp && hts_check_EOF(fp) == 0)
		s = mlk_error_set(e, MLK_PARTIAL, name, 0,
				  "%s is truncated: no end-of-file marker "
				  "(htslib)", gi->type);
	switch (s == MLK_OK ? f->format : unknown_format) {
	case vcf:
	case bcf:
		s = describe_vcf(fp, name, body, gi, e);
		break;
	case sam:
	case bam:
	case cram:
		s = describe_sam(fp, name, body, gi, e);
		break;
	case fastq_format:
		s = describe_fastq(fp, name, body, gi, e);
		break;
	default: {
		/* FASTA and index files: the type is what there is to say;
		 * their build is the one of the data they go with. */
		struct build_guess g = { NULL, NULL, NULL };
		add_build(body, &g, gi);
	}
	}
	if (fp && hts_close(fp) != 0 && s == MLK_OK &&
	    df.format == fastq_format)
		s = mlk_error_set(e, MLK_PARTIAL, name, 0,
				  "fastq is truncated or corrupt (htslib)");
	if (s != MLK_OK)
		buf_truncate(body, len0);
	return s;
}
