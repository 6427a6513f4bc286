/* dicomdeid — see dicomdeid.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "crypto.h"
#include "dicomdeid.h"
#include "scrub.h"
#include "xalloc.h"
#include "banned.h"

struct dicomdeid {
	unsigned options;
	uint32_t *keep;
	size_t nkeep;
	int accept_burned_in;
	void (*token)(void *ctx, const char *v, size_t n,
		      char out[DD_TOKEN_LEN + 1]);
	void *token_ctx;
	char ptoken[DD_TOKEN_LEN + 1];   /* "" when the object has no patient */
	int shift;
	struct scrub *sc;                /* cleaning options only */
};

#define DD_CLEANING (DD_OPT_CLEANDESC | DD_OPT_CLEANSTRUCT | \
		     DD_OPT_CLEANGRAPH | DD_OPT_PATCHARS)

static const struct {
	const char *name, *code, *meaning;
	int supported;
} opts[DD_NOPT] = {
	{ "full-dates", "113106", "Retain Longitudinal Temporal Information "
	  "Full Dates Option", 1 },
	{ "modified-dates", "113107", "Retain Longitudinal Temporal "
	  "Information Modified Dates Option", 1 },
	{ "patient-characteristics", "113108", "Retain Patient "
	  "Characteristics Option", 1 },
	{ "device-identity", "113109", "Retain Device Identity Option", 1 },
	{ "institution-identity", "113112", "Retain Institution Identity "
	  "Option", 1 },
	{ "uids", "113110", "Retain UIDs Option", 1 },
	{ "clean-descriptors", "113105", "Clean Descriptors Option", 1 },
	{ "clean-structured-content", "113104", "Clean Structured Content "
	  "Option", 1 },
	{ "clean-graphics", "113103", "Clean Graphics Option", 1 },
	{ "safe-private", "113111", "Retain Safe Private Option", 0 },
};

/*
 * The Type 1 and Type 2 attributes among the combined codes, for the IODs
 * of the sample data (CT, enhanced CT, MR, PT, US, SC, SR, ECG), checked
 * with dciodvfy: D keeps a dummy value where a Type 1 attribute needs one
 * (Series Date and Time in the PET Series Module, Device Serial Number in
 * Enhanced General Equipment, Acquisition DateTime in the enhanced image
 * macros, Content Date and Time in SR Document General), Z keeps a Type 2
 * attribute empty (Acquisition Date and Time in the PET Image Module,
 * Acquisition Context Sequence, Contrast/Bolus Agent, Content Creator's
 * Name, Referenced Performed Procedure Step Sequence in SR Document
 * Series).  A dummy date is 19000101 and is shifted or kept instead when a
 * date option is chosen.  Every other combined code resolves to its most
 * removing action.
 */
static const struct {
	uint32_t tag;
	char action;
} dd_types[] = {
	{ 0x00080021, 'D' },   /* Series Date */
	{ 0x00080022, 'Z' },   /* Acquisition Date */
	{ 0x00080023, 'D' },   /* Content Date */
	{ 0x0008002a, 'D' },   /* Acquisition DateTime */
	{ 0x00080031, 'D' },   /* Series Time */
	{ 0x00080032, 'Z' },   /* Acquisition Time */
	{ 0x00080033, 'D' },   /* Content Time */
	{ 0x00081111, 'D' },   /* Referenced Performed Procedure Step Seq. */
	{ 0x00180010, 'Z' },   /* Contrast/Bolus Agent */
	{ 0x00181000, 'D' },   /* Device Serial Number */
	{ 0x00400555, 'Z' },   /* Acquisition Context Sequence */
	{ 0x00700084, 'Z' },   /* Content Creator's Name */
};

/* Dates that version a coding resource, not an event of the patient. */
static int coding_date(uint32_t tag)
{
	return tag == 0x00080106 || tag == 0x00080107;
}

unsigned dd_option_parse(const char *name)
{
	for (int i = 0; i < DD_NOPT; i++)
		if (!strcmp(name, opts[i].name))
			return 1u << i;
	return 0;
}

const char *dd_option_name(unsigned bit)
{
	for (int i = 0; i < DD_NOPT; i++)
		if (bit == 1u << i)
			return opts[i].name;
	return "?";
}

int dd_option_supported(unsigned bit)
{
	for (int i = 0; i < DD_NOPT; i++)
		if (bit == 1u << i)
			return opts[i].supported;
	return 0;
}

const struct dd_row *dd_lookup(uint32_t tag)
{
	size_t lo = 0, hi = dd_e11_nexact;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t t = dd_e11_rows[mid].tag;
		if (t == tag)
			return &dd_e11_rows[mid];
		if (t < tag)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = dd_e11_nexact; i < dd_e11_nrows; i++)
		if ((tag & dd_e11_rows[i].mask) == dd_e11_rows[i].tag)
			return &dd_e11_rows[i];
	return NULL;
}

struct dicomdeid *dd_new(const struct dd_params *p, struct mlk_error *e)
{
	if (!p->token) {
		mlk_error_set(e, MLK_USAGE, NULL, 0, "dicom de-identification "
			      "needs a token function");
		return NULL;
	}
	if ((p->options & DD_OPT_FULLDATES) && (p->options & DD_OPT_MODDATES)) {
		mlk_error_set(e, MLK_USAGE, NULL, 0, "dicom options 'full-dates'"
			      " and 'modified-dates' exclude each other");
		return NULL;
	}
	for (int i = 0; i < DD_NOPT; i++)
		if ((p->options & (1u << i)) && !opts[i].supported) {
			mlk_error_set(e, MLK_USAGE, NULL, 0, "dicom option '%s'"
				      " is not supported yet", opts[i].name);
			return NULL;
		}
	if (p->options >> DD_NOPT) {
		mlk_error_set(e, MLK_USAGE, NULL, 0, "unknown dicom option");
		return NULL;
	}
	struct dicomdeid *dd = xcalloc(1, sizeof *dd);
	dd->options = p->options;
	dd->accept_burned_in = p->accept_burned_in;
	dd->token = p->token;
	dd->token_ctx = p->token_ctx;
	if (p->nkeep_private) {
		dd->keep = xmalloc(p->nkeep_private * sizeof *dd->keep);
		memcpy(dd->keep, p->keep_private,
		       p->nkeep_private * sizeof *dd->keep);
		dd->nkeep = p->nkeep_private;
	}
	if (p->options & DD_CLEANING)
		dd->sc = scrub_new(SCRUB_ALL);
	return dd;
}

void dd_free(struct dicomdeid *dd)
{
	if (!dd)
		return;
	free(dd->keep);
	scrub_free(dd->sc);
	crypto_wipe(dd, sizeof *dd);
	free(dd);
}

void dd_set_patient(struct dicomdeid *dd, const char *pid, size_t n,
		    int shift_days)
{
	dd->shift = shift_days;
	while (n && (pid[n - 1] == ' ' || pid[n - 1] == '\0'))
		n--;
	if (n == 0) {
		dd->ptoken[0] = '\0';
		return;
	}
	dd->token(dd->token_ctx, pid, n, dd->ptoken);
}

int dd_cleans(const struct dicomdeid *dd)
{
	return dd->sc != NULL;
}

void dd_clear_known(struct dicomdeid *dd)
{
	if (dd->sc)
		scrub_clear_known(dd->sc);
}

/* Identifying attributes that are not PN, with the label they get. */
static const struct {
	uint32_t tag;
	const char *kind;
} known_tags[] = {
	{ 0x00080050, "ID" },        /* Accession Number */
	{ 0x00080080, "INSTITUTION" },
	{ 0x00080081, "ADDRESS" },   /* Institution Address */
	{ 0x00081010, "DEVICE" },    /* Station Name */
	{ 0x00100020, "ID" },        /* Patient ID */
	{ 0x00100021, "ID" },        /* Issuer of Patient ID */
	{ 0x00101000, "ID" },        /* Other Patient IDs */
	{ 0x00101040, "ADDRESS" },   /* Patient's Address */
	{ 0x00101090, "ID" },        /* Medical Record Locator */
	{ 0x00102154, "PHONE" },     /* Patient's Telephone Numbers */
	{ 0x00102155, "PHONE" },     /* Patient's Telecom Information */
	{ 0x00181000, "DEVICE" },    /* Device Serial Number */
	{ 0x00200010, "ID" },        /* Study ID */
	{ 0x00401001, "ID" },        /* Requested Procedure ID */
	{ 0x00400009, "ID" },        /* Scheduled Procedure Step ID */
	{ 0x00400253, "ID" },        /* Performed Procedure Step ID */
};

/* Each value of a multi-valued element (split at '\'), trimmed. */
static void note_values(struct scrub *sc, const char *v, size_t n,
			const char *seps, const char *kind)
{
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && !strchr(seps, v[i]))
			continue;
		const char *p = v + start;
		size_t k = i - start;
		while (k && (*p == ' ' || *p == '\0')) {
			p++;
			k--;
		}
		while (k && (p[k - 1] == ' ' || p[k - 1] == '\0'))
			k--;
		if (k)
			scrub_add_known(sc, p, k, kind);
		start = i + 1;
	}
}

void dd_note(struct dicomdeid *dd, uint32_t tag, const char vr[2],
	     const char *v, size_t n)
{
	if (!dd->sc || !n)
		return;
	if (vr[0] == 'P' && vr[1] == 'N') {
		/* the whole name, then each component group and component */
		note_values(dd->sc, v, n, "\\", "NAME");
		note_values(dd->sc, v, n, "\\=^", "NAME");
		return;
	}
	for (size_t i = 0; i < sizeof known_tags / sizeof *known_tags; i++)
		if (known_tags[i].tag == tag) {
			note_values(dd->sc, v, n, "\\", known_tags[i].kind);
			return;
		}
}

/* ------------------------------------------------------------------ */
/* Actions                                                             */

static int vr_is(const char vr[2], const char *v)
{
	return vr[0] == v[0] && vr[1] == v[1];
}

static int is_date_vr(const char vr[2])
{
	return vr_is(vr, "DA") || vr_is(vr, "DT");
}

static int private_kept(const struct dicomdeid *dd, uint32_t tag)
{
	uint32_t group = tag >> 16, elem = tag & 0xffff;
	for (size_t i = 0; i < dd->nkeep; i++) {
		uint32_t k = dd->keep[i];
		if (k == tag)
			return 1;
		/* the private creator (gggg,00xx) of a kept (gggg,xxyy) */
		if ((k >> 16) == group && elem >= 0x10 && elem <= 0xff &&
		    ((k & 0xffff) >> 8) == elem)
			return 1;
	}
	return 0;
}

/*
 * The options in force for the current object.  Modified dates need the
 * patient's offset: an object without a patient id cannot have one, so
 * its dates are treated as without the option (removed or dummies), never
 * kept.
 */
static unsigned opts_now(const struct dicomdeid *dd)
{
	if (!dd->ptoken[0])
		return dd->options & ~(unsigned)DD_OPT_MODDATES;
	return dd->options;
}

/* The action an option column imposes, or 0 when it defers to basic. */
static char option_action(const struct dicomdeid *dd, const struct dd_row *r,
			  const char vr[2])
{
	char best = 0;
	for (int i = 0; i < DD_NOPT; i++) {
		if (!(opts_now(dd) & (1u << i)) || r->opt[i] == '-')
			continue;
		char a = r->opt[i];
		if (a == 'C' && (1u << i) == DD_OPT_MODDATES)
			a = is_date_vr(vr) ? 'S' : 'K';
		else if (a == 'C' && !(DD_CLEANING & (1u << i)))
			continue;   /* defensive: no other option cleans */
		/* several options: the one that keeps most wins */
		if (!best || a == 'K' || (a == 'S' && best != 'K') ||
		    (a == 'C' && best != 'K' && best != 'S'))
			best = a;
	}
	return best;
}

static char basic_action(const struct dd_row *r)
{
	const char *b = r->basic;
	if (!b[1])
		return b[0];
	for (size_t i = 0; i < sizeof dd_types / sizeof *dd_types; i++)
		if (dd_types[i].tag == r->tag)
			return dd_types[i].action;
	return b[0];
}

/* Dates outside the table follow the date options; without one they go. */
static char unlisted_date(const struct dicomdeid *dd)
{
	if (opts_now(dd) & DD_OPT_FULLDATES)
		return 'K';
	if (opts_now(dd) & DD_OPT_MODDATES)
		return 'S';
	return 'X';
}

/* Inside Content Sequence or Graphic Annotation Sequence: the option
 * that cleans there, or -1 when outside both. */
static int in_content(const uint32_t *parents, int depth)
{
	for (int i = 0; i < depth; i++) {
		if (parents && parents[i] == 0x0040a730)
			return DD_OPT_CLEANSTRUCT;
		if (parents && parents[i] == 0x00700001)
			return DD_OPT_CLEANGRAPH;
	}
	return -1;
}

static int is_free_text(const char vr[2])
{
	return vr_is(vr, "UT") || vr_is(vr, "LT") || vr_is(vr, "ST") ||
	       vr_is(vr, "UC");
}

/* Values the cleaner may write: text that is not a code, date or UID. */
static int is_cleanable(const char vr[2])
{
	return is_free_text(vr) || vr_is(vr, "LO") || vr_is(vr, "SH") ||
	       vr_is(vr, "AE");
}

enum dd_action dd_action(const struct dicomdeid *dd, uint32_t tag,
			 const char vr[2], const uint32_t *parents, int depth)
{
	uint32_t group = tag >> 16, elem = tag & 0xffff;
	int sq = vr_is(vr, "SQ");
	char a;

	if (group & 1)
		return private_kept(dd, tag) ? (sq ? DD_DESCEND : DD_KEEP)
					     : DD_REMOVE;
	if (elem == 0 && group != 0x0002)
		return DD_REMOVE;
	/* file meta elements never belong in a data set (a reader would take
	 * them for meta); the writer rebuilds the meta group itself */
	if (group == 0x0002)
		return DD_REMOVE;
	if ((group >= 0x5000 && group <= 0x501e) ||
	    (group >= 0x6000 && group <= 0x601e))
		return DD_REMOVE;
	if (tag == 0x00100010 || tag == 0x00100020)
		return dd->ptoken[0] ? DD_TOKEN : DD_ZERO;

	const struct dd_row *r = dd_lookup(tag);
	if (!r) {
		if (coding_date(tag))
			a = 'K';
		else if (vr_is(vr, "DA") || vr_is(vr, "DT"))
			a = unlisted_date(dd);
		else if (vr_is(vr, "TM"))
			a = opts_now(dd) & (DD_OPT_FULLDATES | DD_OPT_MODDATES)
			    ? 'K' : 'X';
		else if (vr_is(vr, "PN"))
			a = 'X';
		else
			a = 'K';
		/* Inside SR content the structure must stay (the value of a
		 * content item is Type 1): what would go gets a dummy, and so
		 * does free text, unless the option that cleans it is on. */
		int c = in_content(parents, depth);
		if (c >= 0 && is_free_text(vr) &&
		    (opts_now(dd) & (unsigned)c))
			a = 'C';
		else if (c >= 0 && (a == 'X' || is_free_text(vr)))
			a = 'D';
	} else {
		a = option_action(dd, r, vr);
		if (!a)
			a = basic_action(r);
	}
	if (sq) {
		if (a == 'X' || a == 'Z')
			return (enum dd_action)a;
		return DD_DESCEND;
	}
	if (a == 'D' && vr_is(vr, "UI"))
		return DD_UID;
	if (a == 'S' && !is_date_vr(vr))
		return DD_KEEP;
	if (a == 'C')
		return !dd->sc ? DD_REMOVE     /* defensive: no cleaner */
		       : is_cleanable(vr) ? DD_CLEAN
		       : vr_is(vr, "PN") ? DD_DUMMY : DD_KEEP;
	return (enum dd_action)a;
}

/* ------------------------------------------------------------------ */
/* Values                                                              */

size_t dd_uid(struct dicomdeid *dd, const char *uid, size_t n,
	      char out[DD_UID_MAX + 1])
{
	while (n && (uid[n - 1] == ' ' || uid[n - 1] == '\0'))
		n--;
	struct buf in = BUF_INIT;
	buf_add(&in, "uid:", 4);
	buf_add(&in, uid, n);
	char tok[DD_TOKEN_LEN + 1];
	dd->token(dd->token_ctx, in.data, in.len, tok);
	buf_release(&in);

	uint8_t v[16];
	size_t k = 0;
	for (const char *p = tok; *p && k < 32; p++) {
		int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else
			continue;
		if (k % 2 == 0)
			v[k / 2] = (uint8_t)(d << 4);
		else
			v[k / 2] |= (uint8_t)d;
		k++;
	}
	/* the 128-bit number in decimal: divide by 10 until zero */
	char dig[40];
	size_t nd = 0;
	int zero;
	do {
		unsigned rem = 0;
		zero = 1;
		for (int i = 0; i < 16; i++) {
			unsigned cur = rem * 256 + v[i];
			v[i] = (uint8_t)(cur / 10);
			rem = cur % 10;
			if (v[i])
				zero = 0;
		}
		dig[nd++] = (char)('0' + rem);
	} while (!zero && nd < sizeof dig);
	size_t o = 0;
	memcpy(out, "2.25.", 5);
	o = 5;
	while (nd)
		out[o++] = dig[--nd];
	out[o] = '\0';
	return o;
}

static long days_from_civil(long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long)doe - 719468;
}

static void civil_from_days(long z, long *y, unsigned *m, unsigned *d)
{
	z += 719468;
	long era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (long)yoe + era * 400 + (*m <= 2);
}

static int digits(const char *p, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* One DA or DT value shifted; 0 when it is not a full date. */
static int shift_one(const char *p, size_t n, int shift, struct buf *out)
{
	if (n < 8)
		return 0;
	int y = digits(p, 4), m = digits(p + 4, 2), d = digits(p + 6, 2);
	if (y < 0 || m < 1 || m > 12 || d < 1 || d > 31)
		return 0;
	long z = days_from_civil(y, (unsigned)m, (unsigned)d);
	long ny;
	unsigned nm, ndd;
	civil_from_days(z + shift, &ny, &nm, &ndd);
	if (ny < 0 || ny > 9999)
		return 0;
	char tmp[16];
	int k = snprintf(tmp, sizeof tmp, "%04ld%02u%02u", ny, nm, ndd);
	buf_add(out, tmp, (size_t)k);
	buf_add(out, p + 8, n - 8);   /* DT: time and offset unchanged */
	return 1;
}

static const char *dummy_of(const char vr[2])
{
	if (vr_is(vr, "DA"))
		return "19000101";
	if (vr_is(vr, "DT"))
		return "19000101000000";
	if (vr_is(vr, "TM"))
		return "000000";
	if (vr_is(vr, "DS") || vr_is(vr, "IS"))
		return "0";
	if (vr_is(vr, "AS"))
		return "000D";
	if (vr_is(vr, "UR"))
		return "";
	return "ANONYMOUS";
}

static int is_text_vr(const char vr[2])
{
	static const char *const t[] = { "AE", "AS", "CS", "DA", "DS", "DT",
		"IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR",
		"UT" };
	for (size_t i = 0; i < sizeof t / sizeof *t; i++)
		if (vr_is(vr, t[i]))
			return 1;
	return 0;
}

/* The most bytes a value of a text VR may have (PS3.5 6.2); 0: no limit
 * that matters here. */
static size_t vr_max(const char vr[2])
{
	if (vr_is(vr, "AE") || vr_is(vr, "SH"))
		return 16;
	if (vr_is(vr, "LO"))
		return 64;
	if (vr_is(vr, "ST"))
		return 1024;
	if (vr_is(vr, "LT"))
		return 10240;
	return 0;
}

static void clean(struct dicomdeid *dd, const char vr[2], const char *in,
		  size_t n, struct buf *out)
{
	while (n && (in[n - 1] == ' ' || in[n - 1] == '\0'))
		n--;
	if (!dd->sc || !n)
		return;
	size_t mark = out->len;
	scrub_text(dd->sc, in, n, out);
	size_t max = vr_max(vr);
	if (max && out->len - mark > max) {
		size_t cut = mark + max;
		/* never in the middle of a UTF-8 sequence */
		while (cut > mark &&
		       ((unsigned char)out->data[cut] & 0xc0) == 0x80)
			cut--;
		/* nor in the middle of a label: "[NA" goes whole */
		for (size_t i = cut; i-- > mark && out->data[i] != ']';)
			if (out->data[i] == '[') {
				cut = i;
				break;
			}
		while (cut > mark && out->data[cut - 1] == ' ')
			cut--;
		buf_truncate(out, cut);
	}
}

void dd_value(struct dicomdeid *dd, enum dd_action a, const char vr[2],
	      const char *in, size_t n, struct buf *out)
{
	switch (a) {
	case DD_KEEP:
		buf_add(out, in, n);
		return;
	case DD_TOKEN:
		buf_addstr(out, dd->ptoken);
		return;
	case DD_DUMMY:
		if (is_text_vr(vr)) {
			buf_addstr(out, dummy_of(vr));
		} else {
			/* binary: the same length, all zero */
			buf_grow(out, n);
			memset(out->data + out->len, 0, n);
			out->len += n;
			out->data[out->len] = '\0';
		}
		return;
	case DD_UID:
	case DD_SHIFT: {
		size_t start = 0;
		int first = 1;
		while (n && (in[n - 1] == ' ' || in[n - 1] == '\0'))
			n--;
		for (size_t i = 0; i <= n; i++) {
			if (i < n && in[i] != '\\')
				continue;
			const char *v = in + start;
			size_t vn = i - start;
			while (vn && *v == ' ') {
				v++;
				vn--;
			}
			while (vn && v[vn - 1] == ' ')
				vn--;
			size_t mark = out->len;
			if (!first)
				buf_addch(out, '\\');
			if (vn == 0) {
				/* an empty value stays empty */
			} else if (a == DD_UID) {
				char u[DD_UID_MAX + 1];
				size_t un = dd_uid(dd, v, vn, u);
				buf_add(out, u, un);
			} else if (!shift_one(v, vn, dd->shift, out)) {
				/* unreadable: never kept */
				buf_truncate(out, mark);
				if (!first)
					buf_addch(out, '\\');
			}
			first = 0;
			start = i + 1;
		}
		return;
	}
	case DD_CLEAN:
		clean(dd, vr, in, n, out);
		return;
	case DD_ZERO:
	case DD_REMOVE:
	case DD_DESCEND:
		return;
	}
}

/* ------------------------------------------------------------------ */
/* Burned-in annotation, method codes                                  */

static int value_is(const char *v, const char *want)
{
	if (!v)
		return 0;
	while (*v == ' ')
		v++;
	size_t n = strlen(v);
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\0'))
		n--;
	return n == strlen(want) && !memcmp(v, want, n);
}

enum mlk_status dd_burned_in(const struct dicomdeid *dd, const char *modality,
			     const char *sop_class, const char *burned,
			     struct mlk_error *e)
{
	if (dd->accept_burned_in || value_is(burned, "NO"))
		return MLK_OK;
	if (burned)
		return mlk_error_set(e, MLK_DENIED, NULL, 0, "burned-in "
				     "annotation: BurnedInAnnotation is not NO");
	static const char *const risky[] = { "US", "SC", "OT", "XC" };
	for (size_t i = 0; i < sizeof risky / sizeof *risky; i++)
		if (value_is(modality, risky[i]))
			return mlk_error_set(e, MLK_DENIED, NULL, 0, "burned-in"
					     " annotation: BurnedInAnnotation "
					     "absent for modality %s",
					     risky[i]);
	/* Secondary Capture Image Storage and the multi-frame SC classes */
	static const char *const sc[] = { "1.2.840.10008.5.1.4.1.1.7",
		"1.2.840.10008.5.1.4.1.1.7.1", "1.2.840.10008.5.1.4.1.1.7.2",
		"1.2.840.10008.5.1.4.1.1.7.3", "1.2.840.10008.5.1.4.1.1.7.4" };
	for (size_t i = 0; i < sizeof sc / sizeof *sc; i++)
		if (value_is(sop_class, sc[i]))
			return mlk_error_set(e, MLK_DENIED, NULL, 0, "burned-in"
					     " annotation: BurnedInAnnotation "
					     "absent for a secondary capture");
	return MLK_OK;
}

size_t dd_methods(const struct dicomdeid *dd, struct dd_code out[DD_NOPT + 1])
{
	size_t n = 0;
	out[n].value = "113100";
	out[n++].meaning = "Basic Application Confidentiality Profile";
	for (int i = 0; i < DD_NOPT; i++)
		if (opts_now(dd) & (1u << i)) {
			out[n].value = opts[i].code;
			out[n++].meaning = opts[i].meaning;
		}
	return n;
}

const char *dd_temporal(const struct dicomdeid *dd)
{
	if (opts_now(dd) & DD_OPT_FULLDATES)
		return "UNMODIFIED";
	if (opts_now(dd) & DD_OPT_MODDATES)
		return "MODIFIED";
	return "REMOVED";
}
