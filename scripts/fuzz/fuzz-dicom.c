/*
 * fuzz-dicom — libFuzzer target for common/dicom.c.
 *
 * The input is a DICOM file (Part 10, or a bare data set).  It is walked
 * with a checking visitor (events nest properly, depth within the limit,
 * offsets inside the input, loaded values equal to the input's bytes at
 * their offset unless the stream is deflated), then turned into a record,
 * which must be one valid JSON object (so valid UTF-8) when the reader
 * says the file is fine.  Any difference aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom.h"
#include "record.h"
#include "banned.h"

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); \
	abort(); } } while (0)

struct walk {
	const uint8_t *p;
	size_t n;
	int open;           /* sequences + items open */
	int depth;
};

static int visit(void *ctx, enum dicom_event ev, const struct dicom_elem *el)
{
	struct walk *w = ctx;
	CHECK(el->depth >= 0 && el->depth <= DICOM_MAX_DEPTH);
	int deflated = el->info->syntax == DICOM_DEFLATED_LE && !el->meta;
	if (!deflated)
		CHECK(el->offset <= w->n);
	switch (ev) {
	case DICOM_SEQ_BEGIN:
	case DICOM_ITEM_BEGIN:
		w->open++;
		break;
	case DICOM_SEQ_END:
	case DICOM_ITEM_END:
		CHECK(w->open > 0);
		w->open--;
		break;
	case DICOM_ELEMENT:
		if (el->value && !deflated) {
			CHECK(el->offset + el->len <= w->n);
			CHECK(!memcmp(el->value, w->p + el->offset, el->len));
		}
		if (el->value)
			CHECK(el->len <= DICOM_MAX_VALUE);
		break;
	default:
		break;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct walk w = { data, size, 0, 0 };
	struct dicom_visitor v = { &w, visit, 64 };
	struct mlk_error e = MLK_ERROR_INIT;
	int rc = dicom_read_mem(data, size, "fuzz", &v, &e);
	CHECK(rc == MLK_OK || rc == MLK_PARTIAL);
	if (rc == MLK_OK)
		CHECK(w.open == 0);

	struct dicom_doc d;
	rc = dicom_json_mem(data, size, "fuzz", &d, &e);
	CHECK(rc == MLK_OK || rc == MLK_PARTIAL);
	if (rc == MLK_OK) {
		struct buf b = BUF_INIT;
		buf_addch(&b, '{');
		buf_add(&b, d.json.data, d.json.len);
		buf_addch(&b, '}');
		struct rec r;
		struct mlk_error je = MLK_ERROR_INIT;
		rec_init(&r);
		if (rec_parse(&r, b.data, b.len, &je) != MLK_OK) {
			fprintf(stderr, "invalid record: %s\n%s\n", je.msg,
				b.data);
			abort();
		}
		rec_release(&r);
		buf_release(&b);
	}
	dicom_doc_release(&d);
	return 0;
}
