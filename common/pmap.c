#include "pmap.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"
#include "banned.h"

#define BLOCK (1u << 20)

struct block {
	char *data;
	size_t len, alloc;
	long long first_line;          /* number of the block's first line */
	unsigned long long offset;     /* byte offset of the block's start */
	int state;                     /* 0 free, 1 queued, 2 taken, 3 done */
	struct pmap_out out;
	/* a line over max_line, reported instead of mapped */
	int overlong;
};

struct pool {
	const struct pmap_ops *ops;
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	struct block *ring;
	size_t nring, head, tail, next;   /* tail: next to fill; next: take */
	int quit;
	size_t max_line;
};

void pmap_add_record(struct pmap_out *out, size_t off, size_t aux_off,
		     long long line, size_t keep)
{
	XGROW(out->items, out->alloc, out->n + 1);
	struct pmap_item *it = &out->items[out->n++];
	memset(it, 0, sizeof *it);
	it->kind = PMAP_RECORD;
	it->off = off;
	it->len = out->data.len - off;
	it->aux_off = aux_off;
	it->aux_len = out->aux.len - aux_off;
	it->line = line;
	it->keep = keep;
}

void pmap_add_reject(struct pmap_out *out, const char *raw, size_t rawlen,
		     const char *reason, long long line,
		     unsigned long long offset)
{
	XGROW(out->items, out->alloc, out->n + 1);
	struct pmap_item *it = &out->items[out->n++];
	memset(it, 0, sizeof *it);
	it->kind = PMAP_REJECT;
	it->line = line;
	it->offset = offset;
	it->has_raw = raw != NULL;
	it->raw_off = out->aux.len;
	it->raw_len = raw ? rawlen : 0;
	if (raw && rawlen)
		buf_add(&out->aux, raw, rawlen);
	it->aux_off = out->aux.len;
	it->aux_len = strlen(reason);
	buf_add(&out->aux, reason, it->aux_len);
}

static void map_block(struct pool *p, void *tls, struct block *b)
{
	const struct pmap_ops *ops = p->ops;
	if (b->overlong) {
		char why[80];
		snprintf(why, sizeof why, "line longer than %zu bytes",
			 p->max_line);
		pmap_add_reject(&b->out, NULL, 0, why, b->first_line,
				b->offset);
		return;
	}
	const char *s = b->data, *end = b->data + b->len;
	long long line = b->first_line;
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *e = nl ? nl : end;
		const char *t = s;
		/* A UTF-8 byte-order mark may open the input. */
		if (line == 1 && b->offset == 0 && e - t >= 3 &&
		    !memcmp(t, "\xef\xbb\xbf", 3))
			t += 3;
		const char *q = t;
		while (q < e && (*q == ' ' || *q == '\t' || *q == '\r'))
			q++;
		unsigned long long off =
			b->offset + (unsigned long long)(s - b->data);
		if ((size_t)(e - s) > p->max_line) {
			/* The limit holds per line, wherever it falls. */
			char why[80];
			snprintf(why, sizeof why, "line longer than %zu bytes",
				 p->max_line);
			pmap_add_reject(&b->out, NULL, 0, why, line, off);
		} else if (q < e) {
			ops->map(ops->ctx, tls, t, (size_t)(e - t), line, off,
				 &b->out);
		}
		line++;
		s = nl ? nl + 1 : end;
	}
}

static void *worker(void *arg)
{
	struct pool *p = arg;
	void *tls = p->ops->tls_new ? p->ops->tls_new(p->ops->ctx) : NULL;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->next == p->tail && !p->quit)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->next == p->tail && p->quit)
			break;
		struct block *b = &p->ring[p->next++ % p->nring];
		b->state = 2;
		pthread_mutex_unlock(&p->mu);
		map_block(p, tls, b);
		pthread_mutex_lock(&p->mu);
		b->state = 3;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	if (p->ops->tls_free)
		p->ops->tls_free(p->ops->ctx, tls);
	return NULL;
}

static ssize_t read_more(pmap_read_fn rd, void *rctx, struct block *b,
			 size_t want)
{
	if (b->alloc - b->len < want) {
		size_t n = b->alloc ? b->alloc : BLOCK;
		while (n - b->len < want)
			n *= 2;
		b->data = xrealloc(b->data, n);
		b->alloc = n;
	}
	for (;;) {
		ssize_t r = rd(rctx, b->data + b->len, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r > 0)
			b->len += (size_t)r;
		return r;
	}
}

/*
 * Read up to want more bytes into b.  A read error ends the input like
 * end of file, but is noted (in e and *failed): the whole lines read
 * before it are still mapped, then pmap_run reports it.
 */
static void read_step(pmap_read_fn rd, void *rctx, struct block *b,
		      size_t want, int *eof, int *failed, struct mlk_error *e)
{
	ssize_t r = read_more(rd, rctx, b, want);
	if (r < 0) {
		mlk_error_errno(e, NULL, "read error");
		*failed = 1;
	}
	if (r <= 0)
		*eof = 1;
}

static long long count_lines(const char *p, size_t n)
{
	long long c = 0;
	const char *end = p + n;
	while ((p = memchr(p, '\n', (size_t)(end - p)))) {
		c++;
		p++;
	}
	return c;
}

enum mlk_status pmap_run(pmap_read_fn rd, void *rctx, int threads,
			 size_t max_line, const struct pmap_ops *ops,
			 struct mlk_error *e)
{
	struct pool p;
	memset(&p, 0, sizeof p);
	p.ops = ops;
	p.max_line = max_line ? max_line : (size_t)256 << 20;
	p.nring = threads > 0 ? (size_t)(threads + 2) : 1;
	p.ring = xcalloc(p.nring, sizeof *p.ring);
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.work, NULL);
	pthread_cond_init(&p.done, NULL);
	pthread_t *tids = xcalloc((size_t)(threads > 0 ? threads : 1),
				  sizeof *tids);
	int started = 0;
	for (int i = 0; i < threads; i++)
		if (pthread_create(&tids[i], NULL, worker, &p) == 0)
			started++;
	void *tls = NULL;
	if (!started && ops->tls_new)
		tls = ops->tls_new(ops->ctx);

	enum mlk_status st = MLK_OK;
	int read_failed = 0;
	/* Bytes after the last newline of a block move to the next one. */
	char *carry = NULL;
	size_t carry_len = 0, carry_alloc = 0;
	long long line = 1;
	unsigned long long offset = 0;
	int eof = 0, skipping = 0;

	while (st == MLK_OK && (!eof || carry_len)) {
		/* A free slot: reduce the oldest block until one is. */
		pthread_mutex_lock(&p.mu);
		while (p.tail - p.head == p.nring ||
		       (p.head < p.tail && p.ring[p.head % p.nring].state == 3)) {
			struct block *ob = &p.ring[p.head % p.nring];
			if (ob->state != 3) {
				pthread_cond_wait(&p.done, &p.mu);
				continue;
			}
			pthread_mutex_unlock(&p.mu);
			int rc = ops->reduce(ops->ctx, &ob->out);
			pthread_mutex_lock(&p.mu);
			ob->state = 0;
			p.head++;
			if (rc) {
				st = (enum mlk_status)rc;
				break;
			}
		}
		pthread_mutex_unlock(&p.mu);
		if (st != MLK_OK)
			break;

		struct block *b = &p.ring[p.tail % p.nring];
		b->len = 0;
		b->overlong = 0;
		buf_reset(&b->out.data);
		buf_reset(&b->out.aux);
		b->out.n = 0;
		b->first_line = line;
		b->offset = offset;
		if (carry_len) {
			if (b->alloc < carry_len + BLOCK) {
				b->data = xrealloc(b->data, carry_len + BLOCK);
				b->alloc = carry_len + BLOCK;
			}
			memcpy(b->data, carry, carry_len);
			b->len = carry_len;
			carry_len = 0;
		}
		/* Fill the block, then cut it after its last newline; what
		 * was scanned for one is not scanned again. */
		size_t cut = 0, scanned = 0;
		for (;;) {
			if (!eof && b->len < BLOCK) {
				read_step(rd, rctx, b, BLOCK - b->len, &eof,
					  &read_failed, e);
				if (!eof && b->len < BLOCK)
					continue;
			}
			const char *nl = NULL;
			for (size_t i = b->len; i-- > scanned;)
				if (b->data[i] == '\n') {
					nl = b->data + i;
					break;
				}
			scanned = b->len;
			if (nl || eof) {
				cut = nl && !eof ? (size_t)(nl - b->data) + 1
						 : b->len;
				/* After a read error a partial last line is
				 * part of the damage, not a record. */
				if (read_failed)
					cut = nl ? (size_t)(nl - b->data) + 1 : 0;
				break;
			}
			/* No newline in a full block: a long line. */
			if (b->len > p.max_line) {
				/* Report it once, then drop bytes up to
				 * its end. */
				if (!skipping) {
					skipping = 1;
					b->overlong = 1;
					cut = b->len;
					break;
				}
				offset += b->len;
				b->len = 0;
				scanned = 0;
				continue;
			}
			read_step(rd, rctx, b, BLOCK, &eof, &read_failed, e);
		}
		if (st != MLK_OK)
			break;
		if (skipping && !b->overlong) {
			/* The rest of an overlong line ends at the first
			 * newline of this block. */
			char *nl = memchr(b->data, '\n', cut);
			size_t drop = nl ? (size_t)(nl - b->data) + 1 : cut;
			if (nl)
				skipping = 0;
			memmove(b->data, b->data + drop, b->len - drop);
			b->len -= drop;
			cut -= drop;
			offset += drop;
			if (nl) {
				line++;
				b->first_line = line;
			}
			b->offset = offset;
		}
		if (cut < b->len && !read_failed) {
			XGROW(carry, carry_alloc, b->len - cut);
			memcpy(carry, b->data + cut, b->len - cut);
			carry_len = b->len - cut;
		}
		b->len = cut;
		if (b->overlong) {
			offset += cut;
		} else {
			line += count_lines(b->data, cut);
			offset += cut;
		}
		if (!b->len && !b->overlong)
			continue;
		if (!started) {
			map_block(&p, tls, b);
			int rc = ops->reduce(ops->ctx, &b->out);
			if (rc)
				st = (enum mlk_status)rc;
			continue;
		}
		pthread_mutex_lock(&p.mu);
		b->state = 1;
		p.tail++;
		pthread_cond_signal(&p.work);
		pthread_mutex_unlock(&p.mu);
	}

	/* Reduce what is left, in order, then stop the workers. */
	pthread_mutex_lock(&p.mu);
	while (p.head < p.tail) {
		struct block *ob = &p.ring[p.head % p.nring];
		if (ob->state != 3) {
			pthread_cond_wait(&p.done, &p.mu);
			continue;
		}
		pthread_mutex_unlock(&p.mu);
		/* After a read error the blocks read before it still count. */
		int rc = st == MLK_OK || read_failed
				 ? ops->reduce(ops->ctx, &ob->out) : 0;
		if (rc) {
			st = (enum mlk_status)rc;
			read_failed = 0;
		}
		pthread_mutex_lock(&p.mu);
		ob->state = 0;
		p.head++;
	}
	p.quit = 1;
	pthread_cond_broadcast(&p.work);
	pthread_mutex_unlock(&p.mu);
	for (int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (tls && ops->tls_free)
		ops->tls_free(ops->ctx, tls);
	for (size_t i = 0; i < p.nring; i++) {
		free(p.ring[i].data);
		buf_release(&p.ring[i].out.data);
		buf_release(&p.ring[i].out.aux);
		free(p.ring[i].out.items);
	}
	free(p.ring);
	free(tids);
	free(carry);
	pthread_mutex_destroy(&p.mu);
	pthread_cond_destroy(&p.work);
	pthread_cond_destroy(&p.done);
	if (st == MLK_OK && read_failed)
		st = MLK_SYSTEM;
	return st;
}
