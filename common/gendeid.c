/* gendeid — see gendeid.h. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <htslib/cram.h>
#include <htslib/hfile.h>
#include <htslib/hts.h>
#include <htslib/hts_log.h>
#include <htslib/kstring.h>
#include <htslib/bgzf.h>
#include <htslib/sam.h>
#include <htslib/tbx.h>
#include <htslib/vcf.h>

#include "buf.h"
#include "fsio.h"
#include "gendeid.h"
#include "xalloc.h"
#include "banned.h"

void gendeid_clean_command(const char *cl, char *out, size_t n)
{
	struct buf b = BUF_INIT;
	const char *p = cl;
	while (*p) {
		if (*p == ' ' || *p == '\t') {
			buf_addch(&b, *p++);
			continue;
		}
		const char *s = p;
		int risky = 0;
		while (*p && *p != ' ' && *p != '\t') {
			if (*p == '/' || *p == '~' || *p == '@')
				risky = 1;
			p++;
		}
		if (risky)
			buf_addch(&b, '*');
		else
			buf_add(&b, s, (size_t)(p - s));
	}
	snprintf(out, n, "%s", b.data ? b.data : "");
	buf_release(&b);
}

/* The token of a sample: through its patient id when the caller knows
 * it (the map, else the file's patient when it is the only sample), else
 * of the sample name itself. */
static void sample_token(const struct gendeid_params *p, const char *sample,
			 char tok[GENDEID_TOKEN_LEN + 1])
{
	const char *id = p->patient_of ? p->patient_of(p->ctx, sample) : NULL;
	if (!id && p->patient_token) {
		snprintf(tok, GENDEID_TOKEN_LEN + 1, "%s", p->patient_token);
		return;
	}
	if (!id)
		id = sample;
	p->token(p->ctx, id, strlen(id), tok);
}

static enum mlk_status unreadable(struct mlk_error *e, const char *in,
				  const char *what)
{
	return mlk_error_set(e, MLK_PARTIAL, in, 0, "%s", what);
}

/* ------------------------------------------------------------------ */
/* VCF / BCF                                                           */

static int keep_hrec(const bcf_hrec_t *r)
{
	switch (r->type) {
	case BCF_HL_FLT:
	case BCF_HL_INFO:
	case BCF_HL_FMT:
		return 1;
	case BCF_HL_STR:
		return !strcmp(r->key, "ALT");
	default:
		return 0;
	}
}

static const char *hrec_val(bcf_hrec_t *r, const char *key)
{
	int k = bcf_hrec_find_key(r, key);
	return k >= 0 ? r->vals[k] : NULL;
}

static bcf_hdr_t *vcf_header(const struct gendeid_params *p, bcf_hdr_t *oh,
			     struct gendeid_counts *c)
{
	bcf_hdr_t *nh = bcf_hdr_init("r");
	if (!nh)
		return NULL;
	struct buf ff = BUF_INIT;
	buf_addf(&ff, "##fileformat=%s", bcf_hdr_get_version(oh));
	int frc = bcf_hdr_append(nh, ff.data);
	buf_release(&ff);
	if (frc < 0)
		goto fail;
	for (int i = 0; i < oh->nhrec; i++) {
		bcf_hrec_t *r = oh->hrec[i];
		if (r->type == BCF_HL_GEN && !strcmp(r->key, "fileformat"))
			continue;
		if (r->type == BCF_HL_CTG) {
			const char *id = hrec_val(r, "ID");
			const char *len = hrec_val(r, "length");
			const char *md5 = hrec_val(r, "md5");
			if (!id)
				continue;
			struct buf l = BUF_INIT;
			buf_addf(&l, "##contig=<ID=%s", id);
			if (len)
				buf_addf(&l, ",length=%s", len);
			if (md5)
				buf_addf(&l, ",md5=%s", md5);
			buf_addstr(&l, ">");
			int rc = bcf_hdr_append(nh, l.data);
			buf_release(&l);
			if (rc < 0)
				goto fail;
			continue;
		}
		if (!keep_hrec(r)) {
			c->lines_dropped++;
			continue;
		}
		bcf_hrec_t *d = bcf_hrec_dup(r);
		if (!d || bcf_hdr_add_hrec(nh, d) < 0)
			goto fail;
	}
	int ns = bcf_hdr_nsamples(oh);
	struct gendeid_params one = *p;
	if (ns != 1)
		one.patient_token = NULL;   /* a record's patient: one sample's */
	p = &one;
	for (int i = 0; i < ns; i++) {
		char tok[GENDEID_TOKEN_LEN + 1];
		sample_token(p, oh->samples[i], tok);
		/* two samples of one patient (tumour and normal): the token
		 * and the sample's column number, still nothing identifying */
		char name[GENDEID_TOKEN_LEN + 16];
		snprintf(name, sizeof name, "%s", tok);
		for (int k = 0; k < i; k++)
			if (!strcmp(nh->samples[k], name)) {
				snprintf(name, sizeof name, "%s-%d", tok, i + 1);
				break;
			}
		if (bcf_hdr_add_sample(nh, name) < 0)
			goto fail;
		c->samples++;
	}
	if (bcf_hdr_sync(nh) < 0)
		goto fail;
	return nh;
fail:
	bcf_hdr_destroy(nh);
	return NULL;
}

static const char *vcf_mode(const htsFormat *f)
{
	if (f->format == bcf)
		return f->compression == no_compression ? "wbu" : "wb";
	return f->compression == no_compression ? "w" : "wz";
}

static enum mlk_status vcf_copy(const struct gendeid_params *p, htsFile *in,
				const char *inpath, const char *tmp,
				struct gendeid_counts *c, struct mlk_error *e)
{
	bcf_hdr_t *oh = bcf_hdr_read(in);
	if (!oh)
		return unreadable(e, inpath, "cannot read the variant header");
	enum mlk_status st = MLK_OK;
	bcf_hdr_t *nh = vcf_header(p, oh, c);
	htsFile *out = NULL;
	bcf1_t *rec = bcf_init();
	if (!nh) {
		st = unreadable(e, inpath, "cannot build the new header");
		goto done;
	}
	out = hts_open(tmp, vcf_mode(hts_get_format(in)));
	if (!out || bcf_hdr_write(out, nh) < 0) {
		st = mlk_error_set(e, MLK_SYSTEM, inpath, 0, "cannot write "
				   "the de-identified copy");
		goto done;
	}
	int rc;
	while ((rc = bcf_read(in, oh, rec)) >= 0) {
		if (bcf_translate(nh, oh, rec) < 0 ||
		    bcf_write(out, nh, rec) < 0) {
			st = mlk_error_set(e, MLK_SYSTEM, inpath, 0, "cannot "
					   "write record %llu",
					   c->records + 1);
			goto done;
		}
		c->records++;
	}
	if (rc < -1 || rec->errcode)
		st = mlk_error_set(e, MLK_PARTIAL, inpath, 0, "unreadable "
				   "record after %llu", c->records);
done:
	bcf_destroy(rec);
	if (out && hts_close(out) < 0 && st == MLK_OK)
		st = mlk_error_set(e, MLK_SYSTEM, inpath, 0, "cannot finish "
				   "the de-identified copy");
	if (nh)
		bcf_hdr_destroy(nh);
	bcf_hdr_destroy(oh);
	return st;
}

/* ------------------------------------------------------------------ */
/* SAM / BAM                                                           */

/* Append every line of type, with only the tags in keep (ID first) and
 * fix() changing one tag's value. */
static void rebuild_lines(sam_hdr_t *h, const char *type,
			  const char *const *keep,
			  void (*fix)(void *ctx, const char *tag, kstring_t *v),
			  void *ctx, struct buf *text)
{
	int n = sam_hdr_count_lines(h, type);
	kstring_t ks = KS_INITIALIZE;
	for (int i = 0; i < n; i++) {
		buf_addf(text, "@%s", type);
		for (const char *const *t = keep; *t; t++) {
			if (sam_hdr_find_tag_pos(h, type, i, *t, &ks) != 0)
				continue;
			if (fix)
				fix(ctx, *t, &ks);
			buf_addf(text, "\t%s:%s", *t, ks.s);
		}
		buf_addch(text, '\n');
	}
	ks_free(&ks);
}

struct rgfix {
	const struct gendeid_params *p;
	struct gendeid_counts *c;
};

static void fix_rg(void *ctx, const char *tag, kstring_t *v)
{
	struct rgfix *f = ctx;
	if (strcmp(tag, "SM"))
		return;
	char tok[GENDEID_TOKEN_LEN + 1];
	sample_token(f->p, v->s, tok);
	v->l = 0;
	kputs(tok, v);
	f->c->samples++;
}

static void fix_pg(void *ctx, const char *tag, kstring_t *v)
{
	(void)ctx;
	if (strcmp(tag, "CL"))
		return;
	char *clean = xmalloc(v->l + 1);
	gendeid_clean_command(v->s, clean, v->l + 1);
	v->l = 0;
	kputs(clean, v);
	free(clean);
}

/*
 * The cleaned header, built as a new one (htslib will not remove @PG or
 * @CO lines from a header): @HD and @SQ copied line by line in order (so
 * reference ids stay), less UR; @RG and @PG rebuilt from their allowed
 * tags; @CO and any other line type left out.
 */
/* How many different SM values the @RG lines hold (2: two or more). */
static int distinct_sm(sam_hdr_t *h, kstring_t *ks)
{
	int nrg = sam_hdr_count_lines(h, "RG");
	char *first = NULL;
	int n = 0;
	for (int i = 0; i < nrg && n < 2; i++) {
		if (sam_hdr_find_tag_pos(h, "RG", i, "SM", ks) != 0)
			continue;
		if (!first) {
			first = xstrdup(ks->s);
			n = 1;
		} else if (strcmp(first, ks->s)) {
			n = 2;
		}
	}
	free(first);
	return n;
}

static sam_hdr_t *clean_sam_header(const struct gendeid_params *p,
				   sam_hdr_t *h, struct gendeid_counts *c)
{
	static const char *const rg_keep[] = { "ID", "SM", "PL", "PM", "PI",
					       "KS", "FO", "PG", NULL };
	static const char *const pg_keep[] = { "ID", "PN", "PP", "VN", "CL",
					       NULL };
	kstring_t ks = KS_INITIALIZE;
	struct buf text = BUF_INIT;
	sam_hdr_t *nh = NULL;
	int nsq = sam_hdr_count_lines(h, "SQ");
	for (int i = 0; i < nsq; i++) {
		if (sam_hdr_find_tag_pos(h, "SQ", i, "UR", &ks) != 0)
			continue;
		const char *sn = sam_hdr_line_name(h, "SQ", i);
		if (!sn || sam_hdr_remove_tag_id(h, "SQ", "SN", sn, "UR") < 0)
			goto done;
		c->tags_dropped++;
	}
	if (sam_hdr_find_hd(h, &ks) == 0) {
		buf_add(&text, ks.s, ks.l);
		buf_addch(&text, '\n');
	}
	for (int i = 0; i < nsq; i++) {
		if (sam_hdr_find_line_pos(h, "SQ", i, &ks) != 0)
			goto done;
		buf_add(&text, ks.s, ks.l);
		buf_addch(&text, '\n');
	}
	struct gendeid_params one = *p;
	if (one.patient_token && distinct_sm(h, &ks) != 1)
		one.patient_token = NULL;   /* a record's patient: one sample's */
	struct rgfix f = { &one, c };
	rebuild_lines(h, "RG", rg_keep, fix_rg, &f, &text);
	rebuild_lines(h, "PG", pg_keep, fix_pg, NULL, &text);
	int nco = sam_hdr_count_lines(h, "CO");
	if (nco > 0)
		c->lines_dropped += (unsigned)nco;
	nh = sam_hdr_parse(text.len, text.data ? text.data : "");
	if (nh && sam_hdr_nref(nh) != sam_hdr_nref(h)) {
		sam_hdr_destroy(nh);
		nh = NULL;
	}
done:
	ks_free(&ks);
	buf_release(&text);
	return nh;
}

/*
 * The frame of the SAM, BAM and CRAM copies: the input's header read and
 * cleaned, the output opened by open_out on tmp and the cleaned header
 * written to it (aln_begin()); then the copier's loop; then everything
 * closed and freed, a failure to finish the output reported
 * (aln_end()).
 */
struct aln {
	sam_hdr_t *h, *nh;
	htsFile *out;
};

static enum mlk_status aln_begin(const struct gendeid_params *p,
				 htsFile *in, const char *inpath,
				 const char *tmp,
				 htsFile *(*open_out)(htsFile *in,
						      const char *tmp),
				 struct aln *a, struct gendeid_counts *c,
				 struct mlk_error *e)
{
	memset(a, 0, sizeof *a);
	a->h = sam_hdr_read(in);
	if (!a->h)
		return unreadable(e, inpath, "cannot read the alignment header");
	a->nh = clean_sam_header(p, a->h, c);
	if (!a->nh)
		return unreadable(e, inpath, "cannot clean the alignment header");
	a->out = open_out(in, tmp);
	if (!a->out || sam_hdr_write(a->out, a->nh) < 0)
		return mlk_error_set(e, MLK_SYSTEM, inpath, 0, "cannot write "
				     "the de-identified copy");
	return MLK_OK;
}

static enum mlk_status aln_end(struct aln *a, const char *inpath,
			       enum mlk_status st, struct mlk_error *e)
{
	if (a->out && hts_close(a->out) < 0 && st == MLK_OK)
		st = mlk_error_set(e, MLK_SYSTEM, inpath, 0, "cannot finish "
				   "the de-identified copy");
	if (a->nh)
		sam_hdr_destroy(a->nh);
	if (a->h)
		sam_hdr_destroy(a->h);
	return st;
}

/* SAM and BAM copies are written in the input's format. */
static htsFile *same_out(htsFile *in, const char *tmp)
{
	return hts_open(tmp, hts_get_format(in)->format == bam ? "wb" : "w");
}

static enum mlk_status sam_copy(const struct gendeid_params *p, htsFile *in,
				const char *inpath, const char *tmp,
				struct gendeid_counts *c, struct mlk_error *e)
{
	struct aln a;
	enum mlk_status st = aln_begin(p, in, inpath, tmp, same_out, &a, c, e);
	bam1_t *b = bam_init1();
	int rc = 0;
	while (st == MLK_OK && (rc = sam_read1(in, a.h, b)) >= 0) {
		if (sam_write1(a.out, a.nh, b) < 0)
			st = mlk_error_set(e, MLK_SYSTEM, inpath, 0, "cannot "
					   "write read %llu", c->records + 1);
		else
			c->records++;
	}
	if (st == MLK_OK && rc < -1)
		st = mlk_error_set(e, MLK_PARTIAL, inpath, 0, "unreadable "
				   "read after %llu", c->records);
	bam_destroy1(b);
	return aln_end(&a, inpath, st, e);
}

/*
 * BAM: the cleaned header, then what the header's last BGZF block holds
 * after it (the first reads) recompressed, then every later block copied
 * verbatim, as samtools reheader does: reads are never decoded, so a
 * 1 GB BAM costs a copy, not a recompression.  Each block's header is
 * checked (gzip magic, the BGZF size field) and the input must end with
 * the BGZF end-of-file marker, so a truncated or spliced file is left
 * out; empty blocks (the input's marker among them) are not copied:
 * hts_close() writes the copy's own.  c->records counts the blocks of
 * reads written.
 */
static enum mlk_status bam_copy(const struct gendeid_params *p, htsFile *in,
				const char *inpath, const char *tmp,
				struct gendeid_counts *c, struct mlk_error *e)
{
	struct aln a;
	enum mlk_status st = aln_begin(p, in, inpath, tmp, same_out, &a, c, e);
	BGZF *ib = in->fp.bgzf;
	if (st == MLK_OK && bgzf_check_EOF(ib) != 1)
		st = unreadable(e, inpath, "truncated: no BGZF end-of-file "
				"marker");
	if (st != MLK_OK)
		return aln_end(&a, inpath, st, e);
	BGZF *ob = a.out->fp.bgzf;
	int bad = 0;
	if (ib->block_offset < ib->block_length) {
		bad = bgzf_write(ob, (char *)ib->uncompressed_block +
				 ib->block_offset,
				 (size_t)(ib->block_length -
					  ib->block_offset)) < 0;
		c->records += !bad;
	}
	bad = bad || bgzf_flush(ob) < 0;
	unsigned char *blk = xmalloc(1 << 16);
	while (!bad && st == MLK_OK) {
		ssize_t n = bgzf_raw_read(ib, blk, 18);
		if (n == 0)
			break;
		if (n != 18 || blk[0] != 31 || blk[1] != 139 || blk[2] != 8 ||
		    !(blk[3] & 4) || blk[12] != 'B' || blk[13] != 'C') {
			st = mlk_error_set(e, MLK_PARTIAL, inpath, 0, "not a "
					   "BGZF block after block %llu",
					   c->records);
			break;
		}
		size_t size = (size_t)(blk[16] | blk[17] << 8) + 1;
		if (size < 26 || bgzf_raw_read(ib, blk + 18, size - 18) !=
				 (ssize_t)(size - 18)) {
			st = mlk_error_set(e, MLK_PARTIAL, inpath, 0,
					   "truncated block after block %llu",
					   c->records);
			break;
		}
		uint32_t isize = (uint32_t)blk[size - 4] |
				 (uint32_t)blk[size - 3] << 8 |
				 (uint32_t)blk[size - 2] << 16 |
				 (uint32_t)blk[size - 1] << 24;
		if (!isize)
			continue;
		bad = bgzf_raw_write(ob, blk, size) != (ssize_t)size;
		c->records += !bad;
	}
	free(blk);
	if (bad && st == MLK_OK)
		st = mlk_error_set(e, MLK_SYSTEM, inpath, 0, "cannot write the "
				   "de-identified copy");
	return aln_end(&a, inpath, st, e);
}

/* ------------------------------------------------------------------ */
/* CRAM                                                                */

/*
 * The output CRAM, opened on tmp's descriptor under a fixed name:
 * htslib writes the name it is given into the file definition's 20-byte
 * file id, and the temp name is random (and the original's name may
 * identify someone).  Version as the input's, since the copied containers are in its
 * encoding; no reference is ever loaded (the header's M5 values are
 * copied, not computed).
 */
static htsFile *cram_out(htsFile *in, const char *tmp)
{
	int fd = open(tmp, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	int version = cram_fd_get_version(in->fp.cram);
	hFILE *hf = hdopen(fd, "w");
	if (!hf) {
		close(fd);
		return NULL;
	}
	htsFile *out = hts_hopen(hf, "", "wc");
	if (!out) {
		hclose_abruptly(hf);
		return NULL;
	}
	cram_fd_set_version(out->fp.cram, version);
	if (hts_set_opt(out, CRAM_OPT_NO_REF, 1) < 0) {
		hts_close(out);
		return NULL;
	}
	return out;
}

/*
 * CRAM without its reference: the cleaned header, then every container
 * and its blocks copied verbatim (as samtools reheader does).  Slices
 * name read groups by their index among the @RG lines and references by
 * their index among the @SQ lines; clean_sam_header() keeps both in
 * order with their IDs, so the copied data still means the same.
 * c->records counts containers: reads are never decoded.
 */
static enum mlk_status cram_copy(const struct gendeid_params *p, htsFile *in,
				 const char *inpath, const char *tmp,
				 struct gendeid_counts *c, struct mlk_error *e)
{
	struct aln a;
	enum mlk_status st = aln_begin(p, in, inpath, tmp, cram_out, &a, c,
				       e);
	cram_fd *ifd = in->fp.cram;
	cram_container *k;
	while (st == MLK_OK && (k = cram_read_container(ifd))) {
		int32_t nb = cram_container_get_num_blocks(k);
		/* The input's EOF container: hts_close() writes ours. */
		int eof = cram_container_is_empty(ifd);
		if (!eof && cram_write_container(a.out->fp.cram, k) != 0)
			st = mlk_error_set(e, MLK_SYSTEM, inpath, 0, "cannot "
					   "write container %llu",
					   c->records + 1);
		for (int32_t i = 0; st == MLK_OK && i < nb; i++) {
			cram_block *blk = cram_read_block(ifd);
			if (!blk) {
				if (!eof)
					st = unreadable(e, inpath,
							"truncated container");
				break;
			}
			int rc = eof ? 0 : cram_write_block(a.out->fp.cram,
							    blk);
			cram_free_block(blk);
			if (rc != 0)
				st = mlk_error_set(e, MLK_SYSTEM, inpath, 0,
						   "cannot write container "
						   "%llu", c->records + 1);
		}
		cram_free_container(k);
		if (st == MLK_OK && !eof)
			c->records++;
	}
	if (st == MLK_OK && cram_eof(ifd) != 1)
		st = mlk_error_set(e, MLK_PARTIAL, inpath, 0, "unreadable "
				   "container after %llu", c->records);
	return aln_end(&a, inpath, st, e);
}

/* ------------------------------------------------------------------ */

enum mlk_status gendeid_file(const struct gendeid_params *p, const char *in,
			     const char *out, struct gendeid_counts *c,
			     struct mlk_error *e)
{
	struct gendeid_counts scratch;
	if (!c)
		c = &scratch;
	memset(c, 0, sizeof *c);
	hts_set_log_level(HTS_LOG_OFF);
	htsFile *f = hts_open(in, "r");
	if (!f)
		return unreadable(e, in, "not a file htslib can read");
	enum htsExactFormat fmt = hts_get_format(f)->format;
	if (fmt != vcf && fmt != bcf && fmt != sam && fmt != bam &&
	    fmt != cram) {
		hts_close(f);
		return unreadable(e, in, "not a VCF, BCF, SAM, BAM or CRAM "
				  "file");
	}
	int fd;
	char *tmp;
	if (fsio_temp_beside(out, &fd, &tmp, e) != MLK_OK) {
		hts_close(f);
		return e->status;
	}
	close(fd);
	enum mlk_status st = fmt == vcf || fmt == bcf
			     ? vcf_copy(p, f, in, tmp, c, e)
			     : fmt == cram ? cram_copy(p, f, in, tmp, c, e)
			     : fmt == bam ? bam_copy(p, f, in, tmp, c, e)
			     : sam_copy(p, f, in, tmp, c, e);
	if (hts_close(f) < 0 && st == MLK_OK)
		st = unreadable(e, in, "cannot finish reading");
	if (st == MLK_OK) {
		fd = open(tmp, O_RDONLY | O_CLOEXEC);
		st = fd < 0 ? mlk_error_errno(e, out, "cannot reopen")
			    : fsio_commit(fd, tmp, out, 0644, 0, e);
	}
	if (st != MLK_OK)
		unlink(tmp);
	free(tmp);
	return st;
}

/*
 * The index that fits a file, by its format: bgzip VCF gets a tabix
 * index, BCF a CSI (min_shift 14, as bcftools index), BAM a BAI, CRAM a
 * CRAI.  htslib's builders return -1 when the data cannot be indexed
 * (positions out of order) and -3 for a format they do not index: both
 * mean "no index", not an error.  Building a CRAI never needs the
 * reference: only container and slice positions are read.
 *
 * A BAM or CRAM whose @HD SO says queryname or unsorted is not tried:
 * htslib 1.16 leaks the header (BAM) or the slices read so far (CRAM)
 * when it gives up on an unsorted file, so only files that may be
 * sorted (SO:coordinate, or no SO at all) reach its builder.
 */
enum mlk_status gendeid_index(const char *path, char **index_path,
			      struct mlk_error *e)
{
	*index_path = NULL;
	hts_set_log_level(HTS_LOG_OFF);
	htsFile *f = hts_open(path, "r");
	if (!f)
		return unreadable(e, path, "not a file htslib can read");
	htsFormat fmt = *hts_get_format(f);
	int declared_unsorted = 0;
	if (fmt.format == bam || fmt.format == cram) {
		sam_hdr_t *h = sam_hdr_read(f);
		kstring_t so = KS_INITIALIZE;
		if (h && sam_hdr_find_tag_hd(h, "SO", &so) == 0)
			declared_unsorted = !strcmp(so.s, "queryname") ||
					    !strcmp(so.s, "unsorted");
		ks_free(&so);
		sam_hdr_destroy(h);
	}
	hts_close(f);
	if (declared_unsorted)
		return MLK_OK;
	const char *ext;
	switch (fmt.format) {
	case vcf:
		ext = fmt.compression == bgzf ? ".tbi" : NULL;
		break;
	case bcf:
		ext = fmt.compression == bgzf ? ".csi" : NULL;
		break;
	case bam:
		ext = ".bai";
		break;
	case cram:
		ext = ".crai";
		break;
	default:
		ext = NULL;
		break;
	}
	if (!ext)
		return MLK_OK;
	char *idx = xasprintf("%s%s", path, ext);
	int fd;
	char *tmp;
	if (fsio_temp_beside(idx, &fd, &tmp, e) != MLK_OK) {
		free(idx);
		return e->status;
	}
	close(fd);
	int rc;
	if (fmt.format == vcf)
		rc = tbx_index_build3(path, tmp, 0, 0, &tbx_conf_vcf);
	else if (fmt.format == bcf)
		rc = bcf_index_build3(path, tmp, 14, 0);
	else
		rc = sam_index_build3(path, tmp, 0, 0);
	enum mlk_status st = MLK_OK;
	if (rc == 0) {
		fd = open(tmp, O_RDONLY | O_CLOEXEC);
		st = fd < 0 ? mlk_error_errno(e, idx, "cannot reopen")
			    : fsio_commit(fd, tmp, idx, 0644, 0, e);
	} else if (rc != -1 && rc != -3) {
		st = mlk_error_set(e, MLK_SYSTEM, path, 0, "cannot write "
				   "the index");
	}
	if (rc != 0 || st != MLK_OK) {
		unlink(tmp);
		free(idx);
	} else {
		*index_path = idx;
	}
	free(tmp);
	return st;
}
