#include "audit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "crypto.h"
#include "fsio.h"
#include "record.h"
#include "xalloc.h"
#include "banned.h"

/*
 * The last complete line of the log: its hash and its seq.  A log that
 * does not end in '\n' has a torn last line; appending after it would
 * chain to garbage, so that is an integrity error for mlk-audit to report.
 */
static enum mlk_status last_event(int fd, const char *path,
				  char prev[SHA256_HEX], long long *seq,
				  struct mlk_error *e)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return mlk_error_errno(e, path, "cannot stat");
	memset(prev, '0', 64);
	prev[64] = '\0';
	*seq = 0;
	if (st.st_size == 0)
		return MLK_OK;
	off_t size = st.st_size;
	size_t want = 1 << 16;
	char *b = NULL;
	for (;;) {
		if ((off_t)want > size)
			want = (size_t)size;
		b = xrealloc(b, want);
		if (pread(fd, b, want, size - (off_t)want) != (ssize_t)want) {
			free(b);
			return mlk_error_errno(e, path, "read error");
		}
		if (b[want - 1] != '\n') {
			free(b);
			return mlk_error_set(e, MLK_INTEGRITY, path, 0,
					     "audit log ends in a torn line; "
					     "run 'mlk-audit verify'");
		}
		size_t i = want - 1;
		while (i > 0 && b[i - 1] != '\n')
			i--;
		if (i > 0 || (off_t)want == size) {
			size_t len = want - 1 - i;
			sha256_hex_once(b + i, len, prev);
			struct rec r;
			rec_init(&r);
			struct mlk_error pe = MLK_ERROR_INIT;
			enum mlk_status s = rec_parse(&r, b + i, len, &pe);
			int sv = s == MLK_OK ? rec_get(&r, 0, "seq") : -1;
			if (sv > 0) {
				size_t n;
				const char *p = rec_raw(&r, sv, &n);
				*seq = strtoll(p, NULL, 10);
			}
			rec_release(&r);
			free(b);
			if (sv <= 0)
				return mlk_error_set(e, MLK_INTEGRITY, path, 0,
						     "last audit event is "
						     "malformed");
			return MLK_OK;
		}
		if ((off_t)want == size)
			break;
		want *= 4;
	}
	free(b);
	return MLK_OK;
}

char *audit_segment_path(const struct lake *l, unsigned n, const char *ext)
{
	return lake_path(l, "audit/segments/%06u%s", n, ext);
}

static int cmp_uint(const void *x, const void *y)
{
	unsigned a = *(const unsigned *)x, b = *(const unsigned *)y;
	return a < b ? -1 : a > b;
}

enum mlk_status audit_segments(const struct lake *l, unsigned **nums,
			       size_t *n, struct mlk_error *e)
{
	*nums = NULL;
	*n = 0;
	char *dir = lake_path(l, "audit/segments");
	DIR *d = opendir(dir);
	if (!d) {
		enum mlk_status s = errno == ENOENT ? MLK_OK
			: mlk_error_errno(e, dir, "cannot read segments");
		free(dir);
		return s;
	}
	size_t alloc = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *nm = de->d_name;
		if (strlen(nm) != 13 || strspn(nm, "0123456789") != 6 ||
		    strcmp(nm + 6, ".ndjson") != 0)
			continue;
		XGROW(*nums, alloc, *n + 1);
		(*nums)[(*n)++] = (unsigned)strtoul(nm, NULL, 10);
	}
	closedir(d);
	free(dir);
	if (*n > 1)
		qsort(*nums, *n, sizeof **nums, cmp_uint);
	return MLK_OK;
}

enum mlk_status audit_recover(const struct lake *l, struct mlk_error *e)
{
	char *logp = lake_path(l, "audit/log.ndjson");
	unsigned *nums = NULL;
	size_t n = 0;
	char *segp = NULL;
	struct stat ls, ss;
	enum mlk_status s = audit_segments(l, &nums, &n, e);
	if (s != MLK_OK || n == 0)
		goto out;
	segp = audit_segment_path(l, nums[n - 1], ".ndjson");
	if (stat(segp, &ss) != 0) {
		s = mlk_error_errno(e, segp, "cannot stat");
		goto out;
	}
	if (stat(logp, &ls) == 0 && ls.st_nlink > 1 &&
	    ls.st_ino == ss.st_ino && ls.st_dev == ss.st_dev) {
		int fd;
		char *tmp;
		s = fsio_temp_beside(logp, &fd, &tmp, e);
		if (s == MLK_OK) {
			s = fsio_commit(fd, tmp, logp, 0644, 0, e);
			if (s != MLK_OK)
				unlink(tmp);
			free(tmp);
		}
	}
	if (s == MLK_OK && (ss.st_mode & 0222) && chmod(segp, 0444) != 0)
		s = mlk_error_errno(e, segp, "cannot make read-only");
out:
	free(nums);
	free(segp);
	free(logp);
	return s;
}

/* The log is empty: the chain goes on from the newest segment, if any. */
static enum mlk_status last_of_segments(const struct lake *l,
					char prev[SHA256_HEX],
					long long *seq, struct mlk_error *e)
{
	unsigned *nums;
	size_t n;
	enum mlk_status s = audit_segments(l, &nums, &n, e);
	if (s != MLK_OK || n == 0)
		return s;
	char *segp = audit_segment_path(l, nums[n - 1], ".ndjson");
	free(nums);
	int fd = open(segp, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		s = mlk_error_errno(e, segp, "cannot open audit segment");
	else
		s = last_event(fd, segp, prev, seq, e);
	if (fd >= 0)
		close(fd);
	free(segp);
	return s;
}

static void add_opt_str(struct buf *b, const char *key, const char *v)
{
	buf_addch(b, ',');
	buf_add_json_cstr(b, key);
	buf_addch(b, ':');
	if (v)
		buf_add_json_cstr(b, v);
	else
		buf_addstr(b, "null");
}

enum mlk_status audit_append(const struct lake *l, const struct identity *id,
			     const struct audit_event *ev,
			     struct mlk_error *e)
{
	char *lockp = lake_path(l, "audit/log.lock");
	int lock = -1;
	enum mlk_status s = fsio_lock(lockp, &lock, e);
	if (s == MLK_OK)
		s = audit_append_locked(l, id, ev, e);
	fsio_unlock(lock);
	free(lockp);
	return s;
}

enum mlk_status audit_append_locked(const struct lake *l,
				    const struct identity *id,
				    const struct audit_event *ev,
				    struct mlk_error *e)
{
	char *logp = lake_path(l, "audit/log.ndjson");
	int fd = -1;
	enum mlk_status s = MLK_OK;
	fd = open(logp, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		s = mlk_error_errno(e, logp, "cannot open audit log");
		goto out;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		s = mlk_error_errno(e, logp, "cannot stat");
		goto out;
	}
	if (st.st_nlink > 1) {
		/* Perhaps a rotation that did not finish. */
		close(fd);
		fd = -1;
		if ((s = audit_recover(l, e)) != MLK_OK)
			goto out;
		fd = open(logp, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0 || fstat(fd, &st) != 0) {
			s = mlk_error_errno(e, logp, "cannot open audit log");
			goto out;
		}
	}
	char prev[SHA256_HEX];
	long long seq;
	if ((s = last_event(fd, logp, prev, &seq, e)) != MLK_OK)
		goto out;
	if (st.st_size == 0 &&
	    (s = last_of_segments(l, prev, &seq, e)) != MLK_OK)
		goto out;

	char now[32];
	lake_time_iso(lake_now(l), now);
	struct buf b = BUF_INIT;
	buf_addf(&b, "{\"v\":1,\"seq\":%lld,\"time\":\"%s\",\"actor\":{",
		 seq + 1, now);
	buf_addstr(&b, "\"user\":");
	buf_add_json_cstr(&b, id->user);
	if (id->uid >= 0)
		buf_addf(&b, ",\"uid\":%ld", id->uid);
	if (id->test_override)
		buf_addstr(&b, ",\"test_override\":true");
	buf_addstr(&b, "}");
	add_opt_str(&b, "tool", ev->tool);
	buf_addstr(&b, ",\"version\":\"" MLK_VERSION "\"");
	add_opt_str(&b, "action", ev->action);
	add_opt_str(&b, "purpose", ev->purpose);
	add_opt_str(&b, "zone", ev->zone);
	add_opt_str(&b, "dataset", ev->dataset);
	if (ev->decision) {
		add_opt_str(&b, "decision",
			    ev->decision->allow ? "allow" : "deny");
		add_opt_str(&b, "rule", ev->decision->rule);
		if (ev->decision->role[0])
			add_opt_str(&b, "role", ev->decision->role);
	}
	buf_addf(&b, ",\"inputs\":%s,\"outputs\":%s",
		 ev->inputs ? ev->inputs : "[]",
		 ev->outputs ? ev->outputs : "[]");
	if (ev->detail)
		buf_addf(&b, ",\"detail\":%s", ev->detail);
	buf_addf(&b, ",\"status\":%d,\"prev\":\"%s\"}\n", ev->status, prev);
	s = fsio_write_all(fd, b.data, b.len, logp, e);
	buf_release(&b);
	if (s == MLK_OK && fsync(fd) != 0)
		s = mlk_error_errno(e, logp, "cannot sync audit log");
out:
	if (fd >= 0)
		close(fd);
	free(logp);
	return s;
}
