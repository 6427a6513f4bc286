#include "scan.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "datareader.h"
#include "manifest.h"
#include "partition.h"
#include "record.h"
#include "xalloc.h"
#include "banned.h"

enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

void scan_filter_release(struct scan_filter *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->c[i].key);
		free(f->c[i].val);
	}
	free(f->c);
	f->c = NULL;
	f->n = 0;
}

enum mlk_status scan_filter_parse(const char *text, struct scan_filter *f,
				  struct mlk_error *e)
{
	memset(f, 0, sizeof *f);
	const char *p = text;
	size_t pos = 0;
	while (*p) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		const char *w = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		pos++;
		const char *k = w;
		while (k < p && (isalnum((unsigned char)*k) || *k == '_'))
			k++;
		size_t kn = (size_t)(k - w);
		int op;
		size_t on = 1;
		if (k + 1 < p && k[0] == '>' && k[1] == '=')
			op = OP_GE, on = 2;
		else if (k + 1 < p && k[0] == '<' && k[1] == '=')
			op = OP_LE, on = 2;
		else if (k + 1 < p && k[0] == '!' && k[1] == '=')
			op = OP_NE, on = 2;
		else if (k + 1 < p && k[0] == '=' && k[1] == '=')
			op = OP_EQ, on = 2;
		else if (k < p && k[0] == '=')
			op = OP_EQ;
		else if (k < p && k[0] == '<')
			op = OP_LT;
		else if (k < p && k[0] == '>')
			op = OP_GT;
		else
			op = -1;
		if (!kn || op < 0) {
			scan_filter_release(f);
			return mlk_error_set(e, MLK_USAGE, NULL, 0,
					     "--where condition %zu is not "
					     "KEY OP VALUE", pos);
		}
		f->c = xrealloc(f->c, (f->n + 1) * sizeof *f->c);
		struct scan_cond *c = &f->c[f->n++];
		c->key = xstrndup(w, kn);
		c->val = xstrndup(k + on, (size_t)(p - k - (ptrdiff_t)on));
		c->op = op;
		c->seen = 0;
	}
	return MLK_OK;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void unescape(const char *s, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		int h, l;
		if (s[i] == '%' && i + 2 < n &&
		    (h = hexval((unsigned char)s[i + 1])) >= 0 &&
		    (l = hexval((unsigned char)s[i + 2])) >= 0) {
			buf_addch(out, (char)(h * 16 + l));
			i += 2;
		} else {
			buf_addch(out, s[i]);
		}
	}
}

static int as_int(const char *s, long long *v)
{
	if (!*s)
		return 0;
	char *end;
	errno = 0;
	*v = strtoll(s, &end, 10);
	return !errno && *end == '\0' &&
	       (isdigit((unsigned char)*s) || *s == '-');
}

static int cond_holds(const struct scan_cond *c, const char *v)
{
	long long a, b;
	int cmp;
	if (as_int(v, &a) && as_int(c->val, &b))
		cmp = a < b ? -1 : a > b;
	else
		cmp = strcmp(v, c->val);
	switch (c->op) {
	case OP_EQ: return cmp == 0;
	case OP_NE: return cmp != 0;
	case OP_LT: return cmp < 0;
	case OP_LE: return cmp <= 0;
	case OP_GT: return cmp > 0;
	default: return cmp >= 0;
	}
}

int scan_filter_match(struct scan_filter *f, const char *partition)
{
	int ok = 1;
	struct buf v = BUF_INIT;
	for (size_t i = 0; i < f->n; i++) {
		struct scan_cond *c = &f->c[i];
		size_t kn = strlen(c->key);
		const char *p = partition;
		int found = 0;
		while (*p) {
			const char *sl = strchr(p, '/');
			size_t n = sl ? (size_t)(sl - p) : strlen(p);
			if (n > kn && p[kn] == '=' && !memcmp(p, c->key, kn)) {
				found = 1;
				c->seen = 1;
				const char *val = p + kn + 1;
				size_t vn = n - kn - 1;
				if (vn == strlen(PARTITION_DEFAULT) &&
				    !memcmp(val, PARTITION_DEFAULT, vn)) {
					ok = 0;
				} else {
					buf_reset(&v);
					unescape(val, vn, &v);
					if (!cond_holds(c, v.data ? v.data
								  : ""))
						ok = 0;
				}
				break;
			}
			if (!sl)
				break;
			p = sl + 1;
		}
		if (!found)
			ok = 0;
	}
	buf_release(&v);
	return ok;
}

struct files {
	char **path, **part;
	size_t n, alloc;
	struct buf tmp;
};

static int manifest_cb(void *ctx, const struct rec *r, int is_header)
{
	struct files *fs = ctx;
	if (is_header)
		return 0;
	int k = rec_get(r, 0, "entry");
	if (k < 0 || !rec_str_eq(r, k, "file"))
		return 0;
	int pth = rec_get(r, 0, "path"), part = rec_get(r, 0, "partition");
	if (pth < 0 || part < 0)
		return 0;
	if (fs->n == fs->alloc) {
		fs->alloc = fs->alloc ? 2 * fs->alloc : 16;
		fs->path = xrealloc(fs->path, fs->alloc * sizeof *fs->path);
		fs->part = xrealloc(fs->part, fs->alloc * sizeof *fs->part);
	}
	buf_reset(&fs->tmp);
	rec_str(r, pth, &fs->tmp);
	fs->path[fs->n] = xstrdup(fs->tmp.data ? fs->tmp.data : "");
	buf_reset(&fs->tmp);
	rec_str(r, part, &fs->tmp);
	fs->part[fs->n++] = xstrdup(fs->tmp.data ? fs->tmp.data : "");
	return 0;
}

static void files_clear(struct files *fs)
{
	for (size_t i = 0; i < fs->n; i++) {
		free(fs->path[i]);
		free(fs->part[i]);
	}
	fs->n = 0;
}

struct scan_file_ctx {
	const char *path, *tail, *part;
	size_t tlen;
	scan_fn fn;
	void *ctx;
	struct scan_stats *st;
	struct buf out;
};

static int scan_line(void *ctx, const char *line, size_t len,
		     long long lineno, struct mlk_error *e)
{
	struct scan_file_ctx *c = ctx;
	if (len < 3 || line[len - 1] != '}' || line[len - 2] != '}')
		return mlk_error_set(e, MLK_INTEGRITY, c->path, lineno,
				     "stored record does not end its "
				     "envelope");
	buf_reset(&c->out);
	buf_add(&c->out, line, len - 2);
	buf_add(&c->out, c->tail, c->tlen);
	buf_add_json_cstr(&c->out, c->part);
	buf_add(&c->out, "}}\n", 3);
	c->st->records++;
	int r = c->fn(c->ctx, c->out.data, c->out.len);
	if (r)
		mlk_error_set(e, (enum mlk_status)r, NULL, 0,
			      "output stopped");
	return r;
}

static enum mlk_status scan_file(const char *path, const char *tail,
				 size_t tlen, const char *part, scan_fn fn,
				 void *ctx, struct scan_stats *st,
				 struct mlk_error *e)
{
	struct scan_file_ctx c = { path, tail, part, tlen, fn, ctx, st,
				   BUF_INIT };
	st->files++;
	enum mlk_status s = datareader_lines(path, scan_line, &c, e);
	buf_release(&c.out);
	return s;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum mlk_status scan_dataset(const struct lake *l, const char *dataset,
			     struct scan_filter *f, scan_fn fn, void *ctx,
			     struct scan_stats *st, struct mlk_error *e)
{
	memset(st, 0, sizeof *st);
	char *dir = lake_path(l, "raw/%s", dataset);
	DIR *dp = opendir(dir);
	if (!dp) {
		enum mlk_status s = errno == ENOENT ?
			mlk_error_set(e, MLK_USAGE, NULL, 0,
				      "raw/%s holds no batches", dataset) :
			mlk_error_errno(e, dir, "cannot read directory");
		free(dir);
		return s;
	}
	char **ids = NULL;
	size_t nid = 0, aid = 0;
	struct dirent *de;
	while ((de = readdir(dp))) {
		if (strncmp(de->d_name, "batch=", 6))
			continue;
		XGROW(ids, aid, nid + 1);
		ids[nid++] = xstrdup(de->d_name + 6);
	}
	closedir(dp);
	if (nid)
		qsort(ids, nid, sizeof *ids, cmp_str);

	struct files fs;
	memset(&fs, 0, sizeof fs);
	struct buf tail = BUF_INIT;
	enum mlk_status s = MLK_OK;
	for (size_t b = 0; s == MLK_OK && b < nid; b++) {
		char *mp = xasprintf("%s/batch=%s/_manifest.json", dir,
				     ids[b]);
		files_clear(&fs);
		s = manifest_read(mp, manifest_cb, &fs, e);
		free(mp);
		st->batches++;
		buf_reset(&tail);
		buf_addstr(&tail, ",\"dataset\":");
		buf_add_json_cstr(&tail, dataset);
		buf_addstr(&tail, ",\"batch\":");
		buf_add_json_cstr(&tail, ids[b]);
		buf_addstr(&tail, ",\"zone\":\"raw\",\"partition\":");
		for (size_t i = 0; s == MLK_OK && i < fs.n; i++) {
			if (f && f->n && !scan_filter_match(f, fs.part[i])) {
				st->pruned++;
				continue;
			}
			/* A manifest names files inside its batch only. */
			const char *fpth = fs.path[i];
			if (!*fpth || fpth[0] == '/' || !strcmp(fpth, "..") ||
			    !strncmp(fpth, "../", 3) || strstr(fpth, "/../") ||
			    (strlen(fpth) >= 3 &&
			     !strcmp(fpth + strlen(fpth) - 3, "/.."))) {
				char *mp2 = xasprintf("%s/batch=%s/_manifest"
						      ".json", dir, ids[b]);
				s = mlk_error_set(e, MLK_INTEGRITY, mp2, 0,
						  "names a file outside its "
						  "batch");
				free(mp2);
				break;
			}
			char *fp = xasprintf("%s/batch=%s/%s", dir, ids[b],
					     fpth);
			s = scan_file(fp, tail.data, tail.len, fs.part[i],
				      fn, ctx, st, e);
			free(fp);
		}
	}
	files_clear(&fs);
	free(fs.path);
	free(fs.part);
	buf_release(&fs.tmp);
	buf_release(&tail);
	for (size_t i = 0; i < nid; i++)
		free(ids[i]);
	free(ids);
	free(dir);
	return s;
}
