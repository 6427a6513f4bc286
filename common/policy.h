/*
 * policy — who is asking, and whether policy.yaml lets them.
 *
 * Identity is the OS user and its groups.  policy.yaml (mlk-policy(5))
 * maps users and groups to roles and grants actions per zone (and
 * optionally per dataset glob) to roles.  Deny by default; the lake's
 * owner is always allowed.  A broken policy file denies everything (fail
 * closed) and says where it is broken.
 *
 * For tests only, MLK_TEST_USER and MLK_TEST_GROUPS (comma-separated)
 * replace the OS identity when policy.yaml sets test_identity_override:
 * true; otherwise they are ignored.
 *
 * Ownership: struct identity is caller-owned (policy_identity /
 * identity_release).
 */
#ifndef MLK_POLICY_H
#define MLK_POLICY_H

#include <stddef.h>
#include <sys/types.h>

#include "lake.h"
#include "status.h"

struct identity {
	char user[256];
	long uid;
	char **groups;
	size_t ngroups;
	int test_override;
};

struct decision {
	int allow;
	char rule[128];     /* "owner", "grants[2]", "default-deny", ... */
	char role[128];     /* the role that granted, or "" */
};

enum mlk_status policy_identity(const struct lake *l, struct identity *id,
				struct mlk_error *e);
void identity_release(struct identity *id);

/*
 * Decide action (ingest, read, write, export, sandbox, rehydrate, approve,
 * admin) on zone/dataset (either may be NULL for lake-wide actions).
 * Returns MLK_OK with d filled whether allowed or not; an error only when
 * the policy cannot be read (then d denies, rule "policy-error").
 */
enum mlk_status policy_check(const struct lake *l, const struct identity *id,
			     const char *action, const char *zone,
			     const char *dataset, struct decision *d,
			     struct mlk_error *e);

#endif
