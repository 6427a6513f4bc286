/*
 * fuzz-csv — libFuzzer target for common/csv.c.
 *
 * The first two input bytes choose the delimiter, the read sizes and
 * max_record; the rest is the CSV text.  The text is read back through a
 * callback that returns short, uneven chunks, so records straddle reads
 * and buffer moves, and every record is checked against a plain reference
 * parser that sees the whole input at once: same fields, line, offset, raw
 * bytes and errors.  Any difference aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "banned.h"

struct feed {
	const uint8_t *p;
	size_t len, pos;
	uint32_t seed;
};

static ssize_t feed_read(void *ctx, void *p, size_t n)
{
	struct feed *f = ctx;
	size_t want;

	f->seed = f->seed * 1103515245u + 12345u;
	want = 1 + (f->seed >> 16) % 97;
	if (want > n)
		want = n;
	if (want > f->len - f->pos)
		want = f->len - f->pos;
	memcpy(p, f->p + f->pos, want);
	f->pos += want;
	return (ssize_t)want;
}

/* One record as the reference parser sees it. */
struct ref {
	int rc;                 /* 1, 0 or -1 as csv_next */
	long long line, next_line;
	size_t start, end;      /* raw bytes */
	int too_long;
	char msg[64];
	size_t nf;
	size_t fs[4096], fl[4096];  /* field start and length in out */
	int fq[4096];
	char out[1 << 17];
	size_t outlen;
};

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); \
	abort(); } } while (0)

static void ref_put(struct ref *r, char c)
{
	CHECK(r->outlen < sizeof(r->out));
	r->out[r->outlen++] = c;
}

static void ref_emit(struct ref *r, size_t fstart, int quoted)
{
	CHECK(r->nf < 4096);
	r->fs[r->nf] = fstart;
	r->fl[r->nf] = r->outlen - fstart;
	r->fq[r->nf] = quoted;
	r->nf++;
}

/* The reference: byte by byte over the whole input, no buffering. */
static void ref_next(const uint8_t *d, size_t len, size_t *pos,
		     long long *line, char delim, size_t max_record,
		     struct ref *r)
{
	enum { F, PL, Q, QQ, J } st;
	const char *problem;
	size_t problem_field, fstart, p;
	int quoted;
	long long nl;

again:
	st = F;
	problem = NULL;
	problem_field = 0;
	fstart = 0;
	quoted = 0;
	nl = 0;
	p = *pos;
	r->nf = 0;
	r->outlen = 0;
	r->line = *line;
	r->start = p;
	r->too_long = 0;
	r->msg[0] = '\0';
	if (p == len) {
		r->rc = 0;
		return;
	}
	for (;;) {
		if (p == len) {
			if (st == F) {
				fstart = r->outlen;
				quoted = 0;
			}
			if (st == F || st == PL || st == QQ)
				ref_emit(r, fstart, quoted);
			if (st == Q && !problem) {
				problem = "unterminated quoted field";
				problem_field = r->nf + 1;
			}
			r->end = p;
			break;
		}
		char c = (char)d[p];
		if (st == F) {
			fstart = r->outlen;
			quoted = c == '"';
			st = quoted ? Q : PL;
			if (quoted)
				p++;
			continue;
		}
		if (st == PL) {
			if (c == delim) {
				ref_emit(r, fstart, 0);
				st = F;
				p++;
			} else if (c == '\n' || c == '\r') {
				ref_emit(r, fstart, 0);
				r->end = p;
				nl++;
				p++;
				if (c == '\r' && p < len && d[p] == '\n')
					p++;
				break;
			} else if (c == '"') {
				if (!problem) {
					problem = "quote in unquoted field";
					problem_field = r->nf + 1;
				}
				st = J;
			} else {
				ref_put(r, c);
				p++;
			}
			continue;
		}
		if (st == Q) {
			if (c == '"') {
				st = QQ;
			} else {
				ref_put(r, c);
				if (c == '\r' || (c == '\n' && d[p - 1] != '\r'))
					nl++;
			}
			p++;
			continue;
		}
		if (st == QQ) {
			if (c == '"') {
				ref_put(r, c);
				st = Q;
				p++;
			} else if (c == delim) {
				ref_emit(r, fstart, 1);
				st = F;
				p++;
			} else if (c == '\n' || c == '\r') {
				ref_emit(r, fstart, 1);
				r->end = p;
				nl++;
				p++;
				if (c == '\r' && p < len && d[p] == '\n')
					p++;
				break;
			} else {
				if (!problem) {
					problem = "character after closing quote";
					problem_field = r->nf + 1;
				}
				st = J;
			}
			continue;
		}
		/* J */
		if (c == delim) {
			r->nf++;
			st = F;
			p++;
		} else if (c == '\n' || c == '\r') {
			r->end = p;
			nl++;
			p++;
			if (c == '\r' && p < len && d[p] == '\n')
				p++;
			break;
		} else {
			p++;
		}
	}
	*pos = p;
	*line += nl;
	r->next_line = *line;
	if (r->end - r->start > max_record) {
		r->too_long = 1;
		snprintf(r->msg, sizeof(r->msg), "record longer than %zu bytes",
			 max_record);
		r->rc = -1;
	} else if (problem) {
		snprintf(r->msg, sizeof(r->msg), "field %zu: %s",
			 problem_field, problem);
		r->rc = -1;
	} else if (r->nf == 1 && r->fl[0] == 0 && !r->fq[0]) {
		goto again;
	} else {
		r->rc = 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char delims[] = { ',', '\t', ';', '|' };
	static struct ref ref;
	struct csv_reader r;
	struct csv_field *f;
	struct mlk_error e = MLK_ERROR_INIT;
	struct feed feed;
	size_t nf, pos = 0;
	long long line = 1;
	int rc;

	if (size < 2 || size > 100000)
		return 0;
	feed.p = data + 2;
	feed.len = size - 2;
	feed.pos = 0;
	feed.seed = data[0];

	csv_init(&r, feed_read, &feed);
	r.delim = delims[data[0] & 3];
	if (data[1] >= 128)
		r.max_record = (size_t)(data[1] - 128) * 2;

	if (feed.len >= 3 && memcmp(feed.p, "\xEF\xBB\xBF", 3) == 0)
		pos = 3;
	do {
		rc = csv_next(&r, &f, &nf, &e);
		ref_next(feed.p, feed.len, &pos, &line, r.delim, r.max_record,
			 &ref);
		CHECK(rc == ref.rc);
		if (rc == 0)
			break;
		CHECK(r.line == ref.line);
		CHECK(r.next_line == ref.next_line);
		CHECK(r.offset == ref.start);
		if (ref.too_long) {
			CHECK(r.raw_len == 0);
		} else {
			CHECK(r.raw_len == ref.end - ref.start);
			CHECK(memcmp(r.raw, feed.p + ref.start, r.raw_len) == 0);
		}
		if (rc < 0) {
			CHECK(e.status == MLK_USAGE);
			CHECK(e.line == ref.line);
			CHECK(strcmp(e.msg, ref.msg) == 0);
			continue;
		}
		CHECK(nf == ref.nf);
		for (size_t i = 0; i < nf; i++) {
			CHECK(f[i].len == ref.fl[i]);
			CHECK(f[i].quoted == ref.fq[i]);
			CHECK(f[i].p[f[i].len] == '\0');
			CHECK(memcmp(f[i].p, ref.out + ref.fs[i], f[i].len) == 0);
		}
	} while (rc != 0);
	/* End of input is sticky. */
	CHECK(csv_next(&r, &f, &nf, &e) == 0);
	csv_release(&r);
	return 0;
}
