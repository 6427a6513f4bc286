/*
 * xalloc — allocation that cannot fail.
 *
 * The one exception to "common/ never exits": when memory runs out the
 * x-wrappers print "mlk: out of memory" and exit 5 (system error).  Callers
 * therefore never check their results.  Everything they return is freed by
 * the caller with free().
 */
#ifndef MLK_XALLOC_H
#define MLK_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* Grow *p (of *alloc elements of size sz) to hold at least need elements. */
void xgrow(void **p, size_t *alloc, size_t need, size_t sz);
#define XGROW(p, alloc, need) \
	xgrow((void **)&(p), &(alloc), (need), sizeof(*(p)))

#endif
