/* par — see par.h. */
#include <pthread.h>
#include <stdatomic.h>

#include "par.h"
#include "banned.h"

#define PAR_HELPERS 16

struct par {
	size_t n;
	atomic_size_t next;
	void (*fn)(void *ctx, size_t i);
	void *ctx;
};

static void *par_worker(void *arg)
{
	struct par *p = arg;
	size_t i;
	while ((i = atomic_fetch_add(&p->next, 1)) < p->n)
		p->fn(p->ctx, i);
	return NULL;
}

void par_for(size_t n, int threads, void (*fn)(void *ctx, size_t i),
	     void *ctx)
{
	struct par p = { n, 0, fn, ctx };
	pthread_t th[PAR_HELPERS];
	size_t nth = 0;
	while (threads > 1 && nth + 1 < (size_t)threads && nth + 1 < n &&
	       nth < PAR_HELPERS &&
	       pthread_create(&th[nth], NULL, par_worker, &p) == 0)
		nth++;
	par_worker(&p);
	for (size_t i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
}
