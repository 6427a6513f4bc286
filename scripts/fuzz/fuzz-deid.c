/*
 * fuzz-deid — libFuzzer target for the de-identification engine
 * (common/deid.c) under the built-in profiles.
 *
 * The input is a small NDJSON stream.  Every profile turns it into
 * records that must each be valid JSON objects (rec_parse) carrying
 * _mlk.deid; a line that is not a record must be rejected, never passed
 * on.  The run goes through a regular file, so the patient scan (pass 1)
 * is fuzzed too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "deid.h"
#include "profile.h"
#include "record.h"
#include "banned.h"

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); \
	abort(); } } while (0)

static struct buf out;

static int w(void *ctx, const char *p, size_t n)
{
	(void)ctx;
	buf_add(&out, p, n);
	return 0;
}

static void rj(void *ctx, long long line, const char *reason)
{
	(void)ctx;
	CHECK(line > 0 && reason && *reason);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct profile prof[3];
	static int loaded;
	static const char *const names[] = { "safe-harbor", "limited-dataset",
					     "research-pseudonymized" };
	if (!loaded) {
		for (int i = 0; i < 3; i++) {
			struct mlk_error e = MLK_ERROR_INIT;
			CHECK(profile_load(names[i], NULL, &prof[i], &e) ==
			      MLK_OK);
		}
		loaded = 1;
	}
	if (size > 1 << 16)
		return 0;
	FILE *f = tmpfile();
	CHECK(f);
	CHECK(fwrite(data, 1, size, f) == size);
	fflush(f);
	uint8_t key[MLK_KEY_LEN] = { 1, 2, 3 };
	for (int i = 0; i < 3; i++) {
		struct deid_params p = { .prof = &prof[i], .project = "fz",
					 .seed = 1, .ref_year = 2026,
					 .key_id = "k-0" };
		struct mlk_error e = MLK_ERROR_INIT;
		struct deid *d = deid_new(&p, key, &e);
		CHECK(d);
		rewind(f);
		buf_reset(&out);
		struct deid_sink s = { NULL, w, rj, NULL };
		enum mlk_status st = deid_run(d, fileno(f), 0, &s, &e);
		CHECK(st == MLK_OK);
		/* every output line is a record with its stamp */
		struct rec r;
		rec_init(&r);
		const char *q = out.data, *end = out.data + out.len;
		unsigned long long n = 0;
		while (q && q < end) {
			const char *nl = memchr(q, '\n', (size_t)(end - q));
			CHECK(nl);
			CHECK(rec_parse(&r, q, (size_t)(nl - q), &e) == MLK_OK);
			CHECK(rec_path(&r, 0, "_mlk.deid.profile") > 0);
			q = nl + 1;
			n++;
		}
		CHECK(n == deid_counts(d)->records);
		rec_release(&r);
		deid_free(d);
	}
	fclose(f);
	return 0;
}
