/*
 * record — NDJSON records: reading lines, validating, navigating, writing.
 *
 * This is the only module that includes <jsmn.h>.  jsmn tokenizes in place
 * (a token is a byte span of the line), which lets a tool read a few fields
 * and copy every untouched byte span to its output without re-serializing.
 * jsmn checks neither literals, numbers, separators nor UTF-8, so
 * rec_parse() adds that: after it returns MLK_OK the line is one valid JSON
 * object (RFC 8259) of valid UTF-8.
 *
 * Ownership: struct rec and struct linereader are caller-owned
 * (rec_init/rec_release, lr_init/lr_release).  A parsed rec points into the
 * caller's line bytes, which must outlive its use; token indices are valid
 * until the next rec_parse().  Strings returned through a struct buf are the
 * caller's.
 *
 * Token layout: tok 0 is the top-level object.  For any token i,
 * rec->skip[i] is the index just past i's subtree, so walking the members
 * of an object is: for (k = i + 1; k < skip[i]; k = skip[k + 1]) with key
 * k and value k + 1.
 */
#ifndef MLK_RECORD_H
#define MLK_RECORD_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "status.h"

enum rec_type { REC_OBJECT = 1, REC_ARRAY, REC_STRING, REC_PRIMITIVE };

struct rec {
	const char *text;
	size_t len;
	void *tok;      /* private: jsmn tokens */
	int ntok;
	int *skip;
	size_t tok_alloc, skip_alloc;
	int has_space;  /* insignificant whitespace between tokens */
	int has_escape; /* a backslash somewhere: some string has escapes */
	void *parser;   /* private */
};

#define REC_MAX_DEPTH 512

void rec_init(struct rec *r);
void rec_release(struct rec *r);

/*
 * Parse and validate one record (a JSON object; trailing whitespace and a
 * trailing '\r' are allowed).  On failure: MLK_PARTIAL with e->msg saying
 * what is wrong and at which byte, never quoting the input.
 */
enum mlk_status rec_parse(struct rec *r, const char *text, size_t len,
			  struct mlk_error *e);

/* Member lookup in object token obj; -1 when absent or obj not an object. */
int rec_get(const struct rec *r, int obj, const char *key);
/* Dotted path from object token `from` ("period.start"); no array steps. */
int rec_path(const struct rec *r, int from, const char *path);
/* True when token i is a string equal (after unescaping) to s. */
int rec_str_eq(const struct rec *r, int i, const char *s);
/* True when key token k (a string) equals s; keys are compared raw. */
int rec_key_eq(const struct rec *r, int k, const char *s);
/* Unescaped string value of token i appended to out; -1 if not a string. */
int rec_str(const struct rec *r, int i, struct buf *out);
/*
 * Type (enum rec_type) and size (members or items) of token i; raw bytes
 * of token i (strings without quotes, escapes as written).
 *
 * A module that calls these for every token it meets (deid.c) defines
 * MLK_REC_INLINE before including this header and gets them inline: a
 * token is REC_TOK_INTS ints (type, start, end, size, parent), which
 * record.c checks against jsmn's layout at compile time, and jsmn's types
 * are numbered as enum rec_type is (0, unused after rec_parse, reads as
 * REC_PRIMITIVE).  Everyone else calls record.c's, which do the same.
 */
#define REC_TOK_INTS 5
#ifdef MLK_REC_INLINE
static inline const int *rec_tok_(const struct rec *r, int i)
{
	return (const int *)r->tok + (size_t)i * REC_TOK_INTS;
}
static inline int rec_type(const struct rec *r, int i)
{
	int ty = rec_tok_(r, i)[0];
	return ty >= REC_OBJECT && ty <= REC_PRIMITIVE ? ty : REC_PRIMITIVE;
}
static inline int rec_size(const struct rec *r, int i)
{
	return rec_tok_(r, i)[3];
}
static inline const char *rec_raw(const struct rec *r, int i, size_t *n)
{
	const int *t = rec_tok_(r, i);
	*n = (size_t)(t[2] - t[1]);
	return r->text + t[1];
}
#else
int rec_type(const struct rec *r, int i);
int rec_size(const struct rec *r, int i);
const char *rec_raw(const struct rec *r, int i, size_t *n);
#endif
/* Byte span of token i including quotes for strings. */
void rec_span(const struct rec *r, int i, size_t *begin, size_t *end);

/* Token i written compactly (no insignificant whitespace). */
void rec_write(const struct rec *r, int i, struct buf *out);

/*
 * Object token obj compactly, without its member `drop` (if not NULL) and
 * without the closing '}': ready for the caller to append `,"key":...}`.
 * *empty is set when nothing was written after '{'.
 */
void rec_write_open(const struct rec *r, int obj, const char *drop,
		    struct buf *out, int *empty);

/* Validate UTF-8; returns the offset of the first bad byte or -1. */
long long utf8_invalid_at(const char *p, size_t n);

/*
 * A streaming line reader over a read callback.  Lines are returned
 * without '\n' (a trailing '\r' is kept; rec_parse accepts it).  Lines may
 * be up to max_line bytes (default 256 MiB); a longer line is reported
 * once as an error and skipped.
 */
typedef ssize_t (*lr_read_fn)(void *ctx, void *p, size_t n);

struct linereader {
	lr_read_fn read;
	void *ctx;
	size_t max_line;
	long long lineno;          /* 1-based number of the last line */
	unsigned long long offset; /* byte offset of the last line */
	/* private */
	char *buf; size_t alloc, start, end; int eof, skipping;
	unsigned long long base;
};

void lr_init(struct linereader *lr, lr_read_fn fn, void *ctx);
void lr_release(struct linereader *lr);
/*
 * 1 with *line and *len set; 0 at end; -1 on error (a line over max_line:
 * MLK_PARTIAL, skipped; read error: MLK_SYSTEM).  The line stays valid
 * until the next call.
 */
int lr_next(struct linereader *lr, const char **line, size_t *len,
	    struct mlk_error *e);

/* A read callback over a file descriptor (ctx is an int *). */
ssize_t lr_read_fd(void *ctx, void *p, size_t n);

#endif
