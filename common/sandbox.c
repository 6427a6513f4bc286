#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "crypto.h"
#include "fsio.h"
#include "lifecycle.h"
#include "record.h"
#include "xalloc.h"
#include "banned.h"

int sb_id_valid(const char *id)
{
	if (!id || id[0] != 'x' || strlen(id) != SB_ID_LEN - 1)
		return 0;
	for (const char *p = id + 1; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

enum mlk_status sb_resolve(const char *arg, char **who, long long *uid,
			   long long *gid, struct mlk_error *e)
{
	int want_user = 1, want_group = 1;
	const char *name = arg;
	if (!strncmp(arg, "user:", 5)) {
		want_group = 0;
		name += 5;
	} else if (!strncmp(arg, "group:", 6)) {
		want_user = 0;
		name += 6;
	}
	if (!*name || strlen(name) > 64)
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "--for wants a user or group name");
	struct passwd *pw = want_user ? getpwnam(name) : NULL;
	if (pw) {
		*who = xasprintf("user:%s", name);
		*uid = (long long)pw->pw_uid;
		*gid = (long long)pw->pw_gid;
		return MLK_OK;
	}
	struct group *gr = want_group ? getgrnam(name) : NULL;
	if (gr) {
		*who = xasprintf("group:%s", name);
		*uid = (long long)geteuid();
		*gid = (long long)gr->gr_gid;
		return MLK_OK;
	}
	return mlk_error_set(e, MLK_USAGE, NULL, 0,
			     "--for: no %s named '%s'",
			     want_user && want_group ? "user or group"
			     : want_user ? "user" : "group", name);
}

static char *rec_string(const struct rec *r, const char *key)
{
	int i = rec_get(r, 0, key);
	struct buf b = BUF_INIT;
	if (i < 0 || rec_str(r, i, &b) < 0 || !b.data) {
		buf_release(&b);
		return xstrdup("");
	}
	return buf_detach(&b);
}

static long long rec_num(const struct rec *r, const char *key)
{
	int i = rec_get(r, 0, key);
	if (i < 0)
		return -1;
	size_t n;
	const char *p = rec_raw(r, i, &n);
	char tmp[32];
	if (n >= sizeof tmp)
		return -1;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	return strtoll(tmp, NULL, 10);
}

static enum mlk_status sb_save(const struct lake *l, const struct sandbox *sb,
			       struct mlk_error *e)
{
	struct buf b = BUF_INIT;
	buf_addf(&b, "{\"sandbox\":\"%s\",\"snapshot\":", sb->id);
	buf_add_json_cstr(&b, sb->snapshot);
	buf_addstr(&b, ",\"zone\":");
	buf_add_json_cstr(&b, sb->zone);
	buf_addstr(&b, ",\"dataset\":");
	buf_add_json_cstr(&b, sb->dataset);
	buf_addstr(&b, ",\"for\":");
	buf_add_json_cstr(&b, sb->who);
	buf_addf(&b, ",\"uid\":%lld,\"gid\":%lld,\"by\":", sb->uid, sb->gid);
	buf_add_json_cstr(&b, sb->by);
	buf_addstr(&b, ",\"created\":");
	buf_add_json_cstr(&b, sb->created);
	buf_addstr(&b, ",\"expires\":");
	buf_add_json_cstr(&b, sb->expires);
	buf_addstr(&b, ",\"purpose\":");
	buf_add_json_cstr(&b, sb->purpose);
	buf_addstr(&b, ",\"state\":");
	buf_add_json_cstr(&b, sb->state);
	buf_addstr(&b, ",\"ended\":");
	buf_add_json_cstr(&b, sb->ended);
	buf_addstr(&b, "}\n");
	char *p = lake_path(l, "sandboxes/%s.json", sb->id);
	enum mlk_status s = fsio_write_atomic(p, b.data, b.len, 0644, e);
	free(p);
	buf_release(&b);
	return s;
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
}

enum mlk_status sb_lock(const struct lake *l, int *fd, struct mlk_error *e)
{
	char *dir = lake_path(l, "sandboxes");
	enum mlk_status s = fsio_mkdirs(dir, 0755, e);
	char *p = lake_path(l, "sandboxes/.lock");
	if (s == MLK_OK)
		s = fsio_lock(p, fd, e);
	free(p);
	free(dir);
	return s;
}

enum mlk_status sb_create(const struct lake *l, const struct snapshot *s,
			  const char *who, long long uid, long long gid,
			  long long secs, const char *purpose, const char *by,
			  time_t now, struct sandbox *out, size_t *linked,
			  size_t *copied, struct mlk_error *e)
{
	memset(out, 0, sizeof *out);
	unsigned char rnd[16];
	enum mlk_status st = crypto_random(rnd, sizeof rnd, e);
	if (st != MLK_OK)
		return st;
	char ts[32], ex[32];
	lake_time_iso(now, ts);
	lake_time_iso(now + (time_t)secs, ex);
	struct buf seed = BUF_INIT;
	buf_addf(&seed, "%s\n%s\n%s\n", s->id, who, ts);
	buf_add(&seed, rnd, sizeof rnd);
	char h[SHA256_HEX];
	sha256_hex_once(seed.data, seed.len, h);
	buf_release(&seed);
	snprintf(out->id, sizeof out->id, "x%.16s", h);
	out->snapshot = xstrdup(s->id);
	out->zone = xstrdup(s->zone);
	out->dataset = xstrdup(s->dataset);
	out->who = xstrdup(who);
	out->uid = uid;
	out->gid = gid;
	out->by = xstrdup(by);
	out->created = xstrdup(ts);
	out->expires = xstrdup(ex);
	out->purpose = xstrdup(purpose ? purpose : "");
	out->state = xstrdup("active");
	out->ended = xstrdup("");

	char *dir = lake_path(l, "sandboxes/%s", out->id);
	char *data = xasprintf("%s/%s", dir, s->id);
	int user = !strncmp(who, "user:", 5);
	/* Closed from the start; opened to its owner only. */
	if (mkdir(dir, 0700) != 0)
		st = mlk_error_errno(e, dir, "cannot create");
	else if (chown(dir, (uid_t)uid, (gid_t)gid) != 0)
		st = mlk_error_errno(e, dir, "cannot give the sandbox to %s",
				     who);
	else if (chmod(dir, user ? 0700 : 0750) != 0)
		st = mlk_error_errno(e, dir, "cannot set the mode");
	if (st == MLK_OK)
		st = snap_checkout(l, s, data, linked, copied, e);
	if (st == MLK_OK)
		st = fsio_fsync_parent(dir, e);
	if (st == MLK_OK)
		st = sb_save(l, out, e);
	if (st != MLK_OK)
		fsio_remove_tree(dir);
	free(data);
	free(dir);
	return st;
}

enum mlk_status sb_load(const struct lake *l, const char *id,
			struct sandbox *sb, struct mlk_error *e)
{
	memset(sb, 0, sizeof *sb);
	if (!sb_id_valid(id))
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "'%s' is not a sandbox id", id);
	char *p = lake_path(l, "sandboxes/%s.json", id);
	if (!fsio_exists(p)) {
		free(p);
		return mlk_error_set(e, MLK_USAGE, NULL, 0, "no sandbox %s",
				     id);
	}
	char *data;
	size_t len;
	enum mlk_status s = fsio_read_file(p, &data, &len, e);
	if (s != MLK_OK) {
		free(p);
		return s;
	}
	struct rec r;
	rec_init(&r);
	if (rec_parse(&r, data, len, e) != MLK_OK) {
		s = mlk_error_set(e, MLK_INTEGRITY, p, 1,
				  "not a sandbox record");
	} else {
		snprintf(sb->id, sizeof sb->id, "%s", id);
		sb->snapshot = rec_string(&r, "snapshot");
		sb->zone = rec_string(&r, "zone");
		sb->dataset = rec_string(&r, "dataset");
		sb->who = rec_string(&r, "for");
		sb->uid = rec_num(&r, "uid");
		sb->gid = rec_num(&r, "gid");
		sb->by = rec_string(&r, "by");
		sb->created = rec_string(&r, "created");
		sb->expires = rec_string(&r, "expires");
		sb->purpose = rec_string(&r, "purpose");
		sb->state = rec_string(&r, "state");
		sb->ended = rec_string(&r, "ended");
	}
	rec_release(&r);
	free(data);
	free(p);
	return s;
}

void sb_release(struct sandbox *sb)
{
	free(sb->snapshot);
	free(sb->zone);
	free(sb->dataset);
	free(sb->who);
	free(sb->by);
	free(sb->created);
	free(sb->expires);
	free(sb->purpose);
	free(sb->state);
	free(sb->ended);
	memset(sb, 0, sizeof *sb);
}

enum mlk_status sb_list(const struct lake *l, struct sandbox **v, size_t *n,
			struct mlk_error *e)
{
	*v = NULL;
	*n = 0;
	char *dir = lake_path(l, "sandboxes");
	char **names;
	size_t nn;
	enum mlk_status s = fsio_list(dir, ".json", &names, &nn, e);
	free(dir);
	if (s != MLK_OK)
		return s;
	if (nn)
		*v = xcalloc(nn, sizeof **v);
	for (size_t i = 0; i < nn && s == MLK_OK; i++) {
		if (!sb_id_valid(names[i]))
			continue;
		s = sb_load(l, names[i], &(*v)[*n], e);
		if (s == MLK_OK)
			(*n)++;
	}
	fsio_list_free(names, nn);
	if (s != MLK_OK) {
		sb_list_free(*v, *n);
		*v = NULL;
		*n = 0;
	}
	return s;
}

void sb_list_free(struct sandbox *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sb_release(&v[i]);
	free(v);
}

int sb_expired(const struct sandbox *sb, time_t now)
{
	time_t t = lc_time_parse(sb->expires);
	return !t || now >= t;
}

enum mlk_status sb_extend(const struct lake *l, struct sandbox *sb,
			  long long secs, time_t now, struct mlk_error *e)
{
	if (strcmp(sb->state, "active"))
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "sandbox %s is %s", sb->id, sb->state);
	char ex[32];
	lake_time_iso(now + (time_t)secs, ex);
	set_str(&sb->expires, ex);
	return sb_save(l, sb, e);
}

int sb_has_files(const struct lake *l, const struct sandbox *sb)
{
	char *dir = lake_path(l, "sandboxes/%s", sb->id);
	struct stat st;
	int yes = lstat(dir, &st) == 0;
	free(dir);
	return yes;
}

static enum mlk_status remove_dir(const char *dir, struct mlk_error *e)
{
	struct stat st;
	fsio_remove_tree(dir);
	if (lstat(dir, &st) == 0)
		return mlk_error_set(e, MLK_SYSTEM, dir, 0,
				     "cannot remove the sandbox's files");
	return fsio_fsync_parent(dir, e);
}

enum mlk_status sb_teardown(const struct lake *l, struct sandbox *sb,
			    const char *state, time_t now,
			    struct mlk_error *e)
{
	enum mlk_status s = MLK_OK;
	/* The record says it is over before the files go: a crash in
	 * between leaves files that verify reports and expire removes. */
	if (!strcmp(sb->state, "active")) {
		char ts[32];
		lake_time_iso(now, ts);
		set_str(&sb->state, state);
		set_str(&sb->ended, ts);
		s = sb_save(l, sb, e);
	}
	if (s == MLK_OK && sb_has_files(l, sb)) {
		char *dir = lake_path(l, "sandboxes/%s", sb->id);
		s = remove_dir(dir, e);
		free(dir);
	}
	return s;
}

enum mlk_status sb_orphans(const struct lake *l, char ***names, size_t *n,
			   struct mlk_error *e)
{
	*names = NULL;
	*n = 0;
	char *dir = lake_path(l, "sandboxes");
	char **all;
	size_t na;
	enum mlk_status s = fsio_list(dir, "", &all, &na, e);
	size_t alloc = 0;
	for (size_t i = 0; i < na && s == MLK_OK; i++) {
		size_t len = strlen(all[i]);
		if (len > 5 && !strcmp(all[i] + len - 5, ".json"))
			continue;
		char *rec = xasprintf("%s/%s.json", dir, all[i]);
		if (!fsio_exists(rec)) {
			XGROW(*names, alloc, *n + 1);
			(*names)[(*n)++] = xstrdup(all[i]);
		}
		free(rec);
	}
	fsio_list_free(all, na);
	free(dir);
	return s;
}

enum mlk_status sb_remove_orphan(const struct lake *l, const char *name,
				 struct mlk_error *e)
{
	char *dir = lake_path(l, "sandboxes/%s", name);
	enum mlk_status s = remove_dir(dir, e);
	free(dir);
	return s;
}
