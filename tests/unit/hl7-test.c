/*
 * hl7-test — common/hl7.c: framing (terminators, MLLP, batch envelopes,
 * reads of every size), the record written for a message, escapes,
 * ISO-8859-1, and the reasons bad messages are refused for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl7.h"
#include "record.h"
#include "tap.h"
#include "banned.h"

/* Every piece of src, read chunk bytes at a time, as "K@LINE+OFF:TEXT\n"
 * lines (K: M message, E envelope, J junk, L too long), into out. */
static void pieces(const char *src, size_t n, size_t chunk, size_t max,
		   struct buf *out)
{
	struct mem m = { src, n, 0, chunk, 0 };
	struct hl7_reader r;
	struct hl7_piece pc;
	struct mlk_error e = MLK_ERROR_INIT;
	int got;
	hl7_reader_init(&r, mem_read, &m);
	if (max)
		r.max_piece = max;
	buf_reset(out);
	while ((got = hl7_reader_next(&r, &pc, &e)) > 0) {
		buf_addf(out, "%c@%lld+%llu:", "MEJL"[pc.kind], pc.line,
			 pc.offset);
		for (size_t i = 0; pc.p && i < pc.n; i++) {
			char c = pc.p[i];
			if (c == '\r')
				buf_addstr(out, "\\r");
			else if (c == '\n')
				buf_addstr(out, "\\n");
			else if ((unsigned char)c < 0x20)
				buf_addf(out, "<%02x>", (unsigned char)c);
			else
				buf_addch(out, c);
		}
		buf_addch(out, '\n');
	}
	if (got < 0)
		buf_addstr(out, "ERROR\n");
	hl7_reader_release(&r);
}

static void check_pieces(const char *what, const char *src, size_t n,
			 const char *want)
{
	struct buf b = BUF_INIT;
	int same = 1;
	for (size_t chunk = 1; chunk <= n + 1; chunk++) {
		pieces(src, n, chunk, 0, &b);
		if (strcmp(b.data ? b.data : "", want)) {
			same = 0;
			printf("# chunk %zu:\n%s# want:\n%s", chunk,
			       b.data ? b.data : "", want);
			break;
		}
	}
	check(same, "pieces: %s, reads of every size", what);
	buf_release(&b);
}

/* The record for message text, or "ERROR line: reason". */
static char *record(const char *src)
{
	struct hl7_msg m;
	struct mlk_error e = MLK_ERROR_INIT;
	struct buf b = BUF_INIT;
	hl7_msg_init(&m);
	if (hl7_parse(&m, src, strlen(src), 1, &e) != MLK_OK) {
		buf_addf(&b, "ERROR %lld: %s", e.line, e.msg);
	} else {
		hl7_write(&m, &b);
		buf_addch(&b, '}');
	}
	hl7_msg_release(&m);
	return buf_detach(&b);
}

static void check_record(const char *what, const char *src, const char *want)
{
	char *got = record(src);
	int ok = !strcmp(got, want);
	if (!ok)
		printf("# got:  %s\n# want: %s\n", got, want);
	if (ok && strncmp(got, "ERROR", 5)) {
		/* Valid JSON and UTF-8, by the record parser. */
		struct rec r;
		struct mlk_error e = MLK_ERROR_INIT;
		rec_init(&r);
		ok = rec_parse(&r, got, strlen(got), &e) == MLK_OK;
		if (!ok)
			printf("# not valid JSON: %s\n", e.msg);
		rec_release(&r);
	}
	check(ok, "record: %s", what);
	free(got);
}

#define MSH "MSH|^~\\&|APP|FAC|||20240102123000||ADT^A01^ADT_A01|C1|P|2.5"
#define MSHJ "\"1\":\"|\",\"2\":\"^~\\\\&\",\"3\":\"APP\",\"4\":\"FAC\"," \
	"\"7\":\"20240102123000\",\"9\":{\"1\":\"ADT\",\"2\":\"A01\"," \
	"\"3\":\"ADT_A01\"},\"10\":\"C1\",\"11\":\"P\",\"12\":\"2.5\""
#define SUMJ "\"message_type\":\"ADT^A01\",\"message_structure\":" \
	"\"ADT_A01\",\"control_id\":\"C1\",\"timestamp\":" \
	"\"20240102123000\",\"version\":\"2.5\",\"sending_application\":" \
	"\"APP\",\"sending_facility\":\"FAC\""

static void test_framing(void)
{
	static const char lf[] = "MSH|^~\\&|A\nPID|1\nMSH|^~\\&|B\nPID|2\n";
	check_pieces("LF", lf, sizeof lf - 1,
		     "M@1+0:MSH|^~\\&|A\\nPID|1\\n\n"
		     "M@3+17:MSH|^~\\&|B\\nPID|2\\n\n");
	static const char cr[] = "MSH|^~\\&|A\rPID|1\rMSH|^~\\&|B\rPID|2";
	check_pieces("CR, no final terminator", cr, sizeof cr - 1,
		     "M@1+0:MSH|^~\\&|A\\rPID|1\\r\n"
		     "M@3+17:MSH|^~\\&|B\\rPID|2\n");
	static const char crlf[] = "MSH|^~\\&|A\r\nPID|1\r\n\r\nMSH|^~\\&|B\r\n";
	check_pieces("CRLF and a blank line", crlf, sizeof crlf - 1,
		     "M@1+0:MSH|^~\\&|A\\r\\nPID|1\\r\\n\\r\\n\n"
		     "M@4+21:MSH|^~\\&|B\\r\\n\n");
	static const char mixed[] = "MSH|^~\\&|A\rPID|1\r\nOBX|1\nMSH|^~\\&|B";
	check_pieces("mixed terminators", mixed, sizeof mixed - 1,
		     "M@1+0:MSH|^~\\&|A\\rPID|1\\r\\nOBX|1\\n\n"
		     "M@4+24:MSH|^~\\&|B\n");
	static const char mllp[] = "\x0bMSH|^~\\&|A\rPID|1\r\x1c\r"
				   "\x0bMSH|^~\\&|B\r\x1c\r";
	check_pieces("MLLP frames", mllp, sizeof mllp - 1,
		     "M@1+0:<0b>MSH|^~\\&|A\\rPID|1\\r<1c>\\r\n"
		     "M@4+20:<0b>MSH|^~\\&|B\\r<1c>\\r\n");
	static const char batch[] = "FHS|^~\\&|F\nBHS|^~\\&|B\nMSH|^~\\&|A\n"
				    "PID|1\nBTS|1\nFTS|1\n";
	check_pieces("batch envelope", batch, sizeof batch - 1,
		     "E@1+0:FHS|^~\\&|F\\n\n"
		     "E@2+11:BHS|^~\\&|B\\n\n"
		     "M@3+22:MSH|^~\\&|A\\nPID|1\\n\n"
		     "E@5+39:BTS|1\\n\n"
		     "E@6+45:FTS|1\\n\n");
	static const char junk[] = "\n\nPID|1\nPV1|1\nMSH|^~\\&|A\n";
	check_pieces("text before the first MSH", junk, sizeof junk - 1,
		     "J@3+2:PID|1\\nPV1|1\\n\n"
		     "M@5+14:MSH|^~\\&|A\\n\n");
	static const char after[] = "BHS|^~\\&\nPID|1\nMSH|^~\\&|A\n";
	check_pieces("text after a batch header", after, sizeof after - 1,
		     "E@1+0:BHS|^~\\&\\n\n"
		     "J@2+9:PID|1\\n\n"
		     "M@3+15:MSH|^~\\&|A\\n\n");
	static const char bom[] = "\xef\xbb\xbfMSH|^~\\&|A\n";
	check_pieces("byte-order mark", bom, sizeof bom - 1,
		     "M@1+3:MSH|^~\\&|A\\n\n");
	static const char mshx[] = "MSH|^~\\&|A\nMSHX|1\nMSH\n";
	check_pieces("MSHX is not a message start, MSH alone is", mshx,
		     sizeof mshx - 1,
		     "M@1+0:MSH|^~\\&|A\\nMSHX|1\\n\n"
		     "M@3+18:MSH\\n\n");
	static const char ws[] = " MSH|^~\\&|A\n\t \nMSH|^~\\&|B\n MSH|^~\\&|C\n";
	check_pieces("a segment after blanks is no message start", ws,
		     sizeof ws - 1,
		     "J@1+0: MSH|^~\\&|A\\n<09> \\n\n"
		     "M@3+15:MSH|^~\\&|B\\n MSH|^~\\&|C\\n\n");
	check_pieces("empty", "", 0, "");
	check_pieces("blank", "\n\r\n \n", 5, "");

	/* Too long: reported once, the rest skipped, the next one kept. */
	static const char big[] = "MSH|^~\\&|A\nOBX|1|xxxxxxxxxxxxxxxxxxxxxxxx"
				  "xxxxxxxxxxxxxxxxxxxxx\nOBX|2\nMSH|^~\\&|B\n";
	struct buf b = BUF_INIT;
	pieces(big, sizeof big - 1, 7, 20, &b);
	check(!strcmp(b.data, "L@1+0:\nM@4+69:MSH|^~\\&|B\\n\n"),
	      "pieces: a piece over max_piece is reported and skipped");
	if (strcmp(b.data, "L@1+0:\nM@4+69:MSH|^~\\&|B\\n\n"))
		printf("# %s", b.data);
	buf_release(&b);

	struct mem fail = { lf, sizeof lf - 1, 0, 4, 8 };
	struct hl7_reader r;
	struct hl7_piece pc;
	struct mlk_error e = MLK_ERROR_INIT;
	hl7_reader_init(&r, mem_read, &fail);
	int got = hl7_reader_next(&r, &pc, &e);
	check(got == -1 && e.status == MLK_SYSTEM,
	      "pieces: a read error is MLK_SYSTEM");
	hl7_reader_release(&r);
}

static void test_records(void)
{
	check_record("summary, MSH-1 and MSH-2, components",
		     MSH "\rPID|1||12345^^^HOSP^MR~999-99-9999^^^^SS||"
		     "DOE^JOHN||19800101\r",
		     "{" SUMJ ",\"segments\":[\"MSH\",\"PID\"],\"MSH\":[{" MSHJ
		     "}],\"PID\":[{\"1\":\"1\",\"3\":[{\"1\":\"12345\",\"4\":"
		     "\"HOSP\",\"5\":\"MR\"},{\"1\":\"999-99-9999\",\"5\":"
		     "\"SS\"}],\"5\":{\"1\":\"DOE\",\"2\":\"JOHN\"},\"7\":"
		     "\"19800101\"}]}");
	check_record("occurrences grouped by id, segments in order",
		     MSH "\nOBX|1\nNTE|1|x\nOBX|2\nZZ1|a&b^c\n",
		     "{" SUMJ ",\"segments\":[\"MSH\",\"OBX\",\"NTE\",\"OBX\","
		     "\"ZZ1\"],\"MSH\":[{" MSHJ "}],\"OBX\":[{\"1\":\"1\"},"
		     "{\"1\":\"2\"}],\"NTE\":[{\"1\":\"1\",\"2\":\"x\"}],"
		     "\"ZZ1\":[{\"1\":{\"1\":{\"1\":\"a\",\"2\":\"b\"},\"2\":"
		     "\"c\"}}]}");
	check_record("subcomponents without components, empty repetitions, "
		     "HL7 null, a segment without fields",
		     MSH "\rEVN\rPID|a&&b|~x~|\"\"|^^\r",
		     "{" SUMJ ",\"segments\":[\"MSH\",\"EVN\",\"PID\"],\"MSH\":"
		     "[{" MSHJ "}],\"EVN\":[{}],\"PID\":[{\"1\":{\"1\":{\"1\":"
		     "\"a\",\"3\":\"b\"}},\"2\":[\"\",\"x\",\"\"],\"3\":"
		     "\"\\\"\\\"\",\"4\":{}}]}");
	check_record("escapes",
		     MSH "\rNTE|\\F\\\\S\\\\T\\\\R\\\\E\\|a\\.br\\b|"
		     "\\H\\bold\\N\\\\.sp\\|\\X41C3A9\\|\\Zx\\y\\F|\\X4\\|"
		     "tail\\S",
		     "{" SUMJ ",\"segments\":[\"MSH\",\"NTE\"],\"MSH\":[{" MSHJ
		     "}],\"NTE\":[{\"1\":\"|^&~\\\\\",\"2\":\"a\\nb\",\"3\":"
		     "\"bold\",\"4\":\"Aé\",\"5\":\"\\\\Zx\\\\y\\\\F\","
		     "\"6\":\"\\\\X4\\\\\",\"7\":\"tail\\\\S\"}]}");
	check_record("hex escapes that are not UTF-8 read as ISO-8859-1",
		     MSH "\rNTE|\\XE9\\t\xc3\xa9",
		     "{" SUMJ ",\"segments\":[\"MSH\",\"NTE\"],\"MSH\":[{" MSHJ
		     "}],\"NTE\":[{\"1\":\"\xc3\xa9t\xc3\xa9\"}]}");
	check_record("UTF-8 kept",
		     MSH "\rPID|M\xc3\x9cLLER^JOS\xc3\x89",
		     "{" SUMJ ",\"segments\":[\"MSH\",\"PID\"],\"MSH\":[{" MSHJ
		     "}],\"PID\":[{\"1\":{\"1\":\"M\xc3\x9cLLER\",\"2\":"
		     "\"JOS\xc3\x89\"}}]}");
	check_record("not UTF-8: ISO-8859-1",
		     MSH "\rPID|M\xdcLLER^JOS\xc9",
		     "{" SUMJ ",\"segments\":[\"MSH\",\"PID\"],\"MSH\":[{" MSHJ
		     "}],\"PID\":[{\"1\":{\"1\":\"M\xc3\x9cLLER\",\"2\":"
		     "\"JOS\xc3\x89\"}}]}");
	check_record("other delimiters, MLLP bytes, control characters",
		     "\x0bMSH#:*/@#A:1#F###20231130##ORU:R01#9#\r"
		     "OBX#a:b*c/F/d#\x01\"\r\x1c\r",
		     "{\"message_type\":\"ORU^R01\",\"control_id\":\"9\","
		     "\"timestamp\":\"20231130\",\"sending_application\":"
		     "\"A\",\"sending_facility\":\"F\",\"segments\":[\"MSH\","
		     "\"OBX\"],\"MSH\":[{\"1\":\"#\",\"2\":\":*/@\",\"3\":{"
		     "\"1\":\"A\",\"2\":\"1\"},\"4\":\"F\",\"7\":\"20231130\","
		     "\"9\":{\"1\":\"ORU\",\"2\":\"R01\"},\"10\":\"9\"}],"
		     "\"OBX\":[{\"1\":[{\"1\":\"a\",\"2\":\"b\"},\"c"
		     "#d\"],\"2\":\"\\u0001\\\"\"}]}");
	check_record("doubled escape character in MSH-2",
		     "MSH|^~\\\\&|A||||||ACK|1\rNTE|x\\T\\y",
		     "{\"message_type\":\"ACK\",\"control_id\":\"1\","
		     "\"sending_application\":\"A\",\"segments\":[\"MSH\","
		     "\"NTE\"],\"MSH\":[{\"1\":\"|\",\"2\":\"^~\\\\\\\\&\","
		     "\"3\":\"A\",\"9\":\"ACK\",\"10\":\"1\"}],\"NTE\":[{\"1\":"
		     "\"x&y\"}]}");

	check_record("MSH alone", "MSH|",
		     "ERROR 1: MSH is too short to hold MSH-9 (message type)");
	check_record("MSH-9 empty", "MSH|^~\\&|A|B|C|D|2024|||1|P|2.5",
		     "ERROR 1: MSH-9 (message type) is empty");
	check_record("MSH-8 is the last field",
		     "MSH|^~\\&|A|B|C|D|2024|",
		     "ERROR 1: MSH is too short to hold MSH-9 (message type)");
	check_record("bad segment id", MSH "\nPIDX|1\n",
		     "ERROR 2: segment id on line 2 is not 3 uppercase letters "
		     "or digits");
	check_record("short segment id", MSH "\r\rPV|1\r",
		     "ERROR 3: segment id on line 3 is not 3 uppercase letters "
		     "or digits");
	check_record("lowercase segment id", MSH "\npid|1\n",
		     "ERROR 2: segment id on line 2 is not 3 uppercase letters "
		     "or digits");
	check_record("no MSH", "PID|1\n",
		     "ERROR 1: message does not start with an MSH segment");
	check_record("bad delimiter", "MSH|^~a&|||||||ADT",
		     "ERROR 1: MSH-2 (encoding characters) holds an unusable "
		     "delimiter");
	check_record("field separator is a letter", "MSHa^~\\&aaaaaaaADT",
		     "ERROR 1: MSH-1 (field separator) is not a usable "
		     "delimiter");

	/* Lookups for partitions. */
	struct hl7_msg m;
	struct mlk_error e = MLK_ERROR_INIT;
	size_t n = 0;
	hl7_msg_init(&m);
	static const char t[] = MSH "\r";
	check(hl7_parse(&m, t, sizeof t - 1, 7, &e) == MLK_OK &&
	      !strcmp(m.date, "2024-01-02"), "date from MSH-7");
	const char *v = hl7_sum_get(&m, HL7_TYPE, &n);
	check(v && n == 7 && !memcmp(v, "ADT^A01", 7), "message_type");
	static const char t2[] = "MSH|^~\\&|||||202403^5||ACK\r";
	check(hl7_parse(&m, t2, sizeof t2 - 1, 1, &e) == MLK_OK &&
	      !strcmp(m.date, "2024-03") &&
	      !hl7_sum_get(&m, HL7_VERSION, &n),
	      "date of month precision; absent summary fields");
	static const char t3[] = "MSH|^~\\&|||||2024x||ACK\r";
	check(hl7_parse(&m, t3, sizeof t3 - 1, 1, &e) == MLK_OK &&
	      !strcmp(m.date, "2024"), "date of year precision");
	static const char t4[] = "MSH|^~\\&|||||x2024||ACK\r";
	check(hl7_parse(&m, t4, sizeof t4 - 1, 1, &e) == MLK_OK &&
	      !m.date[0], "no date");
	hl7_msg_release(&m);
}

int main(void)
{
	test_framing();
	test_records();
	return tap_done();
}
