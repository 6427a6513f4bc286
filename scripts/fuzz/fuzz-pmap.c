/*
 * fuzz-pmap — libFuzzer target for pmap_run() in common/pmap.c.
 *
 * Input: four header bytes, then a small program for the stream.
 *
 *   byte 0   bits 0-2 read size class, bit 3 read error, bit 4 reduce
 *            stops early, bits 5-7 max_line (see max_lines[])
 *   byte 1   seed for the read sizes; F8 to FF make a big stream (below)
 *   byte 2-3 where the read error happens (a fraction of the stream), or
 *            after how many items reduce stops
 *   rest     stream bytes, except: FE k c is k copies of c and FF k c is
 *            k * 16 copies of c, or k * 4096 in a big stream (so a few
 *            bytes can make lines longer than pmap's 1 MiB blocks); FE 00
 *            and FF 00 are FE and FF
 *
 * The stream is read through a callback returning short, data-driven
 * chunks, and run with threads = 2 and threads = 0.  map copies each line
 * into out->data (its offset in keep and, as text, in aux); reduce appends
 * every item to a log.  The two logs must be identical, and equal to what
 * a plain serial splitter finds: lines split at '\n', blank or
 * whitespace-only lines skipped, a UTF-8 byte-order mark dropped from
 * line 1, a line longer than max_line (counted as read, without its '\n')
 * reported as one reject item whatever it holds, and after a read error
 * only the lines whose '\n' was read.
 *
 * The corpus files named regress-max-line-* are lines over max_line that
 * share a block with a newline: pmap_run() hands those to map whole, so
 * they fail until it checks the length of every line, not only of a block
 * without a newline.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmap.h"
#include "banned.h"

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); \
	abort(); } } while (0)

/* Big streams are slow (pmap's scan for the last newline of a block is
 * instrumented per byte), so they are the exception. */
#define MAX_STREAM ((size_t)5 << 19)
#define MAX_SMALL ((size_t)64 << 10)
#define DEFAULT_MAX_LINE ((size_t)256 << 20)

/* ---- the stream ------------------------------------------------------ */

struct feed {
	const unsigned char *p;
	size_t len, pos;
	size_t fail_at;         /* read error once pos reaches it; or len+1 */
	size_t least, cls;      /* reads are least + 1 to least + cls */
	uint32_t seed;
	int failed;
};

static ssize_t feed_read(void *ctx, void *p, size_t n)
{
	struct feed *f = ctx;
	size_t want;

	if (f->pos >= f->fail_at) {
		f->failed = 1;
		errno = EIO;
		return -1;
	}
	f->seed = f->seed * 1103515245u + 12345u;
	want = f->least + 1 + (size_t)(f->seed >> 8) % f->cls;
	if (want > n)
		want = n;
	if (want > f->len - f->pos)
		want = f->len - f->pos;
	if (f->fail_at < f->len && want > f->fail_at - f->pos)
		want = f->fail_at - f->pos;
	memcpy(p, f->p + f->pos, want);
	f->pos += want;
	return (ssize_t)want;
}

static void expand(const uint8_t *d, size_t n, int big, struct buf *out)
{
	size_t max = big ? MAX_STREAM : MAX_SMALL;
	for (size_t i = 0; i < n && out->len < max; i++) {
		if ((d[i] != 0xfe && d[i] != 0xff) || i + 1 >= n) {
			buf_addch(out, (char)d[i]);
			continue;
		}
		size_t k = d[i + 1];
		if (!k || i + 2 >= n) {
			buf_addch(out, (char)d[i]);
			i++;
			continue;
		}
		if (d[i] == 0xff)
			k *= big ? 4096 : 16;
		if (k > max - out->len)
			k = max - out->len;
		buf_grow(out, k);
		memset(out->data + out->len, d[i + 2], k);
		out->len += k;
		out->data[out->len] = '\0';
		i += 2;
	}
}

/* ---- the log: one entry per item, in order -------------------------- */

struct entry {
	int kind;               /* enum pmap_kind */
	int has_raw;
	long long line;
	unsigned long long offset;
	size_t off, len;        /* bytes in log.bytes: line, or reason */
};

struct log {
	struct entry *e;
	size_t n, alloc;
	struct buf bytes;
	size_t stop_after;      /* reduce returns MLK_DENIED at this count */
	int stopped, reduced_after_stop;
};

static void log_add(struct log *l, int kind, int has_raw, long long line,
		    unsigned long long offset, const char *p, size_t n)
{
	if (l->n == l->alloc) {
		l->alloc = l->alloc ? 2 * l->alloc : 64;
		l->e = realloc(l->e, l->alloc * sizeof *l->e);
		CHECK(l->e != NULL);
	}
	struct entry *e = &l->e[l->n++];
	e->kind = kind;
	e->has_raw = has_raw;
	e->line = line;
	e->offset = offset;
	e->off = l->bytes.len;
	e->len = n;
	buf_add(&l->bytes, p, n);
}

static void log_release(struct log *l)
{
	free(l->e);
	buf_release(&l->bytes);
	memset(l, 0, sizeof *l);
}

/* ---- map and reduce -------------------------------------------------- */

static void *tls_new(void *ctx)
{
	(void)ctx;
	int *t = malloc(sizeof *t);
	CHECK(t != NULL);
	*t = 0x5eed;
	return t;
}

static void tls_free(void *ctx, void *tls)
{
	(void)ctx;
	CHECK(tls != NULL && *(int *)tls == 0x5eed);
	free(tls);
}

static void map(void *ctx, void *tls, const char *line, size_t len,
		long long lineno, unsigned long long offset,
		struct pmap_out *out)
{
	(void)ctx;
	CHECK(tls != NULL && *(int *)tls == 0x5eed);
	CHECK(lineno >= 1);
	CHECK(!memchr(line, '\n', len));
	size_t off = out->data.len, aux = out->aux.len;
	buf_add(&out->data, line, len);
	buf_addf(&out->aux, "%llu", offset);
	pmap_add_record(out, off, aux, lineno, (size_t)offset);
}

static int reduce(void *ctx, const struct pmap_out *out)
{
	struct log *l = ctx;

	if (l->stopped)
		l->reduced_after_stop = 1;
	for (size_t i = 0; i < out->n; i++) {
		const struct pmap_item *it = &out->items[i];
		CHECK(it->kind == PMAP_RECORD || it->kind == PMAP_REJECT);
		CHECK(it->aux_off + it->aux_len <= out->aux.len);
		if (it->kind == PMAP_RECORD) {
			char num[32];
			CHECK(it->off + it->len <= out->data.len);
			snprintf(num, sizeof num, "%zu", it->keep);
			CHECK(it->aux_len == strlen(num) &&
			      !memcmp(out->aux.data + it->aux_off, num,
				      it->aux_len));
			log_add(l, PMAP_RECORD, 0, it->line, it->keep,
				out->data.data + it->off, it->len);
		} else {
			CHECK(it->raw_off + it->raw_len <= out->aux.len);
			log_add(l, PMAP_REJECT, it->has_raw, it->line,
				it->offset, out->aux.data + it->aux_off,
				it->aux_len);
		}
	}
	if (l->stop_after && l->n >= l->stop_after) {
		l->stopped = 1;
		return MLK_DENIED;
	}
	return 0;
}

/* ---- the serial reference -------------------------------------------- */

static int blank(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return 0;
	return 1;
}

/* Returns the offset of an unfinished last line (after a read error), or
 * n when there is none. */
static size_t serial(const unsigned char *p, size_t n, int complete_only,
		     size_t max_line, struct log *l, long long *tail_line)
{
	char why[80];
	size_t pos = 0;
	long long line = 1;

	snprintf(why, sizeof why, "line longer than %zu bytes", max_line);
	while (pos < n) {
		const unsigned char *nl = memchr(p + pos, '\n', n - pos);
		size_t end = nl ? (size_t)(nl - p) : n;
		if (!nl && complete_only) {
			*tail_line = line;
			return pos;
		}
		if (end - pos > max_line) {
			log_add(l, PMAP_REJECT, 0, line, pos, why,
				strlen(why));
		} else {
			size_t t = pos;
			if (line == 1 && end - t >= 3 &&
			    !memcmp(p + t, "\xef\xbb\xbf", 3))
				t += 3;
			if (!blank(p + t, end - t))
				log_add(l, PMAP_RECORD, 0, line, pos,
					(const char *)p + t, end - t);
		}
		line++;
		pos = nl ? end + 1 : n;
	}
	*tail_line = line;
	return n;
}

static void show(const char *what, const struct log *l, size_t i)
{
	if (i >= l->n) {
		fprintf(stderr, "  %s: (no item %zu of %zu)\n", what, i, l->n);
		return;
	}
	const struct entry *e = &l->e[i];
	fprintf(stderr, "  %s: item %zu: %s line %lld offset %llu, %zu bytes",
		what, i, e->kind == PMAP_RECORD ? "record" : "reject",
		e->line, e->offset, e->len);
	if (e->kind == PMAP_REJECT || e->len <= 80)
		fprintf(stderr, " '%.*s'", (int)(e->len > 80 ? 80 : e->len),
			l->bytes.data + e->off);
	fputc('\n', stderr);
}

static int same_entry(const struct log *a, size_t i, const struct log *b,
		      size_t j)
{
	const struct entry *x = &a->e[i], *y = &b->e[j];
	return x->kind == y->kind && x->has_raw == y->has_raw &&
	       x->line == y->line && x->offset == y->offset &&
	       x->len == y->len &&
	       !memcmp(a->bytes.data + x->off, b->bytes.data + y->off, x->len);
}

/* The first n items of a and b are the same. */
static void compare(const char *an, const struct log *a, const char *bn,
		    const struct log *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i < a->n && i < b->n && same_entry(a, i, b, i))
			continue;
		fprintf(stderr, "%s and %s differ at item %zu:\n", an, bn, i);
		show(an, a, i);
		show(bn, b, i);
		CHECK(0);
	}
}

/* ---- the target ------------------------------------------------------ */

static enum mlk_status run(const struct buf *s, const uint8_t *hdr,
			   int threads, size_t max_line, struct log *l,
			   struct mlk_error *e)
{
	static const size_t classes[] = {
		1, 3, 17, 97, 1000, 4096, 65536, (size_t)3 << 20,
	};
	struct pmap_ops ops = { l, tls_new, tls_free, map, reduce };
	struct feed f;

	memset(&f, 0, sizeof f);
	f.p = (const unsigned char *)s->data;
	f.len = s->len;
	f.seed = hdr[1] & 0x3f;
	f.cls = classes[hdr[0] & 7];
	/* pmap scans a whole block for its last newline after every read
	 * that extends a line longer than a block, so big streams read in
	 * small pieces take minutes under instrumentation. */
	if (s->len > MAX_SMALL)
		f.least = (size_t)256 << 10;
	f.fail_at = s->len + 1;
	if (hdr[0] & 8)
		f.fail_at = (size_t)((unsigned long long)s->len *
				     (size_t)(hdr[2] << 8 | hdr[3]) / 65535);
	enum mlk_status st = pmap_run(feed_read, &f, threads, max_line, &ops,
				      e);
	if (st == MLK_SYSTEM)
		CHECK(f.failed);
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t max_lines[] = {
		64, 64, 64, 1, 0, ((size_t)1 << 20) - 1, ((size_t)1 << 20) + 1,
		(size_t)3 << 19,
	};
	struct buf s = BUF_INIT;
	struct log par, one, ref;
	struct mlk_error e2 = MLK_ERROR_INIT, e0 = MLK_ERROR_INIT;

	if (size < 4 || size > 65536)
		return 0;
	memset(&par, 0, sizeof par);
	memset(&one, 0, sizeof one);
	memset(&ref, 0, sizeof ref);
	expand(data + 4, size - 4, data[1] >= 0xf8, &s);
	if (!s.data)
		buf_addstr(&s, "");

	size_t max_line = max_lines[data[0] >> 5];
	size_t eff = max_line ? max_line : DEFAULT_MAX_LINE;
	int fail = (data[0] & 8) != 0, stop = (data[0] & 16) != 0;
	if (stop)
		par.stop_after = one.stop_after =
			1 + (size_t)(data[2] << 8 | data[3]) % 64;

	enum mlk_status st2 = run(&s, data, 2, max_line, &par, &e2);
	enum mlk_status st0 = run(&s, data, 0, max_line, &one, &e0);

	/* Threads or not, the same items in the same order, the same
	 * outcome. */
	CHECK(st2 == st0);
	CHECK(par.n == one.n);
	compare("threads=2", &par, "threads=0", &one, par.n);
	CHECK(!par.reduced_after_stop && !one.reduced_after_stop);
	CHECK(st0 == MLK_OK || st0 == MLK_SYSTEM || st0 == MLK_DENIED);
	if (fail && !stop)
		CHECK(st0 == MLK_SYSTEM);
	if (!fail && !stop)
		CHECK(st0 == MLK_OK);
	if (st0 == MLK_SYSTEM) {
		CHECK(fail);
		CHECK(e0.status == MLK_SYSTEM && e2.status == MLK_SYSTEM);
		CHECK(!strncmp(e0.msg, "read error", 10));
	}
	if (st0 == MLK_DENIED)
		CHECK(stop && one.stopped && one.n >= one.stop_after);

	/* And what the serial splitter finds in what was read. */
	size_t avail = s.len;
	if (fail) {
		size_t v = (size_t)(data[2] << 8 | data[3]);
		avail = (size_t)((unsigned long long)s.len * v / 65535);
	}
	long long tail_line;
	size_t tail = serial((const unsigned char *)s.data, avail, fail, eff,
			     &ref, &tail_line);
	if (st0 == MLK_DENIED) {
		/* Stopped early: a prefix, ending with a whole block. */
		CHECK(one.n <= ref.n);
		compare("threads=0", &one, "serial", &ref, one.n);
	} else {
		size_t n = one.n;
		/* After a read error, an unfinished line may already have
		 * been reported as too long. */
		if (tail < avail && n == ref.n + 1) {
			const struct entry *x = &one.e[n - 1];
			CHECK(x->kind == PMAP_REJECT && x->line == tail_line &&
			      x->offset == tail && avail - tail > eff);
			n--;
		}
		if (n != ref.n) {
			fprintf(stderr, "threads=0 has %zu items, serial %zu\n",
				n, ref.n);
			size_t i = 0;
			while (i < n && i < ref.n && same_entry(&one, i, &ref, i))
				i++;
			show("threads=0", &one, i);
			show("serial", &ref, i);
			CHECK(0);
		}
		compare("threads=0", &one, "serial", &ref, n);
	}
	log_release(&par);
	log_release(&one);
	log_release(&ref);
	buf_release(&s);
	return 0;
}
