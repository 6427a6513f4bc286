/*
 * fuzz-vocab — libFuzzer target for vocab_apply() in common/vocab.c.
 *
 * The input is the text of a record as mlk-ingest hands it over (a JSON
 * object, possibly without its closing brace), or any bytes at all.  A
 * fixed vocabulary controls two fields.  Checked: nothing is read out of
 * bounds; when nothing is replaced the output is the input, byte for
 * byte; and applying the vocabulary again replaces nothing (preferred
 * terms are their own preferred terms).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "vocab.h"
#include "yamltree.h"
#include "banned.h"

static const char text[] =
	"fields: {modality: modality, dept: terms}\n"
	"terms: {cardiology: [cardiac, Heart]}\n"
	"vocabularies:\n"
	"  modality: {CT: [thoracic CT, ct chest], MR: [MRI, \"m\\\"r\"]}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vocab v;
	static int loaded;
	if (!loaded) {
		struct ynode *y = NULL;
		struct mlk_error e = MLK_ERROR_INIT;
		if (ynode_load_mem("vocab", text, sizeof text - 1, &y, &e) !=
		    MLK_OK || vocab_from_tree(y, "vocab", &v, &e) != MLK_OK)
			abort();
		ynode_free(y);
		loaded = 1;
	}
	/* An exact-size copy, so reading past the end is caught. */
	char *in = malloc(size ? size : 1);
	if (size)
		memcpy(in, data, size);
	struct buf a = BUF_INIT, b = BUF_INIT;
	size_t n = vocab_apply(&v, in, size, &a);
	if (!n && (a.len != size || (size && memcmp(a.data, in, size))))
		abort();
	if (n && vocab_apply(&v, a.data, a.len, &b) != 0)
		abort();
	buf_release(&a);
	buf_release(&b);
	free(in);
	return 0;
}
