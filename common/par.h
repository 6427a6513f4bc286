/*
 * par — one loop over n items on a few threads.
 *
 * par_for(n, threads, fn, ctx) calls fn(ctx, i) once for every i below
 * n, on up to `threads` threads (the caller's among them, at most 17):
 * each thread takes the next i until none is left, so slow items do not
 * hold up the others.  It returns when every call has returned.  Calls
 * run concurrently: fn writes only what item i owns, or locks.  A thread
 * that cannot be started is done without; threads < 2 or n < 2 run
 * everything on the caller's thread.
 */
#ifndef MLK_PAR_H
#define MLK_PAR_H

#include <stddef.h>

void par_for(size_t n, int threads, void (*fn)(void *ctx, size_t i),
	     void *ctx);

#endif
