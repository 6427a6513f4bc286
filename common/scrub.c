#include "scrub.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"
#include "banned.h"

/*
 * The text under scan.  at() reads a byte or -1 past the end, so the
 * detectors can look ahead without a bounds check on every step; -1 is
 * neither a digit, a letter nor a word byte.
 */
struct tx {
	const unsigned char *s;
	size_t n;
};

/* Past the end reads as NUL, which is in no class and no set below. */
static inline int at(const struct tx *t, size_t p)
{
	return p < t->n ? t->s[p] : 0;
}

enum {
	C_DIGIT = 1, C_UPPER = 2, C_LOWER = 4, C_HIGH = 8, C_HEX = 16,
	C_MAIL = 32,            /* ._%+- in an e-mail's local part */
	C_ALPHA = C_UPPER | C_LOWER,
	C_ALNUM = C_DIGIT | C_ALPHA,
	C_WORD = C_ALNUM | C_HIGH,
};

static const unsigned char ctab[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 32, 0, 0, 0, 0, 0, 32, 0, 32, 32, 0,
	17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 0, 0, 0, 0, 0, 0,
	0, 18, 18, 18, 18, 18, 18, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 32,
	0, 20, 20, 20, 20, 20, 20, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0,
	8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
	8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
	8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
	8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
	8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
	8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
	8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
	8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
};

static inline int is_digit(int c) { return ctab[c & 0xff] & C_DIGIT; }
static inline int is_upper(int c) { return ctab[c & 0xff] & C_UPPER; }
static inline int is_lowerc(int c) { return ctab[c & 0xff] & C_LOWER; }
static inline int is_alpha(int c) { return ctab[c & 0xff] & C_ALPHA; }
static inline int is_alnum(int c) { return ctab[c & 0xff] & C_ALNUM; }
/* Letters, digits and every byte of a non-ASCII character. */
static inline int is_word(int c) { return ctab[c & 0xff] & C_WORD; }
static inline int is_hex(int c) { return ctab[c & 0xff] & C_HEX; }
static inline int fold(int c) { return is_upper(c) ? c | 0x20 : c; }

/*
 * The bytes of a Unicode space or punctuation mark at p, which separates
 * words as ASCII punctuation does (U+00A0, U+2000-U+206F, U+3000), or 0.
 * Other non-ASCII characters are word characters.
 */
static inline size_t usep(const struct tx *t, size_t p)
{
	int c = at(t, p), c1, c2;

	if (c == 0xc2)
		return at(t, p + 1) == 0xa0 ? 2 : 0;
	if (c == 0xe2) {
		c1 = at(t, p + 1);
		c2 = at(t, p + 2);
		return (c1 == 0x80 || (c1 == 0x81 && c2 <= 0xaf)) &&
		       (c2 & 0xc0) == 0x80 ? 3 : 0;
	}
	if (c == 0xe3)
		return at(t, p + 1) == 0x80 && at(t, p + 2) == 0x80 ? 3 : 0;
	return 0;
}

/* A word byte that is not the start of a separator. */
static inline int in_word(const struct tx *t, size_t p)
{
	int c = at(t, p);

	return is_word(c) && (c < 0xc2 || !usep(t, p));
}

/* Whether a word goes on right before p (a separator ends none). */
static int word_before(const struct tx *t, size_t p)
{
	if (p == 0 || !is_word(t->s[p - 1]))
		return 0;
	if (p >= 2 && usep(t, p - 2) == 2)
		return 0;
	return !(p >= 3 && usep(t, p - 3) == 3);
}

/*
 * A match may end only where a word ends.  The age label "90+" counts as
 * one word: a first pass may have turned "95yo" into "90+yo", and what
 * did not end after "95" must not end after "90" in the second.
 */
static inline int bnd(const struct tx *t, size_t p)
{
	if (is_word(at(t, p)))
		return at(t, p) >= 0xc2 && usep(t, p);
	return !(t->s[p < t->n ? p : 0] == '+' && p >= 2 &&
		 t->s[p - 2] == '9' && t->s[p - 1] == '0' &&
		 (p == 2 || !is_word(t->s[p - 3])));
}

static size_t digs(const struct tx *t, size_t p)
{
	size_t q = p;
	while (q < t->n && is_digit(t->s[q]))
		q++;
	return q - p;
}

/* The value of k (at most 9) digits at p. */
static unsigned num(const struct tx *t, size_t p, size_t k)
{
	unsigned v = 0;
	for (size_t j = 0; j < k; j++)
		v = v * 10 + (unsigned)(t->s[p + j] - '0');
	return v;
}

static size_t alphas(const struct tx *t, size_t p)
{
	size_t q = p;
	while (q < t->n && is_alpha(t->s[q]))
		q++;
	return q - p;
}

/* Whether the letters at p, k of them, spell lowercase w (ASCII fold). */
static int word_is(const struct tx *t, size_t p, size_t k, const char *w)
{
	size_t j;
	for (j = 0; j < k; j++)
		if (w[j] == '\0' || fold(t->s[p + j]) != w[j])
			return 0;
	return w[j] == '\0';
}

/* Whether lowercase w is spelled at p, followed by anything. */
static int prefix_is(const struct tx *t, size_t p, const char *w)
{
	for (size_t j = 0; w[j]; j++)
		if (fold(at(t, p + j)) != w[j])
			return 0;
	return 1;
}

static inline int one_of(int c, const char *set)
{
	for (; *set; set++)
		if (c == *set)
			return 1;
	return 0;
}

/* ---- matches -------------------------------------------------------- */

/*
 * The replacement chosen at a scan position: bytes [start, end) give way
 * to the label followed by the original bytes [keep, end) (ages keep
 * their "-year-old").  end == 0 means none.
 */
struct match {
	size_t start, end, keep;
	const char *lab;
	size_t lablen;
};

#define LAB(s) s, sizeof(s) - 1

/*
 * Earliest start wins, then the longest; on a tie the first offered.
 * A match that ends in punctuation ("fe80::", "y.o.", "90+") must not be
 * followed by '[': a word there in the first pass may have become a
 * label, and the match must be decided the same way both times.
 */
static void offer_any(struct match *m, size_t start, size_t end,
		      size_t keep, const char *lab, size_t lablen)
{
	if (end <= start)
		return;
	if (m->end && (start > m->start ||
		       (start == m->start && end <= m->end)))
		return;
	m->start = start;
	m->end = end;
	m->keep = keep;
	m->lab = lab;
	m->lablen = lablen;
}

static void offer(const struct tx *t, struct match *m, size_t start,
		  size_t end, size_t keep, const char *lab, size_t lablen)
{
	if (end <= start || !bnd(t, end))
		return;
	if (!is_word(t->s[end - 1]) && at(t, end) == '[')
		return;
	offer_any(m, start, end, keep, lab, lablen);
}

static void offer_lab(const struct tx *t, struct match *m, size_t start,
		      size_t end, const char *lab, size_t lablen)
{
	offer(t, m, start, end, end, lab, lablen);
}

/* ---- dates ----------------------------------------------------------- */

/*
 * Dates (Safe Harbor: every element of a date except the year).
 * Caught: 2020-01-31 (also with / or .), with an ISO time and zone
 * (T10:20:30.5Z, +01:00); 2020-01 and 2020/01; 20200131 when year
 * 1900-2099, month and day are plausible; 01/31/2020, 1/31/20 (a 2-digit
 * year only with '/'), 31.01.2020, 31-01-2020; 1/2020; Jan 31, 2020,
 * January 31st 2020, Jan. 31 2020; Jan 2020, January of 2020, Jan-2020;
 * 31 January 2020, 31st of January 2020, 31-Jan-2020; a capitalised
 * "January 31" without year; "31 January" without year for full month
 * names other than May and March.
 * Kept: a year alone, a time alone, 03/04 (no year), BP 120/80, "may 5"
 * in lower case.  Gaps: dates in words ("the third of May"), weekday
 * names, seasons, "31 Jan" without year.
 */

static const char *const month_names[13] = {
	NULL, "january", "february", "march", "april", "may", "june", "july",
	"august", "september", "october", "november", "december",
};

/* The month whose name begins with the three letters at w, or 0. */
static inline int month3(const unsigned char *w)
{
	switch ((unsigned)fold(w[0]) << 16 | (unsigned)fold(w[1]) << 8 |
		(unsigned)fold(w[2])) {
	case 'j' << 16 | 'a' << 8 | 'n': return 1;
	case 'f' << 16 | 'e' << 8 | 'b': return 2;
	case 'm' << 16 | 'a' << 8 | 'r': return 3;
	case 'a' << 16 | 'p' << 8 | 'r': return 4;
	case 'm' << 16 | 'a' << 8 | 'y': return 5;
	case 'j' << 16 | 'u' << 8 | 'n': return 6;
	case 'j' << 16 | 'u' << 8 | 'l': return 7;
	case 'a' << 16 | 'u' << 8 | 'g': return 8;
	case 's' << 16 | 'e' << 8 | 'p': return 9;
	case 'o' << 16 | 'c' << 8 | 't': return 10;
	case 'n' << 16 | 'o' << 8 | 'v': return 11;
	case 'd' << 16 | 'e' << 8 | 'c': return 12;
	}
	return 0;
}

/* A month name at p (a whole word: a full name, its first three letters
 * or "sept", then an optional '.' after an abbreviation); returns the
 * month and sets *end, or 0. */
static int month_at(const struct tx *t, size_t p, size_t *end, int *full)
{
	size_t k = alphas(t, p);
	int m;

	if (k < 3 || k > 9 || !bnd(t, p + k) || !(m = month3(t->s + p)))
		return 0;
	if (word_is(t, p, k, month_names[m]))
		*full = 1;
	else if (k == 3 || (m == 9 && k == 4 && fold(t->s[p + 3]) == 't'))
		*full = 0;
	else
		return 0;
	*end = p + k;
	if (!*full && at(t, *end) == '.')
		(*end)++;
	return m;
}

static int year_ok(unsigned y)
{
	return y >= 1800 && y <= 2199;
}

/* A 4-digit year at p after an optional ',' and one or two spaces or
 * one '-' or '/'; returns its end or 0. */
static size_t year_after(const struct tx *t, size_t p)
{
	size_t q = p;

	if (at(t, q) == ',')
		q++;
	if (at(t, q) == ' ') {
		q++;
		if (at(t, q) == ' ')
			q++;
	} else if (q == p && one_of(at(t, q), "-/")) {
		q++;
	}
	if (q == p || digs(t, q) != 4 || !year_ok(num(t, q, 4)) ||
	    !bnd(t, q + 4))
		return 0;
	return q + 4;
}

/* "st", "nd", "rd", "th" after a day number. */
static size_t ordinal(const struct tx *t, size_t p)
{
	if (alphas(t, p) == 2 && (prefix_is(t, p, "st") ||
				  prefix_is(t, p, "nd") ||
				  prefix_is(t, p, "rd") ||
				  prefix_is(t, p, "th")))
		return p + 2;
	return p;
}

/* T10:20, T10:20:30, T10:20:30.123, then Z or +01:00 / -0500. */
/* The longest of T10:20, T10:20:30, T10:20:30.123, then Z or +01:00 /
 * -0500 that ends on a word boundary, so that a part a first pass turned
 * into a label cannot change it; p if none. */
static size_t iso_time(const struct tx *t, size_t p)
{
	size_t q, k, best = p;

	if (at(t, p) != 'T' || digs(t, p + 1) != 2 || at(t, p + 3) != ':' ||
	    digs(t, p + 4) != 2)
		return p;
	q = p + 6;
	if (bnd(t, q))
		best = q;
	if (at(t, q) == ':' && digs(t, q + 1) == 2) {
		q += 3;
		if (bnd(t, q))
			best = q;
		if (at(t, q) == '.' && (k = digs(t, q + 1)) > 0) {
			q += 1 + k;
			if (bnd(t, q))
				best = q;
		}
	}
	if (at(t, q) == 'Z') {
		if (bnd(t, q + 1))
			best = q + 1;
	} else if (one_of(at(t, q), "+-") && digs(t, q + 1) >= 2) {
		k = digs(t, q + 1);
		if (k == 4 && bnd(t, q + 5)) {
			best = q + 5;
		} else if (k == 2) {
			q += 3;
			if (bnd(t, q))
				best = q;
			if (at(t, q) == ':' && digs(t, q + 1) == 2 &&
			    bnd(t, q + 3))
				best = q + 3;
		}
	}
	return best;
}

/* Day first, month by name: 31 January 2020, 31st of Jan 2020,
 * 31-Jan-2020; p is after the day's digits. */
static size_t day_month(const struct tx *t, size_t p)
{
	size_t q = ordinal(t, p), e, y;
	int full, m;

	if (at(t, q) == ' ' || at(t, q) == '-')
		q++;
	else
		return 0;
	if (alphas(t, q) == 2 && prefix_is(t, q, "of") && at(t, q + 2) == ' ')
		q += 3;
	m = month_at(t, q, &e, &full);
	if (!m)
		return 0;
	y = year_after(t, e);
	if (y)
		return y;
	if (full && m != 5 && m != 3)
		return e;
	return 0;
}

/* Dates that begin with a digit at p. */
static size_t date_num(const struct tx *t, size_t p)
{
	size_t a = digs(t, p), b, c, q, e;
	unsigned v1, v2, v3;
	int sep;

	if (a == 4) {
		v1 = num(t, p, 4);
		sep = at(t, p + 4);
		if (!one_of(sep, "-/.") || !year_ok(v1))
			return 0;
		b = digs(t, p + 5);
		if (b < 1 || b > 2)
			return 0;
		v2 = num(t, p + 5, b);
		if (v2 < 1 || v2 > 12)
			return 0;
		q = p + 5 + b;
		if (at(t, q) == sep && (c = digs(t, q + 1)) >= 1 && c <= 2) {
			v3 = num(t, q + 1, c);
			if (v3 < 1 || v3 > 31)
				return 0;
			e = q + 1 + c;
			if (sep == '-')
				e = iso_time(t, e);
			return bnd(t, e) ? e : 0;
		}
		/* 2020-01, but not 2020-01-31x cut short: what follows a
		 * second separator may be a label by the second pass. */
		if (sep != '.' && b == 2 && bnd(t, q) &&
		    !(at(t, q) == sep && (is_word(at(t, q + 1)) ||
					  at(t, q + 1) == '[')))
			return q;
		return 0;
	}
	if (a == 8) {
		v1 = num(t, p, 4);
		v2 = num(t, p + 4, 2);
		v3 = num(t, p + 6, 2);
		if (v1 >= 1900 && v1 <= 2099 && v2 >= 1 && v2 <= 12 &&
		    v3 >= 1 && v3 <= 31)
			return p + 8;
		return 0;
	}
	if (a != 1 && a != 2)
		return 0;
	v1 = num(t, p, a);
	sep = at(t, p + a);
	b = digs(t, p + a + 1);
	if (one_of(sep, "/-.") && (b == 1 || b == 2)) {
		v2 = num(t, p + a + 1, b);
		q = p + a + 1 + b;
		c = at(t, q) == sep ? digs(t, q + 1) : 0;
		if ((c == 4 || (c == 2 && sep == '/')) &&
		    ((v1 >= 1 && v1 <= 12 && v2 >= 1 && v2 <= 31) ||
		     (v1 >= 1 && v1 <= 31 && v2 >= 1 && v2 <= 12)) &&
		    (c == 2 || year_ok(num(t, q + 1, 4))))
			return q + 1 + c;
		return 0;
	}
	if (sep == '/' && b == 4 && v1 >= 1 && v1 <= 12 &&
	    year_ok(num(t, p + a + 1, 4)))
		return p + a + 1 + 4;
	if (v1 >= 1 && v1 <= 31)
		return day_month(t, p + a);
	return 0;
}

/* Dates that begin with a month name at p. */
static size_t date_month(const struct tx *t, size_t p)
{
	size_t e, q, d, y, r;
	int full, m = month_at(t, p, &e, &full);
	unsigned v;

	if (!m)
		return 0;
	y = year_after(t, e);
	if (y)
		return y;
	q = e;
	if (at(t, q) == ' ' && alphas(t, q + 1) == 2 &&
	    prefix_is(t, q + 1, "of")) {
		q += 3;
		if (at(t, q) == ' ' && digs(t, q + 1) == 4 &&
		    year_ok(num(t, q + 1, 4)))
			return q + 5;
		return 0;
	}
	if (at(t, q) == ' ' || at(t, q) == '-')
		q++;
	else
		return 0;
	d = digs(t, q);
	if (d < 1 || d > 2)
		return 0;
	v = num(t, q, d);
	if (v < 1 || v > 31)
		return 0;
	r = ordinal(t, q + d);
	if (!bnd(t, r))
		return 0;
	y = year_after(t, r);
	if (y)
		return y;
	/* Without a year only a capitalised month: "may 5" is a verb. */
	return is_upper(t->s[p]) ? r : 0;
}

/* ---- phone and fax ---------------------------------------------------- */

/*
 * Caught: (555) 123-4567, (555)123-4567, 555-123-4567, 555.123.4567,
 * 555 123 4567, 1-800-555-1234, +1 555 123 4567, 555-1234 (first digit
 * 2-9, '-' only), international +44 20 7946 0958 (8 to 15 digits after
 * '+'), each with an extension x123, ext. 123, extension 123.  Ten
 * digits in a row are caught as [ID].  Gaps: numbers spelled with
 * letters (1-800-FLOWERS), "555 1234" with a space.
 */

static size_t phone_ext(const struct tx *t, size_t q)
{
	size_t r = q, k;

	if (at(t, r) == ' ')
		r++;
	if (prefix_is(t, r, "extension"))
		r += 9;
	else if (prefix_is(t, r, "ext"))
		r += 3;
	else if (fold(at(t, r)) == 'x')
		r += 1;
	else
		return q;
	if (at(t, r) == '.')
		r++;
	if (at(t, r) == ' ')
		r++;
	k = digs(t, r);
	if (k < 1 || k > 6 || !bnd(t, r + k))
		return q;
	return r + k;
}

/* The end of a number at q, with its extension ("555-1234ext5"); 0 when
 * a word goes on after the number. */
static size_t with_ext(const struct tx *t, size_t q)
{
	size_t e = phone_ext(t, q);

	return e == q && !bnd(t, q) ? 0 : e;
}

/* Area code, exchange and line number at p. */
static size_t nanp(const struct tx *t, size_t p)
{
	size_t q = p;

	if (at(t, q) == '(') {
		if (digs(t, q + 1) != 3 || at(t, q + 4) != ')')
			return 0;
		q += 5;
		if (at(t, q) == ' ')
			q++;
	} else {
		if (digs(t, q) != 3 || !one_of(at(t, q + 3), "-. "))
			return 0;
		q += 4;
	}
	if (digs(t, q) != 3 || !one_of(at(t, q + 3), "-. ") ||
	    digs(t, q + 4) != 4)
		return 0;
	return with_ext(t, q + 8);
}

static size_t phone(const struct tx *t, size_t p)
{
	size_t q, k, total = 0, e;
	int c = at(t, p);

	if (c == '+') {
		if (at(t, p + 1) == '1' && one_of(at(t, p + 2), "-. ") &&
		    (e = nanp(t, p + 3)))
			return e;
		/* The longest run of groups that makes a number, so that a
		 * group removed later (as an [ID]) cannot change the call. */
		q = p + 1;
		e = 0;
		for (;;) {
			if (at(t, q) == '(' && digs(t, q + 1) >= 1 &&
			    digs(t, q + 1) <= 4 &&
			    at(t, q + 1 + digs(t, q + 1)) == ')') {
				k = digs(t, q + 1);
				total += k;
				q += k + 2;
				if (at(t, q) == ' ')
					q++;
				continue;
			}
			k = digs(t, q);
			if (k == 0)
				break;
			total += k;
			q += k;
			if (total > 15)
				break;
			if (total >= 8) {
				size_t x = with_ext(t, q);
				if (x)
					e = x;
			}
			if (one_of(at(t, q), " -.") &&
			    (is_digit(at(t, q + 1)) || at(t, q + 1) == '('))
				q++;
			else
				break;
		}
		return e;
	}
	if (c == '(')
		return nanp(t, p);
	if (c == '1' && one_of(at(t, p + 1), "-. ") && (e = nanp(t, p + 2)))
		return e;
	if ((e = nanp(t, p)))
		return e;
	if (c >= '2' && digs(t, p) == 3 && at(t, p + 3) == '-' &&
	    digs(t, p + 4) == 4)
		return with_ext(t, p + 8);
	return 0;
}

/* ---- SSN, ZIP+4, IP --------------------------------------------------- */

/*
 * SSN: 123-45-6789 and 123 45 6789 (one separator throughout); nine
 * digits in a row only after "SSN" or "social security" (elsewhere they
 * are an [ID]).  ZIP: 12345-6789 anywhere; 5 digits (or ZIP+4) after a
 * US state or territory abbreviation in capitals (MA 02139, "MA, 02139")
 * or after zip / postal / postcode.  Every other 5-digit number is
 * removed as [ID] (see the ID rule), so lab values of 5 or more digits
 * in a row are lost too: we err on removal.  "12,345" keeps, because an
 * identifier is not written with thousands separators.
 * IPv4: four dotted numbers 0-255.  IPv6: eight hex groups, or fewer
 * with one "::"; either only as a whole chain (1.2.3.4.5 and
 * 1:2:3:4:5:6:7:8:9 are none).  Gaps: IPv4-mapped IPv6 keeps its
 * "::ffff:" prefix (the IPv4 part becomes [IP]), host names without a
 * scheme, IPv6 zone ids and [bracketed] forms.
 */

static size_t ssn(const struct tx *t, size_t p)
{
	int sep = at(t, p + 3);

	if (digs(t, p) == 3 && (sep == '-' || sep == ' ') &&
	    digs(t, p + 4) == 2 && at(t, p + 6) == sep &&
	    digs(t, p + 7) == 4 && bnd(t, p + 11))
		return p + 11;
	return 0;
}

static size_t zip(const struct tx *t, size_t p)
{
	if (digs(t, p) != 5)
		return 0;
	if (at(t, p + 5) == '-' && digs(t, p + 6) == 4)
		return p + 10;
	return p + 5;
}

/* Like IPv6, only a whole chain of dotted numbers ("1.2.3.4.5" is none;
 * a ']' or the '+' of "90+" before the dot may be a label that was a
 * number). */
static size_t ipv4(const struct tx *t, size_t p)
{
	size_t q = p, k;

	if (p >= 2 && t->s[p - 1] == '.' &&
	    (is_digit(t->s[p - 2]) || t->s[p - 2] == ']' ||
	     t->s[p - 2] == '+'))
		return 0;

	for (int g = 0; g < 4; g++) {
		if (g > 0) {
			if (at(t, q) != '.')
				return 0;
			q++;
		}
		k = digs(t, q);
		if (k < 1 || k > 3 || num(t, q, k) > 255)
			return 0;
		q += k;
	}
	if (at(t, q) == '.' && (is_digit(at(t, q + 1)) || at(t, q + 1) == '['))
		return 0;
	return q;
}

static size_t ipv6(const struct tx *t, size_t p)
{
	size_t q = p, k, groups = 0;
	int dc = 0;

	/* Only a whole chain of hex groups and colons is an address: one
	 * found inside a longer chain would change with its neighbours. */
	if (p > 0 && (t->s[p - 1] == ':' || t->s[p - 1] == ']' ||
		      word_before(t, p)))
		return 0;
	if (at(t, q) == ':') {
		if (at(t, q + 1) != ':')
			return 0;
		dc = 1;
		q += 2;
	}
	for (;;) {
		k = 0;
		while (k < 5 && is_hex(at(t, q + k)))
			k++;
		if (k == 0 || k > 4 || is_word(at(t, q + k)))
			break;
		groups++;
		q += k;
		if (at(t, q) != ':')
			break;
		if (at(t, q + 1) == ':') {
			if (dc)
				return 0;
			dc = 1;
			q += 2;
			if (!is_hex(at(t, q)))
				break;
		} else if (is_hex(at(t, q + 1))) {
			q++;
		} else {
			break;
		}
	}
	if (dc ? groups < 1 || groups > 7 : groups != 8)
		return 0;
	if (at(t, q) == ':' || (at(t, q) == '.' && (is_digit(at(t, q + 1)) ||
						   at(t, q + 1) == '[')))
		return 0;
	return q;
}

/* ---- e-mail and URL ----------------------------------------------------- */

/*
 * E-mail: local@domain.tld with an ASCII local part ([A-Za-z0-9._%+-])
 * beginning with a letter or digit, and a dotted domain.  URL: http://,
 * https://, ftp://, ftps://, www. up to white space or <>"`{}|\^
 * without trailing .,;:!?)' characters.  Gaps: bare host names
 * ("example.org/x"), obfuscated addresses ("john at example dot com").
 */

/* The longest address that ends on a word boundary: a label removed in
 * the first pass cannot change where the second pass ends it. */
static size_t email(const struct tx *t, size_t p)
{
	size_t q = p, r, k, dots = 0, best = 0;

	while (ctab[at(t, q)] & (C_ALNUM | C_MAIL))
		q++;
	if (q == p || at(t, q) != '@')
		return 0;
	r = q + 1;
	while (is_alnum(at(t, r))) {
		k = 0;
		while (is_alnum(at(t, r + k)) || at(t, r + k) == '-')
			k++;
		r += k;
		if (dots && bnd(t, r))
			best = r;
		if (at(t, r) != '.' || !is_alnum(at(t, r + 1)))
			break;
		r++;
		dots++;
	}
	return best;
}

static size_t url(const struct tx *t, size_t p)
{
	size_t q;

	if (prefix_is(t, p, "http://"))
		q = p + 7;
	else if (prefix_is(t, p, "https://"))
		q = p + 8;
	else if (prefix_is(t, p, "ftp://"))
		q = p + 6;
	else if (prefix_is(t, p, "ftps://"))
		q = p + 7;
	else if (prefix_is(t, p, "www.") && is_alnum(at(t, p + 4)))
		q = p + 4;
	else
		return 0;
	while (q < t->n) {
		int c = t->s[q];
		if (c <= ' ' || c == 0x7f || one_of(c, "<>\"`{}|\\^"))
			break;
		q++;
	}
	while (q > p && one_of(t->s[q - 1], ".,;:!?)'"))
		q--;
	return q;
}

/* ---- ages -------------------------------------------------------------- */

/*
 * Ages over 89 become "90+": "93-year-old", "93 year old", "93 years
 * old", "93 yr old", "93yo", "93 y/o", "93 y.o.", "93 years of age";
 * "age 93", "aged 93", "Age: 93".  The number is replaced; the words
 * around it stay.  Gaps: ages in words ("ninety-three"), "93 years"
 * alone (a duration as often as an age).
 */

static size_t age_suffix(const struct tx *t, size_t q)
{
	size_t r = q, k;

	if (at(t, r) == '-' || at(t, r) == ' ')
		r++;
	k = alphas(t, r);
	if (k == 2 && prefix_is(t, r, "yo"))
		return r + 2;
	if (k == 1 && fold(at(t, r)) == 'y') {
		if (at(t, r + 1) == '/' && fold(at(t, r + 2)) == 'o' &&
		    !is_alpha(at(t, r + 3)))
			return r + 3;
		if (at(t, r + 1) == '.' && fold(at(t, r + 2)) == 'o' &&
		    at(t, r + 3) == '.')
			return r + 4;
		return 0;
	}
	if (word_is(t, r, k, "year") || word_is(t, r, k, "years") ||
	    word_is(t, r, k, "yr") || word_is(t, r, k, "yrs")) {
		r += k;
		if ((at(t, r) == '-' || at(t, r) == ' ') &&
		    alphas(t, r + 1) == 3 && prefix_is(t, r + 1, "old"))
			return r + 4;
		if (prefix_is(t, r, " of age") && !is_alpha(at(t, r + 7)))
			return r + 7;
	}
	return 0;
}

/* The number at p, 1 to 3 digits, and an optional '+' after it; returns
 * the end or 0 when it is not an age over 89. */
static size_t old_age(const struct tx *t, size_t p)
{
	size_t k = digs(t, p);

	if (k < 1 || k > 3)
		return 0;
	if (num(t, p, k) < 90)
		return 0;
	return p + k + (at(t, p + k) == '+');
}

/* ---- IDs ---------------------------------------------------------------- */

/*
 * [ID]: a token (word bytes joined by single '-' or '_') holding a run of
 * 5 or more digits, or 6 or more digits in all (MRN AB-1234567,
 * #00123456, acct 998877, UUIDs), except a year range like 2019-2020.
 * After MRN, medical record, patient / member / subscriber / insurance
 * id, NPI, DEA, SSN, social security (strong) the next token is removed
 * when it holds a digit or is 3 or more bytes without lowercase letters;
 * after account, acct, policy, license, licence, passport (weak) when it
 * holds a digit and is 3 or more bytes.  "number", "no", "#", ":"... may
 * stand between.  Gaps: identifiers of 4 digits or fewer with no keyword
 * before them; identifiers of letters only after a weak keyword.
 */

static size_t id_token(const struct tx *t, size_t p)
{
	size_t q = p, run = 0, maxrun = 0, total = 0, groups = 0;
	size_t glen[2] = { 0, 0 };

	for (;;) {
		size_t g = q;
		while (in_word(t, q)) {
			if (is_digit(t->s[q])) {
				run++;
				total++;
				if (run > maxrun)
					maxrun = run;
			} else {
				run = 0;
			}
			q++;
		}
		if (groups < 2)
			glen[groups] = q - g;
		groups++;
		run = 0;
		if (one_of(at(t, q), "-_") && at(t, q + 1) == '[')
			return 0;       /* decided as if the label were a word */
		if (one_of(at(t, q), "-_") && in_word(t, q + 1))
			q++;
		else
			break;
	}
	if (groups == 2 && glen[0] == 4 && glen[1] == 4 && total == 8 &&
	    at(t, p + 4) == '-' && year_ok(num(t, p, 4)) &&
	    year_ok(num(t, p + 5, 4)))
		return 0;
	return maxrun >= 5 || total >= 6 ? q : 0;
}

/* ---- keywords before an identifier ----------------------------------- */

static const struct keyword {
	const char *w1, *w2;
	unsigned strong, det;
	const char *lab;
	size_t lablen;
} keywords[] = {
	{ "mrn", NULL, 1, SCRUB_ID, LAB("[ID]") },
	{ "medical", "record", 1, SCRUB_ID, LAB("[ID]") },
	{ "patient", "id", 1, SCRUB_ID, LAB("[ID]") },
	{ "member", "id", 1, SCRUB_ID, LAB("[ID]") },
	{ "subscriber", "id", 1, SCRUB_ID, LAB("[ID]") },
	{ "insurance", "id", 1, SCRUB_ID, LAB("[ID]") },
	{ "npi", NULL, 1, SCRUB_ID, LAB("[ID]") },
	{ "dea", NULL, 1, SCRUB_ID, LAB("[ID]") },
	{ "ssn", NULL, 1, SCRUB_SSN, LAB("[SSN]") },
	{ "social", "security", 1, SCRUB_SSN, LAB("[SSN]") },
	{ "account", NULL, 0, SCRUB_ID, LAB("[ID]") },
	{ "acct", NULL, 0, SCRUB_ID, LAB("[ID]") },
	{ "policy", NULL, 0, SCRUB_ID, LAB("[ID]") },
	{ "license", NULL, 0, SCRUB_ID, LAB("[ID]") },
	{ "licence", NULL, 0, SCRUB_ID, LAB("[ID]") },
	{ "passport", NULL, 0, SCRUB_ID, LAB("[ID]") },
	{ "zip", NULL, 0, SCRUB_ZIP, LAB("[ZIP]") },
	{ "postal", NULL, 0, SCRUB_ZIP, LAB("[ZIP]") },
	{ "postcode", NULL, 0, SCRUB_ZIP, LAB("[ZIP]") },
};

static const char *const fillers[] = {
	"number", "num", "no", "nr", "is", "code", "id",
};

/* Up to max bytes of set or Unicode separators from p; returns the end. */
static size_t skip_seps(const struct tx *t, size_t p, const char *set,
			int max)
{
	size_t q = p, u;

	for (int k = 0; k < max; k++) {
		if (one_of(at(t, q), set))
			q++;
		else if ((u = usep(t, q)))
			q += u;
		else
			break;
	}
	return q;
}

/* Separators and filler words after a keyword, up to the next token. */
static size_t skip_filler(const struct tx *t, size_t p)
{
	size_t q = p, k, j;

	for (int round = 0; round < 4; round++) {
		k = 0;
		q = skip_seps(t, q, " \t:#=.-", 6);
		k = alphas(t, q);
		for (j = 0; j < sizeof fillers / sizeof fillers[0]; j++)
			if (word_is(t, q, k, fillers[j]) && bnd(t, q + k))
				break;
		if (j == sizeof fillers / sizeof fillers[0])
			break;
		q += k;
	}
	return q;
}

static void try_keyword(const struct scrub *sc, const struct tx *t,
			size_t p, size_t k, struct match *m);

/* ---- names after a title --------------------------------------------- */

/*
 * [NAME]: one to three capitalised words after Dr, Mr, Mrs, Ms, Miss,
 * Mx, Prof or Doctor (itself capitalised, with or without '.'), an
 * initial "J." allowed among them, "O'Brien" and "Smith-Jones" as one
 * word ("Dr. Smith's" loses the "'s" too).  Gaps: names without a title
 * (unless known), lower-case names, "Smith, MD".
 */

static int is_title(const struct tx *t, size_t p, size_t k)
{
	int f = fold(t->s[p]);

	if (f != 'd' && f != 'm' && f != 'p')
		return 0;
	switch (k) {
	case 2:
		return word_is(t, p, k, "dr") || word_is(t, p, k, "mr") ||
		       word_is(t, p, k, "ms") || word_is(t, p, k, "mx");
	case 3:
		return word_is(t, p, k, "mrs");
	case 4:
		return word_is(t, p, k, "miss") || word_is(t, p, k, "prof");
	case 6:
		return word_is(t, p, k, "doctor");
	}
	return 0;
}

/* A capitalised word at p ("O'Brien", "Smith-Jones", "José"); returns
 * its end or 0. */
static size_t cap_word(const struct tx *t, size_t p)
{
	size_t q = p + 1;

	if (!is_upper(at(t, p)))
		return 0;
	for (;;) {
		while (is_alpha(at(t, q)) || (at(t, q) >= 0x80 && in_word(t, q)))
			q++;
		if (one_of(at(t, q), "-'") && at(t, q + 1) == '[')
			return 0;       /* decided as if the label were a word */
		if (one_of(at(t, q), "-'") && is_alpha(at(t, q + 1)))
			q++;
		else
			break;
	}
	return in_word(t, q) ? 0 : q;
}

/* The name after a title that ends at p: sets *start, returns its end
 * or 0. */
static size_t title_name_at(const struct tx *t, size_t p, size_t *start)
{
	size_t q = p, e = 0, w;

	if (at(t, q) == '.')
		q++;
	if (at(t, q) != ' ')
		return 0;
	q++;
	*start = q;
	for (int words = 0; words < 3; words++) {
		/* An initial: "J. Smith". */
		if (is_upper(at(t, q)) && at(t, q + 1) == '.' &&
		    at(t, q + 2) == ' ' && is_upper(at(t, q + 3))) {
			q += 3;
			continue;
		}
		w = cap_word(t, q);
		if (!w || w - q < 2)
			break;
		e = w;
		if (at(t, w) != ' ' || !is_upper(at(t, w + 1)))
			break;
		q = w + 1;
	}
	return e;
}

/* ---- known identifiers ----------------------------------------------- */

#define SCRUB_PROBE_BITS 4096

struct kword {
	uint32_t hash;
	uint32_t off, len;      /* lowercased bytes in arena */
	int32_t phrases;        /* first phrase beginning with it, or -1 */
	uint8_t kind;
	uint8_t alone;          /* matches on its own */
};

struct kspan {
	uint32_t off, len;
};

struct kphrase {
	uint32_t span, nwords, bytes;
	int32_t next;           /* sorted: most words, then most bytes */
	uint8_t kind;
};

struct scrub {
	unsigned det;
	struct buf arena;
	struct kword *words;
	size_t nwords, awords;
	uint32_t *table;        /* index + 1 into words, 0 empty */
	uint64_t bloom;         /* bit (hash >> 26) of every word's hash */
	size_t tsize;           /* a power of two, or 0 */
	struct kphrase *phrases;
	size_t nphrases, aphrases;
	struct kspan *spans;
	size_t nspans, aspans;
	char kinds[SCRUB_MAX_KINDS][SCRUB_MAX_KIND + 3];  /* "[KIND]" */
	size_t kindlen[SCRUB_MAX_KINDS];
	size_t nkinds;
	uint32_t kwfirst[26];   /* keywords by first letter, bit j = keywords[j] */
	uint32_t kwbylen[11];   /* keywords by length, the same way */
	/* scrub_probe_*: a bit per hash of each word of the texts */
	uint64_t probe[SCRUB_PROBE_BITS / 64];
	size_t probe_words;
	int probe_all;
};

static const char *const fixed_labels[] = {
	"DATE", "PHONE", "EMAIL", "SSN", "ID", "URL", "IP", "ZIP",
	"REDACTED",
};

/*
 * Words that never match alone when they are part of a multi-word value:
 * common English words, titles, street types, compass points, and US
 * state abbreviations (Safe Harbor keeps the state).  stop_words[k]
 * holds the words of k letters, one after another.
 */
static const char *const stop_words[] = {
	"",
	"ainsew",
	"anasatbebyheifinisitmemynoofonorsotoupuswemrmsdrmddornnppajrsriiivstrdavlnctplflponenwseswdelaleeldadidu",
	"andarebutforhadhasherhimhisitsnotourshethewasyoumrsphdiiiavewayaptstehwyboxusadelvanvondosdas",
	"fromhaveintothanthatthemthentheythiswerewillwithyourmissblvdunitroadlaneroomeastwest",
	"theirtheresuitedrivecourtplacefloornorthsouthdella",
	"streetavenue",
	"highway",
	"",
	"boulevard",
};

/* US states and territories: bit (second letter - 'a') of
 * state_bits[first letter - 'a']. */
static const uint32_t state_bits[26] = {
	0x2060c00, 0x0000000, 0x0084001, 0x0000014, 0x0000000, 0x0000800,
	0x0100001, 0x0000100, 0x0002809, 0x0000000, 0x1040000, 0x0000001,
	0x00ce119, 0x120129c, 0x0020480, 0x0020001, 0x0000000, 0x0000100,
	0x000000c, 0x0802000, 0x0080000, 0x0080101, 0x1200101, 0x0000000,
	0x0000000, 0x0000000,
};

static int is_state(const unsigned char *w, size_t k, int need_upper)
{
	int a = fold(w[0]), b;

	if (k != 2 || !is_alpha(a))
		return 0;
	if (need_upper && (!is_upper(w[0]) || !is_upper(w[1])))
		return 0;
	b = fold(w[1]);
	return is_alpha(b) && (state_bits[a - 'a'] >> (b - 'a') & 1);
}

static int is_stop(const char *w, size_t k)
{
	/* Every stop word and state is letters: most ids stop here. */
	if (!is_alpha((unsigned char)w[0]))
		return 0;
	if (k < sizeof stop_words / sizeof stop_words[0])
		for (const char *sw = stop_words[k]; *sw; sw += k)
			if (sw[0] == w[0] && !memcmp(sw, w, k))
				return 1;
	return is_state((const unsigned char *)w, k, 0);
}

static inline uint32_t hash_step(uint32_t h, int c)
{
	return (h ^ (uint32_t)c) * 16777619u;
}
#define HASH_INIT 2166136261u

struct scrub *scrub_new(unsigned detectors)
{
	struct scrub *sc = xcalloc(1, sizeof *sc);

	sc->det = detectors & SCRUB_ALL;
	for (size_t j = 0; j < sizeof keywords / sizeof keywords[0]; j++)
	{
		sc->kwfirst[keywords[j].w1[0] - 'a'] |= UINT32_C(1) << j;
		sc->kwbylen[strlen(keywords[j].w1)] |= UINT32_C(1) << j;
	}
	buf_init(&sc->arena);
	memcpy(sc->kinds[0], "[REDACTED]", 10);
	sc->kindlen[0] = 10;
	sc->nkinds = 1;
	return sc;
}

void scrub_free(struct scrub *sc)
{
	if (!sc)
		return;
	buf_release(&sc->arena);
	free(sc->words);
	free(sc->table);
	free(sc->phrases);
	free(sc->spans);
	free(sc);
}

void scrub_clear_known(struct scrub *sc)
{
	buf_reset(&sc->arena);
	sc->nwords = 0;
	sc->nphrases = 0;
	sc->nspans = 0;
	sc->bloom = 0;
	if (sc->table)
		memset(sc->table, 0, sc->tsize * sizeof *sc->table);
}

static uint8_t intern_kind(struct scrub *sc, const char *kind)
{
	size_t k = kind ? strlen(kind) : 0;

	if (k == 0 || k > SCRUB_MAX_KIND)
		return 0;
	for (size_t j = 0; j < k; j++)
		if (!is_upper(kind[j]) && !is_digit(kind[j]) && kind[j] != '_')
			return 0;
	for (size_t j = 0; j < sc->nkinds; j++)
		if (sc->kindlen[j] == k + 2 &&
		    !memcmp(sc->kinds[j] + 1, kind, k))
			return (uint8_t)j;
	if (sc->nkinds == SCRUB_MAX_KINDS)
		return 0;
	sc->kinds[sc->nkinds][0] = '[';
	memcpy(sc->kinds[sc->nkinds] + 1, kind, k);
	sc->kinds[sc->nkinds][k + 1] = ']';
	sc->kindlen[sc->nkinds] = k + 2;
	return (uint8_t)sc->nkinds++;
}

static void table_put(struct scrub *sc, uint32_t idx)
{
	size_t mask = sc->tsize - 1, h = sc->words[idx].hash & mask;

	while (sc->table[h])
		h = (h + 1) & mask;
	sc->table[h] = idx + 1;
}

static int32_t lookup(const struct scrub *sc, const unsigned char *w,
		      size_t k, uint32_t hash)
{
	size_t mask, h;

	if (!sc->tsize)
		return -1;
	mask = sc->tsize - 1;
	for (h = hash & mask; sc->table[h]; h = (h + 1) & mask) {
		const struct kword *kw = &sc->words[sc->table[h] - 1];
		const char *low;
		size_t j;
		if (kw->hash != hash || kw->len != k)
			continue;
		low = sc->arena.data + kw->off;
		for (j = 0; j < k; j++)
			if (fold(w[j]) != (unsigned char)low[j])
				break;
		if (j == k)
			return (int32_t)(sc->table[h] - 1);
	}
	return -1;
}

/* The entry for lowercased arena bytes [off, off + k), made if new. */
static uint32_t word_entry(struct scrub *sc, uint32_t off, uint32_t k,
			   uint8_t kind)
{
	const unsigned char *w =
		(const unsigned char *)sc->arena.data + off;
	uint32_t hash = HASH_INIT;
	int32_t found;

	for (uint32_t j = 0; j < k; j++)
		hash = hash_step(hash, w[j]);
	found = lookup(sc, w, k, hash);
	if (found >= 0)
		return (uint32_t)found;
	if ((sc->nwords + 1) * 2 > sc->tsize) {
		size_t nsize = sc->tsize ? sc->tsize * 2 : 256;
		free(sc->table);
		sc->table = xcalloc(nsize, sizeof *sc->table);
		sc->tsize = nsize;
		for (size_t j = 0; j < sc->nwords; j++)
			table_put(sc, (uint32_t)j);
	}
	XGROW(sc->words, sc->awords, sc->nwords + 1);
	sc->words[sc->nwords] = (struct kword){ hash, off, k, -1, kind, 0 };
	sc->bloom |= UINT64_C(1) << (hash >> 26);
	table_put(sc, (uint32_t)sc->nwords);
	return (uint32_t)sc->nwords++;
}

static void make_alone(struct scrub *sc, uint32_t idx, uint8_t kind)
{
	struct kword *kw = &sc->words[idx];

	if (!kw->alone) {
		kw->alone = 1;
		kw->kind = kind;
	}
}

void scrub_add_known(struct scrub *sc, const char *v, size_t n,
		     const char *kind)
{
	const unsigned char *s = (const unsigned char *)v;
	size_t first_span = sc->nspans, nw = 0, bytes = 0, longest = 0;
	uint8_t ki = intern_kind(sc, kind);

	/* Lowercase every word of the value into the arena. */
	for (size_t p = 0; p < n;) {
		size_t q = p;
		if (!is_word(s[p])) {
			p++;
			continue;
		}
		while (q < n && is_word(s[q]))
			q++;
		if (q - p > UINT32_MAX / 2 || sc->arena.len > UINT32_MAX / 2)
			break;
		XGROW(sc->spans, sc->aspans, sc->nspans + 1);
		sc->spans[sc->nspans].off = (uint32_t)sc->arena.len;
		sc->spans[sc->nspans].len = (uint32_t)(q - p);
		sc->nspans++;
		buf_grow(&sc->arena, q - p);
		for (size_t j = p; j < q; j++)
			sc->arena.data[sc->arena.len++] = (char)fold(s[j]);
		sc->arena.data[sc->arena.len] = '\0';
		nw++;
		bytes += q - p;
		if (q - p > longest)
			longest = q - p;
		p = q;
	}
	if (nw == 0 || longest < 2) {
		sc->nspans = first_span;
		return;
	}
	if (nw == 1) {
		struct kspan sp = sc->spans[first_span];
		make_alone(sc, word_entry(sc, sp.off, sp.len, ki), ki);
		sc->nspans = first_span;
		return;
	}
	uint32_t head = 0;
	for (size_t j = 0; j < nw; j++) {
		struct kspan sp = sc->spans[first_span + j];
		const char *w = sc->arena.data + sp.off;
		size_t d = 0;
		uint32_t idx = word_entry(sc, sp.off, sp.len, ki);
		if (j == 0)
			head = idx;
		while (d < sp.len && is_digit((unsigned char)w[d]))
			d++;
		if (sp.len >= 2 && !(d == sp.len && d < 4) &&
		    !is_stop(w, sp.len))
			make_alone(sc, idx, ki);
	}

	/* The phrase, in its first word's list, longest first. */
	int32_t *link = &sc->words[head].phrases;
	XGROW(sc->phrases, sc->aphrases, sc->nphrases + 1);
	struct kphrase *ph = &sc->phrases[sc->nphrases];
	ph->span = (uint32_t)first_span;
	ph->nwords = (uint32_t)nw;
	ph->bytes = (uint32_t)bytes;
	ph->kind = ki;
	while (*link >= 0) {
		const struct kphrase *o = &sc->phrases[*link];
		if (o->nwords < nw || (o->nwords == nw && o->bytes < bytes))
			break;
		link = &sc->phrases[*link].next;
	}
	ph->next = *link;
	*link = (int32_t)sc->nphrases++;
}

void scrub_add_kind(struct scrub *sc, const char *kind)
{
	(void)intern_kind(sc, kind);
}

void scrub_probe_reset(struct scrub *sc)
{
	memset(sc->probe, 0, sizeof sc->probe);
	sc->probe_words = 0;
	sc->probe_all = 0;
}

static inline void probe_bit(uint32_t h, size_t *word, uint64_t *bit)
{
	h = (h >> 12) ^ h;
	*word = (h >> 6) & (SCRUB_PROBE_BITS / 64 - 1);
	*bit = UINT64_C(1) << (h & 63);
}

/* The words of ASCII text are its runs of letters and digits, as the
 * scanner sees them; with other bytes every value is taken as found. */
void scrub_probe_text(struct scrub *sc, const char *in, size_t n)
{
	const unsigned char *s = (const unsigned char *)in;

	for (size_t p = 0; p < n && !sc->probe_all;) {
		if (s[p] >= 0x80) {
			sc->probe_all = 1;
			break;
		}
		if (!is_alnum(s[p])) {
			p++;
			continue;
		}
		/* c | 0x20 folds a letter and keeps a digit */
		uint32_t h = HASH_INIT;
		while (p < n && is_alnum(s[p]))
			h = hash_step(h, s[p++] | 0x20);
		if (p < n && s[p] >= 0x80) {
			sc->probe_all = 1;
			break;
		}
		if (++sc->probe_words > SCRUB_PROBE_WORDS) {
			sc->probe_all = 1;
			break;
		}
		size_t w;
		uint64_t b;
		probe_bit(h, &w, &b);
		sc->probe[w] |= b;
	}
}

/* Words split as scrub_add_known() splits them. */
int scrub_probe_known(const struct scrub *sc, const char *v, size_t n)
{
	const unsigned char *s = (const unsigned char *)v;

	if (sc->probe_all)
		return 1;
	for (size_t p = 0; p < n;) {
		if (!is_word(s[p])) {
			p++;
			continue;
		}
		uint32_t h = HASH_INIT;
		while (p < n && is_word(s[p]))
			h = hash_step(h, fold(s[p++]));
		size_t w;
		uint64_t b;
		probe_bit(h, &w, &b);
		if (sc->probe[w] & b)
			return 1;
	}
	return 0;
}

/* Separators allowed between the words of a known multi-word value. */
static int phrase_sep(int c)
{
	return one_of(c, " \t\r\n,.-'/&");
}

static size_t phrase_match(const struct scrub *sc, const struct tx *t,
			   size_t q, const struct kphrase *ph)
{
	for (uint32_t k = 1; k < ph->nwords; k++) {
		const struct kspan *sp = &sc->spans[ph->span + k];
		const char *low = sc->arena.data + sp->off;
		size_t gap = 0, j;
		while (gap < 3) {
			size_t u = usep(t, q);
			if (phrase_sep(at(t, q)))
				q++;
			else if (u)
				q += u;
			else
				break;
			gap++;
		}
		if (gap == 0 || q + sp->len > t->n || !bnd(t, q + sp->len))
			return 0;
		for (j = 0; j < sp->len; j++)
			if (fold(t->s[q + j]) != (unsigned char)low[j])
				return 0;
		q += sp->len;
	}
	return q;
}

static void try_known(const struct scrub *sc, const struct tx *t, size_t p,
		      size_t wend, uint32_t hash, struct match *m)
{
	int32_t idx = lookup(sc, t->s + p, wend - p, hash);
	const struct kword *kw;

	if (idx < 0)
		return;
	kw = &sc->words[idx];
	for (int32_t ph = kw->phrases; ph >= 0; ph = sc->phrases[ph].next) {
		size_t e = phrase_match(sc, t, wend, &sc->phrases[ph]);
		if (e) {
			uint8_t k = sc->phrases[ph].kind;
			offer_lab(t, m, p, e, sc->kinds[k], sc->kindlen[k]);
			return;
		}
	}
	if (kw->alone)
		offer_lab(t, m, p, wend, sc->kinds[kw->kind],
			  sc->kindlen[kw->kind]);
}

/* ---- the scanner ---------------------------------------------------------- */

static void try_keyword(const struct scrub *sc, const struct tx *t,
			size_t p, size_t k, struct match *m)
{
	int f = fold(t->s[p]);
	uint32_t cand = sc->kwfirst[f - 'a'] & sc->kwbylen[k];

	while (cand) {
		size_t j = (size_t)__builtin_ctz(cand);
		const struct keyword *kw = &keywords[j];
		size_t q = p + k, r, e, len, k2;
		int digit = 0, lower = 0;
		cand &= cand - 1;
		if (!(sc->det & kw->det) || !word_is(t, p, k, kw->w1))
			continue;
		if (kw->w2) {
			if (!one_of(at(t, q), " _-"))
				continue;
			k2 = alphas(t, q + 1);
			if (!word_is(t, q + 1, k2, kw->w2) ||
			    !bnd(t, q + 1 + k2))
				continue;
			q += 1 + k2;
		}
		r = skip_filler(t, q);
		if (r == q && in_word(t, r))
			continue;       /* "accountant" is not "account" */
		e = r;
		for (;;) {
			while (in_word(t, e)) {
				digit |= is_digit(t->s[e]);
				lower |= is_lowerc(t->s[e]);
				e++;
			}
			if (one_of(at(t, e), "-_./") && at(t, e + 1) == '[')
				return;
			if (one_of(at(t, e), "-_./") && in_word(t, e + 1))
				e++;
			else
				break;
		}
		len = e - r;
		if (len == 0)
			return;
		if (!(digit && (kw->strong || len >= 3)) &&
		    !(kw->strong && len >= 3 && !lower))
			return;
		if (ssn(t, r) > e)
			e = ssn(t, r);
		if (phone(t, r) > e)
			e = phone(t, r);
		offer_lab(t, m, r, e, kw->lab, kw->lablen);
		return;
	}
}

/* Whether a label such as "[DATE]" or "[NAME]" starts at p; returns its
 * length or 0. */
static size_t label_at(const struct scrub *sc, const struct tx *t, size_t p)
{
	size_t k = 0, j;
	const unsigned char *w = t->s + p + 1;

	while (k <= SCRUB_MAX_KIND &&
	       (is_upper(at(t, p + 1 + k)) || is_digit(at(t, p + 1 + k)) ||
		at(t, p + 1 + k) == '_'))
		k++;
	if (k == 0 || at(t, p + 1 + k) != ']')
		return 0;
	for (j = 0; j < sizeof fixed_labels / sizeof fixed_labels[0]; j++)
		if (strlen(fixed_labels[j]) == k &&
		    !memcmp(fixed_labels[j], w, k))
			return k + 2;
	for (j = 0; j < sc->nkinds; j++)
		if (sc->kindlen[j] == k + 2 && !memcmp(sc->kinds[j] + 1, w, k))
			return k + 2;
	return 0;
}

/*
 * Every detector that can start at the word start p; the word (letters,
 * digits and non-ASCII bytes) ends at wend.  A keyword ("MRN", "age",
 * "MA") offers the match it announces, further on, to *pend rather than
 * to *m: the words in between are still scanned on their own, and the
 * scanner offers *pend first when it reaches its start.
 */
static void try_word(const struct scrub *sc, const struct tx *t, size_t p,
		     size_t wend, uint32_t hash, int digit, struct match *m,
		     struct match *pend)
{
	unsigned det = sc->det;
	int c = t->s[p], nx = at(t, wend), f = fold(c);
	size_t e, k = wend - p;
	/* An [ID] needs 5 digits in a row or 6 in all: in this word, or
	 * across a joiner. */
	int idlike = (det & SCRUB_ID) && ((digit && k >= 5) ||
					  nx == '-' || nx == '_');

	if (c >= 0x80) {
		if (sc->bloom >> (hash >> 26) & 1)
			try_known(sc, t, p, wend, hash, m);
		if (idlike)
			offer_lab(t, m, p, id_token(t, p), LAB("[ID]"));
		return;
	}
	if ((det & SCRUB_URL) && (nx == ':' || nx == '.') &&
	    (f == 'h' || f == 'f' || f == 'w'))
		offer_lab(t, m, p, url(t, p), LAB("[URL]"));
	if ((det & SCRUB_EMAIL) && (nx == '@' || (ctab[nx] & C_MAIL)))
		offer_lab(t, m, p, email(t, p), LAB("[EMAIL]"));
	if (is_digit(c)) {
		if ((det & SCRUB_DATE) && ((k <= 4 && nx > 0) || k == 8))
			offer_lab(t, m, p, date_num(t, p), LAB("[DATE]"));
		if ((det & SCRUB_SSN) && k == 3)
			offer_lab(t, m, p, ssn(t, p), LAB("[SSN]"));
		if ((det & SCRUB_PHONE) && (k == 3 || (k == 1 && c == '1')))
			offer_lab(t, m, p, phone(t, p), LAB("[PHONE]"));
		if ((det & SCRUB_IP) && k <= 3 && nx == '.')
			offer_lab(t, m, p, ipv4(t, p), LAB("[IP]"));
		if ((det & SCRUB_IP) && k <= 4 && nx == ':')
			offer_lab(t, m, p, ipv6(t, p), LAB("[IP]"));
		if ((det & SCRUB_ZIP) && k == 5 && nx == '-' &&
		    zip(t, p) == p + 10)
			offer_lab(t, m, p, p + 10, LAB("[ZIP]"));
		if ((det & SCRUB_AGE) && k <= 6 && (c == '9' || k >= 3) &&
		    (e = old_age(t, p))) {
			size_t s = age_suffix(t, e);
			if (s)
				offer(t, m, p, s, e, LAB("90+"));
		}
	} else {
		if ((det & SCRUB_DATE) && k >= 3 && k <= 9 && month3(t->s + p))
			offer_lab(t, m, p, date_month(t, p), LAB("[DATE]"));
		if ((det & SCRUB_IP) && k <= 4 && nx == ':')
			offer_lab(t, m, p, ipv6(t, p), LAB("[IP]"));
		if ((det & SCRUB_AGE) && (k == 3 || k == 4) && f == 'a' &&
		    (word_is(t, p, k, "age") || word_is(t, p, k, "aged"))) {
			size_t q = wend;
			q = skip_seps(t, q, " :", 3);
			/* "age 95+" is replaced whatever follows the '+',
			 * so that "age 90+" stays as it is. */
			if (q > wend && (e = old_age(t, q))) {
				if (t->s[e - 1] == '+')
					offer_any(pend, q, e, e, LAB("90+"));
				else
					offer(t, pend, q, e, e, LAB("90+"));
			}
		}
		if ((det & SCRUB_ZIP) && k == 2 && is_upper(c) &&
		    is_state(t->s + p, k, 1)) {
			size_t q = wend;
			q = skip_seps(t, q, " ,", 3);
			if (q > wend)
				offer_lab(t, pend, q, zip(t, q), LAB("[ZIP]"));
		}
		if (k >= 3 && k <= 10 && is_lowerc(f) &&
		    (sc->kwfirst[f - 'a'] & sc->kwbylen[k]))
			try_keyword(sc, t, p, k, pend);
		if ((det & SCRUB_NAME) && k >= 2 && k <= 6 && is_upper(c) &&
		    is_title(t, p, k))
		{
			size_t start = 0, end = title_name_at(t, wend, &start);
			if (end)
				offer_lab(t, pend, start, end, LAB("[NAME]"));
		}
	}
	if (sc->bloom >> (hash >> 26) & 1)
		try_known(sc, t, p, wend, hash, m);
	if (idlike)
		offer_lab(t, m, p, id_token(t, p), LAB("[ID]"));
}

size_t scrub_text(struct scrub *sc, const char *in, size_t n,
		  struct buf *out)
{
	struct tx t = { (const unsigned char *)in, n };
	const unsigned char *s = t.s;
	size_t i = 0, done = 0, count = 0;
	struct match pend = { 0, 0, 0, NULL, 0 };

	if (n == 0)
		return 0;
	buf_grow(out, n);
	while (i < n) {
		struct match m;
		int c = s[i];
		size_t wend = i;

		m.end = 0;      /* offer() fills the rest */
		if (c >= 0xc2 && usep(&t, i)) {
			i += usep(&t, i);       /* like ASCII punctuation */
			continue;
		}

		if (is_word(c)) {
			uint32_t hash = HASH_INIT;
			int digit = 0;
			if (sc->nwords) {
				for (;;) {
					while (wend < n && is_alnum(s[wend])) {
						digit |= is_digit(s[wend]);
						hash = hash_step(hash,
								 fold(s[wend++]));
					}
					if (wend < n && s[wend] >= 0x80 &&
					    !usep(&t, wend))
						hash = hash_step(hash, s[wend++]);
					else
						break;
				}
			} else {
				/* ASCII letters and digits fast, then one
				 * non-ASCII byte at a time. */
				for (;;) {
					while (wend < n && is_alnum(s[wend]))
						digit |= is_digit(s[wend++]);
					if (wend < n && s[wend] >= 0x80 &&
					    !usep(&t, wend))
						wend++;
					else
						break;
				}
			}
			/* "90+", the age label, is never detected again;
			 * nor is the age phrase it begins ("90+-year-old"),
			 * which a first pass copies as it is. */
			if (c == '9' && wend - i == 2 && s[i + 1] == '0' &&
			    wend < n && s[wend] == '+') {
				size_t e = age_suffix(&t, wend + 1);
				i = e && bnd(&t, e) ? e : wend + 1;
				continue;
			}
			if (pend.end && pend.start <= i) {
				if (pend.start == i)
					m = pend;
				pend.end = 0;
			}
			try_word(sc, &t, i, wend, hash, digit, &m, &pend);
		} else if (c == '[') {
			size_t k = label_at(sc, &t, i);
			i += k ? k : 1;
			continue;
		} else if (c == '(' || c == '+') {
			if (sc->det & SCRUB_PHONE)
				offer_lab(&t, &m, i, phone(&t, i), LAB("[PHONE]"));
			wend = i + 1;
		} else if (c == ':' && i + 1 < n && s[i + 1] == ':') {
			if (sc->det & SCRUB_IP)
				offer_lab(&t, &m, i, ipv6(&t, i), LAB("[IP]"));
			wend = i + 1;
		} else {
			wend = i + 1;
		}
		if (!m.end) {
			i = wend;
			continue;
		}
		buf_add(out, in + done, m.start - done);
		buf_add(out, m.lab, m.lablen);
		buf_add(out, in + m.keep, m.end - m.keep);
		/* "age 90+" becomes itself: not a replacement. */
		if (m.keep - m.start != m.lablen ||
		    memcmp(in + m.start, m.lab, m.lablen) != 0)
			count++;
		i = done = m.end;
	}
	buf_add(out, in + done, n - done);
	return count;
}
