/*
 * sandbox — time-limited working copies of a snapshot for one user or
 * group (see mlk-snapshot(1) and mlk-layout(5)).
 *
 * A sandbox is a record, sandboxes/<id>.json (who it is for, who made
 * it, the snapshot, created, expires, purpose, state), and a directory,
 * sandboxes/<id>/, holding a checkout of the snapshot in
 * sandboxes/<id>/<snapshot id>/: hard links to the object store where
 * the file system allows (so the files are the store's read-only 0444
 * inodes), copies elsewhere.  Because a hard link shares its inode's
 * permissions, access is controlled by the sandbox directory itself:
 * owned by the user (mode 0700), or by the caller and the group (mode
 * 0750), so nobody else can reach the files below it.
 *
 * The directory is built first, then the record written; tearing down
 * writes the record's final state (revoked or expired) first, then
 * removes the directory.  A crash in between leaves a directory that
 * sb_verify() reports and the next sb_expire() removes.  Creating and
 * tearing down hold sandboxes/.lock.  The object store is never touched:
 * tearing down removes links and copies only.
 *
 * Ownership: struct sandbox is caller-owned (sb_release); arrays from
 * sb_list are freed with sb_list_free.  Nothing here prints or exits.
 */
#ifndef MLK_SANDBOX_H
#define MLK_SANDBOX_H

#include <stddef.h>
#include <time.h>

#include "lake.h"
#include "snapshot.h"
#include "status.h"

#define SB_ID_LEN 18    /* "x" + 16 hex digits + NUL */

struct sandbox {
	char id[SB_ID_LEN];
	char *snapshot, *zone, *dataset;
	char *who;              /* "user:NAME" or "group:NAME" */
	long long uid, gid;
	char *by, *created, *expires, *purpose, *state, *ended;
	/* state: active, revoked or expired; ended: when torn down or "" */
};

/* 1 when id looks like a sandbox id. */
int sb_id_valid(const char *id);

/*
 * Resolve --for: "user:NAME", "group:NAME", or a NAME that is a user,
 * else a group.  Fills who (malloc'd), uid and gid; MLK_USAGE when it
 * names neither.
 */
enum mlk_status sb_resolve(const char *arg, char **who, long long *uid,
			   long long *gid, struct mlk_error *e);

/* Make a sandbox of s for who, expiring secs after now. */
enum mlk_status sb_create(const struct lake *l, const struct snapshot *s,
			  const char *who, long long uid, long long gid,
			  long long secs, const char *purpose, const char *by,
			  time_t now, struct sandbox *out, size_t *linked,
			  size_t *copied, struct mlk_error *e);

enum mlk_status sb_load(const struct lake *l, const char *id,
			struct sandbox *sb, struct mlk_error *e);
void sb_release(struct sandbox *sb);
/* Every sandbox record, sorted by id. */
enum mlk_status sb_list(const struct lake *l, struct sandbox **v, size_t *n,
			struct mlk_error *e);
void sb_list_free(struct sandbox *v, size_t n);

/* 1 when the sandbox is past its expiry at now. */
int sb_expired(const struct sandbox *sb, time_t now);
/* New expiry secs after now (active sandboxes only). */
enum mlk_status sb_extend(const struct lake *l, struct sandbox *sb,
			  long long secs, time_t now, struct mlk_error *e);
/* Record the final state (revoked or expired), then remove the
 * directory. */
enum mlk_status sb_teardown(const struct lake *l, struct sandbox *sb,
			    const char *state, time_t now,
			    struct mlk_error *e);
/* Directories in sandboxes/ that have no record (malloc'd names). */
enum mlk_status sb_orphans(const struct lake *l, char ***names, size_t *n,
			   struct mlk_error *e);
/* Remove an orphan directory. */
enum mlk_status sb_remove_orphan(const struct lake *l, const char *name,
				 struct mlk_error *e);
/* 1 when the sandbox's directory exists. */
int sb_has_files(const struct lake *l, const struct sandbox *sb);

/* sandboxes/.lock */
enum mlk_status sb_lock(const struct lake *l, int *fd, struct mlk_error *e);

#endif
