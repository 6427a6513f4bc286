#include "manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xalloc.h"
#include "banned.h"

void manifest_init(struct manifest *m, const char *type)
{
	memset(m, 0, sizeof *m);
	buf_addf(&m->head, "\"mlk_manifest\":%d,\"type\":", MANIFEST_VERSION);
	buf_add_json_cstr(&m->head, type);
}

void manifest_release(struct manifest *m)
{
	buf_release(&m->head);
	for (size_t i = 0; i < m->n; i++)
		free(m->ent[i]);
	free(m->ent);
	memset(m, 0, sizeof *m);
}

static void key(struct manifest *m, const char *k)
{
	buf_addch(&m->head, ',');
	buf_add_json_cstr(&m->head, k);
	buf_addch(&m->head, ':');
}

void manifest_set_str(struct manifest *m, const char *k, const char *val)
{
	key(m, k);
	if (val)
		buf_add_json_cstr(&m->head, val);
	else
		buf_addstr(&m->head, "null");
}

void manifest_set_num(struct manifest *m, const char *k, long long val)
{
	key(m, k);
	buf_addf(&m->head, "%lld", val);
}

void manifest_set_json(struct manifest *m, const char *k, const char *val)
{
	key(m, k);
	buf_addstr(&m->head, val);
}

void manifest_add(struct manifest *m, const char *json, size_t len)
{
	XGROW(m->ent, m->alloc, m->n + 1);
	m->ent[m->n++] = xstrndup(json, len);
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void manifest_sort(struct manifest *m)
{
	if (m->n)
		qsort(m->ent, m->n, sizeof *m->ent, cmp);
}

void manifest_digest_entries(struct manifest *m, char hex[SHA256_HEX])
{
	manifest_sort(m);
	struct sha256_ctx c;
	sha256_init(&c);
	for (size_t i = 0; i < m->n; i++) {
		sha256_update(&c, m->ent[i], strlen(m->ent[i]));
		sha256_update(&c, "\n", 1);
	}
	uint8_t d[SHA256_LEN];
	sha256_final(&c, d);
	hex_encode(d, SHA256_LEN, hex);
}

void manifest_serialize(struct manifest *m, struct buf *out)
{
	manifest_sort(m);
	buf_addch(out, '{');
	buf_add(out, m->head.data, m->head.len);
	buf_addstr(out, "}\n");
	for (size_t i = 0; i < m->n; i++) {
		buf_addstr(out, m->ent[i]);
		buf_addch(out, '\n');
	}
}

enum mlk_status manifest_read(const char *path, manifest_fn fn, void *ctx,
			      struct mlk_error *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mlk_error_errno(e, path, "cannot open manifest");
	struct linereader lr;
	struct rec r;
	lr_init(&lr, lr_read_fd, &fd);
	rec_init(&r);
	enum mlk_status s = MLK_OK;
	const char *line;
	size_t len;
	int got, first = 1;
	while ((got = lr_next(&lr, &line, &len, e)) != 0) {
		if (got < 0) {
			s = mlk_error_set(e, MLK_INTEGRITY, path, lr.lineno,
					  "%s", e->msg);
			break;
		}
		if (rec_parse(&r, line, len, e) != MLK_OK) {
			s = mlk_error_set(e, MLK_INTEGRITY, path, lr.lineno,
					  "malformed manifest line: %s",
					  e->msg);
			break;
		}
		if (first && rec_get(&r, 0, "mlk_manifest") < 0) {
			s = mlk_error_set(e, MLK_INTEGRITY, path, 1,
					  "not an mlk manifest");
			break;
		}
		int rc = fn(ctx, &r, first);
		first = 0;
		if (rc) {
			s = (enum mlk_status)rc;
			break;
		}
	}
	if (s == MLK_OK && first)
		s = mlk_error_set(e, MLK_INTEGRITY, path, 0, "empty manifest");
	rec_release(&r);
	lr_release(&lr);
	close(fd);
	return s;
}
