/*
 * fuzz-expect — libFuzzer target for common/expect.c.
 *
 * The input is split at its first NUL byte: before it, an expectations
 * file (YAML); after it, NDJSON records.  When the YAML does not load, the
 * records are checked against a fixed set that uses every kind needing no
 * lake (paths with [*] and [N], where, dates, ages, patterns, unique with
 * a tiny in-memory limit so keys spill, references to the same stream).
 * The report must be one line that starts '{' and ends "]}\n"; the
 * sanitizers do the rest.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "expect.h"
#include "banned.h"

static const char fixed[] =
"expectations:\n"
"  - {name: r, kind: required, field: 'a.b[*].c', where: {t: x}}\n"
"  - {name: t, kind: type, field: d, type: datetime}\n"
"  - {name: n, kind: null_share, field: e, max: 0.5}\n"
"  - {name: s, kind: in_set, field: 'f[0]', values: [a, b, '1']}\n"
"  - {name: g, kind: range, field: g, min: -1, max: 1e9}\n"
"  - {name: h, kind: range, field: d, min: '1900-01-01', max: now}\n"
"  - {name: i, kind: age, field: d}\n"
"  - {name: p, kind: pattern, field: p, pattern: '^[A-Z][0-9]+(\\.[0-9])?$'}\n"
"  - {name: u, kind: unique, fields: [k, t]}\n"
"  - {name: f, kind: references, field: ref, target: {field: id,\n"
"     prefix: P/, where: {t: y}}}\n"
"  - {name: w, kind: freshness, field: d, days: 30, severity: warning}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t ylen = nul ? (size_t)(nul - data) : 0;
	const char *recs = (const char *)data + (nul ? ylen + 1 : 0);
	size_t rlen = size - (size_t)(recs - (const char *)data);
	struct mlk_error e = MLK_ERROR_INIT;
	struct expect_set *s = NULL;
	setenv("MLK_TEST_UNIQUE_RAM", "3", 1);
	if (!nul || expect_load_mem("fuzz", (const char *)data, ylen, &s,
				    &e) != MLK_OK) {
		mlk_error_clear(&e);
		if (expect_load_mem("fixed", fixed, sizeof fixed - 1, &s, &e) !=
		    MLK_OK)
			abort();
	}
	struct expect_env env = { NULL, 1780272000, NULL, NULL, NULL };
	if (expect_prepare(s, &env, &e) == MLK_OK) {
		long long pos = 0;
		const char *p = recs, *end = recs + rlen;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
			expect_record(s, p, n, ++pos);
			p += n + (nl != NULL);
		}
		if (expect_finish(s, &e) == MLK_OK) {
			struct buf out = BUF_INIT;
			struct expect_summary sum;
			expect_report(s, "lines", NULL, &out, &sum);
			if (out.len < 4 || out.data[0] != '{' ||
			    strcmp(out.data + out.len - 3, "]}\n") ||
			    memchr(out.data, '\n', out.len - 1))
				abort();
			buf_release(&out);
		}
	}
	expect_free(s);
	return 0;
}
