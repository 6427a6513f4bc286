/*
 * buf — a growable byte buffer, always NUL-terminated.
 *
 * A struct buf is owned by whoever declares it: initialise with BUF_INIT or
 * buf_init(), release with buf_release().  buf_detach() hands the bytes to
 * the caller, who then frees them with free().  Appending never fails
 * (allocation goes through xalloc).
 */
#ifndef MLK_BUF_H
#define MLK_BUF_H

#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t alloc;
};

#define BUF_INIT { NULL, 0, 0 }

void buf_init(struct buf *b);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
void buf_grow(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *p, size_t n);
void buf_addstr(struct buf *b, const char *s);
void buf_addch(struct buf *b, char c);
void buf_addf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
char *buf_detach(struct buf *b);
void buf_truncate(struct buf *b, size_t len);

/* Text as a JSON string, with quotes; the bytes must be valid UTF-8. */
void buf_add_json_str(struct buf *b, const char *s, size_t n);
void buf_add_json_cstr(struct buf *b, const char *s);

#endif
