/*
 * fuzz-scrub — libFuzzer target for common/scrub.c.
 *
 * Input: two bytes choosing the detectors (low 10 bits, all of them when
 * the top bit is set), then known identifiers, one per line, up to the
 * first NUL byte (their kinds cycle through NAME, ADDRESS, ID and an
 * invalid kind), then the text.  Checks, aborting on any failure:
 *   - scrubbing is idempotent: scrub(scrub(x)) == scrub(x);
 *   - valid UTF-8 in gives valid UTF-8 out;
 *   - no replacement means the text is unchanged;
 *   - forgetting and re-adding the known set gives the same output;
 *   - text appended after existing bytes of out leaves them alone.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scrub.h"
#include "banned.h"

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); \
	abort(); } } while (0)

/* Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
static int utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], need, min, cp;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1; min = 0x80; cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2; min = 0x800; cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3; min = 0x10000; cp = c & 0x07;
		} else {
			return 0;
		}
		if (n - i <= need)
			return 0;
		for (unsigned k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

static void add_known(struct scrub *s, const uint8_t *p, size_t n)
{
	static const char *const kinds[] = { "NAME", "ADDRESS", "ID", "bad" };
	size_t start = 0, k = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i < n && p[i] != '\n')
			continue;
		scrub_add_known(s, (const char *)p + start, i - start,
				kinds[k++ % 4]);
		start = i + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf once = BUF_INIT, twice = BUF_INIT, again = BUF_INIT;
	const uint8_t *known, *text, *nul;
	size_t nknown, ntext, count;
	unsigned mask;
	struct scrub *s;

	if (size < 2 || size > 65536)
		return 0;
	mask = data[1] & 0x80 ? SCRUB_ALL
			      : ((unsigned)(data[1] & 3) << 8 | data[0]);
	known = data + 2;
	nul = memchr(known, '\0', size - 2);
	if (nul) {
		nknown = (size_t)(nul - known);
		text = nul + 1;
		ntext = size - 2 - nknown - 1;
	} else {
		nknown = 0;
		text = known;
		ntext = size - 2;
	}

	s = scrub_new(mask);
	add_known(s, known, nknown);
	count = scrub_text(s, (const char *)text, ntext, &once);
	CHECK(once.len == 0 || once.data[once.len] == '\0');
	if (count == 0)
		CHECK(once.len == ntext &&
		      (ntext == 0 || memcmp(once.data, text, ntext) == 0));
	if (utf8_ok(text, ntext))
		CHECK(utf8_ok((const unsigned char *)once.data, once.len));

	scrub_text(s, once.data, once.len, &twice);
	if (twice.len != once.len ||
	    (once.len && memcmp(once.data, twice.data, once.len) != 0)) {
		fputs("not idempotent:\n once: ", stderr);
		if (once.len)
			fwrite(once.data, 1, once.len, stderr);
		fputs("\ntwice: ", stderr);
		if (twice.len)
			fwrite(twice.data, 1, twice.len, stderr);
		fputc('\n', stderr);
		abort();
	}

	scrub_clear_known(s);
	add_known(s, known, nknown);
	buf_addstr(&again, "ok:");
	scrub_text(s, (const char *)text, ntext, &again);
	CHECK(again.len == once.len + 3 && memcmp(again.data, "ok:", 3) == 0);
	CHECK(once.len == 0 || memcmp(again.data + 3, once.data, once.len) == 0);

	scrub_free(s);
	buf_release(&once);
	buf_release(&twice);
	buf_release(&again);
	return 0;
}
