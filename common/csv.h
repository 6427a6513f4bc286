/*
 * csv — a streaming RFC 4180 reader.
 *
 * Reads records from a caller-supplied read callback, so it works on files,
 * pipes and decompressing streams alike.  Handles a UTF-8 byte-order mark
 * at the very start, quoted fields with "" escapes, embedded CR/LF inside
 * quotes, and records ended by LF or CRLF (a lone CR ends a record too).
 * The delimiter is ',' unless set.  Memory is bounded by the longest record
 * (max_record bytes, default 64 MiB; longer records are an error).
 *
 * Ownership: struct csv_reader is caller-owned (csv_init/csv_release).  The
 * field pointers of a record point into the reader and are valid until the
 * next csv_next() call.  Field bytes are NUL-terminated; quoted fields may
 * contain NUL bytes, so use the lengths.
 */
#ifndef MLK_CSV_H
#define MLK_CSV_H

#include <stddef.h>
#include <sys/types.h>

#include "status.h"

/* Read up to n bytes into p; return bytes read, 0 at end, -1 on error. */
typedef ssize_t (*csv_read_fn)(void *ctx, void *p, size_t n);

struct csv_field {
	const char *p;
	size_t len;
	int quoted;        /* the field was written in quotes */
};

struct csv_reader {
	csv_read_fn read;
	void *ctx;
	char delim;
	size_t max_record;
	long long line;        /* 1-based physical line where the last record began */
	long long next_line;   /* physical line where the next record begins */
	unsigned long long offset;     /* byte offset where the last record began */
	/* the raw bytes of the last record, as in the input (for quarantine);
	 * NULL and 0 after a record over max_record */
	const char *raw;
	size_t raw_len;
	/* private */
	char *in; size_t in_len, in_pos, in_alloc; int eof; int bom_checked;
	unsigned long long in_base;
	char *rec; size_t rec_alloc;
	struct csv_field *fields; size_t fields_alloc;
};

void csv_init(struct csv_reader *r, csv_read_fn fn, void *ctx);
void csv_release(struct csv_reader *r);

/*
 * Read the next record.  Returns 1 with *fields and *nfields set, 0 at end of
 * input, -1 on a malformed record (unterminated quote at end of input, a
 * quote inside an unquoted field, a character after a closing quote, or a
 * record over max_record) with e filled (MLK_USAGE, line set, file left
 * empty for the caller); after -1 the reader has skipped to the start of the next record
 * and may be called again.  A read error gives -1 with MLK_SYSTEM.  Blank
 * lines (a record that is one empty unquoted field) are skipped.
 */
int csv_next(struct csv_reader *r, struct csv_field **fields, size_t *nfields,
	     struct mlk_error *e);

#endif
