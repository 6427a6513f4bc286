/*
 * dicom-test — common/dicom.c on data sets built here byte by byte: each
 * transfer syntax (implicit VR LE, explicit VR LE and BE, deflated),
 * sequences and items of defined and undefined length, the depth limit,
 * odd lengths, encapsulated pixel data and bulk data (offsets, never
 * loaded), truncation at every byte, pipes, and the JSON Model values.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "dicom.h"
#include "tap.h"
#include "banned.h"

enum mode { IMPL, EXPL, BE };

static void put16(struct buf *b, unsigned v, int be)
{
	unsigned char c[2] = { (unsigned char)(be ? v >> 8 : v),
			       (unsigned char)(be ? v : v >> 8) };
	buf_add(b, c, 2);
}

static void put32(struct buf *b, uint32_t v, int be)
{
	put16(b, be ? v >> 16 : v & 0xffff, be);
	put16(b, be ? v & 0xffff : v >> 16, be);
}

static int is_long(const char *vr)
{
	return strstr("OB OD OF OL OV OW SQ SV UC UN UR UT UV", vr) != NULL;
}

/* One element header (and value when val is not NULL). */
static void el(struct buf *b, enum mode m, unsigned g, unsigned e,
	       const char *vr, const void *val, uint32_t len)
{
	int be = m == BE;
	put16(b, g, be);
	put16(b, e, be);
	if (m == IMPL || g == 0xfffe) {
		put32(b, len, be);
	} else {
		buf_add(b, vr, 2);
		if (is_long(vr)) {
			put16(b, 0, be);
			put32(b, len, be);
		} else {
			put16(b, len, be);
		}
	}
	if (val)
		buf_add(b, val, len);
}

static void str(struct buf *b, enum mode m, unsigned g, unsigned e,
		const char *vr, const char *s)
{
	el(b, m, g, e, vr, s, (uint32_t)strlen(s));
}

static void item(struct buf *b, enum mode m, uint32_t len)
{
	el(b, m, 0xfffe, 0xe000, "", NULL, len);
}

static void item_end(struct buf *b, enum mode m)
{
	el(b, m, 0xfffe, 0xe00d, "", NULL, 0);
}

static void seq_end(struct buf *b, enum mode m)
{
	el(b, m, 0xfffe, 0xe0dd, "", NULL, 0);
}

/* A Part 10 file: preamble (or not), meta group, data set. */
static void part10(struct buf *out, const char *ts, const struct buf *ds,
		   int preamble)
{
	buf_reset(out);
	if (preamble) {
		char z[128] = { 0 };
		buf_add(out, z, sizeof z);
	}
	buf_add(out, "DICM", 4);
	char uid[66];
	size_t n = strlen(ts);
	memcpy(uid, ts, n);
	if (n & 1)
		uid[n++] = 0;
	el(out, EXPL, 2, 1, "OB", "\0\1", 2);
	el(out, EXPL, 2, 0x10, "UI", uid, (uint32_t)n);
	buf_add(out, ds->data, ds->len);
}

/* The data set every syntax test uses. */
static void sample(struct buf *b, enum mode m)
{
	uint16_t rows = 512;
	unsigned char us[2] = { (unsigned char)(m == BE ? rows >> 8 : rows),
				(unsigned char)(m == BE ? rows : rows >> 8) };
	str(b, m, 8, 0x20, "DA", "20200131");
	str(b, m, 8, 0x60, "CS", "CT");
	str(b, m, 0x10, 0x10, "PN", "Doe^John=Ideo^G");
	str(b, m, 0x18, 0x15, "CS", "CHEST ");
	str(b, m, 0x20, 0x32, "DS", " +.5\\5.\\1e3\\abc\\-0");
	el(b, m, 0x28, 0x10, "US", us, 2);
}

static const char sample_json[] =
	"\"00080020\":{\"vr\":\"DA\",\"Value\":[\"20200131\"]},"
	"\"00080060\":{\"vr\":\"CS\",\"Value\":[\"CT\"]},"
	"\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"Doe^John\","
	"\"Ideographic\":\"Ideo^G\"}]},"
	"\"00180015\":{\"vr\":\"CS\",\"Value\":[\"CHEST\"]},"
	"\"00200032\":{\"vr\":\"DS\",\"Value\":[0.5,5,1e3,null,-0]},"
	"\"00280010\":{\"vr\":\"US\",\"Value\":[512]}";

static int json_of(const struct buf *f, struct buf *out)
{
	struct dicom_doc d;
	struct mlk_error e = MLK_ERROR_INIT;
	int rc = dicom_json_mem(f->data, f->len, "t.dcm", &d, &e);
	buf_reset(out);
	if (rc == MLK_OK)
		buf_add(out, d.json.data, d.json.len);
	else
		buf_addstr(out, e.msg);
	dicom_doc_release(&d);
	return rc;
}

static int has(const struct buf *b, const char *s)
{
	int ok = b->data && strstr(b->data, s);
	if (!ok)
		printf("# got: %s\n# want: %s\n", b->data ? b->data : "", s);
	return ok;
}

static void deflate_raw(const struct buf *in, struct buf *out)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	deflateInit2(&z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
	unsigned char o[65536];
	z.next_in = (unsigned char *)in->data;
	z.avail_in = (uInt)in->len;
	z.next_out = o;
	z.avail_out = sizeof o;
	deflate(&z, Z_FINISH);
	buf_add(out, o, sizeof o - z.avail_out);
	deflateEnd(&z);
}

static void test_syntaxes(void)
{
	struct buf ds = BUF_INIT, f = BUF_INIT, j = BUF_INIT;
	static const struct { const char *ts; enum mode m; const char *n; }
	t[] = {
		{ "1.2.840.10008.1.2", IMPL, "implicit VR LE" },
		{ "1.2.840.10008.1.2.1", EXPL, "explicit VR LE" },
		{ "1.2.840.10008.1.2.2", BE, "explicit VR BE" },
		{ "1.2.840.10008.1.2.4.50", EXPL, "JPEG (explicit LE)" },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		buf_reset(&ds);
		sample(&ds, t[i].m);
		part10(&f, t[i].ts, &ds, 1);
		check(json_of(&f, &j) == MLK_OK && has(&j, sample_json),
		      "%s: the JSON Model of every value", t[i].n);
		char want[100];
		snprintf(want, sizeof want, "\"transfer_syntax\":\"%s\"",
			 t[i].ts);
		check(has(&j, "\"modality\":\"CT\",\"date\":\"2020-01-31\","
			  "\"study_date\":\"20200131\",\"body_part\":\"CHEST\"")
		      && has(&j, want), "%s: convenience fields", t[i].n);
	}
	/* Deflated: the explicit LE data set, raw-deflated. */
	buf_reset(&ds);
	sample(&ds, EXPL);
	struct buf z = BUF_INIT;
	deflate_raw(&ds, &z);
	part10(&f, "1.2.840.10008.1.2.1.99", &z, 1);
	check(json_of(&f, &j) == MLK_OK && has(&j, sample_json),
	      "deflated explicit VR LE inflates as a stream");
	/* Truncated deflate stream. */
	f.len -= 3;
	check(json_of(&f, &j) == MLK_PARTIAL, "truncated deflate: refused");
	/* Without the preamble ("DICM" first) and a bare data set. */
	part10(&f, "1.2.840.10008.1.2", &ds, 0);
	buf_reset(&ds);
	sample(&ds, IMPL);
	part10(&f, "1.2.840.10008.1.2", &ds, 0);
	check(json_of(&f, &j) == MLK_OK && has(&j, sample_json),
	      "DICM without the preamble");
	check(json_of(&ds, &j) == MLK_OK && has(&j, sample_json) &&
	      has(&j, "\"transfer_syntax\":\"1.2.840.10008.1.2\""),
	      "bare implicit VR data set (no meta group)");
	buf_reset(&ds);
	sample(&ds, EXPL);
	check(json_of(&ds, &j) == MLK_OK && has(&j, sample_json),
	      "bare explicit VR data set");
	buf_release(&z);
	buf_release(&ds);
	buf_release(&f);
	buf_release(&j);
}

/* A visitor writing events as a trace. */
static int trace_ev(void *ctx, enum dicom_event ev, const struct dicom_elem *el)
{
	struct buf *b = ctx;
	if (el->meta)
		return 0;
	switch (ev) {
	case DICOM_ELEMENT:
		buf_addf(b, "E%08X/%s/d%d%s ", (unsigned)el->tag, el->vr,
			 el->depth, el->value ? "" : "/bulk");
		break;
	case DICOM_SEQ_BEGIN:
		buf_addf(b, "S%08X%s ", (unsigned)el->tag,
			 el->len == DICOM_UNDEFINED ? "u" : "");
		break;
	case DICOM_SEQ_END: buf_addstr(b, "/S "); break;
	case DICOM_ITEM_BEGIN:
		buf_addf(b, "I%u%s ", (unsigned)el->path[el->depth - 1].item,
			 el->len == DICOM_UNDEFINED ? "u" : "");
		break;
	case DICOM_ITEM_END: buf_addstr(b, "/I "); break;
	case DICOM_FRAGMENT:
		buf_addf(b, "F%u@%llu ", (unsigned)el->len, el->offset);
		break;
	case DICOM_DATASET_BEGIN: buf_addstr(b, "D "); break;
	}
	return 0;
}

static int trace(const struct buf *f, struct buf *out)
{
	struct mlk_error e = MLK_ERROR_INIT;
	buf_reset(out);
	struct dicom_visitor v = { out, trace_ev, 0 };
	int rc = dicom_read_mem(f->data, f->len, "t.dcm", &v, &e);
	if (rc)
		buf_addf(out, "ERR %s", e.msg);
	return rc;
}

static void test_sequences(void)
{
	struct buf ds = BUF_INIT, f = BUF_INIT, t = BUF_INIT, j = BUF_INIT;
	for (int m = IMPL; m <= BE; m++) {
		/* Undefined sequence, undefined item, holding a defined
		 * sequence with a defined item; then an empty sequence. */
		buf_reset(&ds);
		el(&ds, (enum mode)m, 8, 0x1140, "SQ", NULL, DICOM_UNDEFINED);
		item(&ds, (enum mode)m, DICOM_UNDEFINED);
		str(&ds, (enum mode)m, 8, 0x1150, "UI", "1.2\0");
		struct buf in = BUF_INIT;
		str(&in, (enum mode)m, 8, 0x100, "SH", "C1");
		struct buf it = BUF_INIT;
		item(&it, (enum mode)m, (uint32_t)in.len);
		buf_add(&it, in.data, in.len);
		el(&ds, (enum mode)m, 0x40, 0xa170, "SQ", NULL,
		   (uint32_t)it.len);
		buf_add(&ds, it.data, it.len);
		item_end(&ds, (enum mode)m);
		item(&ds, (enum mode)m, 0);
		seq_end(&ds, (enum mode)m);
		el(&ds, (enum mode)m, 8, 0x1111, "SQ", NULL, 0);
		str(&ds, (enum mode)m, 8, 0x60, "CS", "MR");
		part10(&f, m == IMPL ? "1.2.840.10008.1.2" : m == EXPL
			   ? "1.2.840.10008.1.2.1" : "1.2.840.10008.1.2.2",
		       &ds, 1);
		trace(&f, &t);
		if (!check(!strcmp(t.data, "D S00081140u I0u E00081150/UI/d1 "
			      "S0040A170 I0 E00080100/SH/d2 /I /S /I I1 /I /S "
			      "S00081111 /S E00080060/CS/d0 "),
		      "mode %d: sequence events and depths", m))
			printf("# %s\n", t.data);
		check(json_of(&f, &j) == MLK_OK &&
		      has(&j, "\"00081140\":{\"vr\":\"SQ\",\"Value\":[{"
			  "\"00081150\":{\"vr\":\"UI\",\"Value\":[\"1.2\"]},"
			  "\"0040A170\":{\"vr\":\"SQ\",\"Value\":[{"
			  "\"00080100\":{\"vr\":\"SH\",\"Value\":[\"C1\"]}}]}"
			  "},{}]},\"00081111\":{\"vr\":\"SQ\"},"),
		      "mode %d: sequences in the JSON Model", m);
		buf_release(&in);
		buf_release(&it);
	}
	/* UN of undefined length in explicit VR: implicit VR inside. */
	buf_reset(&ds);
	el(&ds, EXPL, 0x0009, 0x1010, "UN", NULL, DICOM_UNDEFINED);
	item(&ds, IMPL, DICOM_UNDEFINED);
	str(&ds, IMPL, 8, 0x60, "CS", "OT");
	item_end(&ds, IMPL);
	seq_end(&ds, IMPL);
	part10(&f, "1.2.840.10008.1.2.1", &ds, 1);
	check(json_of(&f, &j) == MLK_OK &&
	      has(&j, "\"00091010\":{\"vr\":\"SQ\",\"Value\":[{\"00080060\":"
		  "{\"vr\":\"CS\",\"Value\":[\"OT\"]}}]}"),
	      "UN of undefined length is an implicit VR sequence");
	/* Items that overrun their sequence. */
	buf_reset(&ds);
	el(&ds, EXPL, 8, 0x1140, "SQ", NULL, 10);
	item(&ds, EXPL, 12);
	str(&ds, EXPL, 8, 0x100, "SH", "ABCD");
	part10(&f, "1.2.840.10008.1.2.1", &ds, 1);
	check(json_of(&f, &j) == MLK_PARTIAL && has(&j, "overruns"),
	      "an item longer than its sequence is refused");
	buf_release(&ds);
	buf_release(&f);
	buf_release(&t);
	buf_release(&j);
}

static void nest(struct buf *ds, int levels)
{
	buf_reset(ds);
	for (int i = 0; i < levels; i++) {
		el(ds, EXPL, 8, 0x1140, "SQ", NULL, DICOM_UNDEFINED);
		item(ds, EXPL, DICOM_UNDEFINED);
	}
	str(ds, EXPL, 8, 0x60, "CS", "CT");
	for (int i = 0; i < levels; i++) {
		item_end(ds, EXPL);
		seq_end(ds, EXPL);
	}
}

static void test_depth(void)
{
	struct buf ds = BUF_INIT, f = BUF_INIT, j = BUF_INIT;
	nest(&ds, DICOM_MAX_DEPTH);
	part10(&f, "1.2.840.10008.1.2.1", &ds, 1);
	check(json_of(&f, &j) == MLK_OK, "%d nested sequences are read",
	      DICOM_MAX_DEPTH);
	nest(&ds, DICOM_MAX_DEPTH + 1);
	part10(&f, "1.2.840.10008.1.2.1", &ds, 1);
	check(json_of(&f, &j) == MLK_PARTIAL &&
	      has(&j, "sequences nested too deep"),
	      "%d nested sequences are refused", DICOM_MAX_DEPTH + 1);
	buf_release(&ds);
	buf_release(&f);
	buf_release(&j);
}

static void test_odd_and_text(void)
{
	struct buf ds = BUF_INIT, f = BUF_INIT, j = BUF_INIT;
	/* Odd lengths (not allowed, but written): read as they are. */
	str(&ds, EXPL, 8, 0x5, "CS", "ISO_IR 100");
	str(&ds, EXPL, 8, 0x70, "LO", "ABC");
	str(&ds, EXPL, 8, 0x80, "LO", "M\xfcller");
	str(&ds, EXPL, 8, 0x81, "ST", "two\r\nlines  ");
	str(&ds, EXPL, 8, 0x90, "PN", "");
	str(&ds, EXPL, 8, 0x1010, "SH", "A\\\\B");
	part10(&f, "1.2.840.10008.1.2.1", &ds, 1);
	check(json_of(&f, &j) == MLK_OK &&
	      has(&j, "\"00080070\":{\"vr\":\"LO\",\"Value\":[\"ABC\"]}"),
	      "odd value length");
	check(has(&j, "\"00080080\":{\"vr\":\"LO\",\"Value\":[\"M\xc3\xbcller\"]}"),
	      "ISO 8859-1 text becomes UTF-8");
	check(has(&j, "\"00080081\":{\"vr\":\"ST\",\"Value\":[\"two\\r\\nlines\"]}"),
	      "ST keeps inner spaces and breaks, trailing spaces trimmed");
	check(has(&j, "\"00080090\":{\"vr\":\"PN\"}"),
	      "an empty value has no Value member");
	check(has(&j, "\"00081010\":{\"vr\":\"SH\",\"Value\":[\"A\",null,\"B\"]}"),
	      "an empty one of several values is null");
	buf_reset(&ds);
	str(&ds, EXPL, 8, 0x5, "CS", "ISO_IR 192");
	str(&ds, EXPL, 8, 0x80, "LO", "\xc3\xa9t\xff");
	part10(&f, "1.2.840.10008.1.2.1", &ds, 1);
	check(json_of(&f, &j) == MLK_OK &&
	      has(&j, "\"Value\":[\"\xc3\xa9t\xef\xbf\xbd\"]"),
	      "ISO_IR 192: UTF-8 kept, bad bytes as U+FFFD");
	/* Binary numbers and tags. */
	buf_reset(&ds);
	float fl = 1.5f;
	double fd = -2.25;
	int16_t ss[2] = { -3, 4 };
	uint16_t at[2] = { 0x0010, 0x0020 };
	el(&ds, EXPL, 0x18, 0x1060, "FL", &fl, 4);
	el(&ds, EXPL, 0x18, 0x1061, "FD", &fd, 8);
	el(&ds, EXPL, 0x18, 0x1062, "SS", ss, 4);
	el(&ds, EXPL, 0x18, 0x1063, "AT", at, 4);
	el(&ds, EXPL, 0x18, 0x1064, "OB", "\x01\x02\x03\x04", 4);
	part10(&f, "1.2.840.10008.1.2.1", &ds, 1);
	check(json_of(&f, &j) == MLK_OK &&
	      has(&j, "\"00181060\":{\"vr\":\"FL\",\"Value\":[1.5]}") &&
	      has(&j, "\"00181061\":{\"vr\":\"FD\",\"Value\":[-2.25]}") &&
	      has(&j, "\"00181062\":{\"vr\":\"SS\",\"Value\":[-3,4]}") &&
	      has(&j, "\"00181063\":{\"vr\":\"AT\",\"Value\":[\"00100020\"]}") &&
	      has(&j, "\"00181064\":{\"vr\":\"OB\",\"InlineBinary\":\"AQIDBA==\"}"),
	      "FL, FD, SS, AT and small OB values");
	buf_release(&ds);
	buf_release(&f);
	buf_release(&j);
}

static void test_bulk(void)
{
	struct buf ds = BUF_INIT, f = BUF_INIT, t = BUF_INIT, j = BUF_INIT;
	char *big = calloc(1, 4000);
	el(&ds, EXPL, 0x29, 0x1010, "OB", big, 4000);
	el(&ds, EXPL, 0x7fe0, 0x10, "OB", NULL, DICOM_UNDEFINED);
	item(&ds, EXPL, 0);
	item(&ds, EXPL, 6);
	buf_add(&ds, "abcdef", 6);
	seq_end(&ds, EXPL);
	part10(&f, "1.2.840.10008.1.2.4.50", &ds, 1);
	trace(&f, &t);
	size_t frag = f.len - 8 - 6;
	char want[200];
	snprintf(want, sizeof want, "D E00291010/OB/d0/bulk S7FE00010u F0@%zu "
		 "F6@%zu /S ", frag - 8, frag);
	if (!check(!strcmp(t.data, want), "bulk OB skipped, fragments with "
		   "their offsets"))
		printf("# %s\n# %s\n", t.data, want);
	check(!memcmp(f.data + frag, "abcdef", 6), "fragment offset is the "
	      "value's");
	check(json_of(&f, &j) == MLK_OK &&
	      has(&j, "\"00291010\":{\"vr\":\"OB\"},\"7FE00010\":{\"vr\":\"OB\"}"),
	      "bulk data: only the VR in the JSON Model");
	/* A bulk value cut short is a truncated file. */
	f.len = 132 + 40 + 100;
	check(json_of(&f, &j) == MLK_PARTIAL && has(&j, "truncated"),
	      "truncated bulk data is detected");
	free(big);
	buf_release(&ds);
	buf_release(&f);
	buf_release(&t);
	buf_release(&j);
}

static void test_truncation(void)
{
	struct buf ds = BUF_INIT, f = BUF_INIT, j = BUF_INIT;
	sample(&ds, EXPL);
	el(&ds, EXPL, 8, 0x1140, "SQ", NULL, DICOM_UNDEFINED);
	item(&ds, EXPL, DICOM_UNDEFINED);
	str(&ds, EXPL, 8, 0x1150, "UI", "1.2\0");
	item_end(&ds, EXPL);
	seq_end(&ds, EXPL);
	part10(&f, "1.2.840.10008.1.2.1", &ds, 1);
	int ok = 1, okcount = 0;
	size_t full = f.len;
	for (size_t n = 0; n < full; n++) {
		f.len = n;
		int rc = json_of(&f, &j);
		if (rc == MLK_OK)
			okcount++;
		else if (rc != MLK_PARTIAL)
			ok = 0;
	}
	f.len = full;
	/* Only cuts at element boundaries at top level may pass. */
	check(ok && okcount <= 8 && json_of(&f, &j) == MLK_OK,
	      "every prefix is refused or read, never a crash (%d read)",
	      okcount);
	buf_reset(&f);
	buf_addstr(&f, "hello, not dicom\n");
	check(json_of(&f, &j) == MLK_PARTIAL && has(&j, "not valid DICOM"),
	      "text is not DICOM");
	unsigned char head[132] = { 0 };
	memcpy(head + 128, "DICM", 4);
	check(dicom_detect(head, 132), "detect: DICM at 128");
	check(!dicom_detect((const unsigned char *)"hello, world", 12),
	      "detect: text is not");
	buf_release(&ds);
	buf_release(&f);
	buf_release(&j);
}

static void test_fd(void)
{
	struct buf ds = BUF_INIT, f = BUF_INIT, z = BUF_INIT;
	sample(&ds, EXPL);
	deflate_raw(&ds, &z);
	part10(&f, "1.2.840.10008.1.2.1.99", &z, 1);
	int p[2];
	if (pipe(p))
		return;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		for (size_t i = 0; i < f.len; i++)
			if (write(p[1], f.data + i, 1) != 1)
				_exit(1);
		_exit(0);
	}
	close(p[1]);
	struct dicom_doc d;
	struct mlk_error e = MLK_ERROR_INIT;
	int rc = dicom_json_fd(p[0], "pipe", &d, &e);
	close(p[0]);
	waitpid(pid, NULL, 0);
	check(rc == MLK_OK && strstr(d.json.data, sample_json),
	      "a deflated file read from a pipe one byte at a time");
	dicom_doc_release(&d);
	char tmp[] = "/tmp/dicom-test-XXXXXX";
	int fd = mkstemp(tmp);
	if (fd >= 0 && write(fd, f.data, f.len) == (ssize_t)f.len) {
		rc = dicom_json_fd(fd, tmp, &d, &e);
		check(rc == MLK_OK && strstr(d.json.data, sample_json),
		      "a file read with pread");
		dicom_doc_release(&d);
	}
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	buf_release(&ds);
	buf_release(&f);
	buf_release(&z);
}

int main(void)
{
	(void)mem_read;
	test_syntaxes();
	test_sequences();
	test_depth();
	test_odd_and_text();
	test_bulk();
	test_truncation();
	test_fd();
	return tap_done();
}
