/*
 * fuzz-dicomwrite — libFuzzer target for common/dicomwrite.c and
 * common/dicomdeid.c: any bytes as a DICOM file, de-identified under the
 * options the first input byte chooses.  The writer must never crash,
 * leak or read out of bounds; when it succeeds, its output must read
 * back through common/dicom.c and hold no element of an odd group (no
 * private attribute survives) outside sequences kept on purpose.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dicom.h"
#include "dicomdeid.h"
#include "dicomwrite.h"
#include "banned.h"

static void tok(void *ctx, const char *v, size_t n,
		char out[DD_TOKEN_LEN + 1])
{
	(void)ctx;
	unsigned h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)v[i]) * 16777619u;
	snprintf(out, DD_TOKEN_LEN + 1, "%08x-0000-8000-8000-%012x", h, h);
}

static int shift(void *ctx, const char *pid, size_t n)
{
	(void)ctx;
	return n ? (int)((unsigned char)pid[0] % 61) - 30 : 0;
}

static int check_event(void *ctx, enum dicom_event ev,
		       const struct dicom_elem *el)
{
	(void)ctx;
	if ((ev == DICOM_ELEMENT || ev == DICOM_SEQ_BEGIN) && !el->meta &&
	    (el->tag >> 16) & 1)
		abort();   /* a private attribute got through */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct dd_params p;
	memset(&p, 0, sizeof p);
	p.options = data[0] & 0x3f;   /* the options that keep or shift */
	if (data[0] & 0x40)           /* and the three that clean */
		p.options |= DD_OPT_CLEANDESC | DD_OPT_CLEANSTRUCT |
			     DD_OPT_CLEANGRAPH;
	if ((p.options & DD_OPT_FULLDATES) && (p.options & DD_OPT_MODDATES))
		p.options &= ~(unsigned)DD_OPT_FULLDATES;
	p.accept_burned_in = data[0] >> 7;
	p.token = tok;
	struct mlk_error e = MLK_ERROR_INIT;
	struct dicomdeid *dd = dd_new(&p, &e);
	if (!dd)
		abort();
	FILE *in = tmpfile(), *out = tmpfile();
	if (!in || !out)
		abort();
	fwrite(data + 1, 1, size - 1, in);
	fflush(in);
	struct dicomwrite_params wp = { dd, shift, NULL };
	enum mlk_status st = dicomwrite_fd(&wp, fileno(in), "fuzz",
					   fileno(out), NULL, &e);
	if (st == MLK_OK) {
		struct dicom_visitor v = { NULL, check_event, 0 };
		struct mlk_error e2 = MLK_ERROR_INIT;
		if (dicom_read_fd(fileno(out), "out", &v, &e2) != 0)
			abort();   /* what we wrote must read back */
	}
	fclose(in);
	fclose(out);
	dd_free(dd);
	return 0;
}
