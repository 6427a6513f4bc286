/*
 * hl7 — HL7 v2 messages: finding them in a byte stream, and one message's
 * structure written as a JSON record.  No I/O policy here: bytes in,
 * structure out; what to do with a bad piece is the caller's business.
 *
 * Framing (struct hl7_reader): segments end at '\r', '\n' or "\r\n" (mixed
 * freely; each ends one line) or at an MLLP end block 0x1C; an MLLP start
 * block 0x0B before a segment is skipped; a UTF-8 byte-order mark at the
 * very start is skipped.  A message starts at each MSH segment and runs to
 * the next MSH or batch envelope segment (FHS, BHS, BTS, FTS), which are
 * pieces of their own; anything else before a message is a junk piece.
 * Memory: the bytes of one piece at a time, at most HL7_MAX_PIECE; a longer
 * piece is reported once as too long and its remaining bytes skipped.
 *
 * Parsing (struct hl7_msg): delimiters come from MSH-1 and MSH-2; each
 * segment id must be 3 of [A-Z0-9]; MSH must reach MSH-9 with a non-empty
 * MSH-9.1.  hl7_parse() only indexes segments (one pass, no allocation per
 * field); hl7_write() walks the bytes again to write the record.  Text is
 * unescaped (\F\ \S\ \T\ \R\ \E\, \Xhh..\, \.br\ as a newline, other
 * formatting escapes dropped, unknown or unterminated ones kept as
 * written).  A message whose bytes are not valid UTF-8 is read as
 * ISO-8859-1; hex escapes that do not make valid UTF-8 are read that way
 * too, so the output is always valid UTF-8.
 *
 * Error messages name a line or a segment number, never content.
 *
 * Ownership: a struct hl7_reader and a struct hl7_msg are owned by the
 * caller (init/release).  Pointers they hand out point into their own
 * buffers or the caller's bytes and are valid until the next call.
 */
#ifndef MLK_HL7_H
#define MLK_HL7_H

#include <stddef.h>

#include "buf.h"
#include "record.h"
#include "status.h"

#define HL7_MAX_PIECE (64u << 20)

enum hl7_kind {
	HL7_MESSAGE,      /* starts with MSH */
	HL7_ENVELOPE,     /* one FHS, BHS, BTS or FTS segment */
	HL7_JUNK,         /* text outside any message */
	HL7_TOOLONG,      /* over max_piece; p is NULL */
};

struct hl7_piece {
	enum hl7_kind kind;
	const char *p;               /* raw bytes, as read */
	size_t n;
	long long line;              /* 1-based line of its first segment */
	unsigned long long offset;   /* byte offset of its first segment */
};

struct hl7_reader {
	lr_read_fn read;
	void *ctx;
	size_t max_piece;
	/* private */
	char *buf;
	size_t alloc, len;
	size_t start, seg, scan;     /* piece start, segment start, scan */
	unsigned long long base;     /* source offset of buf[0] */
	long long line, seg_line, piece_line;
	enum hl7_kind kind;
	int open, eof, begun, skipping, midseg;
};

/* True when p[0..2] can be a segment id: 3 of [A-Z0-9]. */
int hl7_is_segment_id(const char *p);

void hl7_reader_init(struct hl7_reader *r, lr_read_fn fn, void *ctx);
void hl7_reader_release(struct hl7_reader *r);
/* 1 with *out set; 0 at the end; -1 on a read error (MLK_SYSTEM in e). */
int hl7_reader_next(struct hl7_reader *r, struct hl7_piece *out,
		    struct mlk_error *e);

/* The summary fields, in record order. */
enum hl7_sum {
	HL7_TYPE, HL7_STRUCTURE, HL7_CONTROL_ID, HL7_TIMESTAMP, HL7_VERSION,
	HL7_SENDING_APP, HL7_SENDING_FACILITY, HL7_NSUM,
};

struct hl7_seg {
	size_t off, len;             /* in the message, 0x0B stripped */
	long long line;              /* in the source */
	int next;                    /* next segment with this id, or -1 */
};

struct hl7_msg {
	const char *p;
	size_t n;
	char fs, cs, rs, ec, ss;     /* field, component, repetition,
					escape, subcomponent; 0 if unused */
	int latin1;                  /* bytes are not UTF-8 */
	unsigned char cls[256];      /* HL7_C_* bits of each byte value */
	struct hl7_seg *seg;
	size_t nseg, seg_alloc;
	struct { int first, last; } *ids;  /* each distinct id's first and
					      last segment, in order of
					      first appearance */
	size_t nids, ids_alloc;
	/* Summary values, decoded UTF-8 (sum_len 0 when absent), and the
	 * clinical date "YYYY[-MM[-DD]]" from MSH-7, "" when none. */
	struct buf sum;
	size_t sum_off[HL7_NSUM], sum_len[HL7_NSUM];
	char date[11];
	struct buf scratch;
};

void hl7_msg_init(struct hl7_msg *m);
void hl7_msg_release(struct hl7_msg *m);

/*
 * Index the message in p (which must stay valid while m is used), whose
 * first byte is on line line0 of its source.  MLK_PARTIAL with the reason
 * in e (naming the line when it is about one segment) when it is not a
 * usable message.
 */
enum mlk_status hl7_parse(struct hl7_msg *m, const char *p, size_t n,
			  long long line0, struct mlk_error *e);

/* A summary value; NULL when absent. */
const char *hl7_sum_get(const struct hl7_msg *m, enum hl7_sum k,
			size_t *len);
/* The summary field's name in records ("message_type", ...). */
const char *hl7_sum_name(enum hl7_sum k);

/*
 * Append the message as a JSON object without its closing '}' (see
 * mlk-record(5)): summary fields, "segments", then one member per segment
 * id holding its occurrences.
 */
void hl7_write(struct hl7_msg *m, struct buf *out);

#endif
