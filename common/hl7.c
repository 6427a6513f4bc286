#include "hl7.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"
#include "banned.h"

#define CHUNK (64 * 1024)
#define MLLP_START 0x0b
#define MLLP_END 0x1c

/* Byte classes, so that one pass over a field says which delimiters it
 * holds. */
enum { C_FS = 1, C_RS = 2, C_CS = 4, C_SS = 8, C_EC = 16 };

static int is_id_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int is_alnum(char c)
{
	return is_id_char(c) || (c >= 'a' && c <= 'z');
}

int hl7_is_segment_id(const char *p)
{
	return is_id_char(p[0]) && is_id_char(p[1]) && is_id_char(p[2]);
}

/* Reader */

void hl7_reader_init(struct hl7_reader *r, lr_read_fn fn, void *ctx)
{
	memset(r, 0, sizeof *r);
	r->read = fn;
	r->ctx = ctx;
	r->max_piece = HL7_MAX_PIECE;
	r->line = 1;
	r->seg_line = 1;
}

void hl7_reader_release(struct hl7_reader *r)
{
	free(r->buf);
	memset(r, 0, sizeof *r);
}

/* Read more bytes, first dropping what no piece needs any more. */
static int fill(struct hl7_reader *r, struct mlk_error *e)
{
	size_t keep = r->open ? r->start : r->seg;
	if (keep > r->scan)
		keep = r->scan;
	if (keep) {
		memmove(r->buf, r->buf + keep, r->len - keep);
		r->len -= keep;
		r->start -= keep < r->start ? keep : r->start;
		r->seg -= keep;
		r->scan -= keep;
		r->base += keep;
	}
	if (r->alloc - r->len < CHUNK) {
		r->alloc = r->len + CHUNK;
		r->buf = xrealloc(r->buf, r->alloc);
	}
	ssize_t k;
	do
		k = r->read(r->ctx, r->buf + r->len, r->alloc - r->len);
	while (k < 0 && errno == EINTR);
	if (k < 0) {
		mlk_error_set(e, MLK_SYSTEM, NULL, r->line, "read error: %s",
			      strerror(errno));
		return -1;
	}
	if (k == 0)
		r->eof = 1;
	r->len += (size_t)k;
	if (!r->begun && (r->len >= 3 || r->eof)) {
		r->begun = 1;
		if (r->len >= 3 && !memcmp(r->buf, "\xef\xbb\xbf", 3))
			r->seg = r->scan = r->start = 3;
	}
	return 0;
}

/* What the segment at p..n starts a piece of; -1: blank, 0: none. */
static int classify(const char *p, size_t n, enum hl7_kind *kind)
{
	while (n && *p == MLLP_START) {
		p++;
		n--;
	}
	size_t k = 0;
	while (k < n && (p[k] == ' ' || p[k] == '\t'))
		k++;
	if (k == n)
		return -1;
	if (n < 3)
		return 0;
	/* A delimiter never is a letter or digit; "MSH" alone is a (bad)
	 * message too. */
	if (n > 3 && is_alnum(p[3]))
		return 0;
	if (!memcmp(p, "MSH", 3)) {
		*kind = HL7_MESSAGE;
		return 1;
	}
	if (n > 3 && (!memcmp(p, "FHS", 3) || !memcmp(p, "BHS", 3) ||
		      !memcmp(p, "BTS", 3) || !memcmp(p, "FTS", 3))) {
		*kind = HL7_ENVELOPE;
		return 1;
	}
	return 0;
}

static void emit(struct hl7_reader *r, size_t end, struct hl7_piece *out)
{
	out->kind = r->kind;
	out->p = r->buf + r->start;
	out->n = end - r->start;
	out->line = r->piece_line;
	out->offset = r->base + r->start;
	r->open = 0;
}

int hl7_reader_next(struct hl7_reader *r, struct hl7_piece *out,
		    struct mlk_error *e)
{
	for (;;) {
		if (!r->begun && fill(r, e) < 0)
			return -1;
		while (r->scan < r->len) {
			char c = r->buf[r->scan];
			if (c == '\r' || c == '\n' || c == MLLP_END)
				break;
			r->scan++;
		}
		if (r->scan == r->len && !r->eof) {
			size_t from = r->open ? r->start : r->seg;
			int over = r->len - from > r->max_piece;
			if (over && !r->skipping) {
				/* Too long: say so once, skip the rest. */
				out->kind = HL7_TOOLONG;
				out->p = NULL;
				out->n = r->len - from;
				out->line = r->open ? r->piece_line
						    : r->seg_line;
				out->offset = r->base + from;
				r->open = 0;
				r->skipping = 1;
				r->midseg = 1;
				r->seg = r->scan;
				return 1;
			}
			if (r->skipping && (over || r->midseg)) {
				r->seg = r->scan;
				r->midseg = 1;
			}
			if (fill(r, e) < 0)
				return -1;
			continue;
		}
		if (r->scan == r->len && r->seg == r->len) {
			/* The end: the open piece, if any. */
			if (r->open) {
				emit(r, r->len, out);
				return 1;
			}
			return 0;
		}
		size_t seg_end = r->scan;
		if (r->scan < r->len) {
			char c = r->buf[r->scan];
			if (c == '\r' && r->scan + 1 == r->len && !r->eof) {
				/* "\r\n" may straddle two reads. */
				if (fill(r, e) < 0)
					return -1;
				continue;
			}
			r->scan++;
			if (c == '\r' && r->scan < r->len &&
			    r->buf[r->scan] == '\n')
				r->scan++;
			if (c != MLLP_END)
				r->line++;
		}
		enum hl7_kind kind = HL7_JUNK;
		int cl = r->midseg ? 0
			 : classify(r->buf + r->seg, seg_end - r->seg, &kind);
		r->midseg = 0;
		size_t seg = r->seg;
		long long seg_line = r->seg_line;
		r->seg = r->scan;
		r->seg_line = r->line;
		if (cl < 0)
			continue;
		if (cl == 0 && r->skipping)
			continue;
		r->skipping = 0;
		int ret = 0;
		if (r->open && (cl > 0 || r->kind == HL7_ENVELOPE)) {
			emit(r, seg, out);
			ret = 1;
		}
		if (!r->open) {
			r->open = 1;
			r->kind = kind;
			r->start = seg;
			r->piece_line = seg_line;
		}
		if (ret)
			return 1;
	}
}

/* Messages */

void hl7_msg_init(struct hl7_msg *m)
{
	memset(m, 0, sizeof *m);
	buf_init(&m->sum);
	buf_init(&m->scratch);
}

void hl7_msg_release(struct hl7_msg *m)
{
	free(m->seg);
	free(m->ids);
	buf_release(&m->sum);
	buf_release(&m->scratch);
	memset(m, 0, sizeof *m);
}

static const char *const sum_names[HL7_NSUM] = {
	"message_type", "message_structure", "control_id", "timestamp",
	"version", "sending_application", "sending_facility",
};

const char *hl7_sum_name(enum hl7_sum k)
{
	return sum_names[k];
}

const char *hl7_sum_get(const struct hl7_msg *m, enum hl7_sum k,
			size_t *len)
{
	if (!m->sum_len[k])
		return NULL;
	*len = m->sum_len[k];
	return m->sum.data + m->sum_off[k];
}

/* Delimiters are printable ASCII that is neither a letter nor a digit. */
static int delim_ok(char c)
{
	return c > 0x20 && c < 0x7f && !is_alnum(c);
}

static void put_utf8(struct buf *out, unsigned char c, int latin1)
{
	if (c < 0x80 || !latin1) {
		buf_addch(out, (char)c);
	} else {
		char u[2] = { (char)(0xc0 | (c >> 6)), (char)(0x80 | (c & 0x3f)) };
		buf_add(out, u, 2);
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Append the unescaped text p..n to out as UTF-8.  Source bytes are read
 * as ISO-8859-1 when the message is not UTF-8; bytes from hex escapes
 * when hexlatin1 is set.
 */
static void decode(const struct hl7_msg *m, const char *p, size_t n,
		   struct buf *out, int hexlatin1)
{
	size_t i = 0;
	while (i < n) {
		char c = p[i];
		if (!m->ec || c != m->ec) {
			put_utf8(out, (unsigned char)c, m->latin1);
			i++;
			continue;
		}
		const char *q = memchr(p + i + 1, m->ec, n - i - 1);
		if (!q) {
			/* Unterminated: the rest as written. */
			for (; i < n; i++)
				put_utf8(out, (unsigned char)p[i], m->latin1);
			break;
		}
		const char *s = p + i + 1;
		size_t k = (size_t)(q - s);
		size_t next = (size_t)(q - p) + 1;
		char r = 0;
		if (k == 1) {
			switch (*s) {
			case 'F': r = m->fs; break;
			case 'S': r = m->cs; break;
			case 'T': r = m->ss; break;
			case 'R': r = m->rs; break;
			case 'E': r = m->ec; break;
			}
		}
		if (r) {
			buf_addch(out, r);
		} else if (k == 3 && !memcmp(s, ".br", 3)) {
			buf_addch(out, '\n');
		} else if ((k == 1 && (*s == 'H' || *s == 'N')) ||
			   (k > 1 && *s == '.')) {
			; /* formatting: dropped */
		} else if (k >= 3 && *s == 'X' && (k - 1) % 2 == 0) {
			size_t j;
			for (j = 1; j < k; j++)
				if (hexval(s[j]) < 0)
					break;
			if (j < k)
				goto literal;
			for (j = 1; j < k; j += 2)
				put_utf8(out, (unsigned char)(hexval(s[j]) << 4 |
							      hexval(s[j + 1])),
					 hexlatin1 || m->latin1);
		} else {
			goto literal;
		}
		i = next;
		continue;
literal:
		/* Unknown: the whole sequence as written. */
		for (; i < next; i++)
			put_utf8(out, (unsigned char)p[i], m->latin1);
	}
}

static void put_text(struct hl7_msg *m, const char *p, size_t n,
		     struct buf *out);

/* A JSON string of the unescaped text p..n; plain says it holds no
 * escape character. */
static void put_text_hint(struct hl7_msg *m, const char *p, size_t n,
			  int plain, struct buf *out)
{
	if (!m->latin1 && plain) {
		buf_add_json_str(out, p, n);
		return;
	}
	put_text(m, p, n, out);
}

/* A JSON string of the unescaped text p..n. */
static void put_text(struct hl7_msg *m, const char *p, size_t n,
		     struct buf *out)
{
	if (!m->latin1 && (!m->ec || !memchr(p, m->ec, n))) {
		buf_add_json_str(out, p, n);
		return;
	}
	buf_reset(&m->scratch);
	decode(m, p, n, &m->scratch, 0);
	if (!m->latin1 &&
	    utf8_invalid_at(m->scratch.data, m->scratch.len) >= 0) {
		buf_reset(&m->scratch);
		decode(m, p, n, &m->scratch, 1);
	}
	buf_add_json_str(out, m->scratch.data, m->scratch.len);
}

/* Length of p..n up to the first c (all of it when c is 0 or absent). */
static size_t upto(const char *p, size_t n, char c)
{
	const char *q = c ? memchr(p, c, n) : NULL;
	return q ? (size_t)(q - p) : n;
}

/* Field k (k >= 3) of MSH: its bytes. */
static const char *msh_field(const struct hl7_msg *m, int k, size_t *len)
{
	const struct hl7_seg *s = &m->seg[0];
	const char *p = m->p + s->off + 4, *end = m->p + s->off + s->len;
	/* p is at MSH-2; skip k - 2 separators. */
	for (int i = 2; i < k; i++) {
		const char *q = memchr(p, m->fs, (size_t)(end - p));
		if (!q) {
			*len = 0;
			return NULL;
		}
		p = q + 1;
	}
	*len = upto(p, (size_t)(end - p), m->fs);
	return p;
}

/* Component c (1-based) of the first repetition of MSH-k, first
 * subcomponent. */
static const char *msh_comp(const struct hl7_msg *m, int k, int c,
			    size_t *len)
{
	size_t n;
	const char *p = msh_field(m, k, &n);
	if (!p)
		return NULL;
	n = upto(p, n, m->rs);
	for (int i = 1; i < c; i++) {
		size_t a = upto(p, n, m->cs);
		if (a == n || !m->cs) {
			*len = 0;
			return NULL;
		}
		p += a + 1;
		n -= a + 1;
	}
	n = upto(p, n, m->cs);
	*len = upto(p, n, m->ss);
	return p;
}

/* Append the unescaped p..n to the summary buffer as valid UTF-8. */
static void add_sum(struct hl7_msg *m, const char *p, size_t n)
{
	size_t before = m->sum.len;
	decode(m, p, n, &m->sum, 0);
	if (!m->latin1 && utf8_invalid_at(m->sum.data + before,
					  m->sum.len - before) >= 0) {
		buf_truncate(&m->sum, before);
		decode(m, p, n, &m->sum, 1);
	}
}

static void set_sum(struct hl7_msg *m, enum hl7_sum k, const char *p,
		    size_t n)
{
	m->sum_off[k] = m->sum.len;
	if (p && n)
		add_sum(m, p, n);
	m->sum_len[k] = m->sum.len - m->sum_off[k];
}

static void summarise(struct hl7_msg *m)
{
	size_t n, n2;
	const char *p;
	buf_reset(&m->sum);
	p = msh_comp(m, 9, 1, &n);
	set_sum(m, HL7_TYPE, p, n);
	p = msh_comp(m, 9, 2, &n2);
	if (p && n2 && m->sum_len[HL7_TYPE]) {
		/* "ADT^A01" whatever the message's component separator. */
		buf_addch(&m->sum, '^');
		add_sum(m, p, n2);
		m->sum_len[HL7_TYPE] = m->sum.len - m->sum_off[HL7_TYPE];
	}
	p = msh_comp(m, 9, 3, &n);
	set_sum(m, HL7_STRUCTURE, p, n);
	p = msh_comp(m, 10, 1, &n);
	set_sum(m, HL7_CONTROL_ID, p, n);
	p = msh_comp(m, 7, 1, &n);
	set_sum(m, HL7_TIMESTAMP, p, n);
	p = msh_comp(m, 12, 1, &n);
	set_sum(m, HL7_VERSION, p, n);
	p = msh_comp(m, 3, 1, &n);
	set_sum(m, HL7_SENDING_APP, p, n);
	p = msh_comp(m, 4, 1, &n);
	set_sum(m, HL7_SENDING_FACILITY, p, n);

	/* The clinical date: MSH-7's leading digits, YYYY[MM[DD]]. */
	m->date[0] = '\0';
	size_t tl;
	const char *t = hl7_sum_get(m, HL7_TIMESTAMP, &tl);
	size_t d = 0;
	while (t && d < tl && d < 8 && t[d] >= '0' && t[d] <= '9')
		d++;
	if (d >= 4) {
		memcpy(m->date, t, 4);
		size_t o = 4;
		if (d >= 6) {
			m->date[o++] = '-';
			memcpy(m->date + o, t + 4, 2);
			o += 2;
		}
		if (d >= 8) {
			m->date[o++] = '-';
			memcpy(m->date + o, t + 6, 2);
			o += 2;
		}
		m->date[o] = '\0';
	}
}

enum mlk_status hl7_parse(struct hl7_msg *m, const char *p, size_t n,
			  long long line0, struct mlk_error *e)
{
	m->p = p;
	m->n = n;
	m->nseg = 0;
	m->nids = 0;
	m->fs = m->cs = m->rs = m->ec = m->ss = 0;
	buf_reset(&m->sum);
	memset(m->sum_len, 0, sizeof m->sum_len);
	m->date[0] = '\0';

	/* Segments. */
	long long line = line0;
	size_t i = 0;
	while (i <= n) {
		size_t b = i;
		while (i < n && p[i] != '\r' && p[i] != '\n' &&
		       p[i] != MLLP_END)
			i++;
		size_t s = b, end = i;
		while (s < end && p[s] == MLLP_START)
			s++;
		size_t t = s;
		while (t < end && (p[t] == ' ' || p[t] == '\t'))
			t++;
		if (t < end) {
			XGROW(m->seg, m->seg_alloc, m->nseg + 1);
			struct hl7_seg *g = &m->seg[m->nseg++];
			g->off = s;
			g->len = end - s;
			g->line = line;
			g->next = -1;
		}
		if (i >= n)
			break;
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
			i++;
		if (p[i] != MLLP_END)
			line++;
		i++;
	}
	if (!m->nseg)
		return mlk_error_set(e, MLK_PARTIAL, NULL, line0,
				     "empty message");
	const struct hl7_seg *msh = &m->seg[0];
	const char *h = p + msh->off;
	if (msh->len < 3 || memcmp(h, "MSH", 3))
		return mlk_error_set(e, MLK_PARTIAL, NULL, msh->line,
				     "message does not start with an MSH "
				     "segment");
	if (msh->len < 4)
		return mlk_error_set(e, MLK_PARTIAL, NULL, msh->line,
				     "MSH is too short to hold MSH-9 (message "
				     "type)");
	if (!delim_ok(h[3]))
		return mlk_error_set(e, MLK_PARTIAL, NULL, msh->line,
				     "MSH-1 (field separator) is not a usable "
				     "delimiter");
	m->fs = h[3];
	/* MSH-2, the encoding characters: component, repetition, escape,
	 * subcomponent (and, from v2.7, truncation, unused here). */
	size_t enc = upto(h + 4, msh->len - 4, m->fs);
	char d[5] = { 0 };
	size_t nd = 0;
	for (size_t k = 0; k < enc; k++) {
		char c = h[4 + k];
		int dup = 0;
		for (size_t j = 0; j < nd; j++)
			dup |= d[j] == c;
		/* Some senders double the escape character ("^~\\&"): a
		 * repeated character is read once. */
		if (dup)
			continue;
		if (!delim_ok(c) || c == m->fs)
			return mlk_error_set(e, MLK_PARTIAL, NULL, msh->line,
					     "MSH-2 (encoding characters) "
					     "holds an unusable delimiter");
		if (nd == 5)
			return mlk_error_set(e, MLK_PARTIAL, NULL, msh->line,
					     "MSH-2 (encoding characters) "
					     "holds more than 5 delimiters");
		d[nd++] = c;
	}
	m->cs = d[0];
	m->rs = d[1];
	m->ec = d[2];
	m->ss = d[3];
	memset(m->cls, 0, sizeof m->cls);
	m->cls[(unsigned char)m->fs] = C_FS;
	if (m->rs)
		m->cls[(unsigned char)m->rs] = C_RS;
	if (m->cs)
		m->cls[(unsigned char)m->cs] = C_CS;
	if (m->ss)
		m->cls[(unsigned char)m->ss] = C_SS;
	if (m->ec)
		m->cls[(unsigned char)m->ec] = C_EC;
	/* MSH-9 must be there: 8 field separators from MSH-1 on. */
	size_t nfs = 0;
	for (size_t k = 3; k < msh->len && nfs < 8; k++)
		nfs += h[k] == m->fs;
	if (nfs < 8)
		return mlk_error_set(e, MLK_PARTIAL, NULL, msh->line,
				     "MSH is too short to hold MSH-9 (message "
				     "type)");

	/* Segment ids, and the chains of segments with the same id. */
	for (size_t k = 0; k < m->nseg; k++) {
		struct hl7_seg *g = &m->seg[k];
		const char *s = p + g->off;
		if (g->len < 3 || !is_id_char(s[0]) || !is_id_char(s[1]) ||
		    !is_id_char(s[2]) || (g->len > 3 && s[3] != m->fs))
			return mlk_error_set(e, MLK_PARTIAL, NULL, g->line,
					     "segment id on line %lld is not 3 "
					     "uppercase letters or digits",
					     g->line);
		size_t j;
		for (j = 0; j < m->nids; j++)
			if (!memcmp(p + m->seg[m->ids[j].first].off, s, 3))
				break;
		if (j == m->nids) {
			XGROW(m->ids, m->ids_alloc, m->nids + 1);
			m->ids[m->nids].first = m->ids[m->nids].last = (int)k;
			m->nids++;
		} else {
			m->seg[m->ids[j].last].next = (int)k;
			m->ids[j].last = (int)k;
		}
	}
	m->latin1 = utf8_invalid_at(p, n) >= 0;
	summarise(m);
	if (!m->sum_len[HL7_TYPE])
		return mlk_error_set(e, MLK_PARTIAL, NULL, msh->line,
				     "MSH-9 (message type) is empty");
	return MLK_OK;
}

/* Writing */

/* "k": without printf, which would cost a third of the run time. */
static void put_num_key(struct buf *out, unsigned k)
{
	char t[16];
	size_t n = sizeof t;
	t[--n] = ':';
	t[--n] = '"';
	do {
		t[--n] = (char)('0' + k % 10);
		k /= 10;
	} while (k);
	t[--n] = '"';
	buf_add(out, t + n, sizeof t - n);
}

/* One repetition: a string, or an object of components. */
static void put_rep(struct hl7_msg *m, const char *p, size_t n,
		    struct buf *out)
{
	int comps = m->cs && memchr(p, m->cs, n);
	int subs = m->ss && memchr(p, m->ss, n);
	if (!comps && !subs) {
		put_text(m, p, n, out);
		return;
	}
	buf_addch(out, '{');
	int first = 1;
	unsigned k = 1;
	for (;; k++) {
		size_t a = upto(p, n, m->cs);
		if (a) {
			if (!first)
				buf_addch(out, ',');
			first = 0;
			put_num_key(out, k);
			if (m->ss && memchr(p, m->ss, a)) {
				const char *q = p;
				size_t qn = a;
				int f2 = 1;
				buf_addch(out, '{');
				for (unsigned j = 1;; j++) {
					size_t b = upto(q, qn, m->ss);
					if (b) {
						if (!f2)
							buf_addch(out, ',');
						f2 = 0;
						put_num_key(out, j);
						put_text(m, q, b, out);
					}
					if (b == qn)
						break;
					q += b + 1;
					qn -= b + 1;
				}
				buf_addch(out, '}');
			} else {
				put_text(m, p, a, out);
			}
		}
		if (a == n)
			break;
		p += a + 1;
		n -= a + 1;
	}
	buf_addch(out, '}');
}

/* A field; fl: the C_* classes of the bytes it holds. */
static void put_field(struct hl7_msg *m, const char *p, size_t n,
		      unsigned fl, struct buf *out)
{
	if (!(fl & (C_RS | C_CS | C_SS))) {
		put_text_hint(m, p, n, !(fl & C_EC), out);
		return;
	}
	if (!(fl & C_RS)) {
		put_rep(m, p, n, out);
		return;
	}
	buf_addch(out, '[');
	for (int first = 1;; first = 0) {
		size_t a = upto(p, n, m->rs);
		if (!first)
			buf_addch(out, ',');
		put_rep(m, p, a, out);
		if (a == n)
			break;
		p += a + 1;
		n -= a + 1;
	}
	buf_addch(out, ']');
}

static void put_segment(struct hl7_msg *m, const struct hl7_seg *g,
			struct buf *out)
{
	const char *p = m->p + g->off, *end = p + g->len;
	unsigned k = 1;
	int first = 1;
	buf_addch(out, '{');
	if (g == &m->seg[0]) {
		/* MSH-1 and MSH-2 are the delimiters themselves. */
		char fs = m->fs;
		buf_addstr(out, "\"1\":");
		buf_add_json_str(out, &fs, 1);
		size_t enc = upto(p + 4, g->len - 4, m->fs);
		if (enc) {
			buf_addstr(out, ",\"2\":");
			buf_add_json_str(out, p + 4, enc);
		}
		first = 0;
		p += 4 + enc;
		k = 3;
		if (p < end)
			p++;  /* the separator after MSH-2 */
		else
			p = NULL;
	} else {
		p = g->len > 3 ? p + 4 : NULL;
	}
	while (p) {
		/* One pass finds the field's end and what it holds. */
		const char *q = p;
		unsigned fl = 0;
		for (; q < end; q++) {
			unsigned c = m->cls[(unsigned char)*q];
			if (c & C_FS)
				break;
			fl |= c;
		}
		size_t a = (size_t)(q - p);
		if (a) {
			if (!first)
				buf_addch(out, ',');
			first = 0;
			put_num_key(out, k);
			put_field(m, p, a, fl, out);
		}
		k++;
		p = q < end ? q + 1 : NULL;
	}
	buf_addch(out, '}');
}

void hl7_write(struct hl7_msg *m, struct buf *out)
{
	buf_addch(out, '{');
	for (int k = 0; k < HL7_NSUM; k++) {
		size_t n;
		const char *v = hl7_sum_get(m, (enum hl7_sum)k, &n);
		if (!v)
			continue;
		buf_addch(out, '"');
		buf_addstr(out, sum_names[k]);
		buf_addstr(out, "\":");
		buf_add_json_str(out, v, n);
		buf_addch(out, ',');
	}
	buf_addstr(out, "\"segments\":[");
	for (size_t i = 0; i < m->nseg; i++) {
		buf_addstr(out, i ? ",\"" : "\"");
		buf_add(out, m->p + m->seg[i].off, 3);
		buf_addch(out, '"');
	}
	buf_addch(out, ']');
	for (size_t j = 0; j < m->nids; j++) {
		int s = m->ids[j].first;
		buf_addstr(out, ",\"");
		buf_add(out, m->p + m->seg[s].off, 3);
		buf_addstr(out, "\":[");
		for (int first = 1; s >= 0; s = m->seg[s].next, first = 0) {
			if (!first)
				buf_addch(out, ',');
			put_segment(m, &m->seg[s], out);
		}
		buf_addch(out, ']');
	}
}
