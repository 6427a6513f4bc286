/*
 * scrub — removes protected health information from free text.
 *
 * Owns the free-text half of de-identification: clinical notes, FHIR
 * narrative (text.div), Observation.valueString, HL7 NTE and OBX-5 text.
 * One hand-written scanner walks the text once, left to right; at each
 * word start (the byte before is not a letter, a digit or a non-ASCII
 * byte; also at '(', '+' and "::") it asks every enabled detector, takes
 * the longest match (ties: the more specific label) and writes a
 * bracketed label in its place.  A keyword (MRN, SSN, age, a state before
 * a ZIP...) announces a match further on, which is offered when the
 * scanner gets there; the words in between are scanned as usual.  Text
 * between matches is copied byte for byte.
 *
 * Labels: [DATE] [PHONE] [EMAIL] [SSN] [ID] [URL] [IP] [ZIP], [NAME] for
 * a capitalised name after a title (Dr. Smith, Mrs J. Doe) and, for a
 * known identifier, "[" KIND "]" (e.g. [NAME], [ADDRESS]); an age over 89
 * becomes "90+" ("a 93-year-old" -> "a 90+-year-old", "age 95" ->
 * "age 90+").  The scanner copies a label it meets verbatim ("90+"
 * counts as one word), every match ends at a word boundary, and a match
 * is never decided by a word that a first pass could have replaced, so
 * scrub_text() is idempotent: scrub(scrub(x)) == scrub(x) (the fuzz
 * target checks it).  A match never starts or ends inside a UTF-8
 * sequence, so valid UTF-8 in gives valid UTF-8 out.
 *
 * What each detector catches, and its known gaps, is written above its
 * code in scrub.c.  In short: numbers with a run of 5 or more digits, or
 * 6 or more digits in one token, are always removed ([ID] unless a more
 * specific detector claims them); a bare year and a time alone are kept.
 *
 * Known identifiers (scrub_add_known) match case-insensitively (ASCII
 * folding; non-ASCII bytes exactly) on word boundaries, the longest
 * multi-word value first; each word of a multi-word value that has 2 or
 * more bytes, is not a stop word (common English words, titles, street
 * types) and is not a number of fewer than 4 digits also matches alone.
 * Lookup is one hash probe per word of text.
 *
 * Ownership: struct scrub is scrub_new()'s, freed by scrub_free(); it
 * copies every known value and kind it is given.  The caller owns `in`
 * and `out`; scrub_text() only appends to `out` (raw UTF-8, not
 * JSON-escaped).  No allocation happens in scrub_text() beyond growing
 * `out`; the known set grows in scrub_add_known() and keeps its memory
 * across scrub_clear_known().  Not thread-safe: one struct scrub per
 * thread.  Nothing here prints, and no matched text is ever kept
 * anywhere but in the known set.
 */
#ifndef MLK_SCRUB_H
#define MLK_SCRUB_H

#include <stddef.h>

#include "buf.h"

#define SCRUB_DATE   0x001u
#define SCRUB_PHONE  0x002u
#define SCRUB_EMAIL  0x004u
#define SCRUB_SSN    0x008u
#define SCRUB_ID     0x010u
#define SCRUB_URL    0x020u
#define SCRUB_IP     0x040u
#define SCRUB_ZIP    0x080u
#define SCRUB_AGE    0x100u
#define SCRUB_NAME   0x200u     /* a capitalised name after Dr, Mr, Mrs... */
#define SCRUB_ALL    0x3ffu

/* A kind longer than SCRUB_MAX_KIND bytes, empty, or with bytes other
 * than A-Z, 0-9 and '_' is labelled "REDACTED", and so is every kind
 * beyond the first SCRUB_MAX_KINDS - 1 distinct ones. */
#define SCRUB_MAX_KIND  24
#define SCRUB_MAX_KINDS 32

struct scrub;

struct scrub *scrub_new(unsigned detectors);
void scrub_free(struct scrub *s);

/* Forget the known identifiers (a new record or patient). */
void scrub_clear_known(struct scrub *s);

/*
 * An identifier known from the same record or patient (a name part, an
 * MRN, an address line...), to be replaced wherever it occurs in text.
 * kind is the label without brackets, e.g. "NAME", "ID", "ADDRESS".
 * Values with no word of 2 or more bytes are ignored.
 */
void scrub_add_known(struct scrub *s, const char *v, size_t n,
		     const char *kind);

/*
 * A shortcut for callers that know the text before the identifiers:
 * the known set changes scrub_text()'s output only through a word of a
 * known value that is also a word of the text, and through the value's
 * kind (a "[KIND]" label in text is copied as it is).  So a caller may
 * note the texts (scrub_probe_reset, then scrub_probe_text for each),
 * and when scrub_probe_known() is false for every value, call
 * scrub_add_kind() for each instead of scrub_add_known(): the output is
 * the same.  scrub_probe_known() may say yes wrongly (a hash collision,
 * text with non-ASCII bytes or more than SCRUB_PROBE_WORDS words), never
 * no wrongly.
 */
#define SCRUB_PROBE_WORDS 512
void scrub_add_kind(struct scrub *s, const char *kind);
void scrub_probe_reset(struct scrub *s);
void scrub_probe_text(struct scrub *s, const char *in, size_t n);
int scrub_probe_known(const struct scrub *s, const char *v, size_t n);

/*
 * Append the scrubbed text of in[0..n) to out; returns the number of
 * replacements made.  in is UTF-8 (already JSON-decoded); out receives
 * raw UTF-8 that the caller JSON-escapes.
 */
size_t scrub_text(struct scrub *s, const char *in, size_t n,
		  struct buf *out);

#endif
