#include "access.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "crypto.h"
#include "fsio.h"
#include "record.h"
#include "xalloc.h"
#include "banned.h"

void access_req_release(struct access_req *r)
{
	free(r->user);
	free(r->action);
	free(r->zone);
	free(r->dataset);
	free(r->purpose);
	free(r->project);
	free(r->status);
	free(r->rule);
	free(r->approver);
	free(r->decided_by);
	memset(r, 0, sizeof *r);
}

int access_id_valid(const char *id)
{
	if (strlen(id) != ACCESS_ID_LEN - 1 || id[0] != 'r' || id[1] != '-')
		return 0;
	for (const char *p = id + 2; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

static const char *s_or(const char *s)
{
	return s ? s : "";
}

enum mlk_status access_new_id(struct access_req *r, struct mlk_error *e)
{
	unsigned char rnd[16];
	if (crypto_random(rnd, sizeof rnd, e) != MLK_OK)
		return e->status;
	struct buf b = BUF_INIT;
	buf_addf(&b, "%s\n%s\n%s\n%s\n%s\n%s\n%s\n", s_or(r->user),
		 s_or(r->action), s_or(r->zone), s_or(r->dataset),
		 s_or(r->purpose), s_or(r->project), r->created);
	buf_add(&b, rnd, sizeof rnd);
	char hex[SHA256_HEX];
	sha256_hex_once(b.data, b.len, hex);
	buf_release(&b);
	snprintf(r->id, sizeof r->id, "r-%.16s", hex);
	return MLK_OK;
}

static void member(struct buf *b, const char *k, const char *v, int first)
{
	if (!first)
		buf_addch(b, ',');
	buf_add_json_cstr(b, k);
	buf_addch(b, ':');
	if (v && *v)
		buf_add_json_cstr(b, v);
	else
		buf_addstr(b, "null");
}

void access_json(const struct access_req *r, struct buf *out)
{
	buf_addch(out, '{');
	member(out, "id", r->id, 1);
	member(out, "user", r->user, 0);
	member(out, "action", r->action, 0);
	member(out, "zone", r->zone, 0);
	member(out, "dataset", r->dataset, 0);
	member(out, "purpose", r->purpose, 0);
	member(out, "project", r->project, 0);
	member(out, "status", r->status, 0);
	member(out, "rule", r->rule, 0);
	member(out, "approver", r->approver, 0);
	member(out, "decided_by", r->decided_by, 0);
	member(out, "created", r->created, 0);
	member(out, "decided", r->decided, 0);
	member(out, "expires", r->expires, 0);
	buf_addf(out, ",\"days\":%lld}", r->days);
}

enum mlk_status access_save(const struct lake *l, const struct access_req *r,
			    struct mlk_error *e)
{
	char *dir = lake_path(l, "catalog/requests");
	enum mlk_status s = fsio_mkdirs(dir, 0755, e);
	free(dir);
	if (s != MLK_OK)
		return s;
	struct buf b = BUF_INIT;
	access_json(r, &b);
	buf_addch(&b, '\n');
	char *p = lake_path(l, "catalog/requests/%s.json", r->id);
	s = fsio_write_atomic(p, b.data, b.len, 0644, e);
	free(p);
	buf_release(&b);
	return s;
}

static char *get_str(const struct rec *rc, const char *k, struct buf *tmp)
{
	int i = rec_get(rc, 0, k);
	if (i < 0 || rec_type(rc, i) != REC_STRING)
		return xstrdup("");
	buf_reset(tmp);
	rec_str(rc, i, tmp);
	return xstrdup(tmp->data ? tmp->data : "");
}

static void get_fixed(const struct rec *rc, const char *k, char *out,
		      size_t n, struct buf *tmp)
{
	char *s = get_str(rc, k, tmp);
	snprintf(out, n, "%s", s);
	free(s);
}

static enum mlk_status parse_req(const char *path, const char *data,
				 size_t len, struct access_req *r,
				 struct mlk_error *e)
{
	memset(r, 0, sizeof *r);
	while (len && (data[len - 1] == '\n'))
		len--;
	struct rec rc;
	rec_init(&rc);
	if (rec_parse(&rc, data, len, e) != MLK_OK) {
		rec_release(&rc);
		return mlk_error_set(e, MLK_INTEGRITY, path, 1,
				     "not a valid request");
	}
	struct buf tmp = BUF_INIT;
	get_fixed(&rc, "id", r->id, sizeof r->id, &tmp);
	r->user = get_str(&rc, "user", &tmp);
	r->action = get_str(&rc, "action", &tmp);
	r->zone = get_str(&rc, "zone", &tmp);
	r->dataset = get_str(&rc, "dataset", &tmp);
	r->purpose = get_str(&rc, "purpose", &tmp);
	r->project = get_str(&rc, "project", &tmp);
	r->status = get_str(&rc, "status", &tmp);
	r->rule = get_str(&rc, "rule", &tmp);
	r->approver = get_str(&rc, "approver", &tmp);
	r->decided_by = get_str(&rc, "decided_by", &tmp);
	get_fixed(&rc, "created", r->created, sizeof r->created, &tmp);
	get_fixed(&rc, "decided", r->decided, sizeof r->decided, &tmp);
	get_fixed(&rc, "expires", r->expires, sizeof r->expires, &tmp);
	int d = rec_get(&rc, 0, "days");
	if (d >= 0 && rec_type(&rc, d) == REC_PRIMITIVE) {
		size_t n;
		const char *p = rec_raw(&rc, d, &n);
		char num[24];
		snprintf(num, sizeof num, "%.*s", (int)(n < 23 ? n : 23), p);
		r->days = strtoll(num, NULL, 10);
	}
	buf_release(&tmp);
	rec_release(&rc);
	if (!access_id_valid(r->id)) {
		access_req_release(r);
		return mlk_error_set(e, MLK_INTEGRITY, path, 1,
				     "request without a valid id");
	}
	return MLK_OK;
}

enum mlk_status access_load(const struct lake *l, const char *id,
			    struct access_req *r, struct mlk_error *e)
{
	memset(r, 0, sizeof *r);
	if (!access_id_valid(id))
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "'%s' is not a request id", id);
	char *p = lake_path(l, "catalog/requests/%s.json", id);
	enum mlk_status s;
	if (!fsio_exists(p)) {
		s = mlk_error_set(e, MLK_USAGE, NULL, 0, "no request '%s'", id);
	} else {
		char *data = NULL;
		size_t len = 0;
		s = fsio_read_file(p, &data, &len, e);
		if (s == MLK_OK)
			s = parse_req(p, data, len, r, e);
		free(data);
	}
	free(p);
	return s;
}

enum mlk_status access_list(const struct lake *l, access_fn fn, void *ctx,
			    struct mlk_error *e)
{
	char *dir = lake_path(l, "catalog/requests");
	char **ids;
	size_t n;
	enum mlk_status ls = fsio_list(dir, ".json", &ids, &n, e);
	free(dir);
	if (ls != MLK_OK)
		return ls;
	enum mlk_status s = MLK_OK;
	for (size_t i = 0; i < n; i++) {
		if (s == MLK_OK && access_id_valid(ids[i])) {
			struct access_req r;
			s = access_load(l, ids[i], &r, e);
			if (s == MLK_OK) {
				int stop = fn(ctx, &r);
				access_req_release(&r);
				if (stop)
					s = (enum mlk_status)stop;
			}
		}
		free(ids[i]);
	}
	free(ids);
	return s;
}

int access_in_force(const struct access_req *r, time_t now)
{
	if (!r->status || strcmp(r->status, "granted") || !r->expires[0])
		return 0;
	char ts[32];
	lake_time_iso(now, ts);
	return strcmp(ts, r->expires) < 0;
}

struct find {
	const char *user, *action, *zone, *dataset;
	time_t now;
	char *id;
};

static int find_cb(void *ctx, const struct access_req *r)
{
	struct find *f = ctx;
	if (strcmp(r->user, f->user) || strcmp(r->action, f->action))
		return 0;
	if (f->zone && strcmp(r->zone, f->zone))
		return 0;
	if (f->dataset && strcmp(r->dataset, f->dataset))
		return 0;
	if (!access_in_force(r, f->now))
		return 0;
	snprintf(f->id, ACCESS_ID_LEN, "%s", r->id);
	return -1;
}

int access_find_grant(const struct lake *l, const char *user,
		      const char *action, const char *zone,
		      const char *dataset, char id[ACCESS_ID_LEN])
{
	struct find f = { user, action, zone, dataset, lake_now(l), id };
	struct mlk_error e = MLK_ERROR_INIT;
	id[0] = '\0';
	/* An unreadable request grants nothing (fail closed). */
	access_list(l, find_cb, &f, &e);
	return id[0] != '\0';
}
