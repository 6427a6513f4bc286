#include "profile.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "dicomdeid.h"
#include "fsio.h"
#include "yamltree.h"
#include "xalloc.h"
#include "banned.h"

/* Generated from profiles/ by scripts/embed-profiles. */
struct profile_blob {
	const char *name;
	const char *text;
	size_t len;
};
extern const struct profile_blob mlk_profile_blobs[];

#define ZIP3_FILE "zip3-restricted"
#define MAX_CHAIN 8

/* Profiles are small: grow arrays one element at a time. */
#define XGROW_N(v, n) ((v) = xrealloc((v), ((n) + 1) * sizeof *(v)))

static int atoi_3(const char *v)
{
	return (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
}

const char *profile_builtin(const char *name, size_t *len)
{
	for (const struct profile_blob *b = mlk_profile_blobs; b->name; b++)
		if (!strcmp(b->name, name)) {
			*len = b->len;
			return b->text;
		}
	return NULL;
}

const char *const *profile_builtin_names(void)
{
	static const char *names[16];
	size_t n = 0;
	if (!names[0])
		for (const struct profile_blob *b = mlk_profile_blobs;
		     b->name && n < 15; b++)
			if (strcmp(b->name, ZIP3_FILE))
				names[n++] = b->name;
	return names;
}

const char *dmethod_name(enum dmethod m)
{
	static const char *const n[] = {
		"drop", "keep", "redact", "mask", "pseudonymize", "encrypt",
		"dateshift", "generalize", "substitute", "perturb", "scrub",
	};
	return (unsigned)m < sizeof n / sizeof *n ? n[m] : "?";
}

static int method_parse(const char *s)
{
	for (int m = DM_KEEP; m <= DM_SCRUB; m++)
		if (!strcmp(s, dmethod_name((enum dmethod)m)))
			return m;
	return -1;
}

static const struct {
	const char *name;
	int type;
} ftypes[] = {
	{ "HumanName", FT_HUMANNAME }, { "Address", FT_ADDRESS },
	{ "ContactPoint", FT_CONTACTPOINT }, { "Identifier", FT_IDENTIFIER },
	{ "Reference", FT_REFERENCE }, { "Narrative", FT_NARRATIVE },
	{ "Attachment", FT_ATTACHMENT }, { "Annotation", FT_ANNOTATION },
	{ "Extension", FT_EXTENSION },
};

/* One loaded file of the chain. */
struct src {
	char *name;
	char *file;          /* for messages */
	char *text;
	size_t len;
	struct ynode *doc;
};

static void src_release(struct src *s)
{
	free(s->name);
	free(s->file);
	free(s->text);
	ynode_free(s->doc);
}

static int is_path_name(const char *n)
{
	size_t len = strlen(n);
	return strchr(n, '/') || (len > 5 && !strcmp(n + len - 5, ".yaml")) ||
	       (len > 4 && !strcmp(n + len - 4, ".yml"));
}

static int name_ok(const char *n)
{
	if (!*n || strlen(n) > 64)
		return 0;
	for (const char *p = n; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' &&
		    *p != '.')
			return 0;
	return n[0] != '.';
}

static enum mlk_status src_load(const char *name, const struct lake *l,
				struct src *s, struct mlk_error *e)
{
	memset(s, 0, sizeof *s);
	struct buf b = BUF_INIT;
	char *path = NULL;
	if (is_path_name(name)) {
		path = xstrdup(name);
	} else if (!name_ok(name)) {
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "'%s' is not a profile name", name);
	} else if (l) {
		path = lake_path(l, "profiles/%s.yaml", name);
		struct stat st;
		if (stat(path, &st) != 0) {
			free(path);
			path = NULL;
		}
	}
	if (path) {
		char *data = NULL;
		size_t dlen = 0;
		enum mlk_status st = fsio_read_file(path, &data, &dlen, e);
		if (st != MLK_OK) {
			free(path);
			return st;
		}
		buf_add(&b, data, dlen);
		free(data);
		s->file = path;
	} else {
		size_t n;
		const char *t = profile_builtin(name, &n);
		if (!t)
			return mlk_error_set(e, MLK_USAGE, NULL, 0,
					     "no profile named '%s' (built-in: "
					     "safe-harbor, limited-dataset, "
					     "research-pseudonymized)", name);
		buf_add(&b, t, n);
		s->file = xasprintf("built-in profile %s", name);
	}
	s->len = b.len;
	s->text = buf_detach(&b);
	enum mlk_status st = ynode_load_mem(s->file, s->text, s->len, &s->doc,
					    e);
	if (st != MLK_OK)
		return st;
	if (!s->doc || s->doc->type != YNODE_MAP)
		return mlk_error_set(e, MLK_USAGE, s->file, 1,
				     "a profile is a map of keys");
	const char *pn = ynode_str(s->doc, "name");
	s->name = xstrdup(pn ? pn : name);
	return MLK_OK;
}

static enum mlk_status bad(struct mlk_error *e, const struct src *s,
			   const struct ynode *n, const char *what)
{
	return mlk_error_set(e, MLK_USAGE, s->file, n ? (long long)n->line : 0,
			     "%s", what);
}

/* Pattern segments from a selector; sep splits them. */
static void split_segs(struct prule *r, const char *s, const char *sep)
{
	const char *p = s;
	for (;;) {
		size_t n = strcspn(p, sep);
		XGROW_N(r->seg, r->nseg);
		r->seg[r->nseg++] = xstrndup(p, n);
		if (!p[n])
			break;
		p += n + 1;
	}
}

static int is_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

static void score_path(struct prule *r, size_t from)
{
	for (size_t i = from; i < r->nseg; i++) {
		if (!strcmp(r->seg[i], "**"))
			continue;
		r->score += is_glob(r->seg[i]) ? 1 : 10;
	}
}

/* HL7 "PID-11.5" -> PID, 11, 5; "NK1-*" -> NK1, *; "PID" -> PID, **. */
static int compile_hl7(struct prule *r, const char *s)
{
	const char *dash = strchr(s, '-');
	size_t sl = dash ? (size_t)(dash - s) : strlen(s);
	if (!sl || sl > 3)
		return -1;
	XGROW_N(r->seg, r->nseg);
	r->seg[r->nseg++] = xstrndup(s, sl);
	if (!dash) {
		XGROW_N(r->seg, r->nseg);
		r->seg[r->nseg++] = xstrdup("**");
		return 0;
	}
	const char *p = dash + 1;
	if (!*p)
		return -1;
	for (;;) {
		size_t n = strcspn(p, ".");
		if (!n)
			return -1;
		for (size_t i = 0; i < n; i++)
			if (!isdigit((unsigned char)p[i]) && p[i] != '*')
				return -1;
		XGROW_N(r->seg, r->nseg);
		r->seg[r->nseg++] = xstrndup(p, n);
		if (!p[n])
			break;
		p += n + 1;
	}
	return 0;
}

static enum mlk_status compile_selector(struct prule *r, enum sel_kind kind,
					const char *s, const struct src *src,
					const struct ynode *n,
					struct mlk_error *e)
{
	r->kind = kind;
	r->text = xstrdup(s);
	if (!*s)
		return bad(e, src, n, "empty selector");
	switch (kind) {
	case SEL_FHIR: {
		size_t tl = strcspn(s, ".");
		for (size_t i = 0; i < sizeof ftypes / sizeof *ftypes; i++)
			if (strlen(ftypes[i].name) == tl &&
			    !memcmp(ftypes[i].name, s, tl))
				r->ftype = ftypes[i].type;
		split_segs(r, s, ".");
		if (r->ftype) {
			r->score = 5;
			score_path(r, 1);
		} else {
			if (r->nseg < 2 && strcmp(s, "**"))
				return bad(e, src, n, "a fhir selector is "
					   "Resource.path or a datatype "
					   "(HumanName, Address, ContactPoint, "
					   "Identifier, Reference, Narrative, "
					   "Attachment, Annotation, Extension)");
			score_path(r, 0);
		}
		break;
	}
	case SEL_FIELD:
		split_segs(r, s, ".");
		score_path(r, 0);
		break;
	case SEL_HL7:
		if (compile_hl7(r, s) != 0)
			return bad(e, src, n, "an hl7 selector is SEG-F, "
				   "SEG-F.C or SEG-* (for example PID-5, "
				   "PID-11.5, NK1-*)");
		score_path(r, 0);
		break;
	case SEL_VALUE:
		if (!strcmp(s, "date"))
			r->vkind = VK_DATE;
		else if (!strcmp(s, "email"))
			r->vkind = VK_EMAIL;
		else if (!strcmp(s, "ssn"))
			r->vkind = VK_SSN;
		else if (!strcmp(s, "phone"))
			r->vkind = VK_PHONE;
		else
			return bad(e, src, n, "a value selector is date, "
				   "email, ssn or phone");
		r->score = 3;
		break;
	}
	return MLK_OK;
}

static int num_param(const struct ynode *rule, const char *key, double *v)
{
	const char *s = ynode_str(rule, key);
	if (!s)
		return 0;
	char *end;
	errno = 0;
	double d = strtod(s, &end);
	if (!*s || *end || errno || !isfinite(d))
		return -1;
	*v = d;
	return 1;
}

static enum mlk_status compile_method(struct prule *m, const struct ynode *rule,
				      const struct src *s,
				      struct mlk_error *e)
{
	const char *ms = ynode_str(rule, "method");
	int mi = ms ? method_parse(ms) : -1;
	if (mi < 0)
		return bad(e, s, rule, "a rule needs a method: keep, redact, "
			   "mask, pseudonymize, encrypt, dateshift, "
			   "generalize, substitute, perturb or scrub");
	m->method = (enum dmethod)mi;
	m->precision = -1;
	m->mask_char = '*';
	double d;
	switch (m->method) {
	case DM_GENERALIZE: {
		const char *to = ynode_str(rule, "to");
		static const char *const tn[] = { "", "year", "month", "zip3",
						  "age", "age_band", "bucket" };
		for (int i = GEN_YEAR; i <= GEN_BUCKET; i++)
			if (to && !strcmp(to, tn[i]))
				m->to = (enum gen_to)i;
		if (!m->to)
			return bad(e, s, rule, "generalize needs to: year, "
				   "month, zip3, age, age_band or bucket");
		int r = num_param(rule, "width", &d);
		if (r < 0 || (r && !(d > 0)))
			return bad(e, s, rule, "width must be a number above "
				   "0");
		m->width = r ? d : 5;
		if ((m->to == GEN_BUCKET) && !r)
			return bad(e, s, rule, "generalize to bucket needs "
				   "width");
		r = num_param(rule, "max_age", &d);
		if (r < 0 || (r && (d < 1 || d > 200)))
			return bad(e, s, rule, "max_age must be a number from "
				   "1 to 200");
		m->max_age = r ? (int)d : (m->to == GEN_AGE ||
					   m->to == GEN_AGE_BAND ? 89 : 0);
		break;
	}
	case DM_MASK: {
		int r1 = num_param(rule, "keep_first", &d);
		if (r1 < 0 || (r1 && (d < 0 || d > 64)))
			return bad(e, s, rule, "keep_first must be 0 to 64");
		m->keep_first = r1 ? (int)d : 0;
		int r2 = num_param(rule, "keep_last", &d);
		if (r2 < 0 || (r2 && (d < 0 || d > 64)))
			return bad(e, s, rule, "keep_last must be 0 to 64");
		m->keep_last = r2 ? (int)d : 0;
		const char *c = ynode_str(rule, "char");
		if (c && (strlen(c) != 1 || (unsigned char)c[0] < 0x20 ||
			  c[0] == '"' || c[0] == '\\' ||
			  (unsigned char)c[0] > 0x7e))
			return bad(e, s, rule, "char must be one printable "
				   "ASCII character");
		if (c)
			m->mask_char = c[0];
		break;
	}
	case DM_SUBST: {
		const char *w = ynode_str(rule, "with");
		if (!w)
			return bad(e, s, rule, "substitute needs with: TEXT");
		m->with = xstrdup(w);
		break;
	}
	case DM_PERTURB: {
		int r1 = num_param(rule, "noise", &d);
		if (r1 < 0 || (r1 && !(d >= 0)))
			return bad(e, s, rule, "noise must be a number >= 0");
		m->noise = r1 ? d : 0;
		int r2 = num_param(rule, "relative", &d);
		if (r2 < 0 || (r2 && !(d >= 0 && d <= 1)))
			return bad(e, s, rule, "relative must be 0 to 1");
		m->relative = r2 ? d : 0;
		if (!r1 && !r2)
			return bad(e, s, rule, "perturb needs noise: N or "
				   "relative: F");
		int r3 = num_param(rule, "precision", &d);
		if (r3 < 0 || (r3 && (d < 0 || d > 12)))
			return bad(e, s, rule, "precision must be 0 to 12");
		m->precision = r3 ? (int)d : -1;
		break;
	}
	default:
		break;
	}
	return MLK_OK;
}

static void rule_release(struct prule *r)
{
	for (size_t i = 0; i < r->nseg; i++)
		free(r->seg[i]);
	free(r->seg);
	free(r->text);
	free(r->with);
}

static enum mlk_status add_rules(struct profile *p, const struct src *s,
				 struct mlk_error *e)
{
	const struct ynode *rules = ynode_get(s->doc, "rules");
	if (!rules)
		return MLK_OK;
	if (rules->type != YNODE_SEQ)
		return bad(e, s, rules, "rules must be a list");
	static const struct {
		const char *key;
		enum sel_kind kind;
	} sk[] = { { "fhir", SEL_FHIR }, { "field", SEL_FIELD },
		   { "hl7", SEL_HL7 }, { "value", SEL_VALUE } };
	for (size_t i = 0; i < rules->n; i++) {
		const struct ynode *rule = rules->items[i];
		if (rule->type != YNODE_MAP)
			return bad(e, s, rule, "a rule is a map");
		for (size_t k = 0; k < rule->n; k++) {
			static const char *const known[] = {
				"fhir", "field", "hl7", "value", "method",
				"to", "width", "max_age", "keep_first",
				"keep_last", "char", "with", "noise",
				"relative", "precision", "note",
			};
			size_t j = 0;
			while (j < sizeof known / sizeof *known &&
			       strcmp(known[j], rule->keys[k]))
				j++;
			if (j == sizeof known / sizeof *known) {
				mlk_error_set(e, MLK_USAGE, s->file,
					      (long long)rule->values[k]->line,
					      "unknown rule key '%s'",
					      rule->keys[k]);
				return MLK_USAGE;
			}
		}
		struct prule m;
		memset(&m, 0, sizeof m);
		enum mlk_status st = compile_method(&m, rule, s, e);
		if (st != MLK_OK) {
			rule_release(&m);
			return st;
		}
		int any = 0;
		for (size_t k = 0; k < sizeof sk / sizeof *sk; k++) {
			const struct ynode *v = ynode_get(rule, sk[k].key);
			if (!v)
				continue;
			size_t nv = v->type == YNODE_SEQ ? v->n : 1;
			for (size_t j = 0; j < nv; j++) {
				const struct ynode *it = v->type == YNODE_SEQ
							 ? v->items[j] : v;
				if (it->type != YNODE_SCALAR) {
					rule_release(&m);
					return bad(e, s, it, "a selector is "
						   "text or a list of text");
				}
				XGROW_N(p->rules, p->nrules);
				struct prule *r = &p->rules[p->nrules];
				*r = m;
				r->seg = NULL;
				r->nseg = 0;
				r->text = NULL;
				r->with = m.with ? xstrdup(m.with) : NULL;
				p->nrules++;
				st = compile_selector(r, sk[k].kind,
						      it->scalar, s, it, e);
				if (st != MLK_OK) {
					rule_release(&m);
					return st;
				}
				any = 1;
			}
		}
		rule_release(&m);
		if (!any)
			return bad(e, s, rule, "a rule needs a selector: fhir, "
				   "field, hl7 or value");
	}
	return MLK_OK;
}

static enum mlk_status load_zip3(struct profile *p, struct sha256_ctx *h,
				 struct mlk_error *e)
{
	size_t n;
	const char *t = profile_builtin(ZIP3_FILE, &n);
	struct ynode *doc = NULL;
	if (!t || ynode_load_mem("built-in " ZIP3_FILE, t, n, &doc, e) !=
	    MLK_OK)
		return mlk_error_set(e, MLK_SYSTEM, NULL, 0,
				     "the built-in ZIP3 table is missing");
	sha256_update(h, t, n);
	const struct ynode *z = ynode_get(doc, "restricted");
	const char *src = ynode_str(doc, "source");
	p->zip3_source = xstrdup(src ? src : "");
	for (size_t i = 0; z && z->type == YNODE_SEQ && i < z->n; i++) {
		const char *v = z->items[i]->scalar;
		if (v && strlen(v) == 3 && isdigit((unsigned char)v[0]) &&
		    isdigit((unsigned char)v[1]) &&
		    isdigit((unsigned char)v[2]))
			p->zip3_restricted[atoi_3(v)] = 1;
	}
	ynode_free(doc);
	return MLK_OK;
}

/* "gggg,eeee" (parentheses optional): the tag, or 0 when not a tag. */
static uint32_t parse_tag(const char *v)
{
	if (*v == '(')
		v++;
	uint32_t t = 0;
	int nd = 0;
	for (; *v && *v != ')'; v++) {
		if (*v == ',' && nd == 4)
			continue;
		int d = isdigit((unsigned char)*v) ? *v - '0'
			: (*v >= 'a' && *v <= 'f') ? *v - 'a' + 10
			: (*v >= 'A' && *v <= 'F') ? *v - 'A' + 10 : -1;
		if (d < 0 || nd == 8)
			return 0;
		t = t << 4 | (uint32_t)d;
		nd++;
	}
	if (*v == ')')
		v++;
	return nd == 8 && !*v ? t : 0;
}

/* The "dicom:" mapping: each key given replaces the parent's. */
static enum mlk_status load_dicom(struct profile *p, const struct src *s,
				  struct mlk_error *e)
{
	const struct ynode *m = ynode_get(s->doc, "dicom");
	if (!m)
		return MLK_OK;
	if (m->type != YNODE_MAP)
		return bad(e, s, m, "dicom must be a mapping");
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->keys[i], "options") &&
		    strcmp(m->keys[i], "accept_burned_in") &&
		    strcmp(m->keys[i], "keep_private"))
			return bad(e, s, m->values[i], "dicom: unknown key "
				   "(options, accept_burned_in, keep_private)");
	const struct ynode *o = ynode_get(m, "options");
	if (o) {
		if (o->type != YNODE_SEQ && !ynode_is_null(o))
			return bad(e, s, o, "dicom options must be a list");
		p->dicom_options = 0;
		for (size_t k = 0; o->type == YNODE_SEQ && k < o->n; k++) {
			const char *v = o->items[k]->scalar;
			unsigned bit = v ? dd_option_parse(v) : 0;
			char what[160];
			snprintf(what, sizeof what, "dicom: %s option '%.40s'%s",
				 !bit ? "unknown" : "unsupported", v ? v : "",
				 !bit ? " (see mlk-profile(5))"
				      : ": name private tags in keep_private");
			if (!bit || !dd_option_supported(bit))
				return bad(e, s, o->items[k], what);
			p->dicom_options |= bit;
		}
		if ((p->dicom_options & DD_OPT_FULLDATES) &&
		    (p->dicom_options & DD_OPT_MODDATES))
			return bad(e, s, o, "dicom options full-dates and "
				   "modified-dates exclude each other");
	}
	int b = ynode_bool(m, "accept_burned_in", p->dicom_accept_burned_in);
	if (b < 0)
		return bad(e, s, ynode_get(m, "accept_burned_in"), "dicom "
			   "accept_burned_in must be true or false");
	p->dicom_accept_burned_in = b;
	const struct ynode *k = ynode_get(m, "keep_private");
	if (k) {
		if (k->type != YNODE_SEQ && !ynode_is_null(k))
			return bad(e, s, k, "dicom keep_private must be a "
				   "list of tags");
		p->ndicom_keep_private = 0;
		for (size_t j = 0; k->type == YNODE_SEQ && j < k->n; j++) {
			const char *v = k->items[j]->scalar;
			uint32_t t = v ? parse_tag(v) : 0;
			if (!t || !(t >> 16 & 1))
				return bad(e, s, k->items[j], "dicom "
					   "keep_private: not a private tag "
					   "(gggg,eeee with gggg odd)");
			XGROW_N(p->dicom_keep_private,
				p->ndicom_keep_private);
			p->dicom_keep_private[p->ndicom_keep_private++] = t;
		}
	}
	return MLK_OK;
}

enum mlk_status profile_load(const char *name, const struct lake *l,
			     struct profile *p, struct mlk_error *e)
{
	memset(p, 0, sizeof *p);
	p->shift_days = 365;
	struct src chain[MAX_CHAIN];
	size_t nchain = 0;
	enum mlk_status st = MLK_OK;
	const char *next = name;
	/* Child first; the chain is applied root first. */
	while (next) {
		if (nchain == MAX_CHAIN) {
			st = mlk_error_set(e, MLK_USAGE, chain[0].file, 0,
					   "profiles extend each other more "
					   "than %d deep (a cycle?)",
					   MAX_CHAIN);
			break;
		}
		st = src_load(next, l, &chain[nchain], e);
		nchain++;
		if (st != MLK_OK)
			break;
		next = ynode_str(chain[nchain - 1].doc, "extends");
	}
	struct sha256_ctx h;
	sha256_init(&h);
	for (size_t i = nchain; st == MLK_OK && i-- > 0;) {
		const struct src *s = &chain[i];
		const char *v = ynode_str(s->doc, "mlk_profile");
		if (!v || strcmp(v, "1")) {
			st = bad(e, s, s->doc, "not an mlk profile (it needs "
				 "mlk_profile: 1)");
			break;
		}
		sha256_update(&h, s->name, strlen(s->name) + 1);
		sha256_update(&h, s->text, s->len);
		p->pass_through = ynode_bool(s->doc, "pass_through",
					     p->pass_through);
		p->keep_source_path = ynode_bool(s->doc, "keep_source_path",
						 p->keep_source_path);
		double d;
		int r = num_param(s->doc, "shift_days", &d);
		if (r < 0 || (r && (d < 1 || d > 3650))) {
			st = bad(e, s, ynode_get(s->doc, "shift_days"),
				 "shift_days must be 1 to 3650");
			break;
		}
		if (r)
			p->shift_days = (int)d;
		const struct ynode *pf = ynode_get(s->doc, "patient_fields");
		if (pf) {
			if (pf->type != YNODE_SEQ) {
				st = bad(e, s, pf, "patient_fields must be a "
					 "list");
				break;
			}
			for (size_t k = 0; k < p->npatient_fields; k++)
				free(p->patient_fields[k]);
			p->npatient_fields = 0;
			for (size_t k = 0; k < pf->n; k++) {
				if (!pf->items[k]->scalar)
					continue;
				XGROW_N(p->patient_fields, p->npatient_fields);
				p->patient_fields[p->npatient_fields++] =
					xstrdup(pf->items[k]->scalar);
			}
		}
		st = load_dicom(p, s, e);
		if (st == MLK_OK)
			st = add_rules(p, s, e);
	}
	if (st == MLK_OK) {
		st = load_zip3(p, &h, e);
		p->name = xstrdup(chain[0].name);
		uint8_t md[SHA256_LEN];
		sha256_final(&h, md);
		hex_encode(md, sizeof md, p->sha256);
	} else {
		sha256_abort(&h);
	}
	for (size_t i = 0; i < nchain; i++)
		src_release(&chain[i]);
	if (st != MLK_OK)
		profile_release(p);
	return st;
}

void profile_release(struct profile *p)
{
	for (size_t i = 0; i < p->nrules; i++)
		rule_release(&p->rules[i]);
	free(p->rules);
	for (size_t i = 0; i < p->npatient_fields; i++)
		free(p->patient_fields[i]);
	free(p->patient_fields);
	free(p->dicom_keep_private);
	free(p->name);
	free(p->zip3_source);
	memset(p, 0, sizeof *p);
}

enum mlk_status profile_text(const char *name, const struct lake *l,
			     struct buf *out, struct mlk_error *e)
{
	const char *next = name;
	size_t depth = 0;
	char *own = NULL;
	while (next) {
		struct src s;
		if (depth++ == MAX_CHAIN) {
			free(own);
			return mlk_error_set(e, MLK_USAGE, NULL, 0,
					     "profiles extend each other more "
					     "than %d deep", MAX_CHAIN);
		}
		enum mlk_status st = src_load(next, l, &s, e);
		if (st != MLK_OK) {
			src_release(&s);
			free(own);
			return st;
		}
		buf_addf(out, "# --- %s\n", s.file);
		buf_add(out, s.text, s.len);
		if (s.len && s.text[s.len - 1] != '\n')
			buf_addch(out, '\n');
		free(own);
		const char *x = ynode_str(s.doc, "extends");
		own = x ? xstrdup(x) : NULL;
		next = own;
		src_release(&s);
	}
	return MLK_OK;
}
