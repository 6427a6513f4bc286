/*
 * dicom — the Part 10 reader (a visitor over elements) and the DICOM JSON
 * Model written over it.  See dicom.h.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libdeflate.h>
#include <zlib.h>

#include "dicom.h"
#include "xalloc.h"
#include "banned.h"

/* ------------------------------------------------------------------ */
/* The byte source: memory, a file (pread), a pipe (read), and inflate. */

struct src {
	int fd;                       /* -1: memory */
	const unsigned char *mem;     /* memory source */
	int seekable;
	unsigned long long fsize;     /* regular file size, or 0 unknown */
	unsigned long long foff;      /* next raw offset to read */
	const unsigned char *p;       /* raw bytes available */
	size_t avail;
	unsigned char *buf;           /* raw read buffer (fd) */
	int raw_eof;
	int raw_err;
	/* Inflate, once a deflated data set starts: all at once into zbuf
	 * (oneshot) or through zs. */
	int z, z_end, oneshot;
	z_stream zs;
	unsigned char *zbuf;
	const unsigned char *zp;
	size_t zavail;
	unsigned char zpre[16];       /* deflated bytes peeked at before */
	size_t nzpre;
	/* Pushed-back bytes: peeks of at most 6 bytes, before a header of
	 * at least 8 is read, so 16 always hold them. */
	unsigned char pb[16];
	size_t npb;
	unsigned long long pos;       /* logical offset of the next byte */
};

#define RAW_BUF (64u << 10)

static void raw_refill(struct src *s)
{
	if (s->fd < 0 || s->raw_eof || s->raw_err) {
		s->raw_eof = 1;
		return;
	}
	ssize_t r;
	for (;;) {
		r = s->seekable ? pread(s->fd, s->buf, RAW_BUF, (off_t)s->foff)
				: read(s->fd, s->buf, RAW_BUF);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == ESPIPE && s->seekable) {
			s->seekable = 0;
			continue;
		}
		break;
	}
	if (r < 0) {
		s->raw_err = errno ? errno : EIO;
		return;
	}
	if (r == 0) {
		s->raw_eof = 1;
		return;
	}
	s->foff += (unsigned long long)r;
	s->p = s->buf;
	s->avail = (size_t)r;
}

/* Up to n raw bytes into dst (NULL: dropped); returns how many. */
static size_t raw_get(struct src *s, unsigned char *dst, size_t n)
{
	size_t got = 0;
	while (got < n) {
		if (!s->avail) {
			raw_refill(s);
			if (!s->avail)
				break;
		}
		size_t k = n - got < s->avail ? n - got : s->avail;
		if (dst)
			memcpy(dst + got, s->p, k);
		s->p += k;
		s->avail -= k;
		got += k;
	}
	return got;
}

/* Skip n raw bytes; returns how many there were. */
static unsigned long long raw_skip(struct src *s, unsigned long long n)
{
	if (n <= s->avail) {
		s->p += n;
		s->avail -= (size_t)n;
		return n;
	}
	unsigned long long got = s->avail;
	n -= s->avail;
	s->avail = 0;
	if (s->fd >= 0 && s->seekable && s->fsize) {
		unsigned long long left = s->fsize > s->foff
					  ? s->fsize - s->foff : 0;
		unsigned long long k = n < left ? n : left;
		s->foff += k;
		return got + k;
	}
	while (n) {
		size_t k = n > RAW_BUF ? RAW_BUF : (size_t)n;
		size_t r = raw_get(s, NULL, k);
		got += r;
		n -= r;
		if (r < k)
			break;
	}
	return got;
}

/* Up to n bytes of the inflated stream. */
static size_t z_get(struct src *s, unsigned char *dst, size_t n, int *bad)
{
	size_t got = 0;
	while (got < n) {
		if (s->zavail) {
			size_t k = n - got < s->zavail ? n - got : s->zavail;
			if (dst)
				memcpy(dst + got, s->zp, k);
			s->zp += k;
			s->zavail -= k;
			got += k;
			continue;
		}
		if (s->z_end)
			break;
		int pre = s->nzpre > 0;
		if (!pre && !s->avail) {
			raw_refill(s);
			if (!s->avail)
				break;
		}
		size_t have = pre ? s->nzpre : s->avail;
		s->zs.next_in = pre ? s->zpre
				    : (unsigned char *)(uintptr_t)s->p;
		s->zs.avail_in = (uInt)have;
		s->zs.next_out = s->zbuf;
		s->zs.avail_out = RAW_BUF;
		int rc = inflate(&s->zs, Z_NO_FLUSH);
		size_t used = have - s->zs.avail_in;
		if (pre) {
			memmove(s->zpre, s->zpre + used, s->nzpre - used);
			s->nzpre -= used;
		} else {
			s->p += used;
			s->avail -= used;
		}
		s->zp = s->zbuf;
		s->zavail = RAW_BUF - s->zs.avail_out;
		if (rc == Z_STREAM_END) {
			s->z_end = 1;
		} else if (rc != Z_OK && rc != Z_BUF_ERROR) {
			*bad = 1;
			break;
		} else if (!used && !s->zavail) {
			*bad = 1;
			break;
		}
	}
	return got;
}

/* Up to n bytes of the stream; returns how many. */
static size_t src_get(struct src *s, unsigned char *dst, size_t n, int *bad)
{
	size_t got = 0;
	while (s->npb && got < n) {
		if (dst)
			dst[got] = s->pb[0];
		memmove(s->pb, s->pb + 1, --s->npb);
		got++;
	}
	if (got < n)
		got += s->z ? z_get(s, dst ? dst + got : NULL, n - got, bad)
			    : raw_get(s, dst ? dst + got : NULL, n - got);
	s->pos += got;
	return got;
}

static unsigned long long src_skip(struct src *s, unsigned long long n,
				   int *bad)
{
	if (s->npb || s->z) {
		unsigned long long got = 0;
		while (got < n) {
			size_t k = n - got > RAW_BUF ? RAW_BUF
						     : (size_t)(n - got);
			size_t r = src_get(s, NULL, k, bad);
			got += r;
			if (r < k)
				break;
		}
		return got;
	}
	unsigned long long got = raw_skip(s, n);
	s->pos += got;
	return got;
}

/* Go back n bytes before any inflate: within the buffer, or by offset on
 * a file; -1 on a pipe whose bytes are gone. */
static int src_rewind(struct src *s, size_t n)
{
	const unsigned char *base = s->fd < 0 ? s->mem : s->buf;
	if (s->npb || s->z)
		return -1;
	if ((size_t)(s->p - base) >= n) {
		s->p -= n;
		s->avail += n;
	} else if (s->fd >= 0 && s->seekable) {
		s->foff = s->pos - n;
		s->avail = 0;
	} else {
		return -1;
	}
	s->pos -= n;
	return 0;
}

static void src_unget(struct src *s, const unsigned char *p, size_t n)
{
	memmove(s->pb + n, s->pb, s->npb);
	memcpy(s->pb, p, n);
	s->npb += n;
	s->pos -= n;
}

/* ------------------------------------------------------------------ */
/* The walk. */

struct rd {
	struct src s;
	const char *name;
	const struct dicom_visitor *v;
	struct mlk_error *e;
	struct dicom_info info;
	struct dicom_level path[DICOM_MAX_DEPTH];
	int depth;
	int meta;
	uint32_t bulk;
	unsigned char *val;
	size_t val_alloc;
	int stop;                /* a visitor's non-zero return */
};

struct hdr {
	uint32_t tag;
	char vr[3];
	uint32_t len;
	unsigned long long hoff, voff;
};

static int fail(struct rd *r, unsigned long long at, const char *what)
{
	if (r->s.raw_err)
		mlk_error_set(r->e, MLK_SYSTEM, r->name, 0,
			      "read error at byte %llu: %s", at,
			      strerror(r->s.raw_err));
	else
		mlk_error_set(r->e, MLK_PARTIAL, r->name, 0,
			      "not valid DICOM: %s at byte %llu", what, at);
	return -1;
}

static int truncated(struct rd *r, unsigned long long at)
{
	return fail(r, at, "truncated");
}

static uint16_t u16(const unsigned char *p, int be)
{
	return be ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

static uint32_t u32(const unsigned char *p, int be)
{
	return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
			    (uint32_t)p[2] << 8 | p[3]
		  : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
			    (uint32_t)p[1] << 8 | p[0];
}

static int is_long_vr(const char *vr)
{
	static const char *const l[] = { "OB", "OD", "OF", "OL", "OV", "OW",
					 "SQ", "SV", "UC", "UN", "UR", "UT",
					 "UV" };
	for (size_t i = 0; i < sizeof l / sizeof l[0]; i++)
		if (vr[0] == l[i][0] && vr[1] == l[i][1])
			return 1;
	return 0;
}

static int is_known_vr(const char *vr)
{
	static const char all[] = "AE AS AT CS DA DS DT FD FL IS LO LT OB OD "
				  "OF OL OV OW PN SH SL SQ SS ST SV TM UC UI "
				  "UL UN UR US UT UV";
	for (size_t i = 0; i + 1 < sizeof all; i += 3)
		if (vr[0] == all[i] && vr[1] == all[i + 1])
			return 1;
	return 0;
}

static int is_bulk_vr(const char *vr)
{
	return vr[0] == 'O' || (vr[0] == 'U' && vr[1] == 'N');
}

const char *dicom_dict_vr(uint32_t tag)
{
	uint16_t g = DICOM_GROUP(tag), el = (uint16_t)tag;
	if (el == 0)
		return "UL";
	if (g & 1) {
		if (el >= 0x10 && el <= 0xff)
			return "LO";
		return "UN";
	}
	/* Repeating groups (curves, overlays) are in the dictionary under
	 * their first group. */
	if ((g & 0xff00) == 0x5000 || (g & 0xff00) == 0x6000)
		tag = DICOM_TAG(g & 0xff00, el);
	size_t lo = 0, hi = dicom_dict_len;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (dicom_dict[mid].tag < tag)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < dicom_dict_len && dicom_dict[lo].tag == tag)
		return dicom_dict[lo].vr;
	return "UN";
}

/*
 * One element header.  Returns 1, 0 on a clean end of input (no byte
 * read; only where eof_ok), -1 on error.
 */
static int read_header(struct rd *r, int implicit, int be, int eof_ok,
		       struct hdr *h)
{
	unsigned char b[8];
	int bad = 0;
	h->hoff = r->s.pos;
	size_t got = src_get(&r->s, b, 4, &bad);
	if (got == 0 && eof_ok && !bad && !r->s.raw_err)
		return 0;
	if (got < 4)
		return bad ? fail(r, h->hoff, "corrupt deflate stream")
			   : truncated(r, h->hoff);
	h->tag = DICOM_TAG(u16(b, be), u16(b + 2, be));
	if (DICOM_GROUP(h->tag) == 0xfffe) {
		if (src_get(&r->s, b, 4, &bad) < 4)
			return truncated(r, h->hoff);
		h->vr[0] = h->vr[1] = h->vr[2] = 0;
		h->len = u32(b, be);
		h->voff = r->s.pos;
		return 1;
	}
	if (src_get(&r->s, b, 4, &bad) < 4)
		return truncated(r, h->hoff);
	int upper = b[0] >= 'A' && b[0] <= 'Z' && b[1] >= 'A' && b[1] <= 'Z';
	if (implicit || !upper) {
		/* Explicit VR files with an implicit element now and then
		 * exist; read it as implicit rather than give up. */
		const char *vr = dicom_dict_vr(h->tag);
		memcpy(h->vr, vr, 3);
		h->len = u32(b, be);
	} else {
		h->vr[0] = (char)b[0];
		h->vr[1] = (char)b[1];
		h->vr[2] = 0;
		if (!is_known_vr(h->vr))
			memcpy(h->vr, "UN", 3);
		if (is_long_vr(h->vr)) {
			if (src_get(&r->s, b, 4, &bad) < 4)
				return truncated(r, h->hoff);
			h->len = u32(b, be);
		} else {
			h->len = u16(b + 2, be);
		}
	}
	h->voff = r->s.pos;
	return 1;
}

static int emit(struct rd *r, enum dicom_event ev, const struct hdr *h,
		int be, int encapsulated, const unsigned char *value)
{
	struct dicom_elem el;
	el.tag = h->tag;
	memcpy(el.vr, h->vr, 3);
	el.len = h->len;
	el.offset = h->voff;
	el.header_offset = h->hoff;
	el.depth = r->depth;
	el.path = r->path;
	el.meta = r->meta;
	el.encapsulated = encapsulated;
	el.big_endian = be;
	el.value = value;
	el.info = &r->info;
	int rc = r->v->event(r->v->ctx, ev, &el);
	if (rc)
		r->stop = rc;
	return rc ? -1 : 0;
}

static int skip_value(struct rd *r, const struct hdr *h)
{
	int bad = 0;
	if (src_skip(&r->s, h->len, &bad) < h->len || bad ||
	    (r->s.fsize && r->s.foff > r->s.fsize))
		return bad ? fail(r, h->voff, "corrupt deflate stream")
			   : truncated(r, h->voff);
	return 0;
}

static int read_dataset(struct rd *r, int implicit, int be,
			unsigned long long end, int undefined, int top);

static int push(struct rd *r, uint32_t tag, unsigned long long at)
{
	if (r->depth >= DICOM_MAX_DEPTH)
		return fail(r, at, "sequences nested too deep");
	r->path[r->depth].tag = tag;
	r->path[r->depth].item = 0;
	r->depth++;
	return 0;
}

static int read_sequence(struct rd *r, const struct hdr *sq, int implicit,
			 int be, int encapsulated)
{
	if (emit(r, DICOM_SEQ_BEGIN, sq, be, encapsulated, NULL) ||
	    push(r, sq->tag, sq->hoff))
		return -1;
	int undefined = sq->len == DICOM_UNDEFINED;
	unsigned long long end = sq->voff + (undefined ? 0 : sq->len);
	for (uint32_t idx = 0;; idx++) {
		if (!undefined && r->s.pos >= end) {
			if (r->s.pos > end)
				return fail(r, end, "item overruns its "
					    "sequence");
			break;
		}
		struct hdr it;
		int rc = read_header(r, 1, be, 0, &it);
		if (rc < 0)
			return -1;
		if (it.tag == DICOM_SEQ_DELIM) {
			if (!undefined)
				return fail(r, it.hoff, "sequence delimiter "
					    "in a sequence of defined length");
			break;
		}
		if (it.tag != DICOM_ITEM)
			return fail(r, it.hoff, "expected an item");
		r->path[r->depth - 1].item = idx;
		if (encapsulated) {
			if (it.len == DICOM_UNDEFINED)
				return fail(r, it.hoff, "fragment of undefined "
					    "length");
			if (emit(r, DICOM_FRAGMENT, &it, be, 1, NULL) ||
			    skip_value(r, &it))
				return -1;
			continue;
		}
		if (emit(r, DICOM_ITEM_BEGIN, &it, be, 0, NULL))
			return -1;
		int iu = it.len == DICOM_UNDEFINED;
		if (read_dataset(r, implicit, be, it.voff + (iu ? 0 : it.len),
				 iu, 0))
			return -1;
		struct hdr ie = it;
		ie.hoff = ie.voff = r->s.pos;
		if (emit(r, DICOM_ITEM_END, &ie, be, 0, NULL))
			return -1;
	}
	r->depth--;
	struct hdr se = *sq;
	se.hoff = se.voff = r->s.pos;
	return emit(r, DICOM_SEQ_END, &se, be, encapsulated, NULL);
}

/* An unknown (private) element in implicit VR whose value starts with an
 * item tag is a sequence, as dcmtk's private dictionaries and pydicom
 * would read it. */
static int looks_like_item(struct rd *r, int be)
{
	unsigned char b[4];
	int bad = 0;
	size_t k = src_get(&r->s, b, 4, &bad);
	if (k)
		src_unget(&r->s, b, k);
	return k == 4 && DICOM_TAG(u16(b, be), u16(b + 2, be)) == DICOM_ITEM;
}

static int read_dataset(struct rd *r, int implicit, int be,
			unsigned long long end, int undefined, int top)
{
	for (;;) {
		if (!undefined && !top && r->s.pos >= end) {
			if (r->s.pos > end)
				return fail(r, end, "element overruns its "
					    "item");
			return 0;
		}
		struct hdr h;
		int rc = read_header(r, implicit, be, top, &h);
		if (rc <= 0)
			return rc;
		if (h.tag == DICOM_ITEM_DELIM) {
			if (top || !undefined)
				return fail(r, h.hoff, "unexpected item "
					    "delimiter");
			return 0;
		}
		if (DICOM_GROUP(h.tag) == 0xfffe)
			return fail(r, h.hoff, "unexpected item tag");
		if (h.len == DICOM_UNDEFINED) {
			if (h.tag == DICOM_PIXEL_DATA ||
			    (!implicit && h.vr[0] == 'O')) {
				if (read_sequence(r, &h, implicit, be, 1))
					return -1;
				continue;
			}
			/* Implicit VR: only a sequence has an undefined
			 * length; UN of undefined length is a sequence in
			 * implicit VR little endian (PS3.5 6.2.2). */
			if (implicit || !strcmp(h.vr, "SQ") ||
			    !strcmp(h.vr, "UN")) {
				int inner = implicit || strcmp(h.vr, "SQ");
				memcpy(h.vr, "SQ", 3);
				if (read_sequence(r, &h, inner,
						  inner ? 0 : be, 0))
					return -1;
				continue;
			}
			return fail(r, h.hoff, "undefined length outside a "
				    "sequence");
		}
		if (implicit && !strcmp(h.vr, "UN") && h.len >= 8 &&
		    looks_like_item(r, be))
			memcpy(h.vr, "SQ", 3);
		if (!strcmp(h.vr, "SQ")) {
			if (read_sequence(r, &h, implicit, be, 0))
				return -1;
			continue;
		}
		int bulk = h.tag == DICOM_PIXEL_DATA ||
			   h.len > DICOM_MAX_VALUE ||
			   (is_bulk_vr(h.vr) && h.len > r->bulk);
		if (!bulk && r->s.fsize && !r->s.z &&
		    h.voff + h.len > r->s.fsize)
			return truncated(r, h.voff);
		if (bulk) {
			if (emit(r, DICOM_ELEMENT, &h, be, 0, NULL) ||
			    skip_value(r, &h))
				return -1;
			continue;
		}
		if (h.len + 1 > r->val_alloc) {
			r->val_alloc = h.len + 1;
			r->val = xrealloc(r->val, r->val_alloc);
		}
		int bad = 0;
		if (src_get(&r->s, r->val, h.len, &bad) < h.len)
			return bad ? fail(r, h.voff, "corrupt deflate stream")
				   : truncated(r, h.voff);
		r->val[h.len] = 0;
		if (emit(r, DICOM_ELEMENT, &h, be, 0, r->val))
			return -1;
	}
}

static const char TS_IMPLICIT[] = "1.2.840.10008.1.2";
static const char TS_EXPLICIT[] = "1.2.840.10008.1.2.1";
static const char TS_BE[] = "1.2.840.10008.1.2.2";
static const char TS_DEFLATED[] = "1.2.840.10008.1.2.1.99";

static int read_meta(struct rd *r)
{
	r->meta = 1;
	for (;;) {
		unsigned char b[4];
		int bad = 0;
		size_t got = src_get(&r->s, b, 4, &bad);
		if (got)
			src_unget(&r->s, b, got);
		if (got < 4 || u16(b, 0) != 0x0002)
			break;
		struct hdr h;
		if (read_header(r, 0, 0, 0, &h) < 0)
			return -1;
		if (h.len == DICOM_UNDEFINED || h.len > (1u << 20))
			return fail(r, h.hoff, "bad file meta element");
		if (h.len + 1 > r->val_alloc) {
			r->val_alloc = h.len + 1;
			r->val = xrealloc(r->val, r->val_alloc);
		}
		if (src_get(&r->s, r->val, h.len, &bad) < h.len)
			return truncated(r, h.voff);
		r->val[h.len] = 0;
		r->info.has_meta = 1;
		if (h.tag == DICOM_TAG(2, 0x10)) {
			size_t n = h.len < 64 ? h.len : 64;
			memcpy(r->info.ts_uid, r->val, n);
			while (n && (r->info.ts_uid[n - 1] == 0 ||
				     r->info.ts_uid[n - 1] == ' '))
				n--;
			r->info.ts_uid[n] = 0;
		}
		if (emit(r, DICOM_ELEMENT, &h, 0, 0, r->val))
			return -1;
	}
	r->meta = 0;
	return 0;
}

/* Compressed data sets up to this size are inflated in one call by
 * libdeflate (2-3x faster than zlib's stream) into at most ONESHOT_OUT
 * bytes; larger ones, and any libdeflate refuses, stream through zlib,
 * which also names where a broken stream breaks. */
#define ONESHOT_IN (8u << 20)
#define ONESHOT_OUT (64u << 20)

/* The rest of the source, inflated at once into zbuf: 1, or 0 with the
 * source untouched. */
static int inflate_oneshot(struct src *s, int zlib_header)
{
	unsigned long long rest = s->nzpre + s->avail;
	if (s->fd >= 0) {
		if (!s->seekable || !s->fsize || s->raw_err)
			return 0;
		rest += s->fsize > s->foff ? s->fsize - s->foff : 0;
	}
	if (rest > ONESHOT_IN)
		return 0;
	unsigned char *in = xmalloc((size_t)rest + 1);
	memcpy(in, s->zpre, s->nzpre);
	if (s->avail)
		memcpy(in + s->nzpre, s->p, s->avail);
	size_t have = s->nzpre + s->avail;
	while (have < rest) {
		ssize_t r = pread(s->fd, in + have, (size_t)rest - have,
				  (off_t)(s->foff + (have - s->nzpre -
						     s->avail)));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		have += (size_t)r;
	}
	if (have < rest) {
		free(in);
		return 0;
	}
	struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
	size_t cap = rest * 4 < (64u << 10) ? (64u << 10) : (size_t)rest * 4;
	unsigned char *out = NULL;
	size_t got = 0;
	enum libdeflate_result res = LIBDEFLATE_BAD_DATA;
	while (d) {
		out = xrealloc(out, cap);
		size_t used;
		res = zlib_header
		      ? libdeflate_zlib_decompress_ex(d, in, rest, out, cap,
						      &used, &got)
		      : libdeflate_deflate_decompress_ex(d, in, rest, out,
							 cap, &used, &got);
		if (res != LIBDEFLATE_INSUFFICIENT_SPACE || cap >= ONESHOT_OUT)
			break;
		cap = cap * 4 > ONESHOT_OUT ? ONESHOT_OUT : cap * 4;
	}
	libdeflate_free_decompressor(d);
	free(in);
	if (res != LIBDEFLATE_SUCCESS) {
		free(out);
		return 0;
	}
	/* every raw byte is used: the source is now the inflated one */
	s->nzpre = 0;
	s->avail = 0;
	s->raw_eof = 1;
	s->zbuf = out;
	s->zp = out;
	s->zavail = got;
	s->z = 1;
	s->z_end = 1;
	s->oneshot = 1;
	return 1;
}

static int start_inflate(struct rd *r)
{
	struct src *s = &r->s;
	/* The bytes peeked at after the meta group are deflated ones: they
	 * go to inflate first. */
	memcpy(s->zpre, s->pb, s->npb);
	s->nzpre = s->npb;
	s->npb = 0;
	unsigned char b[2];
	size_t nb = 0;
	for (size_t i = 0; i < s->nzpre && nb < 2; i++)
		b[nb++] = s->zpre[i];
	if (nb < 2 && !s->avail)
		raw_refill(s);
	for (size_t i = 0; i < s->avail && nb < 2; i++)
		b[nb++] = s->p[i];
	/* A few writers put a zlib header on the stream; PS3.5 says raw
	 * deflate. */
	int wbits = -MAX_WBITS;
	if (nb == 2 && (b[0] & 0x0f) == 8 &&
	    ((unsigned)b[0] << 8 | b[1]) % 31 == 0)
		wbits = MAX_WBITS;
	if (inflate_oneshot(s, wbits > 0))
		return 0;
	memset(&s->zs, 0, sizeof s->zs);
	if (inflateInit2(&s->zs, wbits) != Z_OK)
		return fail(r, s->pos, "cannot start inflate");
	s->zbuf = xmalloc(RAW_BUF);
	s->z = 1;
	return 0;
}

static int walk(struct rd *r)
{
	unsigned char head[132];
	int bad = 0;
	size_t got = src_get(&r->s, head, sizeof head, &bad);
	if (got >= 132 && !memcmp(head + 128, "DICM", 4)) {
		r->info.preamble = 1;
	} else {
		/* "DICM" without the preamble, or a bare data set. */
		size_t start = got >= 4 && !memcmp(head, "DICM", 4) ? 4 : 0;
		if (!start && !dicom_detect(head, got))
			return fail(r, 0, "no DICM prefix and no data set");
		if (src_rewind(&r->s, got - start))
			return fail(r, start, "cannot go back on a pipe");
	}
	if (read_meta(r))
		return -1;
	if ((r->info.preamble || r->info.has_meta) && !r->info.ts_uid[0])
		return fail(r, r->s.pos, "no transfer syntax in the file meta "
			    "group");
	const char *ts = r->info.ts_uid;
	if (!r->info.has_meta) {
		/* No meta: explicit VR when the first element says so. */
		unsigned char b[6];
		size_t k = src_get(&r->s, b, 6, &bad);
		if (k)
			src_unget(&r->s, b, k);
		int expl = k == 6 && b[4] >= 'A' && b[4] <= 'Z' &&
			   b[5] >= 'A' && b[5] <= 'Z' &&
			   is_known_vr((char *)b + 4);
		snprintf(r->info.ts_uid, sizeof r->info.ts_uid, "%s",
			 expl ? TS_EXPLICIT : TS_IMPLICIT);
	}
	if (!strcmp(ts, TS_IMPLICIT))
		r->info.syntax = DICOM_IMPLICIT_LE;
	else if (!strcmp(ts, TS_BE))
		r->info.syntax = DICOM_EXPLICIT_BE;
	else if (!strcmp(ts, TS_DEFLATED))
		r->info.syntax = DICOM_DEFLATED_LE;
	else
		r->info.syntax = DICOM_EXPLICIT_LE;
	r->info.dataset_offset = r->s.pos;
	struct hdr h = { 0, "", 0, r->s.pos, r->s.pos };
	if (emit(r, DICOM_DATASET_BEGIN, &h, 0, 0, NULL))
		return -1;
	if (r->info.syntax == DICOM_DEFLATED_LE && start_inflate(r))
		return -1;
	int implicit = r->info.syntax == DICOM_IMPLICIT_LE;
	int be = r->info.syntax == DICOM_EXPLICIT_BE;
	unsigned long long start = r->s.pos;
	if (read_dataset(r, implicit, be, 0, 1, 1))
		return -1;
	if (r->s.pos == start)
		return fail(r, start, "empty data set");
	return 0;
}

static int run(struct rd *r)
{
	if (!r->bulk)
		r->bulk = DICOM_BULK_DEFAULT;
	int rc = walk(r);
	free(r->val);
	free(r->s.buf);
	if (r->s.z) {
		if (!r->s.oneshot)
			inflateEnd(&r->s.zs);
		free(r->s.zbuf);
	}
	if (r->stop)
		return r->stop;
	return rc ? r->e->status : MLK_OK;
}

int dicom_read_fd(int fd, const char *name, const struct dicom_visitor *v,
		  struct mlk_error *e)
{
	struct rd r;
	memset(&r, 0, sizeof r);
	r.s.fd = fd;
	r.s.seekable = 1;
	r.s.buf = xmalloc(RAW_BUF);
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		r.s.fsize = (unsigned long long)st.st_size;
	else
		r.s.seekable = 0;
	r.name = name;
	r.v = v;
	r.e = e;
	r.bulk = v->bulk_threshold;
	return run(&r);
}

int dicom_read_mem(const void *p, size_t n, const char *name,
		   const struct dicom_visitor *v, struct mlk_error *e)
{
	struct rd r;
	memset(&r, 0, sizeof r);
	r.s.fd = -1;
	r.s.mem = p;
	r.s.p = p;
	r.s.avail = n;
	r.s.fsize = n;
	r.s.foff = n;
	r.name = name;
	r.v = v;
	r.e = e;
	r.bulk = v->bulk_threshold;
	return run(&r);
}

int dicom_detect(const unsigned char *p, size_t n)
{
	if (n >= 132 && !memcmp(p + 128, "DICM", 4))
		return 1;
	if (n >= 4 && !memcmp(p, "DICM", 4))
		return 1;
	if (n < 8)
		return 0;
	uint16_t g = u16(p, 0), el = u16(p + 2, 0);
	if (g != 0x0002 && g != 0x0008)
		return 0;
	char vr[3] = { (char)p[4], (char)p[5], 0 };
	if (vr[0] >= 'A' && vr[0] <= 'Z' && is_known_vr(vr))
		return el <= 0x1000;
	uint32_t len = u32(p + 4, 0);
	return len <= 0x400 && (el == 0 ||
				strcmp(dicom_dict_vr(DICOM_TAG(g, el)), "UN"));
}

/* ------------------------------------------------------------------ */
/* The DICOM JSON Model. */

static const char *const field_names[DF_N] = {
	"modality", "date", "study_date", "body_part", "study_instance_uid",
	"series_instance_uid", "sop_instance_uid", "sop_class_uid",
	"transfer_syntax",
};

const char *dicom_field_name(enum dicom_field i)
{
	return field_names[i];
}

struct jctx {
	struct dicom_doc *d;
	struct buf out;            /* the "dicom" object */
	struct buf tmp;
	/* Per JSON nesting level: whether a comma is due, and whether a
	 * sequence has opened its "Value" array. */
	unsigned char comma[2 * DICOM_MAX_DEPTH + 4];
	unsigned char opened[DICOM_MAX_DEPTH + 2];
	int lvl;
	int utf8;                  /* ISO_IR 192 */
};

/* Text as UTF-8 JSON string: ISO 8859-1 bytes converted, bad UTF-8 as
 * U+FFFD. */
static void add_text(struct jctx *j, struct buf *o, const unsigned char *p,
		     size_t n)
{
	struct buf *t = &j->tmp;
	buf_reset(t);
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		if (c < 0x80) {
			buf_addch(t, (char)c);
			i++;
		} else if (!j->utf8) {
			buf_addch(t, (char)(0xc0 | c >> 6));
			buf_addch(t, (char)(0x80 | (c & 0x3f)));
			i++;
		} else {
			size_t k = c >= 0xf5 ? 0 : c >= 0xf0 ? 4
				 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
			int ok = k && i + k <= n;
			for (size_t m = 1; ok && m < k; m++)
				ok = (p[i + m] & 0xc0) == 0x80;
			if (ok && k == 3)
				ok = !(c == 0xe0 && p[i + 1] < 0xa0) &&
				     !(c == 0xed && p[i + 1] >= 0xa0);
			if (ok && k == 4)
				ok = !(c == 0xf0 && p[i + 1] < 0x90) &&
				     !(c == 0xf4 && p[i + 1] >= 0x90);
			if (ok) {
				buf_add(t, p + i, k);
				i += k;
			} else {
				buf_addstr(t, "\xef\xbf\xbd");
				i++;
			}
		}
	}
	buf_add_json_str(o, t->data ? t->data : "", t->len);
}

static void trim(const unsigned char **p, size_t *n, int lead)
{
	while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == 0))
		(*n)--;
	while (lead && *n && **p == ' ') {
		(*p)++;
		(*n)--;
	}
}

/* A DS/IS value as a JSON number; 0 when it is not a number. */
static int add_number_text(struct buf *o, const unsigned char *p, size_t n)
{
	char t[80];
	size_t k = 0;
	if (!n || n > 64)
		return 0;
	size_t i = 0;
	if (p[i] == '+' || p[i] == '-') {
		if (p[i] == '-')
			t[k++] = '-';
		i++;
	}
	/* Integer part: leading zeros dropped, at least one digit. */
	size_t d0 = k;
	while (i < n && p[i] == '0' && i + 1 < n && p[i + 1] >= '0' &&
	       p[i + 1] <= '9')
		i++;
	while (i < n && p[i] >= '0' && p[i] <= '9')
		t[k++] = (char)p[i++];
	int intdigits = k > d0;
	if (!intdigits)
		t[k++] = '0';
	if (i < n && p[i] == '.') {
		i++;
		size_t f0 = k;
		t[k++] = '.';
		while (i < n && p[i] >= '0' && p[i] <= '9')
			t[k++] = (char)p[i++];
		if (k == f0 + 1) {
			if (!intdigits)
				return 0;
			k--;    /* "5." */
		}
	} else if (!intdigits) {
		return 0;
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		t[k++] = 'e';
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			t[k++] = (char)p[i++];
		size_t e0 = k;
		while (i < n && p[i] >= '0' && p[i] <= '9')
			t[k++] = (char)p[i++];
		if (k == e0)
			return 0;
	}
	if (i != n)
		return 0;
	buf_add(o, t, k);
	return 1;
}

static void add_double(struct buf *o, double v, int prec)
{
	if (!isfinite(v)) {
		buf_addstr(o, "null");
		return;
	}
	buf_addf(o, "%.*g", prec, v);
}

static void add_base64(struct buf *o, const unsigned char *p, size_t n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				"abcdefghijklmnopqrstuvwxyz0123456789+/";
	buf_addch(o, '"');
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		char q[4] = { a[v >> 18], a[(v >> 12) & 63],
			      i + 1 < n ? a[(v >> 6) & 63] : '=',
			      i + 2 < n ? a[v & 63] : '=' };
		buf_add(o, q, 4);
	}
	buf_addch(o, '"');
}

static int vr_is(const char *vr, const char *list)
{
	for (const char *l = list; *l; l += l[2] ? 3 : 2)
		if (vr[0] == l[0] && vr[1] == l[1])
			return 1;
	return 0;
}

/* The "Value" (or "InlineBinary") member of an element, with its comma;
 * nothing for an empty value. */
static void add_value(struct jctx *j, struct buf *o,
		      const struct dicom_elem *el)
{
	const unsigned char *p = el->value;
	size_t n = el->len;
	const char *vr = el->vr;
	int be = el->big_endian;
	if (!p || !n)
		return;
	if (vr_is(vr, "OB OD OF OL OV OW UN")) {
		buf_addstr(o, ",\"InlineBinary\":");
		add_base64(o, p, n);
		return;
	}
	size_t sz = vr_is(vr, "US SS") ? 2 : vr_is(vr, "UL SL FL AT") ? 4
		  : vr_is(vr, "FD SV UV") ? 8 : 0;
	if (sz) {
		if (n < sz)
			return;
		buf_addstr(o, ",\"Value\":[");
		for (size_t i = 0; i + sz <= n; i += sz) {
			const unsigned char *q = p + i;
			if (i)
				buf_addch(o, ',');
			uint64_t v64 = 0;
			if (sz == 8 && be)
				v64 = (uint64_t)u32(q, 1) << 32 | u32(q + 4, 1);
			else if (sz == 8)
				v64 = (uint64_t)u32(q + 4, 0) << 32 | u32(q, 0);
			if (vr_is(vr, "US"))
				buf_addf(o, "%u", u16(q, be));
			else if (vr_is(vr, "SS"))
				buf_addf(o, "%d", (int16_t)u16(q, be));
			else if (vr_is(vr, "UL"))
				buf_addf(o, "%lu", (unsigned long)u32(q, be));
			else if (vr_is(vr, "SL"))
				buf_addf(o, "%ld", (long)(int32_t)u32(q, be));
			else if (vr_is(vr, "AT"))
				buf_addf(o, "\"%04X%04X\"", u16(q, be),
					 u16(q + 2, be));
			else if (vr_is(vr, "FL")) {
				uint32_t u = u32(q, be);
				float f;
				memcpy(&f, &u, 4);
				add_double(o, f, 9);
			} else if (vr_is(vr, "FD")) {
				double d;
				memcpy(&d, &v64, 8);
				add_double(o, d, 17);
			} else if (vr_is(vr, "SV"))
				buf_addf(o, "%lld", (long long)(int64_t)v64);
			else
				buf_addf(o, "%llu", (unsigned long long)v64);
		}
		buf_addch(o, ']');
		return;
	}
	/* Text. */
	int single = vr_is(vr, "LT ST UT UR");
	trim(&p, &n, !single);
	if (!n)
		return;
	int first = 1;
	buf_addstr(o, ",\"Value\":[");
	for (size_t i = 0; i <= n;) {
		size_t k = i;
		if (!single)
			while (k < n && p[k] != '\\')
				k++;
		else
			k = n;
		const unsigned char *c = p + i;
		size_t cn = k - i;
		if (!first)
			buf_addch(o, ',');
		first = 0;
		trim(&c, &cn, !single);
		if (!cn) {
			buf_addstr(o, "null");
		} else if (vr_is(vr, "IS DS")) {
			if (!add_number_text(o, c, cn))
				buf_addstr(o, "null");
		} else if (vr_is(vr, "PN")) {
			static const char *const grp[3] = {
				"Alphabetic", "Ideographic", "Phonetic" };
			int g = 0, any = 0;
			buf_addch(o, '{');
			for (size_t a = 0; a <= cn && g < 3; g++) {
				size_t b = a;
				while (b < cn && c[b] != '=')
					b++;
				if (b > a) {
					buf_addf(o, "%s\"%s\":", any ? "," : "",
						 grp[g]);
					add_text(j, o, c + a, b - a);
					any = 1;
				}
				a = b + 1;
			}
			buf_addch(o, '}');
		} else {
			add_text(j, o, c, cn);
		}
		i = k + 1;
	}
	buf_addch(o, ']');
}

static void comma(struct jctx *j)
{
	if (j->comma[j->lvl])
		buf_addch(&j->out, ',');
	j->comma[j->lvl] = 1;
}

static void member(struct jctx *j, uint32_t tag, const char *vr)
{
	comma(j);
	buf_addf(&j->out, "\"%08X\":{\"vr\":\"%s\"", tag, vr);
}

static void capture(struct jctx *j, const struct dicom_elem *el)
{
	int f = -1;
	if (!el->value)
		return;
	switch (el->tag) {
	case DICOM_TAG(0x0008, 0x0060): f = DF_MODALITY; break;
	case DICOM_TAG(0x0008, 0x0020): f = DF_STUDY_DATE; break;
	case DICOM_TAG(0x0018, 0x0015): f = DF_BODY_PART; break;
	case DICOM_TAG(0x0020, 0x000d): f = DF_STUDY_UID; break;
	case DICOM_TAG(0x0020, 0x000e): f = DF_SERIES_UID; break;
	case DICOM_TAG(0x0008, 0x0018): f = DF_SOP_UID; break;
	case DICOM_TAG(0x0008, 0x0016): f = DF_SOP_CLASS; break;
	case DICOM_TAG(0x0008, 0x0005): {
		const unsigned char *p = el->value;
		size_t n = el->len;
		trim(&p, &n, 1);
		j->utf8 = n == 10 && !memcmp(p, "ISO_IR 192", 10);
		return;
	}
	default: return;
	}
	const unsigned char *p = el->value;
	size_t n = el->len;
	trim(&p, &n, 1);
	/* The first value only. */
	for (size_t i = 0; i < n; i++)
		if (p[i] == '\\')
			n = i;
	trim(&p, &n, 1);
	struct buf *b = &j->d->f[f];
	buf_reset(b);
	for (size_t i = 0; i < n; i++)
		buf_addch(b, p[i] < 0x80 ? (char)p[i] : '?');
	if (f == DF_STUDY_DATE) {
		const char *s = b->data;
		int ok = n == 8 || n == 10;
		for (size_t i = 0; ok && i < n; i++)
			ok = (s[i] >= '0' && s[i] <= '9') ||
			     (n == 10 && (i == 4 || i == 7) && s[i] == '.');
		if (ok) {
			size_t m = n == 8 ? 4 : 5, dd = n == 8 ? 6 : 8;
			buf_reset(&j->d->f[DF_DATE]);
			buf_addf(&j->d->f[DF_DATE], "%.4s-%.2s-%.2s", s,
				 s + m, s + dd);
		}
	}
}

static int on_event(void *ctx, enum dicom_event ev,
		    const struct dicom_elem *el)
{
	struct jctx *j = ctx;
	if (el->meta) {
		return 0;
	}
	switch (ev) {
	case DICOM_DATASET_BEGIN:
		buf_reset(&j->d->f[DF_TRANSFER_SYNTAX]);
		for (const char *c = el->info->ts_uid; *c; c++)
			buf_addch(&j->d->f[DF_TRANSFER_SYNTAX],
				  (unsigned char)*c < 0x80 ? *c : '?');
		return 0;
	case DICOM_ELEMENT:
		if ((uint16_t)el->tag == 0)
			return 0;     /* group lengths: not in the model */
		if (el->depth == 0)
			capture(j, el);
		member(j, el->tag, el->vr);
		add_value(j, &j->out, el);
		buf_addch(&j->out, '}');
		return 0;
	case DICOM_SEQ_BEGIN:
		if (el->encapsulated) {
			member(j, el->tag, "OB");
			buf_addch(&j->out, '}');
			return 0;
		}
		member(j, el->tag, "SQ");
		j->opened[el->depth] = 0;
		j->lvl++;
		j->comma[j->lvl] = 0;
		return 0;
	case DICOM_ITEM_BEGIN:
		if (!j->opened[el->depth - 1]) {
			buf_addstr(&j->out, ",\"Value\":[");
			j->opened[el->depth - 1] = 1;
		}
		comma(j);
		buf_addch(&j->out, '{');
		j->lvl++;
		j->comma[j->lvl] = 0;
		return 0;
	case DICOM_ITEM_END:
		buf_addch(&j->out, '}');
		j->lvl--;
		return 0;
	case DICOM_SEQ_END:
		if (el->encapsulated)
			return 0;
		j->lvl--;
		buf_addstr(&j->out, j->opened[el->depth] ? "]}" : "}");
		return 0;
	case DICOM_FRAGMENT:
		return 0;
	}
	return 0;
}

static void doc_init(struct dicom_doc *d)
{
	buf_init(&d->json);
	for (int i = 0; i < DF_N; i++)
		buf_init(&d->f[i]);
}

void dicom_doc_release(struct dicom_doc *d)
{
	buf_release(&d->json);
	for (int i = 0; i < DF_N; i++)
		buf_release(&d->f[i]);
}

int dicom_doc_lookup(const struct dicom_doc *d, const char *name,
		     const char **val, size_t *len)
{
	for (int i = 0; i < DF_N; i++)
		if (!strcmp(name, field_names[i])) {
			if (!d->f[i].len)
				return 0;
			*val = d->f[i].data;
			*len = d->f[i].len;
			return 1;
		}
	return 0;
}

static int finish(struct jctx *j, int rc)
{
	struct dicom_doc *d = j->d;
	if (rc == MLK_OK) {
		for (int i = 0; i < DF_N; i++) {
			if (!d->f[i].len)
				continue;
			buf_addf(&d->json, "\"%s\":", field_names[i]);
			buf_add_json_str(&d->json, d->f[i].data, d->f[i].len);
			buf_addch(&d->json, ',');
		}
		buf_addstr(&d->json, "\"dicom\":{");
		buf_add(&d->json, j->out.data ? j->out.data : "", j->out.len);
		buf_addch(&d->json, '}');
	}
	buf_release(&j->out);
	buf_release(&j->tmp);
	return rc;
}

int dicom_json_fd(int fd, const char *name, struct dicom_doc *d,
		  struct mlk_error *e)
{
	struct jctx j;
	memset(&j, 0, sizeof j);
	doc_init(d);
	j.d = d;
	struct dicom_visitor v = { &j, on_event, 0 };
	return finish(&j, dicom_read_fd(fd, name, &v, e));
}

int dicom_json_mem(const void *p, size_t n, const char *name,
		   struct dicom_doc *d, struct mlk_error *e)
{
	struct jctx j;
	memset(&j, 0, sizeof j);
	doc_init(d);
	j.d = d;
	struct dicom_visitor v = { &j, on_event, 0 };
	return finish(&j, dicom_read_mem(p, n, name, &v, e));
}
