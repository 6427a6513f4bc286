#include "csv.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"
#include "banned.h"

/*
 * How the reader works.  The input buffer r->in holds the bytes
 * [r->in_base, r->in_base + r->in_len) of the stream, with one spare byte
 * after them that always holds a '\n' sentinel: the scanning loops below
 * stop at any special byte, so the sentinel lets them run without a bounds
 * check and the position is compared with in_len only once they stop.
 *
 * A record is always kept contiguous in r->in so that raw/raw_len can point
 * at it: when the parser runs out of bytes in mid-record, fill() moves the
 * record to the front of the buffer (or doubles the buffer when the record
 * already fills it) and reads more.  Field contents are copied to r->rec,
 * each followed by a NUL, because quoted fields must be unescaped and raw
 * must stay as it was in the input.
 *
 * A record over max_record is not kept: the parser switches to discarding,
 * keeps scanning (still honouring quotes) to find where the record ends,
 * and lets fill() drop what it has passed, so memory stays bounded even
 * for a file that is one giant record.
 */

#define CSV_BUFSIZE ((size_t)1 << 20)
#define CSV_MAX_RECORD ((size_t)64 << 20)
/* The fields array is bounded like the record bytes, with a floor so a
 * small max_record still allows a usual number of columns. */
#define CSV_MIN_FIELDS 4096

enum csv_state {
	ST_FIELD,       /* at the start of a field */
	ST_PLAIN,       /* inside an unquoted field */
	ST_QUOTED,      /* inside a quoted field */
	ST_QUOTE,       /* just after a '"' inside a quoted field */
	ST_JUNK,        /* rest of a malformed field, up to the next boundary */
};

enum csv_problem {
	P_NONE,
	P_STRAY_QUOTE,
	P_AFTER_QUOTE,
	P_UNTERMINATED,
	P_TOO_MANY_FIELDS,
};

/* Where the parse of one record stands; offsets are into r->in. */
struct csv_parse {
	size_t start;           /* first byte of the record */
	size_t p;               /* next byte to look at */
	size_t end;             /* end of the record, before its terminator */
	size_t out;             /* bytes used in r->rec */
	size_t fstart;          /* where the current field begins in r->rec */
	size_t nf;              /* fields emitted */
	size_t max_fields;
	long long nl;           /* line breaks inside quoted fields */
	int terminated;         /* ended by a line break, not end of input */
	int cr;                 /* last byte put in a quoted field was '\r' */
	int quoted;             /* the current field is quoted */
	int quiet;              /* store no more fields */
	int too_long;           /* over max_record: keep no bytes either */
	enum csv_problem problem;
	size_t problem_field;   /* 1-based */
};

/* Bytes that stop a run of field bytes.  The delimiter, being settable,
 * is tested apart; a quoted run ignores it. */
static const unsigned char field_stop[256] = {
	['\n'] = 1, ['\r'] = 1, ['"'] = 1,
};
static const unsigned char junk_stop[256] = {
	['\n'] = 1, ['\r'] = 1,
};

/*
 * The scans are the hot path, so they first skip eight bytes at a time
 * while no byte of the word is special (a word-at-a-time test that needs
 * no particular CPU or byte order), and then finish byte by byte.  Words
 * may be read past the sentinel, hence CSV_PAD bytes after the buffer.
 */
#define CSV_PAD 8
#define ONES ((uint64_t)0x0101010101010101)
#define HIGHS ((uint64_t)0x8080808080808080)

static inline uint64_t has_zero_byte(uint64_t x)
{
	return (x - ONES) & ~x & HIGHS;
}

/* Skip whole words holding no '"', '\n', '\r' nor byte x (the delimiter,
 * or '"' again inside quotes), given as a word of eight copies. */
static inline size_t skip_words(const unsigned char *in, size_t p, uint64_t x)
{
	for (;;) {
		uint64_t w;

		memcpy(&w, in + p, sizeof(w));
		if (has_zero_byte(w ^ x) | has_zero_byte(w ^ (ONES * '"')) |
		    has_zero_byte(w ^ (ONES * '\n')) |
		    has_zero_byte(w ^ (ONES * '\r')))
			return p;
		p += sizeof(w);
	}
}

void csv_init(struct csv_reader *r, csv_read_fn fn, void *ctx)
{
	memset(r, 0, sizeof(*r));
	r->read = fn;
	r->ctx = ctx;
	r->delim = ',';
	r->max_record = CSV_MAX_RECORD;
	r->next_line = 1;
}

void csv_release(struct csv_reader *r)
{
	free(r->in);
	free(r->rec);
	free(r->fields);
	memset(r, 0, sizeof(*r));
}

static void set_problem(struct csv_parse *ps, enum csv_problem what)
{
	if (ps->problem == P_NONE) {
		ps->problem = what;
		ps->problem_field = ps->nf + 1;
	}
}

static size_t max_fields(const struct csv_reader *r)
{
	size_t n = r->max_record / sizeof(struct csv_field);
	return n < CSV_MIN_FIELDS ? CSV_MIN_FIELDS : n;
}

static void put(struct csv_reader *r, struct csv_parse *ps, const void *src,
		size_t n)
{
	if (ps->quiet || !n)
		return;
	if (ps->out + n + 1 > r->rec_alloc)
		XGROW(r->rec, r->rec_alloc, ps->out + n + 1);
	memcpy(r->rec + ps->out, src, n);
	ps->out += n;
}

/* Field pointers are set once the record is complete (r->rec may still
 * move); until then fields[i].p is unused and lengths locate the fields. */
static void emit(struct csv_reader *r, struct csv_parse *ps)
{
	if (ps->quiet)
		return;
	if (ps->nf >= ps->max_fields) {
		set_problem(ps, P_TOO_MANY_FIELDS);
		ps->quiet = 1;
		return;
	}
	if (ps->nf + 1 > r->fields_alloc)
		XGROW(r->fields, r->fields_alloc, ps->nf + 1);
	r->fields[ps->nf].p = NULL;
	r->fields[ps->nf].len = ps->out - ps->fstart;
	r->fields[ps->nf].quoted = ps->quoted;
	if (ps->out + 1 > r->rec_alloc)
		XGROW(r->rec, r->rec_alloc, ps->out + 1);
	r->rec[ps->out++] = '\0';
	ps->nf++;
}

/* The word scans may look at the bytes after the sentinel: give them a
 * defined value so that memory checkers stay quiet. */
static void set_sentinel(struct csv_reader *r)
{
	r->in[r->in_len] = '\n';
	memset(r->in + r->in_len + 1, 0, CSV_PAD - 1);
}

/*
 * Make room and read more input.  Everything before the record being
 * parsed (or, once it is too long, before the parse position) is dropped;
 * ps offsets are shifted to match.  Returns 1 after reading, 0 at end of
 * input, -1 on a read error.
 */
static int fill(struct csv_reader *r, struct csv_parse *ps,
		struct mlk_error *e)
{
	if (!ps->terminated && ps->p - ps->start > r->max_record) {
		ps->too_long = 1;
		ps->quiet = 1;
	}
	if (ps->too_long)
		ps->start = ps->p;

	size_t keep = ps->start;
	if (keep) {
		memmove(r->in, r->in + keep, r->in_len - keep);
		r->in_len -= keep;
		r->in_base += keep;
		ps->start = 0;
		ps->p -= keep;
		ps->end -= keep;        /* meaningful only once the record ended */
	}

	if (!r->in) {
		size_t size = CSV_BUFSIZE;
		/* A reader limited to small records needs no large buffer. */
		if (r->max_record / 2 + 64 < size)
			size = r->max_record / 2 + 64;
		r->in = xmalloc(size + 1 + CSV_PAD);
		r->in_alloc = size + 1;
	} else if (r->in_len + 1 >= r->in_alloc) {
		size_t size = r->in_alloc - 1;
		if (size > ((size_t)-1 - 1 - CSV_PAD) / 2)
			size = (size_t)-1 / 4;  /* unreachable in practice */
		r->in = xrealloc(r->in, size * 2 + 1 + CSV_PAD);
		r->in_alloc = size * 2 + 1;
	}

	size_t room = r->in_alloc - 1 - r->in_len;
	errno = 0;
	ssize_t n = r->read(r->ctx, r->in + r->in_len, room);
	if (n < 0 || (size_t)n > room) {
		r->eof = 1;
		set_sentinel(r);
		if (errno)
			mlk_error_errno(e, NULL, "read error");
		else
			mlk_error_set(e, MLK_SYSTEM, NULL, 0, "read error");
		return -1;
	}
	if (n == 0)
		r->eof = 1;
	r->in_len += (size_t)n;
	set_sentinel(r);
	return n > 0;
}

/*
 * A record has ended at ps->p, which holds '\r' or '\n'.  Consume the
 * terminator, reading ahead when a '\r' is the last byte so far (it may be
 * the first half of a CRLF).
 */
static int end_record(struct csv_reader *r, struct csv_parse *ps,
		      struct mlk_error *e)
{
	ps->end = ps->p;
	ps->terminated = 1;
	if (r->in[ps->p++] == '\n')
		return 0;
	if (ps->p == r->in_len && !r->eof && fill(r, ps, e) < 0)
		return -1;
	if (ps->p < r->in_len && r->in[ps->p] == '\n')
		ps->p++;
	return 0;
}

/*
 * What follows a field, at input position `at`: a delimiter starts the
 * next field, a line break ends the record (1, or -1 on a read error),
 * anything else is problem `bad` and makes the rest of the field junk.
 * Returns 0 to go on parsing, with *st set.
 */
static int after_field(struct csv_reader *r, struct csv_parse *ps, size_t at,
		       enum csv_problem bad, enum csv_state *st,
		       struct mlk_error *e)
{
	unsigned char c = (unsigned char)r->in[at];

	if (c == (unsigned char)r->delim) {
		emit(r, ps);
		ps->p = at + 1;
		*st = ST_FIELD;
		return 0;
	}
	ps->p = at;
	if (c == '\n' || c == '\r') {
		emit(r, ps);
		return end_record(r, ps, e) < 0 ? -1 : 1;
	}
	set_problem(ps, bad);
	*st = ST_JUNK;
	return 0;
}

/*
 * Parse one record starting at ps->start.  Returns 1 when a record (good
 * or malformed, see ps->problem) was consumed, 0 at end of input, -1 on a
 * read error.
 */
static int parse_record(struct csv_reader *r, struct csv_parse *ps,
			struct mlk_error *e)
{
	const unsigned char delim = (unsigned char)r->delim;
	const uint64_t delim_word = ONES * delim;
	const uint64_t quote_word = ONES * '"';
	enum csv_state st = ST_FIELD;

	for (;;) {
		const unsigned char *in = (const unsigned char *)r->in;
		size_t p = ps->p, q;
		unsigned char c;
		int rc;

		if (p == r->in_len) {
			if (!r->eof) {
				if (fill(r, ps, e) < 0)
					return -1;
				continue;
			}
			switch (st) {
			case ST_FIELD:
				if (ps->nf == 0 && p == ps->start &&
				    !ps->too_long && ps->problem == P_NONE)
					return 0;
				/* "a,<EOF>": a last, empty field */
				ps->fstart = ps->out;
				ps->quoted = 0;
				emit(r, ps);
				break;
			case ST_PLAIN:
			case ST_QUOTE:
				emit(r, ps);
				break;
			case ST_QUOTED:
				set_problem(ps, P_UNTERMINATED);
				break;
			case ST_JUNK:
				break;
			}
			ps->end = p;
			return 1;
		}

		switch (st) {
		case ST_FIELD:
			ps->fstart = ps->out;
			ps->cr = 0;
			if (in[p] == '"') {
				ps->quoted = 1;
				ps->p = p + 1;
				st = ST_QUOTED;
			} else {
				ps->quoted = 0;
				st = ST_PLAIN;
			}
			break;

		case ST_PLAIN:
			q = skip_words(in, p, delim_word);
			for (; !field_stop[c = in[q]] && c != delim; q++)
				;
			put(r, ps, in + p, q - p);
			ps->p = q;
			if (q == r->in_len)
				break;
			if ((rc = after_field(r, ps, q, P_STRAY_QUOTE, &st, e)))
				return rc;
			break;

		case ST_QUOTED:
			q = skip_words(in, p, quote_word);
			for (; !field_stop[in[q]]; q++)
				;
			if (q > p) {
				put(r, ps, in + p, q - p);
				ps->cr = 0;
			}
			ps->p = q;
			if (q == r->in_len)
				break;
			c = in[q];
			ps->p = q + 1;
			if (c == '"') {
				st = ST_QUOTE;
				break;
			}
			/* A line break inside quotes: CRLF counts once. */
			put(r, ps, &c, 1);
			if (c == '\r' || !ps->cr)
				ps->nl++;
			ps->cr = c == '\r';
			break;

		case ST_QUOTE:
			c = in[p];
			if (c == '"') {
				put(r, ps, &c, 1);
				ps->cr = 0;
				ps->p = p + 1;
				st = ST_QUOTED;
			} else if ((rc = after_field(r, ps, p, P_AFTER_QUOTE,
						     &st, e))) {
				return rc;
			}
			break;

		case ST_JUNK:
			/*
			 * Recovery: a malformed field runs to the next
			 * delimiter or line break, quotes and all; the fields
			 * after it are parsed as usual so that a quoted line
			 * break further on does not split the record.
			 */
			for (q = p; !junk_stop[c = in[q]] && c != delim; q++)
				;
			ps->p = q;
			if (q == r->in_len)
				break;
			if (c == delim) {
				ps->nf++;       /* for the field number only */
				ps->p = q + 1;
				st = ST_FIELD;
			} else {
				if (end_record(r, ps, e) < 0)
					return -1;
				return 1;
			}
			break;
		}
	}
}

static const char *problem_text(enum csv_problem p)
{
	switch (p) {
	case P_STRAY_QUOTE:
		return "quote in unquoted field";
	case P_AFTER_QUOTE:
		return "character after closing quote";
	case P_UNTERMINATED:
		return "unterminated quoted field";
	default:
		return "malformed record";
	}
}

/* Skip a UTF-8 byte-order mark at the very start of the input. */
static int skip_bom(struct csv_reader *r, struct mlk_error *e)
{
	struct csv_parse ps = { 0 };

	r->bom_checked = 1;
	while (r->in_len < 3 && !r->eof)
		if (fill(r, &ps, e) < 0)
			return -1;
	if (r->in_len >= 3 && memcmp(r->in, "\xEF\xBB\xBF", 3) == 0)
		r->in_pos = 3;
	return 0;
}

int csv_next(struct csv_reader *r, struct csv_field **fields, size_t *nfields,
	     struct mlk_error *e)
{
	*fields = NULL;
	*nfields = 0;
	if (r->delim == '"' || r->delim == '\r' || r->delim == '\n') {
		mlk_error_set(e, MLK_USAGE, NULL, 0, "invalid csv delimiter");
		return -1;
	}
	if (!r->bom_checked && skip_bom(r, e) < 0) {
		r->in_pos = r->in_len;
		return -1;
	}

	for (;;) {
		struct csv_parse ps = { 0 };
		int rc;

		ps.start = ps.p = r->in_pos;
		ps.max_fields = max_fields(r);
		r->line = r->next_line;
		r->offset = r->in_base + r->in_pos;
		r->raw = NULL;
		r->raw_len = 0;

		rc = parse_record(r, &ps, e);
		if (rc < 0) {
			r->in_pos = r->in_len;
			return -1;
		}
		r->in_pos = ps.p;
		if (rc == 0)
			return 0;
		r->next_line = r->line + ps.nl + ps.terminated;

		if (ps.end - ps.start > r->max_record)
			ps.too_long = 1;
		if (!ps.too_long) {
			r->raw = r->in + ps.start;
			r->raw_len = ps.end - ps.start;
		}

		/* Whether a long record is noticed before or after another
		 * problem depends on where reads end, so it always wins. */
		if (ps.too_long) {
			mlk_error_set(e, MLK_USAGE, NULL, r->line,
				      "record longer than %zu bytes",
				      r->max_record);
			return -1;
		}
		if (ps.problem == P_TOO_MANY_FIELDS) {
			mlk_error_set(e, MLK_USAGE, NULL, r->line,
				      "record has more than %zu fields",
				      max_fields(r));
			return -1;
		}
		if (ps.problem != P_NONE) {
			mlk_error_set(e, MLK_USAGE, NULL, r->line,
				      "field %zu: %s", ps.problem_field,
				      problem_text(ps.problem));
			return -1;
		}

		/* A blank line is one empty unquoted field. */
		if (ps.nf == 1 && r->fields[0].len == 0 && !r->fields[0].quoted)
			continue;

		size_t off = 0;
		for (size_t i = 0; i < ps.nf; i++) {
			r->fields[i].p = r->rec + off;
			off += r->fields[i].len + 1;
		}
		*fields = r->fields;
		*nfields = ps.nf;
		return 1;
	}
}
