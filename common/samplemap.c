/* samplemap — see samplemap.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "crypto.h"
#include "csv.h"
#include "samplemap.h"
#include "xalloc.h"
#include "banned.h"

struct pair {
	char *sample, *patient;
	long long line;
};

struct samplemap {
	struct pair *v;
	size_t n;
};

static ssize_t rd(void *ctx, void *p, size_t n)
{
	int fd = *(int *)ctx;
	ssize_t k;
	do
		k = read(fd, p, n);
	while (k < 0 && errno == EINTR);
	return k;
}

static int named(const struct csv_field *f, const char *const *names)
{
	for (; *names; names++)
		if (f->len == strlen(*names) &&
		    !strncasecmp(f->p, *names, f->len))
			return 1;
	return 0;
}

static int by_sample(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	int c = strcmp(x->sample, y->sample);
	if (c)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

static void wipe_str(char *s)
{
	if (s) {
		crypto_wipe(s, strlen(s));
		free(s);
	}
}

void samplemap_free(struct samplemap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		wipe_str(m->v[i].sample);
		wipe_str(m->v[i].patient);
	}
	free(m->v);
	free(m);
}

enum mlk_status samplemap_load(const char *path, struct samplemap **out,
			       struct mlk_error *e)
{
	static const char *const snames[] = { "sample", "sample_id",
		"sample_name", NULL };
	static const char *const pnames[] = { "patient", "patient_id",
		"subject_id", "person_id", NULL };
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mlk_error_errno(e, path, "cannot open the sample map");
	/* TSV when the first line holds a tab */
	char head[4096];
	ssize_t hn = pread(fd, head, sizeof head, 0);
	char delim = ',';
	for (ssize_t i = 0; i < hn && head[i] != '\n'; i++)
		if (head[i] == '\t') {
			delim = '\t';
			break;
		}
	struct csv_reader r;
	csv_init(&r, rd, &fd);
	r.delim = delim;
	struct samplemap *m = xcalloc(1, sizeof *m);
	size_t alloc = 0;
	long sc = -1, pc = -1;
	int have_header = 0;
	enum mlk_status st = MLK_OK;
	struct csv_field *f;
	size_t nf;
	int k;
	while ((k = csv_next(&r, &f, &nf, e)) == 1) {
		if (!have_header) {
			have_header = 1;
			for (size_t i = 0; i < nf; i++) {
				if (sc < 0 && named(&f[i], snames))
					sc = (long)i;
				else if (pc < 0 && named(&f[i], pnames))
					pc = (long)i;
			}
			if (sc < 0 || pc < 0) {
				st = mlk_error_set(e, MLK_USAGE, path, r.line,
						   "the "
						   "sample map's header needs "
						   "a sample and a patient "
						   "column");
				break;
			}
			continue;
		}
		if ((size_t)sc >= nf || (size_t)pc >= nf || !f[sc].len ||
		    !f[pc].len || memchr(f[sc].p, '\0', f[sc].len) ||
		    memchr(f[pc].p, '\0', f[pc].len)) {
			st = mlk_error_set(e, MLK_USAGE, path, r.line, "a "
					   "sample map row needs a sample and "
					   "a patient");
			break;
		}
		if (m->n == alloc) {
			alloc = alloc ? 2 * alloc : 64;
			m->v = xrealloc(m->v, alloc * sizeof *m->v);
		}
		m->v[m->n].sample = xstrndup(f[sc].p, f[sc].len);
		m->v[m->n].patient = xstrndup(f[pc].p, f[pc].len);
		m->v[m->n].line = r.line;
		m->n++;
	}
	if (k < 0 && st == MLK_OK) {
		snprintf(e->file, sizeof e->file, "%s", path);
		st = e->status;
	}
	if (st == MLK_OK && !have_header)
		st = mlk_error_set(e, MLK_USAGE, path, 0, "the sample map is "
				   "empty");
	csv_release(&r);
	close(fd);
	if (st == MLK_OK && m->n) {
		qsort(m->v, m->n, sizeof *m->v, by_sample);
		size_t w = 1;
		for (size_t i = 1; i < m->n; i++) {
			struct pair *a = &m->v[w - 1], *b = &m->v[i];
			if (strcmp(a->sample, b->sample)) {
				m->v[w++] = *b;
				continue;
			}
			if (strcmp(a->patient, b->patient)) {
				st = mlk_error_set(e, MLK_USAGE, path, b->line,
						   "a sample of line %lld is "
						   "given another patient",
						   a->line);
				/* keep both for the free below */
				m->v[w++] = *b;
				for (size_t j = i + 1; j < m->n; j++)
					m->v[w++] = m->v[j];
				break;
			}
			wipe_str(b->sample);
			wipe_str(b->patient);
		}
		m->n = w;
	}
	if (st != MLK_OK) {
		samplemap_free(m);
		return st;
	}
	*out = m;
	return MLK_OK;
}

const char *samplemap_patient(const struct samplemap *m, const char *sample)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->v[mid].sample, sample);
		if (!c)
			return m->v[mid].patient;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

size_t samplemap_size(const struct samplemap *m)
{
	return m->n;
}
