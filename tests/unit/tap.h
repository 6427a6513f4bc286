/*
 * tap.h — the little harness every unit test program (tests/unit) shares.
 *
 * check() prints "ok N - what" or "not ok N - what" (what scripts/run-tests
 * counts); tap_done() prints "N passed, N failed" and gives the exit
 * status.  struct mem with mem_read() is a read callback over a byte
 * string that hands out at most `chunk` bytes per call (and can fail once
 * `fail_at` is reached), because most reader bugs live where a record or
 * a line straddles two reads.  Included by exactly one .c per program.
 */
#ifndef MLK_TEST_TAP_H
#define MLK_TEST_TAP_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

static int ntests, nfailed;

static int check(int ok, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int check(int ok, const char *fmt, ...)
{
	va_list ap;

	ntests++;
	if (!ok)
		nfailed++;
	printf("%sok %d - ", ok ? "" : "not ", ntests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return ok;
}

static int tap_done(void)
{
	printf("%d passed, %d failed\n", ntests - nfailed, nfailed);
	return nfailed ? 1 : 0;
}

struct mem {
	const char *p;
	size_t len, pos, chunk;
	int fail_at;            /* fail once pos reaches this, if > 0 */
};

static ssize_t mem_read(void *ctx, void *p, size_t n)
{
	struct mem *m = ctx;

	if (m->fail_at > 0 && m->pos >= (size_t)m->fail_at) {
		errno = EIO;
		return -1;
	}
	if (n > m->chunk)
		n = m->chunk;
	if (n > m->len - m->pos)
		n = m->len - m->pos;
	if (n)
		memcpy(p, m->p + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

#endif
