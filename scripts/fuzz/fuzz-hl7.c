/*
 * fuzz-hl7 — libFuzzer target for common/hl7.c.
 *
 * The first input byte seeds the read sizes, the second (when >= 128)
 * sets a small max_piece; the rest is the HL7 text.  The text is framed
 * twice, once handed over whole and once in short, uneven reads, and both
 * must give the same pieces (kind, line, offset, bytes equal to the
 * input's at that offset, in increasing order).  Every message piece, and
 * the whole text as one message, is parsed; whatever parses must write a
 * record that the record parser accepts as one valid JSON object (so
 * valid UTF-8), with a non-empty message type.  Any difference aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl7.h"
#include "record.h"
#include "banned.h"

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); \
	abort(); } } while (0)

struct feed {
	const uint8_t *p;
	size_t len, pos;
	uint32_t seed;
	int whole;
};

static ssize_t feed_read(void *ctx, void *p, size_t n)
{
	struct feed *f = ctx;
	size_t want = n;

	if (!f->whole) {
		f->seed = f->seed * 1103515245u + 12345u;
		want = 1 + (f->seed >> 16) % 97;
	}
	if (want > n)
		want = n;
	if (want > f->len - f->pos)
		want = f->len - f->pos;
	if (want)
		memcpy(p, f->p + f->pos, want);
	f->pos += want;
	return (ssize_t)want;
}

struct seen {
	int kind;
	long long line;
	unsigned long long offset;
	size_t n;
};

static void check_message(struct hl7_msg *m, struct rec *r, struct buf *b,
			  const char *p, size_t n)
{
	struct mlk_error e = MLK_ERROR_INIT;
	if (hl7_parse(m, p, n, 1, &e) != MLK_OK) {
		CHECK(e.status == MLK_PARTIAL && e.msg[0]);
		return;
	}
	size_t tl = 0;
	CHECK(hl7_sum_get(m, HL7_TYPE, &tl) && tl > 0);
	buf_reset(b);
	hl7_write(m, b);
	buf_addch(b, '}');
	struct mlk_error je = MLK_ERROR_INIT;
	if (rec_parse(r, b->data, b->len, &je) != MLK_OK) {
		fprintf(stderr, "invalid record: %s\n%s\n", je.msg, b->data);
		abort();
	}
	CHECK(rec_type(r, 0) == REC_OBJECT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct seen seen[4096];
	size_t nseen = 0;
	struct hl7_msg m;
	struct rec r;
	struct buf b = BUF_INIT;

	if (size < 2 || size > 100000)
		return 0;
	const char *text = (const char *)data + 2;
	size_t len = size - 2;
	size_t max = data[1] >= 128 ? (size_t)(data[1] - 128) * 3 + 1 : 0;

	hl7_msg_init(&m);
	rec_init(&r);
	for (int pass = 0; pass < 2; pass++) {
		struct feed feed = { data + 2, len, 0, data[0], pass == 0 };
		struct hl7_reader rd;
		struct hl7_piece pc;
		struct mlk_error e = MLK_ERROR_INIT;
		unsigned long long last_end = 0;
		size_t k = 0;
		int got;
		hl7_reader_init(&rd, feed_read, &feed);
		if (max)
			rd.max_piece = max;
		while ((got = hl7_reader_next(&rd, &pc, &e)) > 0) {
			CHECK(pc.offset >= last_end);
			CHECK(pc.offset + pc.n <= len);
			CHECK(pc.line >= 1);
			last_end = pc.offset + pc.n;
			if (pc.kind == HL7_TOOLONG) {
				CHECK(max && !pc.p);
			} else {
				CHECK(pc.n > 0);
				CHECK(!memcmp(pc.p, text + pc.offset, pc.n));
			}
			if (pc.kind == HL7_MESSAGE) {
				const char *q = pc.p;
				while (*q == 0x0b)
					q++;
				CHECK(!memcmp(q, "MSH", 3));
				if (pass == 0)
					check_message(&m, &r, &b, pc.p, pc.n);
			}
			if (!max) {
				/* Reads of any size frame alike. */
				if (pass == 0 && nseen < 4096) {
					seen[nseen].kind = (int)pc.kind;
					seen[nseen].line = pc.line;
					seen[nseen].offset = pc.offset;
					seen[nseen].n = pc.n;
					nseen++;
				} else if (pass == 1 && k < nseen) {
					CHECK(seen[k].kind == (int)pc.kind);
					CHECK(seen[k].line == pc.line);
					CHECK(seen[k].offset == pc.offset);
					CHECK(seen[k].n == pc.n);
				}
			}
			k++;
		}
		CHECK(got == 0);
		if (!max && pass == 1)
			CHECK(k == nseen || nseen == 4096);
		hl7_reader_release(&rd);
	}
	check_message(&m, &r, &b, text, len);
	rec_release(&r);
	hl7_msg_release(&m);
	buf_release(&b);
	return 0;
}
