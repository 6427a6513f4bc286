/*
 * scrub-test — unit checks for common/scrub.c.
 *
 * Prints "ok N - what" or "not ok N - what" per check and exits 1 if any
 * failed.  Each case is an input and the exact text it must become, with
 * every detector on; the cases below each detector are positive
 * (identifiers that must go) and negative (clinical text that must stay).
 * Every expected output is scrubbed again and must not change
 * (idempotence).  Then the known-identifier set, the detector mask, and
 * a few whole notes whose identifiers must not leak.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scrub.h"
#include "tap.h"
#include "banned.h"

static struct scrub *sc;

static const char *scrubbed(const char *in, size_t *count)
{
	static struct buf out = BUF_INIT;

	buf_reset(&out);
	size_t c = scrub_text(sc, in, strlen(in), &out);
	if (count)
		*count = c;
	return out.data ? out.data : "";
}

static void same(const char *in, const char *want)
{
	const char *got = scrubbed(in, NULL);

	if (!check(strcmp(got, want) == 0, "'%s' -> '%s'", in, want))
		printf("#   got '%s'\n", got);
}

/* The text must come back untouched. */
static void keep(const char *in)
{
	same(in, in);
}

/* The output of every case is stable under a second pass. */
static void stable(const char *in)
{
	char *once = strdup(scrubbed(in, NULL));
	const char *twice = scrubbed(once, NULL);

	if (!check(strcmp(once, twice) == 0, "idempotent: '%s'", in))
		printf("#   once '%s'\n#   twice '%s'\n", once, twice);
	free(once);
}

static void no_leak(const char *in, const char *const *secrets)
{
	const char *got = scrubbed(in, NULL);

	for (; *secrets; secrets++)
		if (!check(strstr(got, *secrets) == NULL,
			   "no '%s' left in '%s'", *secrets, in))
			printf("#   got '%s'\n", got);
}

static const char *const cases[][2] = {
	/* dates */
	{ "on 2020-01-31 at noon", "on [DATE] at noon" },
	{ "at 2020-01-31T10:20:30Z.", "at [DATE]." },
	{ "at 2020-01-31T10:20:30+01:00 ok", "at [DATE] ok" },
	{ "at 2020-01-31T10:20:30.123-0500", "at [DATE]" },
	{ "2020/01/31", "[DATE]" },
	{ "seen 01/31/2020.", "seen [DATE]." },
	{ "seen 1/31/20, again", "seen [DATE], again" },
	{ "am 31.01.2020 gesehen", "am [DATE] gesehen" },
	{ "31-01-2020", "[DATE]" },
	{ "dob 20200131", "dob [DATE]" },
	{ "Jan 31, 2020", "[DATE]" },
	{ "on Jan. 31 2020 he", "on [DATE] he" },
	{ "January 31st 2020", "[DATE]" },
	{ "January 31st, 2020", "[DATE]" },
	{ "31 January 2020", "[DATE]" },
	{ "the 31st of January 2020", "the [DATE]" },
	{ "the 1st of January 2020", "the [DATE]" },
	{ "insurance id: XK12", "insurance id: [ID]" },
	{ "a 101yo", "a 90+yo" },
	{ "31-Jan-2020", "[DATE]" },
	{ "since Jan 2020", "since [DATE]" },
	{ "since January of 2020", "since [DATE]" },
	{ "in Sept 2019", "in [DATE]" },
	{ "by 2020-01", "by [DATE]" },
	{ "in 3/2019", "in [DATE]" },
	{ "2020-01-31x", "[ID]" },
	{ "2020-01-31T10:20:30Zxx", "[DATE]:30Zxx" },
	{ "2020-01-[ID]", NULL },
	{ "on March 3 she", "on [DATE] she" },
	{ "on 5 June he", "on [DATE] he" },
	{ "DECEMBER 25, 2019", "[DATE]" },
	/* not dates */
	{ "the year 2020", NULL },
	{ "in 2020 alone", NULL },
	{ "at 10:20:30", NULL },
	{ "at 10:20", NULL },
	{ "BP 120/80", NULL },
	{ "2 mg", NULL },
	{ "pH 7.35", NULL },
	{ "ratio 1/2", NULL },
	{ "you may 5 times", NULL },
	{ "3 may be", NULL },
	{ "a march 5 km", NULL },
	{ "version 1.2", NULL },
	{ "13/13/2020 is no date", NULL },
	{ "take 1-2 tabs", NULL },
	{ "Mayo clinic 12", NULL },
	{ "20201399 is not a date", "[ID] is not a date" },
	/* phones */
	{ "call (555) 123-4567", "call [PHONE]" },
	{ "call (555)123-4567.", "call [PHONE]." },
	{ "call 555-123-4567", "call [PHONE]" },
	{ "call 555.123.4567", "call [PHONE]" },
	{ "call 555 123 4567 now", "call [PHONE] now" },
	{ "call +1 555 123 4567", "call [PHONE]" },
	{ "call 1-800-555-1234", "call [PHONE]" },
	{ "call 555-123-4567 x123", "call [PHONE]" },
	{ "call 555-123-4567 ext. 123.", "call [PHONE]." },
	{ "call 555-123-4567ext123", "call [PHONE]" },
	{ "fax: 555-123-4567", "fax: [PHONE]" },
	{ "call 555-1234", "call [PHONE]" },
	{ "call +44 20 7946 0958", "call [PHONE]" },
	{ "tel:+15551234567", "tel:[PHONE]" },
	{ "call 5551234567", "call [ID]" },
	/* not phones */
	{ "give 5-10 mg", NULL },
	{ "HR 72, RR 16, T 37.2", NULL },
	{ "A1c 6.5%", NULL },
	{ "+1 dose", NULL },
	{ "1+1", NULL },
	/* e-mail, URLs */
	{ "mail john.smith@example.com.", "mail [EMAIL]." },
	{ "mail <j_s+x@mail.example.org>", "mail <[EMAIL]>" },
	{ "mailto:a1@b.co", "mailto:[EMAIL]" },
	{ "see https://portal.example.org/p?id=1.", "see [URL]." },
	{ "see http://x.org/a)", "see [URL])" },
	{ "ftp://files.example.org/x", "[URL]" },
	{ "go to www.example.com, then", "go to [URL], then" },
	{ "(www.example.com)", "([URL])" },
	{ "a@b", NULL },
	{ "a@b.example.o12\xc3\xa9x", "[EMAIL].o12\xc3\xa9x" },
	{ "x @ y", NULL },
	{ "www alone", NULL },
	/* IP */
	{ "from 192.168.1.20 at", "from [IP] at" },
	{ "from 10.0.0.1.", "from [IP]." },
	{ "host 2001:db8:85a3::8a2e:370:7334 up", "host [IP] up" },
	{ "host 2001:0db8:85a3:0000:0000:8a2e:0370:7334", "host [IP]" },
	{ "host fe80::1", "host [IP]" },
	{ "host ::1", "host [IP]" },
	{ "999.1.1.1", NULL },
	{ "1.2.3", NULL },
	{ "1.2.3.4.5.6", NULL },
	{ "::140.0.0.1.0.x", NULL },
	{ "1.2.3.4::1", "[IP]::1" },
	{ "std::vector", NULL },
	{ "1:2:3:4:5:6:7:8:9", NULL },
	{ "::ffff:1.2.3.4", "::ffff:[IP]" },
	/* SSN */
	{ "ssn 123-45-6789", "ssn [SSN]" },
	{ "id 123 45 6789.", "id [SSN]." },
	{ "SSN: 123456789", "SSN: [SSN]" },
	{ "social security number 123456789", "social security number [SSN]" },
	{ "SSN 123 45 6789", "SSN [SSN]" },
	{ "no 123456789", "no [ID]" },
	{ "123-45-678", "[ID]" },
	/* ZIP */
	{ "Boston, MA 02139", "Boston, MA [ZIP]" },
	{ "Boston, MA, 02139-4307", "Boston, MA, [ZIP]" },
	{ "zip 02139", "zip [ZIP]" },
	{ "zip code: 02139", "zip code: [ZIP]" },
	{ "postal code K1A0B1", "postal code [ZIP]" },
	{ "02139-4307", "[ZIP]" },
	{ "12345 cells", "[ID] cells" },
	{ "WBC 12,500", NULL },
	{ "ma 02139", "ma [ID]" },
	/* IDs */
	{ "MRN: AB-1234567", "MRN: [ID]" },
	{ "MRN 12", "MRN [ID]" },
	{ "MRN ABC", "MRN [ID]" },
	{ "MRN is unknown", NULL },
	{ "#00123456", "#[ID]" },
	{ "acct 998877", "acct [ID]" },
	{ "acct A12", "acct [ID]" },
	{ "account number: 12-34", "account number: [ID]" },
	{ "medical record # 4321", "medical record # [ID]" },
	{ "Patient ID: X99", "Patient ID: [ID]" },
	{ "member id W12", "member id [ID]" },
	{ "policy no. 7G4", "policy no. [ID]" },
	{ "license D123", "license [ID]" },
	{ "NPI 1234", "NPI [ID]" },
	{ "DEA AB1234563", "DEA [ID]" },
	{ "id f47ac10b-58cc-4372-a567-0e02b2c3d479.",
	  "id [ID]." },
	{ "visit V0012345X", "visit [ID]" },
	{ "12345678901234", "[ID]" },
	{ "order 2019-2020 season", NULL },
	{ "taking into account the history", NULL },
	{ "per policy 2 days", NULL },
	{ "accountant 123", NULL },
	{ "WBC 9.8, Hgb 13.2, Plt 250", NULL },
	{ "Na 140 K 4.1", NULL },
	/* ages */
	{ "a 93-year-old man", "a 90+-year-old man" },
	{ "a 93 year old man", "a 90+ year old man" },
	{ "is 101 years old", "is 90+ years old" },
	{ "93yo F", "90+yo F" },
	{ "93 y/o F", "90+ y/o F" },
	{ "93 y.o. F", "90+ y.o. F" },
	{ "93 years of age", "90+ years of age" },
	{ "age 95", "age 90+" },
	{ "Age: 102.", "Age: 90+." },
	{ "aged 91 and", "aged 90+ and" },
	{ "a 45-year-old", NULL },
	{ "age 89", NULL },
	{ "for 95 years", NULL },
	{ "a 90+-year-old", NULL },
	{ "age 90+", NULL },
	{ "Age: 102.0.1.0.1", "Age: 90+.0.1.0.1" },
	{ "::95yo", "::90+yo" },
	{ "1.2.3.95yo", "1.2.3.90+yo" },
	/* labels are never detected again */
	{ "[DATE] [PHONE] [ID] [ZIP]", NULL },
	{ "[DATE]12345", "[DATE][ID]" },
	{ "2001:db8::8a2e0369:7", "2001:db8::[ID]:7" },
	{ "1.2.3.4.12345", "1.2.3.4.[ID]" },
	{ "age 95+12345", "age 90+[ID]" },
	{ "age 90+1 555 123 4567", "age 90+[PHONE]" },
	{ "age 95+ years", "age 90+ years" },
	/* UTF-8 */
	{ "José 12345 café", "José [ID] café" },
	{ "née 2020-01-31 ñ", "née [DATE] ñ" },
	{ "x12345é", "[ID]" },
	{ "DOB:\xc2\xa0" "03/04/1950\xc2\xa0ok", "DOB:\xc2\xa0[DATE]\xc2\xa0ok" },
	{ "call\xe2\x80\x83" "555-123-4567\xe2\x80\x94" "x", "call\xe2\x80\x83[PHONE]\xe2\x80\x94x" },
	{ "MRN\xc2\xa0" "12345678", "MRN\xc2\xa0[ID]" },
	{ "MRN\xc2\xa0" "AB12", "MRN\xc2\xa0[ID]" },
	{ "age\xc2\xa0" "95", "age\xc2\xa0" "90+" },
	{ "MA\xc2\xa0" "02139", "MA\xc2\xa0[ZIP]" },
	{ "id 12345\xe3\x80\x80" "x", "id [ID]\xe3\x80\x80x" },
	/* the brief's example */
	{ "Seen 03/04/2021 by Dr. Smith, call 555-123-4567",
	  "Seen [DATE] by Dr. [NAME], call [PHONE]" },
	/* names after a title */
	{ "Dr. J. Smith-Jones said", "Dr. [NAME] said" },
	{ "Mrs O'Brien's chart", "Mrs [NAME] chart" },
	{ "Prof. Ann Lee, MD", "Prof. [NAME], MD" },
	{ "DR SMITH", "DR [NAME]" },
	{ "Dr. José Núñez", "Dr. [NAME]" },
	{ "the dr. smith", NULL },
	{ "Dr. visit today", NULL },
	{ "Dr. A", NULL },
	{ "Drs. Smith", NULL },
	{ "Mrs O'Brian12345", "Mrs O'[ID]" },
};

static void known_cases(void)
{
	scrub_add_known(sc, "John Smith", 10, "NAME");
	scrub_add_known(sc, "123 Main St", 11, "ADDRESS");
	scrub_add_known(sc, "AB-1234", 7, "ID");
	scrub_add_known(sc, "José", strlen("José"), "NAME");
	scrub_add_known(sc, "Van Der Berg", 12, "NAME");
	scrub_add_known(sc, "J", 1, "NAME");

	same("Seen John Smith today", "Seen [NAME] today");
	same("JOHN  SMITH", "[NAME]");
	same("Smith, John", "[NAME], [NAME]");
	same("Mr. Smith said", "Mr. [NAME] said");
	same("smithson", "smithson");
	same("john's", "[NAME]'s");
	same("lives at 123 Main St. now", "lives at [ADDRESS]. now");
	same("123 mg", "123 mg");
	same("Main entrance", "[ADDRESS] entrance");
	same("on St. Mary", "on St. Mary");
	same("ref AB-1234.", "ref [ID].");
	same("ref ab 1234", "ref [ID]");
	same("JOSÉ and José", "JOSÉ and [NAME]");
	same("John\xc2\xa0Smith\xe2\x80\x94ok", "[NAME]\xe2\x80\x94ok");
	same("van der berg", "[NAME]");
	same("a van", "a van");
	same("Berg", "[NAME]");
	same("J. Doe", "J. Doe");
	same("[NAME] [ADDRESS]", "[NAME] [ADDRESS]");
	stable("Smith, John at 123 Main St, AB-1234");
	scrub_add_known(sc, "Name", 4, "NAME");
	same("[NAME] name", "[NAME] [NAME]");
	scrub_add_known(sc, "Jan", 3, "NAME");
	same("Jan 31, 2020 Jan", "[DATE] [NAME]");
	scrub_add_known(sc, "Security", 8, "NAME");
	same("social security 123456789", "social [NAME] [SSN]");
	same("MRN Security", "MRN [NAME]");
	same("MRN ABC.security", "MRN ABC.[NAME]");
	scrub_add_known(sc, "90", 2, "ADDRESS");
	scrub_add_known(sc, "yo", 2, "NAME");
	same("age 90+, 93yo, 90 yo, 90", "age 90+, 90+yo, 90+ yo, [ADDRESS]");
	scrub_add_known(sc, "Jim 90", 6, "NAME");
	same("Jim 93yo", "[NAME] 90+yo");
	same("Jim 90+yo", "[NAME] 90+yo");
	scrub_add_known(sc, "\xde\xdf", 2, "NAME");
	same("Age: 204+-year-old\xde\xdf", "Age: 90+-year-old\xde\xdf");

	scrub_clear_known(sc);
	keep("Seen John Smith today");
	scrub_add_known(sc, "Smith", 5, "Lower case kind!");
	same("Smith", "[REDACTED]");
	scrub_clear_known(sc);

	/* A few hundred known values stay exact. */
	char v[48];
	for (int i = 0; i < 400; i++) {
		snprintf(v, sizeof v, "Name%03d Surname%03d", i, i);
		scrub_add_known(sc, v, strlen(v), "NAME");
	}
	same("Name007 Surname007 and Surname399, not Surname400",
	     "[NAME] and [NAME], not Surname400");
	scrub_clear_known(sc);
}

static void mask_cases(void)
{
	struct scrub *all = sc;

	sc = scrub_new(SCRUB_PHONE);
	same("2020-01-31 555-123-4567 a@b.com", "2020-01-31 [PHONE] a@b.com");
	scrub_free(sc);
	sc = scrub_new(SCRUB_DATE | SCRUB_AGE);
	same("2020-01-31 123456 age 95", "[DATE] 123456 age 90+");
	scrub_free(sc);
	sc = scrub_new(0);
	keep("2020-01-31 123456 age 95");
	scrub_add_known(sc, "Smith", 5, "NAME");
	same("Dr Smith", "Dr [NAME]");
	scrub_free(sc);
	sc = all;
}

static void note_cases(void)
{
	static const char *const s1[] = {
		"03/04/2021", "Smith", "555", "4567", NULL
	};
	static const char *const s2[] = {
		"1954", "617", "8841", "bob@", "77.12", "9911", "02139",
		"0042", "Jane", "Doe", NULL
	};
	size_t count;

	scrub_add_known(sc, "Smith", 5, "NAME");
	no_leak("Seen 03/04/2021 by Dr. Smith, call 555-123-4567", s1);
	scrub_clear_known(sc);

	scrub_add_known(sc, "Jane Q. Doe", 11, "NAME");
	no_leak("Pt Jane Doe, DOB 3/12/1954, MRN 0042-9911, phone "
		"(617) 555-8841, e-mail bob@example.net, lives 12 Elm Rd, "
		"Cambridge MA 02139; portal https://x.org/p/77.12; "
		"Doe, Jane reports chest pain.", s2);
	scrub_clear_known(sc);

	scrubbed("call 555-123-4567 or 555-123-4568 on 2020-01-01", &count);
	check(count == 3, "three replacements counted");
	scrubbed("nothing here", &count);
	check(count == 0, "no replacement counted");
	{
		struct buf out = BUF_INIT;
		buf_addstr(&out, "prefix:");
		scrub_text(sc, "x 2020-01-31", 12, &out);
		check(strcmp(out.data, "prefix:x [DATE]") == 0,
		      "appends to out");
		scrub_text(sc, NULL, 0, &out);
		check(out.len == 15, "empty input appends nothing");
		buf_release(&out);
	}
}

/*
 * scrub_probe_*: a value none of whose words is a word of the text is
 * reported as absent, and adding only its kind scrubs the text as adding
 * the value would; a value that shares a word (any case) is reported.
 */
static void probe_cases(void)
{
	static const struct {
		const char *text, *value;
		int found;
	} pc[] = {
		{ "Pt Jordan Kim seen today.", "Jordan", 1 },
		{ "Pt JORDAN KIM seen today.", "kim", 1 },
		{ "Pt Jordan Kim seen today.", "7351 Pine Ct", 0 },
		{ "Pt Jordan Kim seen today.", "Salt Lake City", 0 },
		{ "Seen at 7351 pine ct.", "7351 Pine Ct", 1 },
		{ "Jordanson was here", "Jordan", 0 },
		{ "Plan: recheck", "cce43d3b-88cd-400f-88ad-f5b5ee442da3", 0 },
		{ "id cce43d3b here", "cce43d3b-88cd-400f-88ad-f5b5ee442da3", 1 },
		/* non-ASCII text: every value is taken as found */
		{ "Pt Jos\xc3\xa9 seen", "Kim", 1 },
	};
	struct buf a = BUF_INIT, b = BUF_INIT;

	for (size_t i = 0; i < sizeof pc / sizeof pc[0]; i++) {
		const char *text = pc[i].text, *v = pc[i].value;
		scrub_probe_reset(sc);
		scrub_probe_text(sc, text, strlen(text));
		int got = scrub_probe_known(sc, v, strlen(v));
		check(got == pc[i].found, "probe '%s' in '%s': %d", v, text,
		      pc[i].found);
		/* the shortcut's promise: absent -> the kind alone will do */
		scrub_clear_known(sc);
		scrub_add_known(sc, v, strlen(v), "NAME");
		buf_reset(&a);
		scrub_text(sc, text, strlen(text), &a);
		scrub_clear_known(sc);
		scrub_add_kind(sc, "NAME");
		buf_reset(&b);
		scrub_text(sc, text, strlen(text), &b);
		if (!got)
			check(a.len == b.len && !memcmp(a.data, b.data, a.len),
			      "absent '%s': same text without it", v);
	}
	scrub_clear_known(sc);
	buf_release(&a);
	buf_release(&b);
}

int main(void)
{
	(void)mem_read;         /* tap.h's reader; scrub reads no stream */
	sc = scrub_new(SCRUB_ALL);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *want = cases[i][1] ? cases[i][1] : cases[i][0];
		same(cases[i][0], want);
		stable(cases[i][0]);
	}
	known_cases();
	mask_cases();
	note_cases();
	probe_cases();
	scrub_free(sc);
	return tap_done();
}
