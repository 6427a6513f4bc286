/* dicomwrite — see dicomwrite.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libdeflate.h>
#include <zlib.h>

#include "buf.h"
#include "crypto.h"
#include "dicom.h"
#include "dicomdeid.h"
#include "dicomwrite.h"
#include "fsio.h"
#include "xalloc.h"
#include "banned.h"

/* mlk's Implementation Class UID: a UUID-derived OID (2.25, ITU-T X.667)
 * of a UUID made for this purpose, and the version name beside it. */
#define MLK_IMPL_UID "2.25.305828029115380381434371380530178412093"
#define MLK_IMPL_NAME "MLK_" MLK_VERSION

#define FLUSH_AT (256u << 10)
#define COPY_CHUNK (1u << 20)
/* A deflated data set up to this size is compressed in one call by
 * libdeflate (3-4x faster than zlib's stream); a larger one streams
 * through zlib from there on. */
#define ONESHOT_MAX (32u << 20)
#define STOP_PREPASS 0x4d4c4b   /* a visitor's "enough", not a status */

#define T_PATIENT_ID DICOM_TAG(0x0010, 0x0020)
#define T_MODALITY DICOM_TAG(0x0008, 0x0060)
#define T_SOP_CLASS DICOM_TAG(0x0008, 0x0016)
#define T_SOP_UID DICOM_TAG(0x0008, 0x0018)
#define T_STUDY_UID DICOM_TAG(0x0020, 0x000d)
#define T_SERIES_UID DICOM_TAG(0x0020, 0x000e)
#define T_BURNED_IN DICOM_TAG(0x0028, 0x0301)
#define T_PIR DICOM_TAG(0x0012, 0x0062)
#define T_METHOD DICOM_TAG(0x0012, 0x0063)
#define T_METHOD_SEQ DICOM_TAG(0x0012, 0x0064)
#define T_TEMPORAL DICOM_TAG(0x0028, 0x0303)

/* The attributes read before writing. */
struct pre {
	struct dicomdeid *dd;    /* dd_note() when it cleans, else NULL */
	struct buf pid, modality, sop_class, sop_uid, burned, meta_class;
	int have_burned, have_pid;
	struct dicom_info info;
	int have_info;
};

struct w {
	struct dicomdeid *dd;
	int in, out;
	const char *name;
	struct mlk_error *e;
	enum mlk_status st;
	struct buf o;            /* output not yet written */
	unsigned long long bytes;
	int explicit_vr, be;     /* the data set's encoding */
	int skip;                /* >0: inside a sequence being dropped */
	int next_insert;         /* index into inserts[] */
	struct buf v;            /* scratch: a new value */
	unsigned char *chunk;    /* bulk copies; deflate output */
	int deflate;             /* the data set is deflated: held in o */
	int zstarted;            /* ... past ONESHOT_MAX: through zs */
	z_stream zs;
	unsigned long long zbytes;
	struct sha256_ctx hc;    /* of every byte written */
	struct dicomwrite_result *res;
};

static void put16(struct buf *b, uint16_t v, int be)
{
	unsigned char x[2];
	if (be) {
		x[0] = (unsigned char)(v >> 8);
		x[1] = (unsigned char)v;
	} else {
		x[0] = (unsigned char)v;
		x[1] = (unsigned char)(v >> 8);
	}
	buf_add(b, x, 2);
}

static void put32(struct buf *b, uint32_t v, int be)
{
	if (be) {
		put16(b, (uint16_t)(v >> 16), 1);
		put16(b, (uint16_t)v, 1);
	} else {
		put16(b, (uint16_t)v, 0);
		put16(b, (uint16_t)(v >> 16), 0);
	}
}

static int long_vr(const char *vr)
{
	static const char *const l[] = { "OB", "OD", "OF", "OL", "OV", "OW",
		"SQ", "UC", "UN", "UR", "UT", "SV", "UV" };
	for (size_t i = 0; i < sizeof l / sizeof *l; i++)
		if (vr[0] == l[i][0] && vr[1] == l[i][1])
			return 1;
	return 0;
}

static void header(struct buf *b, uint32_t tag, const char *vr, uint32_t len,
		   int explicit_vr, int be)
{
	put16(b, (uint16_t)(tag >> 16), be);
	put16(b, (uint16_t)tag, be);
	if (!explicit_vr) {
		put32(b, len, be);
		return;
	}
	if (!long_vr(vr) && len > 0xffff)
		vr = "UN";   /* cannot happen for values mlk makes; safe */
	buf_add(b, vr, 2);
	if (long_vr(vr)) {
		put16(b, 0, be);
		put32(b, len, be);
	} else {
		put16(b, (uint16_t)len, be);
	}
}

/* The byte that pads a value of this VR to even length. */
static char pad_of(const char *vr)
{
	if (vr[0] == 'U' && vr[1] == 'I')
		return '\0';
	if ((vr[0] == 'O' && vr[1] != '\0') || !strcmp(vr, "UN"))
		return '\0';
	return ' ';
}

static int out_raw(struct w *w, const void *p, size_t n)
{
	if (fsio_write_all(w->out, p, n, w->name, w->e) != MLK_OK) {
		w->st = MLK_SYSTEM;
		return -1;
	}
	sha256_update(&w->hc, p, n);
	w->bytes += n;
	return 0;
}

/* Deflate what is buffered (PS3.5 A.5: raw deflate, no zlib header). */
static int out_deflate(struct w *w, int finish)
{
	if (!w->chunk)
		w->chunk = xmalloc(COPY_CHUNK);
	w->zs.next_in = (unsigned char *)w->o.data;
	w->zs.avail_in = (uInt)w->o.len;
	for (;;) {
		w->zs.next_out = w->chunk;
		w->zs.avail_out = COPY_CHUNK;
		int rc = deflate(&w->zs, finish ? Z_FINISH : Z_NO_FLUSH);
		if (rc == Z_STREAM_ERROR) {
			w->st = mlk_error_set(w->e, MLK_SYSTEM, w->name, 0,
					      "cannot deflate");
			return -1;
		}
		size_t got = COPY_CHUNK - w->zs.avail_out;
		w->zbytes += got;
		if (got && out_raw(w, w->chunk, got))
			return -1;
		if (finish ? rc == Z_STREAM_END
			   : w->zs.avail_in == 0 && w->zs.avail_out != 0)
			break;
	}
	if (finish && (w->zbytes & 1))
		return out_raw(w, "", 1);   /* even length (PS3.5 A.5) */
	return 0;
}

static int flush(struct w *w)
{
	if (w->st != MLK_OK)
		return -1;
	if (w->deflate && !w->zstarted) {
		if (w->o.len < ONESHOT_MAX)
			return 0;   /* held for deflate_finish() */
		if (deflateInit2(&w->zs, Z_BEST_SPEED, Z_DEFLATED, -MAX_WBITS,
				 8, Z_DEFAULT_STRATEGY) != Z_OK) {
			w->st = mlk_error_set(w->e, MLK_SYSTEM, w->name, 0,
					      "cannot start deflate");
			return -1;
		}
		w->zstarted = 1;
	}
	if (w->deflate ? out_deflate(w, 0)
		       : w->o.len ? out_raw(w, w->o.data, w->o.len) : 0)
		return -1;
	buf_reset(&w->o);
	return 0;
}

/* The end of a deflated data set: what is held, compressed in one call,
 * or the end of the zlib stream; padded to even length (PS3.5 A.5). */
static int deflate_finish(struct w *w)
{
	if (w->zstarted)
		return flush(w) || out_deflate(w, 1);
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(1);
	if (!c) {
		w->st = mlk_error_set(w->e, MLK_SYSTEM, w->name, 0,
				      "cannot start deflate");
		return -1;
	}
	size_t bound = libdeflate_deflate_compress_bound(c, w->o.len);
	unsigned char *z = xmalloc(bound + 1);
	size_t n = libdeflate_deflate_compress(c, w->o.data, w->o.len, z,
					       bound);
	libdeflate_free_compressor(c);
	int rc;
	if (!n) {
		w->st = mlk_error_set(w->e, MLK_SYSTEM, w->name, 0,
				      "cannot deflate");
		rc = -1;
	} else {
		if (n & 1)
			z[n++] = 0;
		rc = out_raw(w, z, n);
	}
	free(z);
	buf_reset(&w->o);
	return rc;
}

static int maybe_flush(struct w *w)
{
	return w->o.len >= FLUSH_AT ? flush(w) : 0;
}

/* Copy n bytes of the input at off to the output, padded to even. */
static int copy_bulk(struct w *w, unsigned long long off, uint32_t n)
{
	if (w->deflate) {
		/* offsets count in the inflated stream: nothing to copy */
		w->st = mlk_error_set(w->e, MLK_PARTIAL, w->name, 0, "bulk data"
				      " in a deflated data set is not "
				      "supported yet");
		return -1;
	}
	if (n <= FLUSH_AT) {
		/* small (a fragment, a short waveform): into the buffer, so
		 * that a run of them costs one write, not two each */
		buf_grow(&w->o, (size_t)n + 1);
		size_t done = 0;
		while (done < n) {
			ssize_t got = pread(w->in, w->o.data + w->o.len + done,
					    n - done, (off_t)(off + done));
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				if (got < 0)
					mlk_error_errno(w->e, w->name,
							"cannot read");
				else
					mlk_error_set(w->e, MLK_PARTIAL,
						      w->name, 0, "truncated "
						      "at byte %llu",
						      off + done);
				w->st = w->e->status;
				return -1;
			}
			done += (size_t)got;
		}
		w->o.len += n;
		w->o.data[w->o.len] = '\0';
		if (n & 1)
			buf_addch(&w->o, '\0');
		return maybe_flush(w);
	}
	if (flush(w))
		return -1;
	if (!w->chunk)
		w->chunk = xmalloc(COPY_CHUNK);
	unsigned long long left = n;
	while (left) {
		size_t want = left < COPY_CHUNK ? (size_t)left : COPY_CHUNK;
		ssize_t got = pread(w->in, w->chunk, want, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			if (got < 0)
				mlk_error_errno(w->e, w->name, "cannot read");
			else
				mlk_error_set(w->e, MLK_PARTIAL, w->name, 0,
					      "truncated at byte %llu", off);
			w->st = w->e->status;
			return -1;
		}
		if (out_raw(w, w->chunk, (size_t)got))
			return -1;
		off += (unsigned long long)got;
		left -= (unsigned long long)got;
	}
	if (n & 1)
		buf_addch(&w->o, '\0');
	return 0;
}

static int write_zeros(struct w *w, uint32_t n)
{
	if (flush(w))
		return -1;
	if (!w->chunk)
		w->chunk = xmalloc(COPY_CHUNK);
	memset(w->chunk, 0, COPY_CHUNK);
	while (n) {
		uint32_t k = n < COPY_CHUNK ? n : COPY_CHUNK;
		buf_add(&w->o, w->chunk, k);
		if (flush(w))
			return -1;
		n -= k;
	}
	return 0;
}

static void element(struct w *w, uint32_t tag, const char *vr,
		    const void *p, size_t n)
{
	int odd = n & 1;
	header(&w->o, tag, vr, (uint32_t)(n + odd), w->explicit_vr, w->be);
	buf_add(&w->o, p, n);
	if (odd)
		buf_addch(&w->o, pad_of(vr));
}

static void str_element(struct w *w, uint32_t tag, const char *vr,
			const char *s)
{
	element(w, tag, vr, s, strlen(s));
}

static void delim(struct w *w, uint32_t tag, uint32_t len)
{
	put16(&w->o, 0xfffe, w->be);
	put16(&w->o, (uint16_t)tag, w->be);
	put32(&w->o, len, w->be);
}

/* ------------------------------------------------------------------ */
/* Inserted attributes                                                 */

static const uint32_t inserts[] = { T_PIR, T_METHOD, T_METHOD_SEQ,
				    T_TEMPORAL };
#define NINSERTS (sizeof inserts / sizeof *inserts)

static void insert_one(struct w *w, uint32_t tag)
{
	switch (tag) {
	case T_PIR:
		str_element(w, tag, "CS", "YES");
		break;
	case T_METHOD:
		str_element(w, tag, "LO", "mlk-deid PS3.15 E.1-1 basic profile");
		break;
	case T_METHOD_SEQ: {
		struct dd_code c[DD_NOPT + 1];
		size_t n = dd_methods(w->dd, c);
		header(&w->o, tag, "SQ", DICOM_UNDEFINED, w->explicit_vr,
		       w->be);
		for (size_t i = 0; i < n; i++) {
			delim(w, DICOM_ITEM, DICOM_UNDEFINED);
			str_element(w, DICOM_TAG(8, 0x100), "SH", c[i].value);
			str_element(w, DICOM_TAG(8, 0x102), "SH", "DCM");
			str_element(w, DICOM_TAG(8, 0x104), "LO", c[i].meaning);
			delim(w, DICOM_ITEM_DELIM, 0);
		}
		delim(w, DICOM_SEQ_DELIM, 0);
		break;
	}
	case T_TEMPORAL:
		str_element(w, tag, "CS", dd_temporal(w->dd));
		break;
	}
}

/* Before a top-level element of tag: the inserts that sort before it.
 * Returns 1 when tag is one of ours (the input's copy is dropped). */
static int inserts_before(struct w *w, uint32_t tag)
{
	while (w->next_insert < (int)NINSERTS &&
	       inserts[w->next_insert] <= tag) {
		uint32_t t = inserts[w->next_insert++];
		insert_one(w, t);
		if (t == tag)
			return 1;
	}
	for (size_t i = 0; i < NINSERTS; i++)
		if (inserts[i] == tag)
			return 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The first walk                                                      */

static void keep_text(struct buf *b, const struct dicom_elem *el)
{
	buf_reset(b);
	if (!el->value)
		return;
	size_t n = el->len;
	while (n && (el->value[n - 1] == ' ' || el->value[n - 1] == '\0'))
		n--;
	size_t s = 0;
	while (s < n && el->value[s] == ' ')
		s++;
	buf_add(b, el->value + s, n - s);
}

static int pre_event(void *ctx, enum dicom_event ev,
		     const struct dicom_elem *el)
{
	struct pre *p = ctx;
	if (!p->have_info) {
		p->info = *el->info;
		p->have_info = 1;
	}
	if (ev == DICOM_DATASET_BEGIN) {
		p->info = *el->info;
		return 0;
	}
	if (p->dd && ev == DICOM_ELEMENT && !el->meta && el->value)
		dd_note(p->dd, el->tag, el->vr, (const char *)el->value,
			el->len);
	if (el->depth != 0 || (ev != DICOM_ELEMENT && ev != DICOM_SEQ_BEGIN))
		return 0;
	if (!el->meta && el->tag > T_BURNED_IN)
		return p->dd ? 0 : STOP_PREPASS;
	if (ev != DICOM_ELEMENT)
		return 0;
	if (el->meta) {
		if (el->tag == DICOM_TAG(2, 2))
			keep_text(&p->meta_class, el);
		return 0;
	}
	switch (el->tag) {
	case T_PATIENT_ID:
		keep_text(&p->pid, el);
		p->have_pid = 1;
		break;
	case T_MODALITY:
		keep_text(&p->modality, el);
		break;
	case T_SOP_CLASS:
		keep_text(&p->sop_class, el);
		break;
	case T_SOP_UID:
		keep_text(&p->sop_uid, el);
		break;
	case T_BURNED_IN:
		keep_text(&p->burned, el);
		p->have_burned = 1;
		break;
	}
	return 0;
}

static void pre_release(struct pre *p)
{
	if (p->pid.data)
		crypto_wipe(p->pid.data, p->pid.len);
	buf_release(&p->pid);
	buf_release(&p->modality);
	buf_release(&p->sop_class);
	buf_release(&p->sop_uid);
	buf_release(&p->burned);
	buf_release(&p->meta_class);
}

/* ------------------------------------------------------------------ */
/* The second walk                                                     */

static void copy_uid(char *dst, const char *src, size_t n)
{
	while (n && (src[n - 1] == ' ' || src[n - 1] == '\0'))
		n--;
	if (n > DD_UID_MAX)
		n = DD_UID_MAX;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void note_result(struct w *w, uint32_t tag, const char *v, size_t n)
{
	char *dst = tag == T_STUDY_UID ? w->res->study_uid
		  : tag == T_SERIES_UID ? w->res->series_uid
		  : tag == T_SOP_UID ? w->res->sop_uid : NULL;
	if (dst)
		copy_uid(dst, v, n);
}

static int write_event(void *ctx, enum dicom_event ev,
		       const struct dicom_elem *el)
{
	struct w *w = ctx;
	if (el->meta || ev == DICOM_DATASET_BEGIN)
		return 0;
	if (w->skip) {
		if (ev == DICOM_SEQ_BEGIN)
			w->skip++;
		else if (ev == DICOM_SEQ_END)
			w->skip--;
		return 0;
	}
	if (el->big_endian != w->be) {
		mlk_error_set(w->e, MLK_PARTIAL, w->name, 0, "mixed byte order"
			      " at byte %llu", el->header_offset);
		w->st = MLK_PARTIAL;
		return -1;
	}
	switch (ev) {
	case DICOM_ELEMENT:
	case DICOM_SEQ_BEGIN: {
		if (el->depth == 0 && inserts_before(w, el->tag)) {
			if (ev == DICOM_SEQ_BEGIN)
				w->skip = 1;
			return maybe_flush(w);
		}
		uint32_t parents[DICOM_MAX_DEPTH];
		for (int i = 0; i < el->depth && i < DICOM_MAX_DEPTH; i++)
			parents[i] = el->path[i].tag;
		enum dd_action a = dd_action(w->dd, el->tag, el->vr, parents,
					     el->depth);
		if (ev == DICOM_SEQ_BEGIN) {
			if (a == DD_REMOVE ||
			    (el->encapsulated && a != DD_KEEP)) {
				w->skip = 1;
				return 0;
			}
			header(&w->o, el->tag, el->encapsulated ? el->vr : "SQ",
			       DICOM_UNDEFINED, w->explicit_vr, w->be);
			if (a == DD_ZERO && !el->encapsulated) {
				delim(w, DICOM_SEQ_DELIM, 0);
				w->skip = 1;
			}
			return maybe_flush(w);
		}
		if (a == DD_REMOVE)
			return 0;
		if (a == DD_KEEP && !el->value) {
			uint32_t n = el->len + (el->len & 1);
			header(&w->o, el->tag, el->vr, n, w->explicit_vr,
			       w->be);
			return copy_bulk(w, el->offset, el->len);
		}
		if (!el->value && a == DD_DUMMY && pad_of(el->vr) == '\0' &&
		    strcmp(el->vr, "UI")) {
			/* a bulk binary dummy: zeros of the same length,
			 * streamed (the length is the input's word) */
			uint32_t n = el->len + (el->len & 1);
			header(&w->o, el->tag, el->vr, n, w->explicit_vr,
			       w->be);
			return write_zeros(w, n);
		}
		buf_reset(&w->v);
		if (el->value)
			dd_value(w->dd, a, el->vr, (const char *)el->value,
				 el->len, &w->v);
		if (el->depth == 0)
			note_result(w, el->tag, w->v.data ? w->v.data : "",
				    w->v.len);
		element(w, el->tag, el->vr, w->v.data ? w->v.data : "",
			w->v.len);
		return maybe_flush(w);
	}
	case DICOM_ITEM_BEGIN:
		delim(w, DICOM_ITEM, DICOM_UNDEFINED);
		return 0;
	case DICOM_ITEM_END:
		delim(w, DICOM_ITEM_DELIM, 0);
		return maybe_flush(w);
	case DICOM_SEQ_END:
		delim(w, DICOM_SEQ_DELIM, 0);
		return maybe_flush(w);
	case DICOM_FRAGMENT:
		delim(w, DICOM_ITEM, el->len + (el->len & 1));
		return copy_bulk(w, el->offset, el->len);
	case DICOM_DATASET_BEGIN:
		return 0;
	}
	return 0;
}

/* The file meta group, rebuilt (always explicit VR little endian). */
static void write_meta(struct w *w, const struct pre *p, const char *sop_uid)
{
	struct buf g = BUF_INIT;
	int ev = w->explicit_vr, be = w->be;
	struct buf keep = w->o;
	w->o = g;
	w->explicit_vr = 1;
	w->be = 0;
	static const unsigned char version[2] = { 0, 1 };
	element(w, DICOM_TAG(2, 1), "OB", version, 2);
	const char *cls = p->meta_class.len ? p->meta_class.data
					    : p->sop_class.data;
	str_element(w, DICOM_TAG(2, 2), "UI", cls ? cls : "");
	str_element(w, DICOM_TAG(2, 3), "UI", sop_uid);
	/* a meta group without a transfer syntax: the one the data set was
	 * read in (dicom.c's rule), written out */
	const char *ts = p->info.ts_uid[0] ? p->info.ts_uid
		       : p->info.syntax == DICOM_IMPLICIT_LE
		       ? "1.2.840.10008.1.2" : "1.2.840.10008.1.2.1";
	str_element(w, DICOM_TAG(2, 0x10), "UI", ts);
	str_element(w, DICOM_TAG(2, 0x12), "UI", MLK_IMPL_UID);
	str_element(w, DICOM_TAG(2, 0x13), "SH", MLK_IMPL_NAME);
	g = w->o;
	w->o = keep;
	w->explicit_vr = ev;
	w->be = be;

	static const unsigned char pre128[128];
	buf_add(&w->o, pre128, sizeof pre128);
	buf_add(&w->o, "DICM", 4);
	header(&w->o, DICOM_TAG(2, 0), "UL", 4, 1, 0);
	put32(&w->o, (uint32_t)g.len, 0);
	buf_add(&w->o, g.data, g.len);
	buf_release(&g);
}

/* One file between dicomwrite_begin() and dicomwrite_end(). */
struct dicomwrite {
	const struct dicomwrite_params *p;
	int in;
	const char *name;
	struct pre pre;
};

enum mlk_status dicomwrite_begin(const struct dicomwrite_params *p,
				 int in_fd, const char *name,
				 struct dicomwrite **out, struct mlk_error *e)
{
	*out = NULL;
	struct dicomwrite *dw = xcalloc(1, sizeof *dw);
	dw->p = p;
	dw->in = in_fd;
	dw->name = name;
	struct pre *pre = &dw->pre;
	/* the cleaner needs the object's identifiers: the whole header */
	dd_clear_known(p->dd);
	if (dd_cleans(p->dd))
		pre->dd = p->dd;
	struct dicom_visitor v = { pre, pre_event, 0 };
	int rc = dicom_read_fd(in_fd, name, &v, e);
	enum mlk_status st = MLK_OK;
	if (rc != 0 && rc != STOP_PREPASS)
		st = e->status ? e->status : MLK_PARTIAL;
	if (st == MLK_OK) {
		const char *burned = !pre->have_burned ? NULL
				     : pre->burned.data ? pre->burned.data
				     : "";
		st = dd_burned_in(p->dd, pre->modality.data,
				  pre->sop_class.data, burned, e);
		if (st != MLK_OK)
			snprintf(e->file, sizeof e->file, "%s", name);
	}
	if (st != MLK_OK) {
		pre_release(pre);
		free(dw);
		return st;
	}
	int shift = 0;
	if (p->shift_days && pre->pid.len)
		shift = p->shift_days(p->ctx, pre->pid.data, pre->pid.len);
	dd_set_patient(p->dd, pre->pid.data ? pre->pid.data : "",
		       pre->pid.len, shift);
	*out = dw;
	return MLK_OK;
}

void dicomwrite_abort(struct dicomwrite *dw)
{
	if (!dw)
		return;
	pre_release(&dw->pre);
	free(dw);
}

enum mlk_status dicomwrite_end(struct dicomwrite *dw, int out_fd,
			       struct dicomwrite_result *res,
			       struct mlk_error *e)
{
	struct dicomwrite_result scratch;
	if (!res)
		res = &scratch;
	memset(res, 0, sizeof *res);
	const struct dicomwrite_params *p = dw->p;
	struct pre *pre = &dw->pre;
	int in_fd = dw->in;
	const char *name = dw->name;
	snprintf(res->modality, sizeof res->modality, "%s",
		 pre->modality.data ? pre->modality.data : "");
	copy_uid(res->sop_class, pre->sop_class.data ? pre->sop_class.data
						     : "",
		 pre->sop_class.len);

	struct w w;
	memset(&w, 0, sizeof w);
	w.dd = p->dd;
	w.in = in_fd;
	w.out = out_fd;
	w.name = name;
	w.e = e;
	w.res = res;
	w.explicit_vr = pre->info.syntax != DICOM_IMPLICIT_LE;
	w.be = pre->info.syntax == DICOM_EXPLICIT_BE;
	int deflated = pre->info.syntax == DICOM_DEFLATED_LE;
	sha256_init(&w.hc);

	/* the new SOP Instance UID, as the data set will carry it */
	struct buf sop = BUF_INIT;
	if (pre->sop_uid.len)
		dd_value(p->dd, dd_action(p->dd, T_SOP_UID, "UI", NULL, 0), "UI",
			 pre->sop_uid.data, pre->sop_uid.len, &sop);
	write_meta(&w, pre, sop.data ? sop.data : "");
	buf_release(&sop);
	dicomwrite_abort(dw);

	if (lseek(in_fd, 0, SEEK_SET) != 0) {
		buf_release(&w.o);
		sha256_abort(&w.hc);
		return mlk_error_errno(e, name, "cannot seek");
	}
	if (deflated) {
		flush(&w);   /* the meta group is not deflated */
		w.deflate = 1;
	}
	/* A deflated data set cannot be copied by offset: its values come
	 * in memory (up to DICOM_MAX_VALUE); pixel data there is refused. */
	struct dicom_visitor wv = { &w, write_event,
				    deflated ? DICOM_MAX_VALUE : 0 };
	int rc = dicom_read_fd(in_fd, name, &wv, e);
	if (rc == 0 && w.st == MLK_OK) {
		while (w.next_insert < (int)NINSERTS)
			insert_one(&w, inserts[w.next_insert++]);
		if (w.deflate)
			deflate_finish(&w);
		else
			flush(&w);
	}
	if (w.zstarted)
		deflateEnd(&w.zs);
	enum mlk_status st = w.st != MLK_OK ? w.st
			     : rc ? (e->status ? e->status : MLK_PARTIAL)
			     : MLK_OK;
	res->bytes = w.bytes;
	if (st == MLK_OK) {
		uint8_t d[SHA256_LEN];
		sha256_final(&w.hc, d);
		hex_encode(d, SHA256_LEN, res->sha256);
	} else {
		sha256_abort(&w.hc);
	}
	buf_release(&w.o);
	buf_release(&w.v);
	free(w.chunk);
	return st;
}

enum mlk_status dicomwrite_fd(const struct dicomwrite_params *p, int in_fd,
			      const char *name, int out_fd,
			      struct dicomwrite_result *res,
			      struct mlk_error *e)
{
	struct dicomwrite *dw;
	if (res)
		memset(res, 0, sizeof *res);
	enum mlk_status st = dicomwrite_begin(p, in_fd, name, &dw, e);
	return st != MLK_OK ? st : dicomwrite_end(dw, out_fd, res, e);
}

enum mlk_status dicomwrite_file(const struct dicomwrite_params *p,
				const char *in, const char *out,
				unsigned mode, struct dicomwrite_result *res,
				struct mlk_error *e)
{
	int ifd = open(in, O_RDONLY | O_CLOEXEC);
	if (ifd < 0)
		return mlk_error_errno(e, in, "cannot open");
	int ofd;
	char *tmp;
	if (fsio_temp_beside(out, &ofd, &tmp, e) != MLK_OK) {
		close(ifd);
		return e->status;
	}
	enum mlk_status st = dicomwrite_fd(p, ifd, in, ofd, res, e);
	close(ifd);
	if (st != MLK_OK) {
		close(ofd);
		unlink(tmp);
		free(tmp);
		return st;
	}
	st = fsio_commit(ofd, tmp, out, (mode_t)mode, 0, e);
	if (st != MLK_OK)
		unlink(tmp);
	free(tmp);
	return st;
}
