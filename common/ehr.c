#include "ehr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <zlib.h>

#include "buf.h"
#include "csv.h"
#include "hl7.h"
#include "pmap.h"
#include "xalloc.h"
#include "banned.h"

#define SAMPLE (64 * 1024)

/* Where FHIR resources keep their clinical date, first match wins. */
static const struct {
	const char *type;
	const char *paths[4];
} fhir_dates[] = {
	{ "AllergyIntolerance", { "onsetDateTime", "recordedDate" } },
	{ "Appointment", { "start" } },
	{ "CarePlan", { "period.start", "created" } },
	{ "CareTeam", { "period.start" } },
	{ "Claim", { "billablePeriod.start", "created" } },
	{ "ClinicalImpression", { "effectiveDateTime", "date" } },
	{ "Communication", { "sent" } },
	{ "Composition", { "date" } },
	{ "Condition", { "onsetDateTime", "onsetPeriod.start",
			 "recordedDate" } },
	{ "Consent", { "dateTime" } },
	{ "Coverage", { "period.start" } },
	{ "DiagnosticReport", { "effectiveDateTime", "effectivePeriod.start",
				"issued" } },
	{ "DocumentReference", { "date", "context.period.start" } },
	{ "Encounter", { "period.start" } },
	{ "EpisodeOfCare", { "period.start" } },
	{ "ExplanationOfBenefit", { "billablePeriod.start", "created" } },
	{ "FamilyMemberHistory", { "date" } },
	{ "Flag", { "period.start" } },
	{ "Goal", { "startDate", "statusDate" } },
	{ "ImagingStudy", { "started" } },
	{ "Immunization", { "occurrenceDateTime", "recorded" } },
	{ "Media", { "createdDateTime" } },
	{ "MedicationAdministration", { "effectiveDateTime",
					"effectivePeriod.start" } },
	{ "MedicationDispense", { "whenHandedOver", "whenPrepared" } },
	{ "MedicationRequest", { "authoredOn" } },
	{ "MedicationStatement", { "effectiveDateTime",
				   "effectivePeriod.start", "dateAsserted" } },
	{ "Observation", { "effectiveDateTime", "effectivePeriod.start",
			   "effectiveInstant", "issued" } },
	{ "Procedure", { "performedDateTime", "performedPeriod.start" } },
	{ "Provenance", { "recorded" } },
	{ "QuestionnaireResponse", { "authored" } },
	{ "RiskAssessment", { "occurrenceDateTime" } },
	{ "ServiceRequest", { "authoredOn", "occurrenceDateTime" } },
	{ "Specimen", { "collection.collectedDateTime", "receivedTime" } },
	{ "SupplyDelivery", { "occurrenceDateTime" } },
};

/* Usual date fields of flat NDJSON records, first match wins. */
static const char *const flat_dates[] = {
	"date", "encounter_date", "admission_date", "admit_date",
	"service_date", "start", "start_date", "effective_date",
	"event_date", "timestamp", "created",
};

/* Usual date columns of CSV exports (case-insensitive). */
static const char *const csv_dates[] = {
	"START", "DATE", "START_DATE", "STARTDATE", "ENCOUNTER_DATE",
	"ADMISSION_DATE", "ADMIT_DATE", "SERVICE_DATE", "EFFECTIVE_DATE",
	"EVENT_DATE", "TIMESTAMP", "ONSET", "RECORDED_DATE",
};

const char *ehr_format_name(enum ehr_format f)
{
	switch (f) {
	case EHR_AUTO: return "auto";
	case EHR_FHIR_NDJSON: return "fhir-ndjson";
	case EHR_FHIR_BUNDLE: return "fhir-bundle";
	case EHR_CSV: return "csv";
	case EHR_NDJSON: return "ndjson";
	case EHR_HL7V2: return "hl7v2";
	default: return "unknown";
	}
}

int ehr_format_parse(const char *name)
{
	for (int f = EHR_AUTO; f < EHR_UNKNOWN; f++)
		if (!strcmp(name, ehr_format_name((enum ehr_format)f)))
			return f;
	return -1;
}

const char *ehr_format_family(enum ehr_format f)
{
	switch (f) {
	case EHR_FHIR_NDJSON:
	case EHR_FHIR_BUNDLE: return "fhir";
	case EHR_CSV: return "csv";
	case EHR_HL7V2: return "hl7v2";
	default: return "ndjson";
	}
}

char *ehr_table_name(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	const char *dot = strchr(base, '.');
	size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
	if (!n)
		return xstrdup("table");
	char *t = xstrndup(base, n);
	for (size_t i = 0; i < n; i++) {
		char c = t[i];
		if (c >= 'A' && c <= 'Z')
			t[i] = (char)(c - 'A' + 'a');
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			t[i] = '_';
	}
	return t;
}

/* Input: a file, transparently gunzipped, with the sample read first. */

struct src {
	int fd;
	gzFile gz;
	char *pre;
	size_t pre_len, pre_pos;
	int gzerr;
};

static ssize_t raw_read(struct src *s, void *p, size_t n)
{
	if (s->gz) {
		if (n > (1u << 30))
			n = 1u << 30;
		int r = gzread(s->gz, p, (unsigned)n);
		if (r == 0) {
			/* A stream cut short ends without its trailer. */
			int err = Z_OK;
			gzerror(s->gz, &err);
			if (err != Z_OK && err != Z_STREAM_END)
				r = -1;
		}
		if (r < 0) {
			s->gzerr = 1;
			return -1;
		}
		return r;
	}
	return lr_read_fd(&s->fd, p, n);
}

static ssize_t src_read(void *ctx, void *p, size_t n)
{
	struct src *s = ctx;
	if (s->pre_pos < s->pre_len) {
		size_t k = s->pre_len - s->pre_pos;
		if (k > n)
			k = n;
		memcpy(p, s->pre + s->pre_pos, k);
		s->pre_pos += k;
		return (ssize_t)k;
	}
	return raw_read(s, p, n);
}

static enum mlk_status src_open(struct src *s, const char *path, int fd,
				struct mlk_error *e)
{
	memset(s, 0, sizeof *s);
	if (fd >= 0) {
		s->fd = dup(fd);
		if (s->fd >= 0 && lseek(s->fd, 0, SEEK_SET) < 0) {
			close(s->fd);
			s->fd = -1;
		}
	} else {
		s->fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (s->fd < 0)
		return mlk_error_errno(e, path, "cannot open");
	unsigned char magic[2];
	ssize_t r = pread(s->fd, magic, 2, 0);
	if (r == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
		int fd2 = dup(s->fd);
		s->gz = fd2 >= 0 ? gzdopen(fd2, "rb") : NULL;
		if (!s->gz) {
			if (fd2 >= 0)
				close(fd2);
			close(s->fd);
			return mlk_error_set(e, MLK_SYSTEM, path, 0,
					     "cannot open gzip stream");
		}
		gzbuffer(s->gz, 1 << 17);
	}
	/* Read the sample used for detection. */
	s->pre = xmalloc(SAMPLE);
	while (s->pre_len < SAMPLE) {
		ssize_t k = raw_read(s, s->pre + s->pre_len,
				     SAMPLE - s->pre_len);
		if (k < 0) {
			free(s->pre);
			if (s->gz)
				gzclose(s->gz);
			close(s->fd);
			return s->gzerr ? mlk_error_set(e, MLK_PARTIAL, path, 0,
						"corrupt gzip stream")
					: mlk_error_errno(e, path, "read error");
		}
		if (k == 0)
			break;
		s->pre_len += (size_t)k;
	}
	return MLK_OK;
}

static void src_close(struct src *s)
{
	if (s->gz)
		gzclose(s->gz);
	if (s->fd >= 0)
		close(s->fd);
	free(s->pre);
	memset(s, 0, sizeof *s);
	s->fd = -1;
}

/* Detection */

static const char *skip_bom_ws(const char *p, const char *end)
{
	if (end - p >= 3 && (unsigned char)p[0] == 0xef &&
	    (unsigned char)p[1] == 0xbb && (unsigned char)p[2] == 0xbf)
		p += 3;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

enum ehr_format ehr_detect(const char *buf, size_t n, int whole,
			   const char **why)
{
	const char *end = buf + n;
	const char *p = skip_bom_ws(buf, end);
	*why = NULL;
	if (p == end) {
		*why = "empty input";
		return EHR_UNKNOWN;
	}
	if (memchr(buf, '\0', n)) {
		*why = "binary content, not a recognised EHR format";
		return EHR_UNKNOWN;
	}
	/* HL7 v2: MSH, or a batch header, and a field separator; maybe
	 * after an MLLP start block. */
	const char *h = p < end && *p == 0x0b ? p + 1 : p;
	if (end - h >= 4 && (h[3] < '0' || h[3] > '9') &&
	    (h[3] < 'A' || h[3] > 'Z') && (h[3] < 'a' || h[3] > 'z') &&
	    h[3] > ' ' && h[3] < 0x7f &&
	    (!memcmp(h, "MSH", 3) || !memcmp(h, "FHS", 3) ||
	     !memcmp(h, "BHS", 3)))
		return EHR_HL7V2;
	if (end - p >= 4 && p[3] == '|' && hl7_is_segment_id(p)) {
		*why = "HL7 v2 segments without an MSH segment";
		return EHR_UNKNOWN;
	}
	if (*p == '[') {
		*why = "a JSON array is not supported; convert it to NDJSON "
		       "(jq -c '.[]')";
		return EHR_UNKNOWN;
	}
	if (*p == '{') {
		struct rec r;
		struct mlk_error e = MLK_ERROR_INIT;
		rec_init(&r);
		enum ehr_format f = EHR_UNKNOWN;
		int lines = 0;
		const char *q = p;
		while (q < end && lines < 64) {
			const char *nl = memchr(q, '\n', (size_t)(end - q));
			if (!nl && !whole)
				break;
			size_t len = nl ? (size_t)(nl - q) : (size_t)(end - q);
			const char *t = skip_bom_ws(q, q + len);
			if (t < q + len) {
				lines++;
				if (rec_parse(&r, q, len, &e) == MLK_OK) {
					f = rec_get(&r, 0, "resourceType") > 0
						    ? EHR_FHIR_NDJSON
						    : EHR_NDJSON;
					break;
				}
				/* A first line that is not a whole object is
				 * a pretty-printed document. */
				size_t k = len;
				while (k && (q[k - 1] == '\r' || q[k - 1] == ' '
					     || q[k - 1] == '\t'))
					k--;
				if (lines == 1 && (!k || q[k - 1] != '}')) {
					f = EHR_FHIR_BUNDLE;
					break;
				}
			}
			if (!nl)
				break;
			q = nl + 1;
		}
		rec_release(&r);
		if (f == EHR_UNKNOWN)
			/* Long lines or nothing valid in the sample: read it
			 * as NDJSON and let each line speak for itself. */
			f = EHR_NDJSON;
		return f;
	}
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
	if (memchr(p, ',', len))
		return EHR_CSV;
	*why = "not a recognised EHR format (FHIR NDJSON or Bundle, CSV with "
	       "a header, NDJSON, HL7 v2)";
	return EHR_UNKNOWN;
}

/* JSON records */

struct jctx {
	struct rec *r;
	int obj;                  /* the resource's object token */
	const char *rt;           /* resourceType, NUL-terminated copy */
	const struct ehr_conf *conf;
	const struct ehr_sink *sink;
	struct pmap_out *out;     /* parallel: results go here */
	struct buf scratch, line, part;
	char typebuf[160];
	char last_rt[80];         /* the last type looked up in fhir_dates */
	int last_dates;
};

/* Hand an item to the sink: now (serial) or as a result (parallel). */
static int deliver(struct jctx *c, const struct ehr_item *it)
{
	const struct ehr_sink *sk = c->sink;
	if (c->out) {
		/* Straight into the block's output: no copy. */
		size_t off = c->out->data.len, aoff = c->out->aux.len;
		size_t keep = sk->format(sk->ctx, it, &c->out->data,
					 &c->out->aux);
		pmap_add_record(c->out, off, aoff, it->line, keep);
		return 0;
	}
	buf_reset(&c->line);
	buf_reset(&c->part);
	size_t keep = sk->format(sk->ctx, it, &c->line, &c->part);
	sk->output(sk->ctx, c->line.data, c->line.len);
	return sk->commit(sk->ctx, c->line.data, c->line.len, keep,
			  c->part.data, c->part.len);
}

static int reject(struct jctx *c, long long line, unsigned long long offset,
		  const char *raw, size_t rawlen, const char *reason)
{
	if (c->out) {
		pmap_add_reject(c->out, raw, rawlen, reason, line, offset);
		return 0;
	}
	return c->sink->reject(c->sink->ctx, line, offset, raw, rawlen,
			       reason);
}

static int fhir_date_tok(struct jctx *c)
{
	/* Sources hold runs of one type: remember the last lookup. */
	if (strcmp(c->last_rt, c->rt)) {
		snprintf(c->last_rt, sizeof c->last_rt, "%s", c->rt);
		c->last_dates = -1;
		for (size_t i = 0; i < sizeof fhir_dates / sizeof *fhir_dates;
		     i++)
			if (!strcmp(fhir_dates[i].type, c->rt)) {
				c->last_dates = (int)i;
				break;
			}
	}
	if (c->last_dates < 0)
		return -1;
	const char *const *paths = fhir_dates[c->last_dates].paths;
	for (int k = 0; k < 4 && paths[k]; k++) {
		int t = rec_path(c->r, c->obj, paths[k]);
		if (t > 0 && rec_type(c->r, t) == REC_STRING)
			return t;
	}
	return -1;
}

static int flat_date_tok(struct jctx *c)
{
	if (c->conf && c->conf->date_field)
		return rec_path(c->r, c->obj, c->conf->date_field);
	for (size_t i = 0; i < sizeof flat_dates / sizeof *flat_dates; i++) {
		int t = rec_get(c->r, c->obj, flat_dates[i]);
		if (t > 0 && rec_type(c->r, t) == REC_STRING)
			return t;
	}
	return -1;
}

static int json_lookup(const struct ehr_item *it, const char *name,
		       const char **val, size_t *len, int *is_number)
{
	struct jctx *c = it->priv;
	int t;
	*is_number = 0;
	if (!strcmp(name, "type")) {
		*val = it->type;
		*len = strlen(it->type);
		return 1;
	}
	if (!strcmp(name, "date"))
		t = c->rt ? fhir_date_tok(c) : flat_date_tok(c);
	else
		t = rec_path(c->r, c->obj, name);
	if (t <= 0)
		return 0;
	int ty = rec_type(c->r, t);
	if (ty == REC_OBJECT || ty == REC_ARRAY)
		return 0;
	size_t n;
	const char *raw = rec_raw(c->r, t, &n);
	if (ty == REC_PRIMITIVE) {
		if (!strcmp(raw, "null") || (n == 4 && !memcmp(raw, "null", 4)))
			return 0;
		*is_number = raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9');
		*val = raw;
		*len = n;
		return 1;
	}
	if (!memchr(raw, '\\', n)) {
		*val = raw;
		*len = n;
		return 1;
	}
	buf_reset(&c->scratch);
	rec_str(c->r, t, &c->scratch);
	*val = c->scratch.data;
	*len = c->scratch.len;
	return 1;
}

static int valid_type_name(const char *p, size_t n)
{
	if (!n || n > 64 || p[0] < 'A' || p[0] > 'Z')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') ||
		      (p[i] >= 'A' && p[i] <= 'Z') ||
		      (p[i] >= '0' && p[i] <= '9')))
			return 0;
	return 1;
}

/* Emit the resource at token obj. */
static int emit_json(struct jctx *c, struct buf *body, long long line,
		     long long entry, int fhir, const char **reason)
{
	char rtbuf[80];
	c->obj = entry >= 0 ? c->obj : 0;
	c->rt = NULL;
	const char *type = "ndjson";
	int rtt = rec_get(c->r, c->obj, "resourceType");
	if (rtt > 0 && rec_type(c->r, rtt) == REC_STRING) {
		size_t n;
		const char *p = rec_raw(c->r, rtt, &n);
		if (!valid_type_name(p, n)) {
			*reason = "resourceType is not a FHIR type name";
			return -2;
		}
		memcpy(rtbuf, p, n);
		rtbuf[n] = '\0';
		c->rt = rtbuf;
		memcpy(c->typebuf, "fhir:", 5);
		memcpy(c->typebuf + 5, p, n);
		c->typebuf[5 + n] = '\0';
		type = c->typebuf;
	} else if (fhir) {
		*reason = "record has no resourceType";
		return -2;
	}
	buf_reset(body);
	int empty;
	rec_write_open(c->r, c->obj, "_mlk", body, &empty);
	struct ehr_item it = {
		type, body->data, body->len, empty, line, entry,
		json_lookup, c,
	};
	return deliver(c, &it);
}

/* A Bundle's entries, each entry.resource as its own record. */
static int emit_bundle(struct jctx *c, struct buf *body, long long line,
		       int *emitted, const char **reason)
{
	int entries = rec_get(c->r, 0, "entry");
	if (entries < 0)
		return 0;
	if (rec_type(c->r, entries) != REC_ARRAY) {
		*reason = "Bundle.entry is not an array";
		return -2;
	}
	long long idx = 0;
	for (int k = entries + 1; k < c->r->skip[entries];
	     k = c->r->skip[k], idx++) {
		int res = rec_get(c->r, k, "resource");
		if (res < 0 || rec_type(c->r, res) != REC_OBJECT)
			continue;
		c->obj = res;
		int rc = emit_json(c, body, line, idx, 1, reason);
		if (rc == -2) {
			/* One bad entry: reject it, keep the others. */
			rc = reject(c, line, 0, NULL, 0, *reason);
		}
		if (rc)
			return rc;
		(*emitted)++;
	}
	return 0;
}

struct nctx {
	const struct ehr_sink *sink;
	const struct ehr_conf *conf;
	int fhir;
};

static void *ntls_new(void *vctx)
{
	struct nctx *n = vctx;
	struct jctx *c = xcalloc(1, sizeof *c);
	c->r = xmalloc(sizeof *c->r);
	rec_init(c->r);
	c->conf = n->conf;
	c->sink = n->sink;
	return c;
}

static void ntls_free(void *vctx, void *tls)
{
	(void)vctx;
	struct jctx *c = tls;
	rec_release(c->r);
	free(c->r);
	buf_release(&c->scratch);
	buf_release(&c->line);
	buf_release(&c->part);
	free(c);
}

static void nmap(void *vctx, void *tls, const char *line, size_t len,
		 long long lineno, unsigned long long offset,
		 struct pmap_out *out)
{
	struct nctx *n = vctx;
	struct jctx *c = tls;
	struct mlk_error pe = MLK_ERROR_INIT;
	struct buf body = BUF_INIT;
	const char *reason = NULL;
	int rc;
	c->out = out;
	if (rec_parse(c->r, line, len, &pe) != MLK_OK) {
		reject(c, lineno, offset, line, len, pe.msg);
		return;
	}
	c->obj = 0;
	int rt = rec_get(c->r, 0, "resourceType");
	if (rt > 0 && rec_str_eq(c->r, rt, "Bundle")) {
		int k = 0;
		rc = emit_bundle(c, &body, lineno, &k, &reason);
	} else {
		rc = emit_json(c, &body, lineno, -1, n->fhir, &reason);
	}
	if (rc == -2)
		reject(c, lineno, offset, line, len, reason);
	buf_release(&body);
}

static int nreduce(void *vctx, const struct pmap_out *out)
{
	struct nctx *n = vctx;
	const struct ehr_sink *sink = n->sink;
	if (out->data.len)
		sink->output(sink->ctx, out->data.data, out->data.len);
	for (size_t i = 0; i < out->n; i++) {
		const struct pmap_item *it = &out->items[i];
		const char *d = out->data.data, *a = out->aux.data;
		int rc;
		if (it->kind == PMAP_RECORD)
			rc = sink->commit(sink->ctx, d + it->off, it->len,
					  it->keep,
					  a + it->aux_off, it->aux_len);
		else {
			char reason[512];
			snprintf(reason, sizeof reason, "%.*s",
				 (int)it->aux_len, a + it->aux_off);
			rc = sink->reject(sink->ctx, it->line, it->offset,
					  it->has_raw ? a + it->raw_off : NULL,
					  it->raw_len, reason);
		}
		if (rc)
			return rc;
	}
	return 0;
}

static enum mlk_status parse_ndjson(struct src *s, const char *path,
				    int fhir, const struct ehr_conf *conf,
				    const struct ehr_sink *sink,
				    struct mlk_error *e)
{
	struct nctx n = { sink, conf, fhir };
	struct pmap_ops ops = { &n, ntls_new, ntls_free, nmap, nreduce };
	struct mlk_error pe = MLK_ERROR_INIT;
	enum mlk_status st = pmap_run(src_read, s, sink->threads, 0, &ops,
				      &pe);
	if (st == MLK_SYSTEM && pe.status == MLK_SYSTEM) {
		/* The records before the damage have landed; the rest of
		 * the source is one quarantined piece. */
		if (s->gzerr)
			return sink->reject(sink->ctx, 0, 0, NULL, 0,
					    "corrupt or truncated gzip stream; "
					    "the records before the damage "
					    "were kept");
		return mlk_error_set(e, MLK_SYSTEM, path, 0, "%s", pe.msg);
	}
	return st;
}

static enum mlk_status parse_document(struct src *s, const char *path,
				      const struct ehr_conf *conf,
				      const struct ehr_sink *sink,
				      struct mlk_error *e)
{
	struct buf doc = BUF_INIT;
	char chunk[1 << 16];
	for (;;) {
		ssize_t k = src_read(s, chunk, sizeof chunk);
		if (k < 0) {
			buf_release(&doc);
			return s->gzerr ? mlk_error_set(e, MLK_PARTIAL, path, 0,
						"corrupt gzip stream")
					: mlk_error_errno(e, path, "read error");
		}
		if (k == 0)
			break;
		buf_add(&doc, chunk, (size_t)k);
	}
	const char *p = doc.data;
	size_t n = doc.len;
	if (n >= 3 && !memcmp(p, "\xef\xbb\xbf", 3)) {
		p += 3;
		n -= 3;
	}
	struct rec r;
	struct jctx c = { 0 };
	struct buf body = BUF_INIT;
	rec_init(&r);
	c.r = &r;
	c.conf = conf;
	c.sink = sink;
	enum mlk_status st = MLK_OK;
	struct mlk_error pe = MLK_ERROR_INIT;
	if (rec_parse(&r, p, n, &pe) != MLK_OK) {
		st = mlk_error_set(e, MLK_PARTIAL, path, 0, "%s", pe.msg);
	} else {
		const char *reason = NULL;
		int rc, emitted = 0;
		int rt = rec_get(&r, 0, "resourceType");
		if (rt > 0 && rec_str_eq(&r, rt, "Bundle"))
			rc = emit_bundle(&c, &body, 1, &emitted, &reason);
		else
			rc = emit_json(&c, &body, 1, -1, 0, &reason);
		if (rc == -2)
			rc = reject(&c, 1, 0, NULL, 0, reason);
		if (rc)
			st = (enum mlk_status)rc;
	}
	buf_release(&body);
	buf_release(&c.scratch);
	buf_release(&c.line);
	buf_release(&c.part);
	rec_release(&r);
	buf_release(&doc);
	return st;
}

/* CSV */

struct cctx {
	const char *type;
	const char *table;
	char **cols;
	size_t ncols;
	long date_col;            /* -1: none */
	struct csv_field *f;
	size_t nf;
};

static int csv_lookup(const struct ehr_item *it, const char *name,
		      const char **val, size_t *len, int *is_number)
{
	struct cctx *c = it->priv;
	*is_number = 0;
	long col = -1;
	if (!strcmp(name, "table")) {
		*val = c->table;
		*len = strlen(c->table);
		return 1;
	}
	if (!strcmp(name, "type")) {
		*val = c->type;
		*len = strlen(c->type);
		return 1;
	}
	if (!strcmp(name, "date")) {
		col = c->date_col;
	} else {
		for (size_t i = 0; i < c->ncols; i++)
			if (!strcmp(c->cols[i], name)) {
				col = (long)i;
				break;
			}
	}
	if (col < 0 || (size_t)col >= c->nf)
		return 0;
	if (!c->f[col].len)
		return 0;
	*val = c->f[col].p;
	*len = c->f[col].len;
	return 1;
}

static int ci_contains(const char *h, const char *needle)
{
	size_t n = strlen(needle);
	for (; *h; h++)
		if (!strncasecmp(h, needle, n))
			return 1;
	return 0;
}

static long find_date_col(struct cctx *c, const struct ehr_conf *conf)
{
	const struct ynode *dc = conf ? conf->date_columns : NULL;
	const char *want = dc ? ynode_str(dc, c->table) : NULL;
	if (want) {
		if (!strcmp(want, "none"))
			return -1;
		for (size_t i = 0; i < c->ncols; i++)
			if (!strcmp(c->cols[i], want))
				return (long)i;
		return -1;
	}
	for (size_t k = 0; k < sizeof csv_dates / sizeof *csv_dates; k++)
		for (size_t i = 0; i < c->ncols; i++)
			if (!strcasecmp(c->cols[i], csv_dates[k]))
				return (long)i;
	for (size_t i = 0; i < c->ncols; i++) {
		const char *h = c->cols[i];
		if (ci_contains(h, "date") && !ci_contains(h, "birth") &&
		    !ci_contains(h, "death") && !ci_contains(h, "dob"))
			return (long)i;
	}
	return -1;
}

static enum mlk_status parse_csv(struct src *s, const char *path,
				 const struct ehr_conf *conf,
				 const struct ehr_sink *sink,
				 struct mlk_error *e)
{
	struct csv_reader cr;
	struct csv_field *f;
	size_t nf;
	struct mlk_error pe = MLK_ERROR_INIT;
	struct cctx c = { 0 };
	struct buf body = BUF_INIT, typebuf = BUF_INIT;
	struct buf oline = BUF_INIT, opart = BUF_INIT;
	enum mlk_status st = MLK_OK;
	csv_init(&cr, src_read, s);
	c.table = conf && conf->table ? conf->table : "table";
	buf_addf(&typebuf, "csv:%s", c.table);
	c.type = typebuf.data;

	int got;
	while ((got = csv_next(&cr, &f, &nf, &pe)) < 0) {
		if (pe.status == MLK_SYSTEM) {
			st = mlk_error_set(e, MLK_SYSTEM, path, 0, "%s",
					   pe.msg);
			goto out;
		}
		st = mlk_error_set(e, MLK_PARTIAL, path, pe.line,
				   "bad CSV header: %s", pe.msg);
		goto out;
	}
	if (got == 0) {
		st = mlk_error_set(e, MLK_PARTIAL, path, 0,
				   "CSV has no header row");
		goto out;
	}
	c.ncols = nf;
	c.cols = xcalloc(nf, sizeof *c.cols);
	for (size_t i = 0; i < nf; i++) {
		if (utf8_invalid_at(f[i].p, f[i].len) >= 0 ||
		    memchr(f[i].p, '\0', f[i].len)) {
			st = mlk_error_set(e, MLK_PARTIAL, path, cr.line,
					   "CSV header column %zu is not valid "
					   "UTF-8", i + 1);
			goto out;
		}
		char *name = f[i].len ? xstrndup(f[i].p, f[i].len)
				      : xasprintf("col%zu", i + 1);
		/* Duplicate names get a suffix, so no column is lost. */
		for (size_t k = 0; k < i; k++)
			if (!strcmp(c.cols[k], name)) {
				char *n2 = xasprintf("%s_%zu", name, i + 1);
				free(name);
				name = n2;
				k = (size_t)-1;
			}
		c.cols[i] = name;
	}
	c.date_col = find_date_col(&c, conf);

	for (;;) {
		got = csv_next(&cr, &f, &nf, &pe);
		if (got == 0)
			break;
		int rc = 0;
		if (got < 0) {
			if (pe.status == MLK_SYSTEM) {
				if (s->gzerr)
					st = (enum mlk_status)sink->reject(
						sink->ctx, 0, 0, NULL, 0,
						"corrupt or truncated gzip "
						"stream; the records before "
						"the damage were kept");
				else
					st = mlk_error_set(e, MLK_SYSTEM, path,
							   0, "%s", pe.msg);
				break;
			}
			rc = sink->reject(sink->ctx, pe.line, cr.offset,
					  cr.raw, cr.raw_len, pe.msg);
			if (rc) {
				st = (enum mlk_status)rc;
				break;
			}
			continue;
		}
		if (nf != c.ncols) {
			char why[96];
			snprintf(why, sizeof why,
				 "CSV row has %zu fields, the header %zu", nf,
				 c.ncols);
			rc = sink->reject(sink->ctx, cr.line, cr.offset,
					  cr.raw, cr.raw_len, why);
			if (rc) {
				st = (enum mlk_status)rc;
				break;
			}
			continue;
		}
		buf_reset(&body);
		buf_addch(&body, '{');
		const char *bad = NULL;
		char why[96];
		for (size_t i = 0; i < nf; i++) {
			if (utf8_invalid_at(f[i].p, f[i].len) >= 0) {
				snprintf(why, sizeof why, "invalid UTF-8 in "
					 "CSV field %zu", i + 1);
				bad = why;
				break;
			}
			if (i)
				buf_addch(&body, ',');
			buf_add_json_cstr(&body, c.cols[i]);
			buf_addch(&body, ':');
			/* Unquoted empty is null; quoted "" stays "". */
			if (!f[i].len && !f[i].quoted)
				buf_addstr(&body, "null");
			else
				buf_add_json_str(&body, f[i].p, f[i].len);
		}
		if (bad) {
			rc = sink->reject(sink->ctx, cr.line, cr.offset, cr.raw,
					  cr.raw_len, bad);
		} else {
			c.f = f;
			c.nf = nf;
			struct ehr_item it = {
				c.type, body.data, body.len, nf == 0, cr.line,
				-1, csv_lookup, &c,
			};
			buf_reset(&oline);
			buf_reset(&opart);
			size_t keep = sink->format(sink->ctx, &it, &oline,
						   &opart);
			sink->output(sink->ctx, oline.data, oline.len);
			rc = sink->commit(sink->ctx, oline.data, oline.len,
					  keep,
					  opart.data, opart.len);
		}
		if (rc) {
			st = (enum mlk_status)rc;
			break;
		}
	}
out:
	for (size_t i = 0; i < c.ncols; i++)
		free(c.cols ? c.cols[i] : NULL);
	free(c.cols);
	buf_release(&body);
	buf_release(&typebuf);
	buf_release(&oline);
	buf_release(&opart);
	csv_release(&cr);
	return st;
}

/* HL7 v2 */

struct hctx {
	struct hl7_msg m;
	char type[128];
};

static int hl7_lookup(const struct ehr_item *it, const char *name,
		      const char **val, size_t *len, int *is_number)
{
	struct hctx *c = it->priv;
	*is_number = 0;
	if (!strcmp(name, "type")) {
		*val = it->type;
		*len = strlen(it->type);
		return 1;
	}
	if (!strcmp(name, "date")) {
		*val = c->m.date;
		*len = strlen(c->m.date);
		return *len > 0;
	}
	for (int k = 0; k < HL7_NSUM; k++)
		if (!strcmp(name, hl7_sum_name((enum hl7_sum)k))) {
			*val = hl7_sum_get(&c->m, (enum hl7_sum)k, len);
			return *val != NULL;
		}
	return 0;
}

static enum mlk_status parse_hl7(struct src *s, const char *path,
				 const struct ehr_sink *sink,
				 struct mlk_error *e)
{
	struct hl7_reader rd;
	struct hl7_piece pc;
	struct hctx c;
	struct buf body = BUF_INIT, oline = BUF_INIT, opart = BUF_INIT;
	struct mlk_error pe = MLK_ERROR_INIT;
	enum mlk_status st = MLK_OK;
	int got;
	hl7_reader_init(&rd, src_read, s);
	hl7_msg_init(&c.m);
	while ((got = hl7_reader_next(&rd, &pc, &pe)) > 0) {
		int rc = 0;
		switch (pc.kind) {
		case HL7_ENVELOPE:
			continue;
		case HL7_JUNK:
			rc = sink->reject(sink->ctx, pc.line, pc.offset, pc.p,
					  pc.n, "HL7 v2 text outside a message "
					  "(no MSH segment before it)");
			break;
		case HL7_TOOLONG:
			rc = sink->reject(sink->ctx, pc.line, pc.offset, NULL,
					  0, "HL7 v2 message longer than 64 MiB");
			break;
		case HL7_MESSAGE:
			if (hl7_parse(&c.m, pc.p, pc.n, pc.line, &pe) != MLK_OK) {
				rc = sink->reject(sink->ctx, pc.line, pc.offset,
						  pc.p, pc.n, pe.msg);
				break;
			}
			size_t tn;
			const char *t = hl7_sum_get(&c.m, HL7_TYPE, &tn);
			if (tn > sizeof c.type - 7)
				tn = sizeof c.type - 7;
			/* Never cut a UTF-8 sequence in half. */
			while (tn && ((unsigned char)t[tn] & 0xc0) == 0x80 &&
			       tn < c.m.sum_len[HL7_TYPE])
				tn--;
			memcpy(c.type, "hl7v2:", 6);
			memcpy(c.type + 6, t, tn);
			c.type[6 + tn] = '\0';
			buf_reset(&body);
			hl7_write(&c.m, &body);
			struct ehr_item it = {
				c.type, body.data, body.len, 0, pc.line, -1,
				hl7_lookup, &c,
			};
			buf_reset(&oline);
			buf_reset(&opart);
			size_t keep = sink->format(sink->ctx, &it, &oline,
						   &opart);
			sink->output(sink->ctx, oline.data, oline.len);
			rc = sink->commit(sink->ctx, oline.data, oline.len,
					  keep, opart.data, opart.len);
			break;
		}
		if (rc) {
			st = (enum mlk_status)rc;
			break;
		}
	}
	if (got < 0) {
		if (s->gzerr)
			st = (enum mlk_status)sink->reject(sink->ctx, 0, 0,
				NULL, 0, "corrupt or truncated gzip stream; "
				"the records before the damage were kept");
		else
			st = mlk_error_set(e, MLK_SYSTEM, path, 0, "%s",
					   pe.msg);
	}
	hl7_msg_release(&c.m);
	hl7_reader_release(&rd);
	buf_release(&body);
	buf_release(&oline);
	buf_release(&opart);
	return st;
}

enum mlk_status ehr_parse(const char *path, int fd, enum ehr_format fmt,
			  const struct ehr_conf *conf,
			  const struct ehr_sink *sink, enum ehr_format *used,
			  struct mlk_error *e)
{
	struct src s;
	enum mlk_status st = src_open(&s, path, fd, e);
	if (st != MLK_OK)
		return st;
	if (fmt == EHR_AUTO) {
		const char *why;
		fmt = ehr_detect(s.pre, s.pre_len, s.pre_len < SAMPLE, &why);
		if (fmt == EHR_UNKNOWN) {
			src_close(&s);
			*used = EHR_UNKNOWN;
			return mlk_error_set(e, MLK_PARTIAL, path, 0, "%s", why);
		}
	}
	*used = fmt;
	sink->begin(sink->ctx, fmt);
	switch (fmt) {
	case EHR_FHIR_NDJSON:
		st = parse_ndjson(&s, path, 1, conf, sink, e);
		break;
	case EHR_NDJSON:
		st = parse_ndjson(&s, path, 0, conf, sink, e);
		break;
	case EHR_FHIR_BUNDLE:
		st = parse_document(&s, path, conf, sink, e);
		break;
	case EHR_CSV:
		st = parse_csv(&s, path, conf, sink, e);
		break;
	case EHR_HL7V2:
		st = parse_hl7(&s, path, sink, e);
		break;
	default:
		st = mlk_error_set(e, MLK_USAGE, path, 0, "unknown format");
	}
	src_close(&s);
	return st;
}

int ehr_patient_ref(struct buf *b)
{
	const char *p = b->data ? b->data : "";
	const char *hit = NULL, *q = p;
	while ((q = strstr(q, "Patient/"))) {
		hit = q;
		q++;
	}
	size_t skip;
	if (hit)
		skip = (size_t)(hit - p) + 8;
	else if (b->len > 9 && !memcmp(p, "urn:uuid:", 9))
		skip = 9;
	else
		return 0;
	memmove(b->data, b->data + skip, b->len - skip);
	buf_truncate(b, b->len - skip);
	char *h = strchr(b->data, '/');
	if (h)
		buf_truncate(b, (size_t)(h - b->data));
	return 1;
}
