/* memmem(3) is a GNU extension (glibc, musl). */
#define _GNU_SOURCE
#include "vault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsio.h"
#include "record.h"
#include "xalloc.h"
#include "banned.h"

#define TOKEN_LEN 36

struct vault_writer {
	char *project;
	uint8_t key[MLK_KEY_LEN];
	char *final, *tmp;
	int fd;
	char **tok;            /* open-addressing set of written tokens */
	size_t ntok, nslot;
	struct buf line;
	uint8_t *sealed;
	size_t sealed_alloc;
};

int vault_project_valid(const char *p)
{
	size_t n = strlen(p);
	if (!n || n > 64 || p[0] == '.' || p[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

static uint64_t thash(const char *t)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *t; t++)
		h = (h ^ (unsigned char)*t) * 0x100000001b3ULL;
	return h;
}

/* 1 when token was new (and is now in the set). */
static int tok_add(struct vault_writer *w, const char *token)
{
	if ((w->ntok + 1) * 2 > w->nslot) {
		size_t ns = w->nslot ? w->nslot * 2 : 1024;
		char **nt = xcalloc(ns, sizeof *nt);
		for (size_t i = 0; i < w->nslot; i++)
			if (w->tok[i]) {
				size_t s = thash(w->tok[i]) & (ns - 1);
				while (nt[s])
					s = (s + 1) & (ns - 1);
				nt[s] = w->tok[i];
			}
		free(w->tok);
		w->tok = nt;
		w->nslot = ns;
	}
	size_t s = thash(token) & (w->nslot - 1);
	while (w->tok[s]) {
		if (!strcmp(w->tok[s], token))
			return 0;
		s = (s + 1) & (w->nslot - 1);
	}
	w->tok[s] = xstrdup(token);
	w->ntok++;
	return 1;
}

static void writer_free(struct vault_writer *w)
{
	crypto_wipe(w->key, sizeof w->key);
	for (size_t i = 0; i < w->nslot; i++)
		free(w->tok[i]);
	free(w->tok);
	free(w->project);
	free(w->final);
	free(w->tmp);
	if (w->sealed)
		crypto_wipe(w->sealed, w->sealed_alloc);
	free(w->sealed);
	buf_release(&w->line);
	free(w);
}

enum mlk_status vault_open(const struct lake *l, const char *project,
			   const uint8_t vkey[MLK_KEY_LEN],
			   struct vault_writer **out, struct mlk_error *e)
{
	*out = NULL;
	if (!vault_project_valid(project))
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "'%s' is not a project name (letters, "
				     "digits, '.', '_', '-')", project);
	char *dir = lake_path(l, "vault/%s", project);
	enum mlk_status st = fsio_mkdirs(dir, 0700, e);
	if (st != MLK_OK) {
		free(dir);
		return st;
	}
	struct vault_writer *w = xcalloc(1, sizeof *w);
	w->fd = -1;
	memcpy(w->key, vkey, MLK_KEY_LEN);
	w->project = xstrdup(project);
	uint8_t rnd[8];
	if (crypto_random(rnd, sizeof rnd, e) != MLK_OK) {
		free(dir);
		writer_free(w);
		return e->status;
	}
	char rh[17];
	hex_encode(rnd, sizeof rnd, rh);
	w->final = xasprintf("%s/v-%lld-%s.ndjson", dir, (long long)time(NULL),
			     rh);
	free(dir);
	st = fsio_temp_beside(w->final, &w->fd, &w->tmp, e);
	if (st != MLK_OK) {
		writer_free(w);
		return st;
	}
	*out = w;
	return MLK_OK;
}

static void aad_of(struct buf *b, const char *project, const char *token)
{
	buf_reset(b);
	buf_addstr(b, project);
	buf_addch(b, '\0');
	buf_addstr(b, token);
}

enum mlk_status vault_put(struct vault_writer *w, const char *token,
			  const char *value, size_t n, struct mlk_error *e)
{
	if (!tok_add(w, token))
		return MLK_OK;
	size_t need = n + AEAD_OVERHEAD;
	if (need > w->sealed_alloc) {
		if (w->sealed)
			crypto_wipe(w->sealed, w->sealed_alloc);
		free(w->sealed);
		w->sealed_alloc = need * 2;
		w->sealed = xmalloc(w->sealed_alloc);
	}
	struct buf aad = BUF_INIT;
	aad_of(&aad, w->project, token);
	enum mlk_status st = aead_seal(w->key, aad.data, aad.len, value, n,
				       w->sealed, e);
	buf_release(&aad);
	if (st != MLK_OK)
		return st;
	buf_reset(&w->line);
	buf_addf(&w->line, "{\"token\":\"%s\",\"sealed\":\"", token);
	char *hx = xmalloc(2 * need + 1);
	hex_encode(w->sealed, need, hx);
	buf_add(&w->line, hx, 2 * need);
	free(hx);
	buf_add(&w->line, "\"}\n", 3);
	return fsio_write_all(w->fd, w->line.data, w->line.len, w->tmp, e);
}

enum mlk_status vault_commit(struct vault_writer *w, size_t *written,
			     struct mlk_error *e)
{
	*written = w->ntok;
	enum mlk_status st;
	if (!w->ntok) {
		close(w->fd);
		unlink(w->tmp);
		st = MLK_OK;
	} else {
		st = fsio_commit(w->fd, w->tmp, w->final, 0400, 0, e);
	}
	writer_free(w);
	return st;
}

void vault_abort(struct vault_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	unlink(w->tmp);
	writer_free(w);
}

enum mlk_status vault_lookup(const struct lake *l, const char *project,
			     const uint8_t vkey[MLK_KEY_LEN],
			     const char *token, struct buf *out, int *found,
			     struct mlk_error *e)
{
	*found = 0;
	if (!vault_project_valid(project))
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "'%s' is not a project name", project);
	char *dir = lake_path(l, "vault/%s", project);
	char **names;
	size_t nn;
	enum mlk_status st = fsio_list(dir, ".ndjson", &names, &nn, e);
	if (st != MLK_OK) {
		free(dir);
		return st;
	}
	char needle[64];
	int nl = snprintf(needle, sizeof needle, "\"token\":\"%s\"", token);
	st = MLK_OK;
	struct rec r;
	rec_init(&r);
	struct buf hexb = BUF_INIT, aad = BUF_INIT;
	for (size_t i = 0; i < nn && !*found && st == MLK_OK; i++) {
		char *path = xasprintf("%s/%s.ndjson", dir, names[i]);
		char *data = NULL;
		size_t len = 0;
		st = fsio_read_file(path, &data, &len, e);
		const char *hit = st == MLK_OK && nl > 0
				  ? memmem(data, len, needle, (size_t)nl)
				  : NULL;
		if (hit) {
			const char *ls = hit;
			while (ls > data && ls[-1] != '\n')
				ls--;
			const char *le = memchr(hit, '\n',
						len - (size_t)(hit - data));
			if (!le)
				le = data + len;
			int s = -1;
			if (rec_parse(&r, ls, (size_t)(le - ls), e) == MLK_OK)
				s = rec_get(&r, 0, "sealed");
			buf_reset(&hexb);
			if (s < 0 || rec_str(&r, s, &hexb) < 0 ||
			    hexb.len % 2 || hexb.len / 2 < AEAD_OVERHEAD) {
				st = mlk_error_set(e, MLK_INTEGRITY, path, 0,
						   "vault entry is damaged");
			} else {
				size_t sn = hexb.len / 2;
				uint8_t *sealed = xmalloc(sn);
				uint8_t *plain = xmalloc(sn);
				hex_decode(hexb.data, sealed, sn);
				aad_of(&aad, project, token);
				st = aead_open(vkey, aad.data, aad.len, sealed,
					       sn, plain, e);
				if (st == MLK_OK) {
					buf_add(out, plain, sn - AEAD_OVERHEAD);
					*found = 1;
					crypto_wipe(plain, sn);
				} else {
					e->file[0] = '\0';
					mlk_error_set(e, MLK_INTEGRITY, path, 0,
						      "vault entry does not "
						      "open (wrong key or "
						      "altered)");
				}
				free(sealed);
				free(plain);
			}
		}
		if (data)
			crypto_wipe(data, len);
		free(data);
		free(path);
	}
	rec_release(&r);
	buf_release(&hexb);
	buf_release(&aad);
	fsio_list_free(names, nn);
	free(dir);
	return st;
}
